// The bad-input table: each case gets its 4xx and leaves the ledger size and
// every balance unchanged (tests against the real binary over HTTP).
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "core/clock.h"
#include "core/request_signing.h"
#include "ledger/rcap.h"
#include "tests/system/broker_process.h"

namespace bourse::systest {
namespace {

using nlohmann::json;

enum class Signer { kNone, kAdmin, kPi, kOtherPi, kUser, kAgent, kN1, kN2, kStranger };

// Table rows leave the trailing optional member (forge) out on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct Case {
  std::string name;
  std::string method;
  std::string path;
  std::string body;
  Signer signer;
  int want;
  // Optional: replaces the signed headers (forged signatures).
  std::function<std::map<std::string, std::string>(const core::PrivateKey&, const std::string&,
                                                   const std::string&, const std::string&)>
      forge;
};

class BrokerBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = BrokerProcess::Create();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    proc_ = std::move(p).value();
    auto w = World::Seed(proc_->url(), proc_->admin_key());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(w).value();
    auto stranger = core::PrivateKey::Generate();
    ASSERT_TRUE(stranger.ok());
    stranger_.emplace(*stranger);
    clients::Client user = w_->As(w_->user);
    ASSERT_TRUE(user.Call("POST", "/v1/slices", {{"name", "mit_a"}}).ok());
    now_ = core::SystemClock::Get().NowSeconds();
    clients::Client admin = w_->As(w_->admin);
    json res = {{"cpu_mcores", 500},
                {"mem_mib", 256},
                {"disk_mib", 100},
                {"net_min_kbps", 100},
                {"net_max_kbps", 1000}};
    auto split = admin.Call("POST", "/v1/rcaps/root-n1/split",
                            {{"children",
                              {{{"id", "piece-1"},
                                {"holder", w_->user.public_key().ToText()},
                                {"res", res},
                                {"not_before", now_ - 10},
                                {"not_after", now_ + 86400}},
                               {{"id", "piece-2"},
                                {"holder", w_->user.public_key().ToText()},
                                {"res", res},
                                {"not_before", now_ - 10},
                                {"not_after", now_ + 86400}}}}});
    ASSERT_TRUE(split.ok()) << split.status().ToString();
    piece1_ = (*split)["rcaps"][0];
    piece2_ = (*split)["rcaps"][1];
    ASSERT_TRUE(
        user.Call("POST", "/v1/slices/mit_a/bindings", {{"chain", {w_->root1, piece1_}}}).ok());
  }

  const core::PrivateKey& Key(Signer s) {
    switch (s) {
      case Signer::kAdmin:
        return w_->admin;
      case Signer::kPi:
        return w_->pi;
      case Signer::kOtherPi:
        return w_->other_pi;
      case Signer::kUser:
        return w_->user;
      case Signer::kAgent:
        return w_->agent;
      case Signer::kN1:
        return w_->n1;
      case Signer::kN2:
        return w_->n2;
      default:
        return *stranger_;
    }
  }

  // Ledger size and every principal's balance and escrow.
  std::string Snapshot() {
    clients::Client c(proc_->url());
    auto head = c.Call("GET", "/v1/ledger/head");
    EXPECT_TRUE(head.ok());
    std::string snap = "size=" + std::to_string((*head)["size"].get<int64_t>());
    auto ps = c.Call("GET", "/v1/principals");
    EXPECT_TRUE(ps.ok());
    for (const json& p : (*ps)["principals"]) {
      auto a = c.Call("GET", "/v1/accounts/" + p["key"].get<std::string>());
      EXPECT_TRUE(a.ok());
      snap += " " + (*a)["balance"].get<std::string>() + "/" + (*a)["escrow"].get<std::string>();
    }
    auto slices = c.Call("GET", "/v1/slices");
    snap += " slices=" + (*slices).dump();
    return snap;
  }

  json Chain(const json& root, const ledger::Rcap& child) {
    return {{"chain", {root, piece1_, child.ToJson()}}};
  }

  std::unique_ptr<BrokerProcess> proc_;
  std::unique_ptr<World> w_;
  std::optional<core::PrivateKey> stranger_;
  json piece1_, piece2_;
  int64_t now_ = 0;
};

TEST_F(BrokerBadInputTest, EveryBadRequestIsRefusedAndChangesNothing) {
  const std::string user = w_->user.public_key().ToText();
  const std::string agent = w_->agent.public_key().ToText();
  json rv = {
      {"cpu_mcores", 1}, {"mem_mib", 1}, {"disk_mib", 1}, {"net_min_kbps", 1}, {"net_max_kbps", 1}};
  auto transfer = [&](const json& amount) {
    return json({{"to", agent}, {"amount", amount}}).dump();
  };
  auto cap_with = [&](const char* k, const json& v) {
    json c = rv;
    c[k] = v;
    return json({{"id", "nx"}, {"key", stranger_->public_key().ToText()}, {"capacity", c}}).dump();
  };
  // Chains for the bind cases (the user holds piece-2 and can sign below it).
  auto p2 = ledger::Rcap::FromJson(piece2_);
  ASSERT_TRUE(p2.ok());
  core::ResourceVector small{
      .cpu_mcores = 100, .mem_mib = 10, .disk_mib = 10, .net_min_kbps = 10, .net_max_kbps = 100};
  auto good_child = ledger::Delegate(*p2, w_->user,
                                     {.id = "gc-1",
                                      .holder = w_->user.public_key(),
                                      .res = small,
                                      .interval = {now_ - 5, now_ + 3600}});
  ASSERT_TRUE(good_child.ok());
  ledger::Rcap tampered = *good_child;
  tampered.res.cpu_mcores = 400;  // signature no longer matches
  ledger::Rcap broken = *good_child;
  broken.parent = "piece-1";  // wrong parent for the chain below
  broken.id = "gc-broken";
  broken.sig = w_->user.Sign(broken.SigningBytes());
  ledger::Rcap big = *good_child;
  big.res.cpu_mcores = 100000;
  big.id = "gc-big";
  big.sig = w_->user.Sign(big.SigningBytes());
  ledger::Rcap late = *good_child;
  late.id = "gc-late";
  late.interval = {now_ - 5, now_ + 10 * 86400};
  late.sig = w_->user.Sign(late.SigningBytes());
  ledger::Rcap expired = *good_child;
  expired.id = "gc-exp";
  expired.interval = {now_ - 100, now_ - 50};
  expired.sig = w_->user.Sign(expired.SigningBytes());
  auto chain2 = [&](const ledger::Rcap& leaf) {
    return json({{"chain", {w_->root1, piece2_, leaf.ToJson()}}}).dump();
  };
  // A root for n1 signed by the wrong site's key.
  auto untrusted = ledger::IssueRoot(w_->other_pi, {.id = "evil-root",
                                                    .holder = w_->user.public_key(),
                                                    .node = "n1",
                                                    .res = small,
                                                    .interval = {now_ - 5, now_ + 60}});
  ASSERT_TRUE(untrusted.ok());
  auto unknown_node = ledger::IssueRoot(w_->pi, {.id = "n9-root",
                                                 .holder = w_->user.public_key(),
                                                 .node = "n9",
                                                 .res = small,
                                                 .interval = {now_ - 5, now_ + 60}});
  ASSERT_TRUE(unknown_node.ok());
  auto stale = [](const core::PrivateKey& k, const std::string& m, const std::string& p,
                  const std::string& b) {
    auto h = core::SignRequest(k, m, p, b, core::SystemClock::Get().NowSeconds() - 1000);
    return std::map<std::string, std::string>{{"Bourse-Key", h.key},
                                              {"Bourse-Timestamp", h.timestamp},
                                              {"Bourse-Nonce", h.nonce},
                                              {"Bourse-Signature", h.signature}};
  };
  auto signed_over = [](std::string other_body) {
    return [other_body](const core::PrivateKey& k, const std::string& m, const std::string& p,
                        const std::string&) {
      auto h = core::SignRequest(k, m, p, other_body, core::SystemClock::Get().NowSeconds());
      return std::map<std::string, std::string>{{"Bourse-Key", h.key},
                                                {"Bourse-Timestamp", h.timestamp},
                                                {"Bourse-Nonce", h.nonce},
                                                {"Bourse-Signature", h.signature}};
    };
  };
  auto with = [](std::string header, std::string value) {
    return [header, value](const core::PrivateKey& k, const std::string& m, const std::string& p,
                           const std::string& b) {
      auto h = core::SignRequest(k, m, p, b, core::SystemClock::Get().NowSeconds());
      std::map<std::string, std::string> out{{"Bourse-Key", h.key},
                                             {"Bourse-Timestamp", h.timestamp},
                                             {"Bourse-Nonce", h.nonce},
                                             {"Bourse-Signature", h.signature}};
      out[header] = value;
      return out;
    };
  };
  const std::string other_key_text = w_->agent.public_key().ToText();
  std::string huge(2 << 20, 'x');

  std::vector<Case> cases = {
      // Malformed JSON.
      {"truncated json", "POST", "/v1/slices", "{", Signer::kUser, 400},
      {"not json", "POST", "/v1/slices", "not json", Signer::kUser, 400},
      {"array body", "POST", "/v1/slices", "[]", Signer::kUser, 400},
      {"trailing comma", "POST", "/v1/slices", R"({"name":"mit_b",})", Signer::kUser, 400},
      {"duplicate key", "POST", "/v1/slices", R"({"name":"mit_b","name":"mit_c"})", Signer::kUser, 400},
      {"empty body", "POST", "/v1/slices", "", Signer::kUser, 400},
      {"float in body", "POST", "/v1/slices/mit_a/renew", R"({"expires":1.5})", Signer::kUser, 400},
      {"invalid utf8", "POST", "/v1/slices", "{\"name\":\"mit_\xff\"}", Signer::kUser, 400},
      {"body on GET-like DELETE", "DELETE", "/v1/slices/mit_a", "{}", Signer::kUser, 400},
      // Wrong types.
      {"name is number", "POST", "/v1/slices", R"({"name":123})", Signer::kUser, 400},
      {"name is null", "POST", "/v1/slices", R"({"name":null})", Signer::kUser, 400},
      {"amount is number", "POST", "/v1/accounts/transfer", transfer(5), Signer::kUser, 400},
      {"to is number", "POST", "/v1/accounts/transfer", R"({"to":42,"amount":"1"})", Signer::kUser, 400},
      {"nodes is string", "POST", "/v1/slices/mit_a/instantiate", R"({"nodes":"n1"})", Signer::kUser, 400},
      {"owners is string", "PUT", "/v1/slices/mit_a/owners", R"({"owners":"x"})", Signer::kUser, 400},
      {"owners bad key", "PUT", "/v1/slices/mit_a/owners", R"({"owners":["ed25519:abc"]})", Signer::kUser, 400},
      {"boot_script array", "PUT", "/v1/slices/mit_a/state", R"({"boot_script":[]})", Signer::kUser, 400},
      {"expires string", "POST", "/v1/slices/mit_a/renew", R"({"expires":"soon"})", Signer::kUser, 400},
      {"slice_limit string", "POST", "/v1/sites", json({{"name", "x1"}, {"pi", other_key_text}, {"slice_limit", "10"}}).dump(), Signer::kAdmin, 400},
      {"capacity string", "POST", "/v1/sites/mit/nodes", cap_with("cpu_mcores", "1"), Signer::kPi, 400},
      {"resources negative", "PUT", "/v1/slices/mit_a/resources", json({{"resources", {{"cpu_mcores", -1}, {"mem_mib", 1}, {"disk_mib", 1}, {"net_min_kbps", 1}, {"net_max_kbps", 1}}}}).dump(), Signer::kUser, 400},
      {"chain not array", "POST", "/v1/slices/mit_a/bindings", R"({"chain":{}})", Signer::kUser, 400},
      // Missing fields.
      {"missing name", "POST", "/v1/slices", "{}", Signer::kUser, 400},
      {"missing amount", "POST", "/v1/accounts/transfer", json({{"to", agent}}).dump(), Signer::kUser, 400},
      {"missing to", "POST", "/v1/accounts/mint", R"({"amount":"1"})", Signer::kAdmin, 400},
      {"missing chain", "POST", "/v1/slices/mit_a/bindings", "{}", Signer::kUser, 400},
      {"missing capacity", "POST", "/v1/sites/mit/nodes", json({{"id", "nx"}, {"key", other_key_text}}).dump(), Signer::kPi, 400},
      {"missing boot_script", "PUT", "/v1/slices/mit_a/state", "{}", Signer::kUser, 400},
      {"missing capacity field", "POST", "/v1/sites/mit/nodes", [&] { json c = json::parse(cap_with("cpu_mcores", 1)); c["capacity"].erase("mem_mib"); return c.dump(); }(), Signer::kPi, 400},
      // Unknown fields.
      {"unknown slice field", "POST", "/v1/slices", R"({"name":"mit_b","color":"red"})", Signer::kUser, 400},
      {"unknown transfer field", "POST", "/v1/accounts/transfer", json({{"to", agent}, {"amount", "1"}, {"memo", "x"}}).dump(), Signer::kUser, 400},
      {"unknown grant field", "POST", "/v1/grants", json({{"rcap", w_->root2}, {"x", 1}}).dump(), Signer::kPi, 400},
      {"unknown capacity field", "POST", "/v1/sites/mit/nodes", cap_with("gpus", 1), Signer::kPi, 400},
      {"unknown rcap field in chain", "POST", "/v1/slices/mit_a/bindings", [&] { json c = piece2_; c["extra"] = 1; return json({{"chain", {w_->root1, c}}}).dump(); }(), Signer::kUser, 400},
      // Money.
      {"negative amount", "POST", "/v1/accounts/transfer", transfer("-5"), Signer::kUser, 400},
      {"zero amount", "POST", "/v1/accounts/transfer", transfer("0"), Signer::kUser, 400},
      {"over-precise amount", "POST", "/v1/accounts/transfer", transfer("1.0000000001"), Signer::kUser, 400},
      {"exponent amount", "POST", "/v1/accounts/transfer", transfer("1e3"), Signer::kUser, 400},
      {"huge amount", "POST", "/v1/accounts/transfer", transfer("999999999999999999999999999999999999999999"), Signer::kUser, 400},
      {"spaced amount", "POST", "/v1/accounts/transfer", transfer(" 5"), Signer::kUser, 400},
      {"overdraft", "POST", "/v1/accounts/transfer", transfer("5000"), Signer::kUser, 409},
      {"huge mint", "POST", "/v1/accounts/mint", json({{"to", user}, {"amount", "170141183460469231731687303716"}}).dump(), Signer::kAdmin, 400},
      {"negative mint", "POST", "/v1/accounts/mint", json({{"to", user}, {"amount", "-1"}}).dump(), Signer::kAdmin, 400},
      // Huge numbers.
      {"huge expires", "POST", "/v1/slices/mit_a/renew", R"({"expires":1000000000000000000000000})", Signer::kUser, 400},
      {"unsafe integer capacity", "POST", "/v1/sites/mit/nodes", cap_with("cpu_mcores", 9007199254740993LL), Signer::kPi, 400},
      {"negative ts", "POST", "/v1/nodes/n1/redemptions", R"({"redemptions":[{"rcap":"piece-1","slice":"mit_a","state":"active","ts":-1}]})", Signer::kN1, 400},
      // Oversize.
      {"oversize body", "POST", "/v1/slices", json({{"name", "mit_big"}, {"description", huge}}).dump(), Signer::kUser, 413},
      {"oversize boot script", "PUT", "/v1/slices/mit_a/state", json({{"boot_script", std::string(70000, 'e')}}).dump(), Signer::kUser, 400},
      {"slice name too long", "POST", "/v1/slices", json({{"name", "mit_" + std::string(61, 'a')}}).dump(), Signer::kUser, 400},
      // Bad names.
      {"upper-case site prefix", "POST", "/v1/slices", R"({"name":"MIT_x"})", Signer::kUser, 400},
      {"no underscore", "POST", "/v1/slices", R"({"name":"mitx"})", Signer::kUser, 400},
      {"bad site name", "POST", "/v1/sites", json({{"name", "Bad Site"}, {"pi", other_key_text}}).dump(), Signer::kAdmin, 400},
      // Unknown sites, nodes, slices, rcaps.
      {"unknown site prefix", "POST", "/v1/slices", R"({"name":"nosite_a"})", Signer::kAdmin, 404},
      {"unknown slice get", "GET", "/v1/slices/mit_nothere", "", Signer::kNone, 404},
      {"unknown slice delete", "DELETE", "/v1/slices/mit_nothere", "", Signer::kUser, 404},
      {"unknown node instantiate", "POST", "/v1/slices/mit_a/instantiate", R"({"nodes":["n9"]})", Signer::kUser, 404},
      {"unknown site node register", "POST", "/v1/sites/nosite/nodes", cap_with("cpu_mcores", 1), Signer::kPi, 404},
      {"unknown node get", "GET", "/v1/nodes/n9", "", Signer::kNone, 404},
      {"unknown node in chain", "POST", "/v1/slices/mit_a/bindings", json({{"chain", {unknown_node->ToJson()}}}).dump(), Signer::kUser, 404},
      {"unknown rcap split", "POST", "/v1/rcaps/nope/split", R"({"children":[{"holder":")" + user + R"(","res":{"cpu_mcores":1,"mem_mib":1,"disk_mib":1,"net_min_kbps":1,"net_max_kbps":1},"not_before":1,"not_after":2}]})", Signer::kAdmin, 404},
      {"unknown recipient", "POST", "/v1/accounts/transfer", json({{"to", stranger_->public_key().ToText()}, {"amount", "1"}}).dump(), Signer::kUser, 404},
      {"unknown rcap redemption", "POST", "/v1/nodes/n1/redemptions", R"({"redemptions":[{"rcap":"nope","slice":"mit_a","state":"active","ts":1}]})", Signer::kN1, 404},
      // Another owner's slice and other authorization failures.
      {"agent sets state", "PUT", "/v1/slices/mit_a/state", R"({"boot_script":"x"})", Signer::kAgent, 403},
      {"other PI deletes", "DELETE", "/v1/slices/mit_a", "", Signer::kOtherPi, 403},
      {"agent binds", "POST", "/v1/slices/mit_a/bindings", json({{"chain", {w_->root1, piece2_}}}).dump(), Signer::kAgent, 403},
      {"user creates in other site", "POST", "/v1/slices", R"({"name":"ucb_x"})", Signer::kUser, 403},
      {"user creates site", "POST", "/v1/sites", json({{"name", "x1"}, {"pi", other_key_text}}).dump(), Signer::kUser, 403},
      {"user registers node", "POST", "/v1/sites/mit/nodes", cap_with("cpu_mcores", 1), Signer::kUser, 403},
      {"other node reads bindings", "GET", "/v1/nodes/n1/bindings", "", Signer::kN2, 403},
      {"stranger creates slice", "POST", "/v1/slices", R"({"name":"mit_s"})", Signer::kStranger, 401},
      {"user mints", "POST", "/v1/accounts/mint", json({{"to", user}, {"amount", "1"}}).dump(), Signer::kUser, 403},
      {"other PI grants for mit node", "POST", "/v1/grants", json({{"rcap", untrusted->ToJson()}}).dump(), Signer::kOtherPi, 403},
      {"user splits broker pool", "POST", "/v1/rcaps/root-n2/split", R"({"children":[{"holder":")" + user + R"(","res":{"cpu_mcores":1,"mem_mib":1,"disk_mib":1,"net_min_kbps":1,"net_max_kbps":1},"not_before":)" + std::to_string(now_) + R"(,"not_after":)" + std::to_string(now_ + 60) + "}]}", Signer::kUser, 403},
      {"node reports other node", "POST", "/v1/nodes/n1/usage", R"({"reports":[]})", Signer::kN2, 403},
      // Signatures.
      {"unsigned mutation", "POST", "/v1/slices", R"({"name":"mit_b"})", Signer::kNone, 401},
      {"signature over other body", "POST", "/v1/slices", R"({"name":"mit_b"})", Signer::kUser, 401, signed_over(R"({"name":"mit_c"})")},
      {"stale signature", "POST", "/v1/slices", R"({"name":"mit_b"})", Signer::kUser, 401, stale},
      {"malformed key header", "POST", "/v1/slices", R"({"name":"mit_b"})", Signer::kUser, 401, with("Bourse-Key", "ed25519:nope")},
      {"short nonce", "POST", "/v1/slices", R"({"name":"mit_b"})", Signer::kUser, 401, with("Bourse-Nonce", "abc")},
      {"missing signature", "POST", "/v1/slices", R"({"name":"mit_b"})", Signer::kUser, 401, with("Bourse-Signature", "")},
      {"key swapped", "POST", "/v1/slices", R"({"name":"mit_b"})", Signer::kUser, 401, with("Bourse-Key", other_key_text)},
      {"garbage signature", "POST", "/v1/slices", R"({"name":"mit_b"})", Signer::kUser, 401, with("Bourse-Signature", "AAAA")},
      {"future timestamp", "POST", "/v1/slices", R"({"name":"mit_b"})", Signer::kUser, 401, with("Bourse-Timestamp", "99999999999")},
      // Chains that do not verify, and a double bind.
      {"tampered child", "POST", "/v1/slices/mit_a/bindings", chain2(tampered), Signer::kUser, 403},
      {"untrusted root", "POST", "/v1/slices/mit_a/bindings", json({{"chain", {untrusted->ToJson()}}}).dump(), Signer::kUser, 403},
      {"broken link", "POST", "/v1/slices/mit_a/bindings", chain2(broken), Signer::kUser, 409},
      {"exceeds parent", "POST", "/v1/slices/mit_a/bindings", chain2(big), Signer::kUser, 409},
      {"outside interval", "POST", "/v1/slices/mit_a/bindings", chain2(late), Signer::kUser, 409},
      {"expired leaf", "POST", "/v1/slices/mit_a/bindings", chain2(expired), Signer::kUser, 409},
      {"empty chain", "POST", "/v1/slices/mit_a/bindings", R"({"chain":[]})", Signer::kUser, 400},
      {"double bind", "POST", "/v1/slices/mit_a/bindings", json({{"chain", {w_->root1, piece1_}}}).dump(), Signer::kUser, 409},
      // Query parameters, routes, duplicates.
      {"entries from > to", "GET", "/v1/ledger/entries?from=5&to=2", "", Signer::kNone, 400},
      {"entries non-numeric", "GET", "/v1/ledger/entries?from=abc&to=1", "", Signer::kNone, 400},
      {"entries beyond size", "GET", "/v1/ledger/entries?from=0&to=100000", "", Signer::kNone, 400},
      {"inclusion seq == size", "GET", "/v1/ledger/proof/inclusion?seq=3&size=3", "", Signer::kNone, 400},
      {"consistency first > second", "GET", "/v1/ledger/proof/consistency?first=4&second=3", "", Signer::kNone, 400},
      {"missing query param", "GET", "/v1/ledger/proof/inclusion?seq=1", "", Signer::kNone, 400},
      {"unknown route", "GET", "/v1/nothing", "", Signer::kNone, 404},
      {"wrong method", "PATCH", "/v1/slices/mit_a", "", Signer::kUser, 405},
      {"transfer to self", "POST", "/v1/accounts/transfer", json({{"to", user}, {"amount", "1"}}).dump(), Signer::kUser, 400},
      {"duplicate slice", "POST", "/v1/slices", R"({"name":"mit_a"})", Signer::kUser, 409},
      {"bogus redemption state", "POST", "/v1/nodes/n1/redemptions", R"({"redemptions":[{"rcap":"piece-1","slice":"mit_a","state":"bogus","ts":1}]})", Signer::kN1, 400},
      {"usage to before from", "POST", "/v1/nodes/n1/usage", R"({"reports":[{"id":"u","slice":"mit_a","rcap":"piece-1","from":10,"to":5,"cpu_usec":1,"net_tx_bytes":1,"disk_used_mib":1}]})", Signer::kN1, 400},
      {"renew in the past", "POST", "/v1/slices/mit_a/renew", R"({"expires":1})", Signer::kUser, 400},
      {"grant over capacity", "POST", "/v1/grants", [&] {
         auto r = ledger::IssueRoot(w_->pi, {.id = "too-big", .holder = core::PublicKey::FromText(w_->broker_key).value(), .node = "n1",
                                             .res = {.cpu_mcores = 3000, .mem_mib = 1, .disk_mib = 1, .net_min_kbps = 1, .net_max_kbps = 1},
                                             .interval = {now_ - 5, now_ + 60}});
         return json({{"rcap", r->ToJson()}}).dump(); }(), Signer::kPi, 409},
  };
  ASSERT_GE(cases.size(), 60u);

  std::string before = Snapshot();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    clients::Client client(proc_->url(), c.signer == Signer::kNone
                                             ? std::nullopt
                                             : std::optional<core::PrivateKey>(Key(c.signer)));
    std::map<std::string, std::string> headers;
    if (c.forge) headers = c.forge(Key(c.signer), c.method, c.path, c.body);
    bool sign =
        c.signer != Signer::kNone && !c.forge && !(c.method == "GET" && c.signer == Signer::kNone);
    if (c.method == "GET" && c.signer == Signer::kNone) sign = false;
    auto r = client.Send(c.method, c.path, c.body, sign, headers);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, c.want) << r->body;
    if (c.want != 405) {
      EXPECT_FALSE(r->error_code().empty()) << r->body;
      EXPECT_FALSE(r->error_message().empty()) << r->body;
    }
    EXPECT_EQ(Snapshot(), before);
  }
  // A replayed request: the first is refused on its merits (404), the replay
  // with the very same headers as a replay (401); nothing changes.
  clients::Client user_client(proc_->url(), w_->user);
  auto h = core::SignRequest(w_->user, "DELETE", "/v1/slices/mit_nothere", "",
                             core::SystemClock::Get().NowSeconds());
  std::map<std::string, std::string> hs{{"Bourse-Key", h.key},
                                        {"Bourse-Timestamp", h.timestamp},
                                        {"Bourse-Nonce", h.nonce},
                                        {"Bourse-Signature", h.signature}};
  auto first = user_client.Send("DELETE", "/v1/slices/mit_nothere", "", false, hs);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 404);
  auto replay = user_client.Send("DELETE", "/v1/slices/mit_nothere", "", false, hs);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->status, 401);
  EXPECT_NE(replay->error_message().find("replayed"), std::string::npos);
  EXPECT_EQ(Snapshot(), before);
}

}  // namespace
}  // namespace bourse::systest
