// Requests that run once, who may sign, and buys that cannot be paid for
// (issue #13), against the real bourse-broker process:
// - a signed transfer and a signed order, each replayed with the very same
//   headers after a SIGTERM restart and after a kill -9 restart (5 times
//   each), are refused 401 and change nothing; fresh requests still run;
// - a key that is no principal is refused 401 on every signed route before
//   its body is looked at, and a principal of a kind a route is not for 403;
// - a buy its owner cannot fund, limit or market, is refused 402
//   (insufficient_funds, naming what it needs and what is available) with
//   nothing written.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/money.h"
#include "core/request_signing.h"
#include "tests/system/broker_process.h"

namespace bourse::systest {
namespace {

using nlohmann::json;
using Headers = std::map<std::string, std::string>;

Headers SignedHeaders(const core::PrivateKey& key, const std::string& method,
                      const std::string& path, const std::string& body) {
  auto h = core::SignRequest(key, method, path, body, core::SystemClock::Get().NowSeconds());
  return {{"Bourse-Key", h.key},
          {"Bourse-Timestamp", h.timestamp},
          {"Bourse-Nonce", h.nonce},
          {"Bourse-Signature", h.signature}};
}

class BrokerOnceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = BrokerProcess::Create();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    proc_ = std::move(*p);
    auto w = World::Seed(proc_->url(), proc_->admin_key());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
  }

  clients::Client As(const core::PrivateKey& k) const { return clients::Client(proc_->url(), k); }

  // Ledger size and the balance and escrow of the user and the agent.
  std::string Snapshot() const {
    clients::Client c(proc_->url());
    json out;
    auto head = c.Call("GET", "/v1/ledger/head");
    out["size"] = head.ok() ? (*head)["size"] : json("?");
    for (const core::PrivateKey* k : {&w_->user, &w_->agent}) {
      auto a = c.Call("GET", "/v1/accounts/" + k->public_key().ToText());
      out[k->public_key().ToText()] = a.ok() ? *a : json("?");
    }
    return out.dump();
  }

  std::string CreateMarket() {
    int64_t now = core::SystemClock::Get().NowSeconds();
    auto m = As(w_->admin).Call("POST", "/v1/markets",
                                {{"node", "n1"},
                                 {"unit",
                                  {{"cpu_mcores", 10},
                                   {"mem_mib", 0},
                                   {"disk_mib", 0},
                                   {"net_min_kbps", 0},
                                   {"net_max_kbps", 0}}},
                                 {"not_before", now + 3600},
                                 {"not_after", now + 7200}});
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? "/v1/markets/" + (*m)["market"]["id"].get<std::string>() + "/orders" : "";
  }

  std::unique_ptr<BrokerProcess> proc_;
  std::unique_ptr<World> w_;
};

// ---- requests that run once ----------------------------------------------------

TEST_F(BrokerOnceTest, ReplayAfterSigtermOrSigkillRestartIsRefused) {
  const std::string orders = CreateMarket();
  ASSERT_FALSE(orders.empty());
  const std::string agent = w_->agent.public_key().ToText();
  for (bool kill9 : {false, true}) {
    for (int i = 0; i < 5; ++i) {
      SCOPED_TRACE(std::string(kill9 ? "kill -9" : "SIGTERM") + " restart " + std::to_string(i));
      clients::Client user = As(w_->user);
      // A transfer (a handler that waits for its commit) and a resting buy
      // (an async handler), each accepted once.
      const std::string transfer = json({{"to", agent}, {"amount", "1.5"}}).dump();
      Headers th = SignedHeaders(w_->user, "POST", "/v1/accounts/transfer", transfer);
      auto t = user.Send("POST", "/v1/accounts/transfer", transfer, false, th);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      ASSERT_EQ(t->status, 201) << t->body;
      const std::string buy = json({{"side", "buy"}, {"qty", 1}, {"price", "0.5"}}).dump();
      Headers oh = SignedHeaders(w_->user, "POST", orders, buy);
      auto o = user.Send("POST", orders, buy, false, oh);
      ASSERT_TRUE(o.ok()) << o.status().ToString();
      ASSERT_EQ(o->status, 201) << o->body;
      // Refused while the broker runs.
      auto again = user.Send("POST", "/v1/accounts/transfer", transfer, false, th);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again->status, 401) << again->body;
      const std::string before = Snapshot();

      if (kill9) {
        proc_->Kill9();
      } else {
        ASSERT_EQ(proc_->Terminate(), 0);
      }
      ASSERT_TRUE(proc_->Start().ok());
      EXPECT_EQ(Snapshot(), before);

      clients::Client user2 = As(w_->user);
      for (int round = 0; round < 2; ++round) {  // the durable check, then the cache
        auto rt = user2.Send("POST", "/v1/accounts/transfer", transfer, false, th);
        ASSERT_TRUE(rt.ok()) << rt.status().ToString();
        EXPECT_EQ(rt->status, 401) << rt->body;
        EXPECT_EQ(rt->error_code(), "unauthenticated") << rt->body;
        EXPECT_NE(rt->error_message().find("replayed"), std::string::npos) << rt->body;
        auto ro = user2.Send("POST", orders, buy, false, oh);
        ASSERT_TRUE(ro.ok()) << ro.status().ToString();
        EXPECT_EQ(ro->status, 401) << ro->body;
        EXPECT_NE(ro->error_message().find("replayed"), std::string::npos) << ro->body;
        EXPECT_EQ(Snapshot(), before);
      }
      // A fresh request of the same content still runs.
      auto fresh = user2.Call("POST", "/v1/accounts/transfer", json::parse(transfer));
      ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
    }
  }
  // The ledger still verifies after all of it.
  clients::Client c(proc_->url());
  auto head = c.Call("GET", "/v1/ledger/head");
  ASSERT_TRUE(head.ok());
  std::string cmd = BourseBinary() + " ledger verify --url " + proc_->url() + " > " + proc_->dir() +
                    "/verify.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

// A request signed just before a restart and first sent after it runs (the
// durable check refuses only what ran).
TEST_F(BrokerOnceTest, RequestSignedBeforeRestartRunsOnceAfterIt) {
  const std::string agent = w_->agent.public_key().ToText();
  const std::string transfer = json({{"to", agent}, {"amount", "2"}}).dump();
  Headers th = SignedHeaders(w_->user, "POST", "/v1/accounts/transfer", transfer);
  auto warm = As(w_->user).Call("POST", "/v1/accounts/transfer", json::parse(transfer));
  ASSERT_TRUE(warm.ok()) << warm.status().ToString();  // b_nonces is not empty
  proc_->Kill9();
  ASSERT_TRUE(proc_->Start().ok());
  clients::Client user = As(w_->user);
  auto first = user.Send("POST", "/v1/accounts/transfer", transfer, false, th);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 201) << first->body;
  auto second = user.Send("POST", "/v1/accounts/transfer", transfer, false, th);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, 401) << second->body;
}

// The per-key limit comes before anything is stored: a request refused 429
// has not burnt its nonce.
TEST(BrokerOnceLimitsTest, KeyRateLimitComesBeforeTheNonceIsStored) {
  auto p = BrokerProcess::Create({"--rate-limit", "5"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  BrokerProcess& proc = **p;
  const core::PrivateKey& admin = proc.admin_key();
  clients::Client c(proc.url(), admin);
  const std::string mint = json({{"to", admin.public_key().ToText()}, {"amount", "1"}}).dump();
  std::optional<Headers> limited;
  for (int i = 0; i < 30 && !limited; ++i) {  // burst 10
    Headers h = SignedHeaders(admin, "POST", "/v1/accounts/mint", mint);
    auto r = c.Send("POST", "/v1/accounts/mint", mint, false, h);
    ASSERT_TRUE(r.ok());
    if (r->status == 429) {
      EXPECT_NE(r->error_message().find("for key"), std::string::npos) << r->body;
      limited = h;
    } else {
      ASSERT_EQ(r->status, 201) << r->body;
    }
  }
  ASSERT_TRUE(limited.has_value()) << "the per-key limit never refused";
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto later = c.Send("POST", "/v1/accounts/mint", mint, false, *limited);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->status, 201) << "the 429 burnt the nonce: " << later->body;
}

// A peer that keeps failing authentication is cut off before its signatures
// are checked, and let in again once its budget refills.
TEST(BrokerOnceLimitsTest, PeerLimitCutsOffFailedAuthentication) {
  auto p = BrokerProcess::Create({"--peer-rate-limit", "2"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  BrokerProcess& proc = **p;
  const core::PrivateKey& admin = proc.admin_key();
  clients::Client c(proc.url(), admin);
  const std::string mint = json({{"to", admin.public_key().ToText()}, {"amount", "1"}}).dump();
  // Bad signatures from this peer: 401 while its budget (burst 4) lasts, then 429.
  int unauthenticated = 0, limited_peer = 0;
  for (int i = 0; i < 8; ++i) {
    Headers h = SignedHeaders(admin, "POST", "/v1/accounts/mint", mint);
    h["Bourse-Signature"] = SignedHeaders(admin, "POST", "/v1/other", mint)["Bourse-Signature"];
    auto r = c.Send("POST", "/v1/accounts/mint", mint, false, h);
    ASSERT_TRUE(r.ok());
    if (r->status == 401) ++unauthenticated;
    if (r->status == 429) {
      ++limited_peer;
      EXPECT_NE(r->error_message().find("for peer"), std::string::npos) << r->body;
    }
  }
  EXPECT_GE(unauthenticated, 4);
  EXPECT_LE(unauthenticated, 5);
  EXPECT_GE(limited_peer, 3);
  // The peer's budget refills; a valid request then runs.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto ok = c.Call("POST", "/v1/accounts/mint", json::parse(mint));
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

// ---- who may sign ------------------------------------------------------------------

TEST_F(BrokerOnceTest, UnregisteredKeyIs401AndWrongKindIs403BeforeTheBody) {
  auto stranger = core::PrivateKey::Generate();
  ASSERT_TRUE(stranger.ok());
  const std::string garbage = "{{{ this is not json";
  const std::string before = Snapshot();
  struct Target {
    std::string method, path;
  };
  const std::vector<Target> every_kind = {
      {"POST", "/v1/slices"},
      {"DELETE", "/v1/slices/mit_x"},
      {"PUT", "/v1/slices/mit_x/state"},
      {"POST", "/v1/slices/mit_x/bindings"},
      {"POST", "/v1/accounts/transfer"},
      {"POST", "/v1/accounts/mint"},
      {"POST", "/v1/sites"},
      {"POST", "/v1/principals"},
      {"POST", "/v1/sites/mit/nodes"},
      {"POST", "/v1/grants"},
      {"POST", "/v1/rcaps/root-n1/split"},
      {"POST", "/v1/markets"},
      {"POST", "/v1/markets/nope/orders"},
      {"POST", "/v1/rounds"},
      {"POST", "/v1/nodes/n1/share_bids"},
      {"POST", "/v1/acquire"},
      {"GET", "/v1/nodes/n1/bindings"},
  };
  clients::Client sc(proc_->url(), *stranger);
  for (const Target& t : every_kind) {
    SCOPED_TRACE("stranger " + t.method + " " + t.path);
    auto r = sc.Send(t.method, t.path, garbage, true);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 401) << r->body;
    EXPECT_EQ(r->error_code(), "unauthenticated") << r->body;
    EXPECT_NE(r->error_message().find("not a registered principal"), std::string::npos) << r->body;
  }
  // A registered user on routes that are not for users at all: 403 with the
  // same garbage body.
  const std::vector<Target> not_for_users = {
      {"POST", "/v1/accounts/mint"},   {"POST", "/v1/sites"},   {"POST", "/v1/principals"},
      {"POST", "/v1/sites/mit/nodes"}, {"POST", "/v1/markets"}, {"POST", "/v1/rounds"}};
  clients::Client uc = As(w_->user);
  for (const Target& t : not_for_users) {
    SCOPED_TRACE("user " + t.method + " " + t.path);
    auto r = uc.Send(t.method, t.path, garbage, true);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 403) << r->body;
    EXPECT_EQ(r->error_code(), "permission_denied") << r->body;
  }
  // A node key is a principal: its own route with a bad body is a 400 now.
  auto nr = As(w_->n1).Send("POST", "/v1/nodes/n1/usage", garbage, true);
  ASSERT_TRUE(nr.ok());
  EXPECT_EQ(nr->status, 400) << nr->body;
  EXPECT_EQ(Snapshot(), before);
}

// ---- buys that cannot be paid for ----------------------------------------------

TEST_F(BrokerOnceTest, UnfundedBuyIsRefused402WithNothingWritten) {
  const std::string orders = CreateMarket();
  ASSERT_FALSE(orders.empty());
  clients::Client user = As(w_->user);  // 1000 credits
  // A limit buy that would rest: 2 x 600 = 1200 to escrow.
  std::string before = Snapshot();
  auto r =
      user.Send("POST", orders, json({{"side", "buy"}, {"qty", 2}, {"price", "600"}}).dump(), true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 402) << r->body;
  EXPECT_EQ(r->error_code(), "insufficient_funds") << r->body;
  EXPECT_NE(r->error_message().find("needs 1200 "), std::string::npos) << r->body;
  EXPECT_NE(r->error_message().find("has 1000 available"), std::string::npos) << r->body;
  EXPECT_EQ(Snapshot(), before);

  // The broker's pool sells 5 x 300; a market buy of 4 (1200) cannot be paid.
  auto sell = As(w_->admin).Call(
      "POST", orders, {{"side", "sell"}, {"qty", 5}, {"price", "300"}, {"rcap", "root-n1"}});
  ASSERT_TRUE(sell.ok()) << sell.status().ToString();
  before = Snapshot();
  r = user.Send("POST", orders, json({{"side", "buy"}, {"type", "market"}, {"qty", 4}}).dump(),
                true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 402) << r->body;
  EXPECT_EQ(r->error_code(), "insufficient_funds") << r->body;
  EXPECT_NE(r->error_message().find("available"), std::string::npos) << r->body;
  EXPECT_EQ(Snapshot(), before);
  // A limit buy that crosses for part and cannot escrow the rest.
  r = user.Send("POST", orders, json({{"side", "buy"}, {"qty", 7}, {"price", "300"}}).dump(), true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 402) << r->body;
  EXPECT_EQ(Snapshot(), before);
  // The ask is untouched, and a buy the user can pay still fills.
  auto ok = user.Call("POST", orders, {{"side", "buy"}, {"type", "market"}, {"qty", 3}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)["order"]["state"], "filled") << ok->dump();
  auto acct =
      clients::Client(proc_->url()).Call("GET", "/v1/accounts/" + w_->user.public_key().ToText());
  ASSERT_TRUE(acct.ok());
  EXPECT_EQ(core::Money::Parse((*acct)["balance"].get<std::string>())->ToMinimalString(), "100");
}

}  // namespace
}  // namespace bourse::systest
