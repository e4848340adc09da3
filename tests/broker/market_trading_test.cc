// acquire(rspec), sealed-bid rounds and proportional share through the real
// HTTP API, each checked against balances, rcaps and `ledger verify`.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/canonical_json.h"
#include "core/money.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class MarketTradingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.SetupSites();
    now_ = core::SystemClock::Get().NowSeconds();
    nb_ = now_ + 3600;
    na_ = now_ + 7200;
    alice_ = env_.AddUser("alice", "1000", "mit");
    bob_ = env_.AddUser("bob", "1000", "mit");
    for (const char* n : {"n1", "n2", "n3"}) {
      pools_.emplace(n, env_.Grant(std::string(n) == "n2" ? env_.pi2_ : env_.pi_, n,
                                   env_.broker_->broker_key(), now_, now_ + 86400));
    }
  }
  std::string Market(const std::string& node) { return env_.NodeMarket(node, nb_, na_); }
  void PoolSell(const std::string& market, const std::string& node, int64_t qty,
                const std::string& price) {
    env_.Ok(env_.admin_, "POST", "/v1/markets/" + market + "/orders",
            {{"side", "sell"}, {"qty", qty}, {"price", price}, {"rcap", pools_.at(node).id}});
  }

  MarketEnv env_;
  int64_t now_ = 0, nb_ = 0, na_ = 0;
  core::PrivateKey alice_ = NewKey(), bob_ = NewKey();
  std::map<std::string, ledger::Rcap> pools_;
};

TEST_F(MarketTradingTest, AcquireBuysCheapestNodesAcrossSitesAllOrNothing) {
  PoolSell(Market("n1"), "n1", 10, "1");
  PoolSell(Market("n3"), "n3", 10, "2");
  PoolSell(Market("n2"), "n2", 10, "3");
  json rspec = {{"res", MarketEnv::Res(300)},
                {"nodes", 2},
                {"min_sites", 2},
                {"not_before", nb_},
                {"not_after", na_}};
  auto ac = env_.C(alice_);
  int64_t size = env_.broker_->LedgerSize();
  // Too expensive: nothing changes.
  auto cheap = ac.Call("POST", "/v1/acquire", {{"rspec", rspec}, {"max_price", "11.9"}});
  EXPECT_EQ(cheap.status().code(), core::StatusCode::kFailedPrecondition);
  // More nodes than offered: nothing changes.
  json four = rspec;
  four["nodes"] = 4;
  EXPECT_EQ(ac.Call("POST", "/v1/acquire", {{"rspec", four}, {"max_price", "100"}}).status().code(),
            core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(env_.broker_->LedgerSize(), size);
  EXPECT_EQ(env_.Balance(alice_), "1000.000000000");
  // n1 (mit, 3 x 1) + n2 (ucb, 3 x 3): the cheapest pair spanning two sites.
  json r = env_.Ok(alice_, "POST", "/v1/acquire", {{"rspec", rspec}, {"max_price", "12"}});
  EXPECT_EQ(r["paid"], "12.000000000");
  ASSERT_EQ(r["chains"].size(), 2u);
  EXPECT_EQ(r["nodes"], json({"n1", "n2"}));
  EXPECT_EQ(env_.Balance(alice_), "988.000000000");
  std::vector<core::PublicKey> trust = {env_.pi_.public_key(), env_.pi2_.public_key()};
  for (const json& c : r["chains"]) {
    auto chain = ledger::ChainFromJson(c);
    ASSERT_TRUE(chain.ok());
    EXPECT_EQ(chain->back().holder, alice_.public_key());
    EXPECT_EQ(chain->back().res.cpu_mcores, 300);
    auto v = ledger::VerifyChain(*chain, trust, chain->back().node, now_);
    EXPECT_TRUE(v.ok());
  }
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketTradingTest, SealedRoundPaysCriticalValueAndReleasesTheRest) {
  json round = env_.Ok(env_.admin_, "POST", "/v1/rounds",
                       {{"offers", {pools_.at("n1").id, pools_.at("n2").id}},
                        {"not_before", nb_},
                        {"not_after", na_},
                        {"close", now_ + 2}})["round"];
  std::string id = round["id"];
  json big = {{"items", {{{"node", "n1"}, {"res", MarketEnv::Res(3000)}}}}};
  env_.Ok(alice_, "POST", "/v1/rounds/" + id + "/bids", {{"limit", "10"}, {"bundles", {big}}});
  env_.Ok(bob_, "POST", "/v1/rounds/" + id + "/bids", {{"limit", "6"}, {"bundles", {big}}});
  EXPECT_EQ(env_.Escrowed(alice_), "10.000000000");
  // Sealed: the public view counts the bids; a signed view adds the caller's
  // own bids (a bidder that restarted knows it already bid), never another's.
  json pub = *env_.C(alice_).Call("GET", "/v1/rounds/" + id);
  EXPECT_EQ(pub["round"]["bids"], 2);
  EXPECT_FALSE(pub.contains("my_bids"));
  json mine = *env_.C(alice_).CallSigned("GET", "/v1/rounds/" + id);
  ASSERT_EQ(mine["my_bids"].size(), 1u) << mine.dump();
  EXPECT_EQ(mine["my_bids"][0]["bidder"], alice_.public_key().ToText());
  EXPECT_EQ(mine["my_bids"][0]["limit"], "10.000000000");
  EXPECT_EQ(mine["my_bids"][0]["state"], "sealed");
  EXPECT_EQ(mine["my_bids"][0]["bundles"][0]["items"][0]["node"], "n1") << mine.dump();
  EXPECT_EQ(env_.C(env_.admin_).CallSigned("GET", "/v1/rounds/" + id)->at("my_bids").size(), 0u);
  auto admin = env_.C(env_.admin_);
  EXPECT_EQ(admin.Call("POST", "/v1/rounds/" + id + "/clear").status().code(),
            core::StatusCode::kFailedPrecondition);  // not closed yet
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  auto cleared = admin.Call("POST", "/v1/rounds/" + id + "/clear");
  if (!cleared.ok()) {
    // The background tick may have cleared it first.
    EXPECT_EQ(cleared.status().code(), core::StatusCode::kFailedPrecondition);
  }
  json got = env_.Ok(alice_, "GET", "/v1/rounds/" + id)["round"];
  EXPECT_EQ(got["state"], "cleared");
  ASSERT_EQ(got["result"]["winners"].size(), 1u);
  json w = got["result"]["winners"][0];
  EXPECT_EQ(w["bidder"], alice_.public_key().ToText());
  EXPECT_EQ(w["pay"], "6.000000000");  // the critical value: bob's 6
  EXPECT_EQ(env_.Balance(alice_), "994.000000000");
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  EXPECT_EQ(env_.Balance(bob_), "1000.000000000");
  std::string rc = w["rcaps"][0];
  json rcap = env_.Ok(alice_, "GET", "/v1/rcaps/" + rc)["rcap"];
  EXPECT_EQ(rcap["res"]["cpu_mcores"], 3000);
  EXPECT_EQ(rcap["holder"], alice_.public_key().ToText());
  env_.ExpectLedgerVerifies();
}

// Opens a round over whole-node offers of `nodes` (n2 is ucb's, the others
// mit's) for the hour after the next, closing at `close`; returns its id.
std::string OpenRound(MarketEnv& env, const std::vector<std::string>& nodes, int64_t close) {
  const int64_t now = core::SystemClock::Get().NowSeconds();
  std::vector<std::string> offers;
  for (const std::string& n : nodes) {
    offers.push_back(
        env.Grant(n == "n2" ? env.pi2_ : env.pi_, n, env.broker_->broker_key(), now, now + 86400)
            .id);
  }
  return env.Ok(env.admin_, "POST", "/v1/rounds",
                {{"offers", offers},
                 {"not_before", now + 3600},
                 {"not_after", now + 7200},
                 {"close", close}})["round"]["id"];
}

// Three whole-node pools (n1, n3 at mit; n2 at ucb). alice wants any 2 of the
// three in >= 2 sites (so n2 and one mit node) for 10; bob wants n2 for 7;
// carol wants n1 and n3 for 8. The optimum is bob + carol = 15; the greedy
// ranks alice first (10 / sqrt(2) > 7). Returns the round's published result.
json ClearCountRound(MarketEnv& env) {
  const int64_t now = core::SystemClock::Get().NowSeconds();
  core::PrivateKey alice = env.AddUser("ann", "100", "mit");
  core::PrivateKey bob = env.AddUser("ben", "100", "mit");
  core::PrivateKey carol = env.AddUser("cat", "100", "ucb");
  std::string id = OpenRound(env, {"n1", "n2", "n3"}, now + 2);
  auto item = [](const char* node) {
    return json{{"node", node}, {"res", MarketEnv::Res(4000)}};
  };
  json any2 = {{"count", 2}, {"from", {"n1", "n2", "n3"}}, {"min_sites", 2},
               {"res", MarketEnv::Res(4000)}};
  env.Ok(alice, "POST", "/v1/rounds/" + id + "/bids", {{"limit", "10"}, {"bundles", {any2}}});
  env.Ok(bob, "POST", "/v1/rounds/" + id + "/bids",
         {{"limit", "7"}, {"bundles", {{{"items", {item("n2")}}}}}});
  env.Ok(carol, "POST", "/v1/rounds/" + id + "/bids",
         {{"limit", "8"}, {"bundles", {{{"items", {item("n1"), item("n3")}}}}}});
  json got;
  for (int i = 0; i < 100; ++i) {  // the background tick clears it after the close
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    got = env.Ok(alice, "GET", "/v1/rounds/" + id)["round"];
    if (got["state"] != "open") break;
  }
  EXPECT_EQ(got["state"], "cleared") << got.dump();
  EXPECT_EQ(env.Balance(alice), "100.000000000");
  env.ExpectLedgerVerifies();
  return got["result"];
}

TEST_F(MarketTradingTest, CountRequestsAcrossSitesClearAtTheProvenOptimumWithVcgPayments) {
  json result = ClearCountRound(env_);
  EXPECT_EQ(result["welfare"], "15.000000000");
  EXPECT_EQ(result["optimal"], true);
  EXPECT_EQ(result["mechanism"], "vcg");
  EXPECT_FALSE(result.contains("gap"));
  ASSERT_EQ(result["winners"].size(), 2u) << result.dump();
  // VCG: without bob the best is alice's 10, with him the others get 8: 2.
  // Without carol, alice's 10 again; with her the others get 7: 3.
  EXPECT_EQ(result["winners"][0]["pay"], "2.000000000");
  EXPECT_EQ(result["winners"][1]["pay"], "3.000000000");
}

TEST(MarketRoundBudgetTest, ARoundWhoseSolveHitsTheBudgetPublishesItsGap) {
  // A budget the greedy alone already exceeds: the solver never runs.
  MarketEnv env({.markets = {.round_budget_s = 1e-6}});
  env.SetupSites();
  json result = ClearCountRound(env);
  // The local search still finds bob + carol (they pay their limits: the
  // greedy stage did not pick them); the cpu relaxation bounds welfare by
  // 7 + 10 (bob, then alice's 2 of 3 nodes fill the pool): gap 2 / 17.
  EXPECT_EQ(result["welfare"], "15.000000000");
  EXPECT_EQ(result["optimal"], false);
  EXPECT_EQ(result["mechanism"], "greedy");
  EXPECT_EQ(result["gap"], "0.117648");
  ASSERT_EQ(result["winners"].size(), 2u) << result.dump();
  EXPECT_EQ(result["winners"][0]["pay"], "7.000000000");
  EXPECT_EQ(result["winners"][1]["pay"], "8.000000000");
}

// A principal with a valid key and cheap bids (a limit of one nano-credit
// is escrow enough) must not fill a round or make its clearing arbitrarily
// long: bids per round, per bidder and terms per round are bounded (429,
// naming the limit), a refused bid escrows and writes nothing, and others
// still bid within what is left.
TEST(MarketRoundLimitsTest, BidsPastARoundsLimitsAreRefusedNamingWhich) {
  MarketEnv env({.markets = {.tick_ms = 0,
                             .round_max_bids = 5,
                             .round_max_bids_per_bidder = 2,
                             .round_max_terms = 12}});
  env.SetupSites();
  const int64_t now = core::SystemClock::Get().NowSeconds();
  std::string id = OpenRound(env, {"n1", "n2", "n3"}, now + 3600);
  const std::string bids = "/v1/rounds/" + id + "/bids";
  auto item = [](const char* node) {
    return json{{"items", {{{"node", node}, {"res", MarketEnv::Res(100)}}}}};
  };
  auto expect_refused = [&](const core::PrivateKey& k, const json& body, const std::string& text) {
    const int64_t ledger = env.broker_->LedgerSize();
    auto r = env.C(k).Call("POST", bids, body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), core::StatusCode::kResourceExhausted);
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
    EXPECT_EQ(env.broker_->LedgerSize(), ledger);
  };
  core::PrivateKey ann = env.AddUser("ann", "100", "mit");
  core::PrivateKey ben = env.AddUser("ben", "100", "mit");
  core::PrivateKey cat = env.AddUser("cat", "100", "ucb");
  core::PrivateKey dan = env.AddUser("dan", "100", "ucb");
  // Two bids of 2 terms each (a bundle and its item): ann's most.
  for (int i = 0; i < 2; ++i) {
    env.Ok(ann, "POST", bids, {{"limit", "0.000000001"}, {"bundles", {item("n1")}}});
  }
  expect_refused(ann, {{"limit", "0.000000001"}, {"bundles", {item("n1")}}},
                 "already has 2 bids in round " + id + ", the most one bidder may place");
  EXPECT_EQ(env.Balance(ann), "99.999999998");
  // A count bundle over three nodes: 4 terms (8 in all).
  json any2 = {{"count", 2}, {"from", {"n1", "n2", "n3"}}, {"min_sites", 2},
               {"res", MarketEnv::Res(100)}};
  env.Ok(ben, "POST", bids, {{"limit", "3"}, {"bundles", {any2}}});
  // Three one-item bundles (6 terms) would make 14; two (4 terms) make 12.
  expect_refused(cat, {{"limit", "2"}, {"bundles", {item("n1"), item("n2"), item("n3")}}},
                 "its bids hold 8 terms and this bid 6, above the 12 a round takes");
  EXPECT_EQ(env.Balance(cat), "100.000000000");
  env.Ok(cat, "POST", bids, {{"limit", "2"}, {"bundles", {item("n1"), item("n2")}}});
  // 4 bids, 12 terms: the round's terms are full.
  expect_refused(dan, {{"limit", "1"}, {"bundles", {item("n3")}}},
                 "its bids hold 12 terms and this bid 2");
  env.ExpectLedgerVerifies();
  json r = env.Ok(dan, "GET", "/v1/rounds/" + id)["round"];
  EXPECT_EQ(r["bids"], 4);
}

TEST(MarketRoundLimitsTest, ARoundFullOfBidsRefusesTheNextNamingTheRound) {
  MarketEnv env({.markets = {.tick_ms = 0, .round_max_bids = 3}});
  env.SetupSites();
  const int64_t now = core::SystemClock::Get().NowSeconds();
  std::string id = OpenRound(env, {"n1"}, now + 3600);
  json bid = {{"limit", "1"},
              {"bundles", {{{"items", {{{"node", "n1"}, {"res", MarketEnv::Res(100)}}}}}}}};
  for (const char* u : {"ann", "ben", "cat"}) {
    env.Ok(env.AddUser(u, "10", "mit"), "POST", "/v1/rounds/" + id + "/bids", bid);
  }
  core::PrivateKey dan = env.AddUser("dan", "10", "mit");
  auto r = env.C(dan).Call("POST", "/v1/rounds/" + id + "/bids", bid);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("round " + id + " is full: it holds 3 bids"),
            std::string::npos)
      << r.status().message();
}

TEST_F(MarketTradingTest, ProportionalShareTableIsSignedAndCharged) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  env_.Ok(bob_, "POST", "/v1/slices", {{"name", "mit_db"}});
  std::string a = env_.Ok(alice_, "POST", "/v1/nodes/n1/share_bids",
                          {{"slice", "mit_web"}, {"rate", "1"}, {"budget", "100"}})["bid"]["id"];
  env_.Ok(bob_, "POST", "/v1/nodes/n1/share_bids",
          {{"slice", "mit_db"}, {"rate", "3"}, {"budget", "100"}});
  // Bob cannot bid for alice's slice.
  auto bc = env_.C(bob_);
  EXPECT_EQ(bc.Call("POST", "/v1/nodes/n1/share_bids",
                    {{"slice", "mit_web"}, {"rate", "1"}, {"budget", "1"}})
                .status()
                .code(),
            core::StatusCode::kPermissionDenied);
  json t = env_.Ok(alice_, "GET", "/v1/nodes/n1/shares");
  ASSERT_EQ(t["shares"].size(), 2u);
  EXPECT_EQ(t["shares"][0]["slice"], "mit_db");
  EXPECT_EQ(t["shares"][0]["cpu_weight"], 7500);
  EXPECT_EQ(t["shares"][1]["cpu_weight"], 2500);
  EXPECT_EQ(t["shares"][0]["net_kbps"], 75000);
  std::string sig = t["sig"];
  t.erase("sig");
  auto bytes = core::CanonicalJson(t);
  ASSERT_TRUE(bytes.ok());
  auto raw = core::SignatureFromText(sig);
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE(env_.broker_->broker_key()
                  .Verify(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes->data()),
                                                   bytes->size()),
                          *raw)
                  .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  json w = env_.Ok(alice_, "DELETE", "/v1/share_bids/" + a)["bid"];
  EXPECT_EQ(w["state"], "withdrawn");
  auto charged = core::Money::Parse(w["charged"].get<std::string>());
  ASSERT_TRUE(charged.ok());
  EXPECT_TRUE(charged->is_positive());
  EXPECT_LT(*charged, core::Money::FromCredits(100).value());
  // Alice paid exactly what was charged; the site PI received it (plus bob's so far).
  auto bal = core::Money::Parse(env_.Balance(alice_));
  EXPECT_EQ(core::Money::FromCredits(1000).value().Sub(*charged).value(), *bal);
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  json t2 = env_.Ok(alice_, "GET", "/v1/nodes/n1/shares");
  ASSERT_EQ(t2["shares"].size(), 1u);
  EXPECT_EQ(t2["shares"][0]["cpu_weight"], 10000);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketTradingTest, ShareTableApportionsPerSliceByLargestRemainder) {
  core::PrivateKey carol = env_.AddUser("carol", "1000", "mit");
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_a"}});
  env_.Ok(bob_, "POST", "/v1/slices", {{"name", "mit_b"}});
  env_.Ok(carol, "POST", "/v1/slices", {{"name", "mit_c"}});
  auto bid = [&](const core::PrivateKey& k, const std::string& slice, const std::string& rate) {
    return env_.Ok(k, "POST", "/v1/nodes/n3/share_bids",
                   {{"slice", slice}, {"rate", rate}, {"budget", "100"}})["bid"]["id"];
  };
  // Equal rates (alice's in two bids that add up): 3333.33 each, the
  // leftover unit to the first slice by name.
  bid(alice_, "mit_a", "0.5");
  bid(alice_, "mit_a", "0.5");
  bid(bob_, "mit_b", "1");
  std::string c = bid(carol, "mit_c", "1");
  json t = env_.Ok(alice_, "GET", "/v1/nodes/n3/shares")["shares"];
  EXPECT_EQ(t, json::parse(R"([{"slice":"mit_a","cpu_weight":3334,"net_kbps":33334},
                               {"slice":"mit_b","cpu_weight":3333,"net_kbps":33333},
                               {"slice":"mit_c","cpu_weight":3333,"net_kbps":33333}])"));
  // A slice whose share rounds to 0 still gets 1 cpu weight (the node guard's
  // minimum); its link share stays 0.
  env_.Ok(carol, "DELETE", "/v1/share_bids/" + c);
  bid(carol, "mit_c", "0.000001");
  t = env_.Ok(alice_, "GET", "/v1/nodes/n3/shares")["shares"];
  EXPECT_EQ(t[2], json({{"slice", "mit_c"}, {"cpu_weight", 1}, {"net_kbps", 0}}));
  EXPECT_EQ(t[0]["cpu_weight"].get<int64_t>() + t[1]["cpu_weight"].get<int64_t>(), 10000);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketTradingTest, ShareBidsStayWithinTheAuctionCoresRange) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_big"}});
  auto ac = env_.C(alice_);
  auto place = [&](const std::string& rate, const std::string& budget) {
    return ac.Call("POST", "/v1/nodes/n1/share_bids",
                   {{"slice", "mit_big"}, {"rate", rate}, {"budget", budget}});
  };
  // The core keeps a rate, a budget and a slice's summed rate on a node as
  // int64 nano-credits: 9 bids of 10^9 credits/s fit, a 10th does not.
  for (int i = 0; i < 9; ++i) {
    auto r = place("1000000000", "0.000000001");
    ASSERT_TRUE(r.ok()) << r.status().message();
  }
  EXPECT_EQ(place("1000000000", "0.000000001").status().code(),
            core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(place("1", "9223372036.854775808").status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_TRUE(env_.Ok(alice_, "GET", "/v1/nodes/n1/shares")["shares"].is_array());
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
