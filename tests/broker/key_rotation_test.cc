// Key rotation (docs/broker.md "Keys"): POST /v1/nodes/{node}/key and
// POST /v1/sites/{site}/pi. After a node's key changes, the node-guard routes
// take only the new key and refuse the old one as they refuse an unknown
// key; after a site's PI key changes, grants need the new key while roots
// the old key signed stay bindable and redeemable. Each refusal changes
// nothing, and the ledger verifies throughout.
#include <gtest/gtest.h>

#include "core/request_signing.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class KeyRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.SetupSites();  // n1, n3 at mit (pi_), n2 at ucb (pi2_)
    node_ = env_.node_keys_[0];
  }
  // The status code of a signed call by `k`.
  core::StatusCode Code(const core::PrivateKey& k, std::string_view method, std::string_view path,
                        const json& body = nullptr) {
    auto r = env_.C(k).CallSigned(method, path, body);
    return r.ok() ? core::StatusCode::kOk : r.status().code();
  }
  std::string Message(const core::PrivateKey& k, std::string_view method, std::string_view path,
                      const json& body = nullptr) {
    auto r = env_.C(k).CallSigned(method, path, body);
    return r.ok() ? "" : r.status().message();
  }
  json Rekey(const core::PrivateKey& by, const std::string& node, const core::PublicKey& key) {
    return env_.Ok(by, "POST", "/v1/nodes/" + node + "/key", {{"key", key.ToText()}});
  }
  size_t LedgerSize() { return static_cast<size_t>(env_.broker_->LedgerSize()); }

  MarketEnv env_;
  core::PrivateKey node_ = NewKey();
  core::PrivateKey new_ = NewKey();
};

TEST_F(KeyRotationTest, NodeRoutesTakeOnlyTheNewKeyAfterTheSitePiRotatesIt) {
  ASSERT_EQ(Code(node_, "GET", "/v1/nodes/n1/bindings"), core::StatusCode::kOk);
  json r = Rekey(env_.pi_, "n1", new_.public_key());
  EXPECT_EQ(r, json({{"node", "n1"},
                     {"key", new_.public_key().ToText()},
                     {"old", node_.public_key().ToText()},
                     {"by", env_.pi_.public_key().ToText()}}));
  EXPECT_EQ(env_.Ok(env_.admin_, "GET", "/v1/nodes/n1")["key"], new_.public_key().ToText());

  // The old key: refused as a key never registered is, on every node route.
  core::PrivateKey stranger = NewKey();
  for (auto [method, path, body] :
       {std::tuple<const char*, const char*, json>{"GET", "/v1/nodes/n1/bindings", nullptr},
        {"POST", "/v1/nodes/n1/redemptions", {{"redemptions", json::array()}}},
        {"POST", "/v1/nodes/n1/usage", {{"reports", json::array()}}}}) {
    EXPECT_EQ(Code(node_, method, path, body), core::StatusCode::kUnauthenticated) << path;
    EXPECT_EQ(Code(stranger, method, path, body), core::StatusCode::kUnauthenticated) << path;
    EXPECT_EQ(Code(new_, method, path, body), core::StatusCode::kOk) << path;
  }
  EXPECT_NE(Message(node_, "GET", "/v1/nodes/n1/bindings").find("not a registered principal"),
            std::string::npos);
  // The principal kept its name and kind under the new key.
  json p = env_.Ok(env_.admin_, "GET", "/v1/principals/" + new_.public_key().ToText());
  EXPECT_EQ(p["name"], "node.n1");
  EXPECT_EQ(p["kind"], "node");
  EXPECT_EQ(Code(env_.admin_, "GET", "/v1/principals/" + node_.public_key().ToText()),
            core::StatusCode::kNotFound);

  // An admin may rotate it again; the ledger records both changes and verifies.
  core::PrivateKey third = NewKey();
  Rekey(env_.admin_, "n1", third.public_key());
  EXPECT_EQ(Code(new_, "GET", "/v1/nodes/n1/bindings"), core::StatusCode::kUnauthenticated);
  EXPECT_EQ(Code(third, "GET", "/v1/nodes/n1/bindings"), core::StatusCode::kOk);
  json entries = env_.Ok(env_.admin_, "GET",
                         "/v1/ledger/entries?from=0&to=" + std::to_string(LedgerSize()))["entries"];
  int changes = 0;
  for (const json& e : entries) changes += e["type"] == "node_key_changed";
  EXPECT_EQ(changes, 2);
  env_.ExpectLedgerVerifies();
}

TEST_F(KeyRotationTest, NodeKeyChangeRefusalsChangeNothing) {
  const size_t before = LedgerSize();
  const std::string path = "/v1/nodes/n1/key";
  json body = {{"key", new_.public_key().ToText()}};
  // The node itself (an exposed key must not pick its successor).
  EXPECT_EQ(Code(node_, "POST", path, body), core::StatusCode::kPermissionDenied);
  // Another site's PI.
  EXPECT_EQ(Code(env_.pi2_, "POST", path, body), core::StatusCode::kPermissionDenied);
  // A user of the node's site.
  core::PrivateKey alice = env_.AddUser("alice", "", "mit");
  const size_t after_user = LedgerSize();
  EXPECT_EQ(Code(alice, "POST", path, body), core::StatusCode::kPermissionDenied);
  // An unknown node.
  EXPECT_EQ(Code(env_.pi_, "POST", "/v1/nodes/nope/key", body), core::StatusCode::kNotFound);
  // A key in use: another node's, a PI's, the admin's, a user's, its own.
  for (const core::PrivateKey* k :
       {&env_.node_keys_[1], &env_.pi2_, &env_.admin_, &alice, &node_}) {
    EXPECT_EQ(Code(env_.pi_, "POST", path, {{"key", k->public_key().ToText()}}),
              core::StatusCode::kAlreadyExists);
  }
  // Bad key text, and unknown members.
  auto bad = env_.C(env_.pi_).Call("POST", path, {{"key", "ed25519:short"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("400: key: "), std::string::npos) << bad.status().message();
  EXPECT_EQ(Code(env_.pi_, "POST", path, {{"key", new_.public_key().ToText()}, {"x", 1}}),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(LedgerSize(), after_user);
  EXPECT_GT(after_user, before);
  EXPECT_EQ(Code(node_, "GET", "/v1/nodes/n1/bindings"), core::StatusCode::kOk);
}

TEST_F(KeyRotationTest, ARetiredKeyIsNeverRegisteredAgainAndAReplayRunsNothing) {
  // The signed request, kept to be replayed.
  std::string body = json({{"key", new_.public_key().ToText()}}).dump();
  auto h = core::SignRequest(env_.pi_, "POST", "/v1/nodes/n1/key", body,
                             core::SystemClock::Get().NowSeconds());
  std::map<std::string, std::string> headers = {{"Bourse-Key", h.key},
                                                {"Bourse-Timestamp", h.timestamp},
                                                {"Bourse-Nonce", h.nonce},
                                                {"Bourse-Signature", h.signature}};
  auto c = env_.C(env_.pi_);
  auto first = c.Send("POST", "/v1/nodes/n1/key", body, false, headers);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->status, 200) << first->body;
  const size_t size = LedgerSize();
  auto again = c.Send("POST", "/v1/nodes/n1/key", body, false, headers);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 401) << again->body;
  EXPECT_EQ(LedgerSize(), size);

  // Back to the retired key: refused, for this node and for any other.
  EXPECT_EQ(Code(env_.pi_, "POST", "/v1/nodes/n1/key", {{"key", node_.public_key().ToText()}}),
            core::StatusCode::kAlreadyExists);
  EXPECT_EQ(Code(env_.pi_, "POST", "/v1/nodes/n3/key", {{"key", node_.public_key().ToText()}}),
            core::StatusCode::kAlreadyExists);
  // Nor as a new principal, node or site.
  EXPECT_EQ(Code(env_.admin_, "POST", "/v1/principals",
                 {{"key", node_.public_key().ToText()}, {"kind", "user"}, {"name", "back"}}),
            core::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      Code(
          env_.pi_, "POST", "/v1/sites/mit/nodes",
          {{"id", "n9"}, {"key", node_.public_key().ToText()}, {"capacity", MarketEnv::Res(1000)}}),
      core::StatusCode::kAlreadyExists);
  EXPECT_EQ(Code(env_.admin_, "POST", "/v1/sites",
                 {{"name", "back"}, {"pi", node_.public_key().ToText()}}),
            core::StatusCode::kAlreadyExists);
  env_.ExpectLedgerVerifies();
}

TEST_F(KeyRotationTest, SitePiRotationMovesGrantsToTheNewKeyAndKeepsOldRoots) {
  const int64_t now = core::SystemClock::Get().NowSeconds();
  core::PrivateKey alice = env_.AddUser("alice", "", "mit");
  env_.Ok(alice, "POST", "/v1/slices", {{"name", "mit_web"}});
  // Two roots the old PI key granted before the change.
  ledger::Rcap old_a = env_.Grant(env_.pi_, "n1", alice.public_key(), now, now + 3600, 1000);
  ledger::Rcap old_b = env_.Grant(env_.pi_, "n1", alice.public_key(), now, now + 3600, 1000);
  // A root the old key signs but never granted.
  auto unrecorded = ledger::IssueRoot(env_.pi_, {.id = "",
                                                 .holder = alice.public_key(),
                                                 .node = "n1",
                                                 .res = {.cpu_mcores = 500},
                                                 .interval = {now, now + 3600}});
  ASSERT_TRUE(unrecorded.ok());

  // Another site's PI may not; the PI itself may.
  EXPECT_EQ(Code(env_.pi2_, "POST", "/v1/sites/mit/pi", {{"pi", new_.public_key().ToText()}}),
            core::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(env_.admin_, "POST", "/v1/sites/nope/pi", {{"pi", new_.public_key().ToText()}}),
            core::StatusCode::kNotFound);
  EXPECT_EQ(Code(env_.pi_, "POST", "/v1/sites/mit/pi", {{"pi", env_.pi2_.public_key().ToText()}}),
            core::StatusCode::kAlreadyExists);
  EXPECT_EQ(Code(env_.pi_, "POST", "/v1/sites/mit/pi", {{"pi", env_.pi_.public_key().ToText()}}),
            core::StatusCode::kAlreadyExists);
  json r = env_.Ok(env_.pi_, "POST", "/v1/sites/mit/pi", {{"pi", new_.public_key().ToText()}});
  EXPECT_EQ(r, json({{"site", "mit"},
                     {"pi", new_.public_key().ToText()},
                     {"old", env_.pi_.public_key().ToText()},
                     {"by", env_.pi_.public_key().ToText()}}));
  EXPECT_EQ(env_.Ok(env_.admin_, "GET", "/v1/sites/mit")["pi"], new_.public_key().ToText());

  // The old key signs nothing any more: not a grant, not a node.
  auto late = ledger::IssueRoot(env_.pi_, {.id = "",
                                           .holder = alice.public_key(),
                                           .node = "n1",
                                           .res = {.cpu_mcores = 500},
                                           .interval = {now, now + 3600}});
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(Code(env_.pi_, "POST", "/v1/grants", {{"rcap", late->ToJson()}}),
            core::StatusCode::kUnauthenticated);
  // Submitted by the new PI, a root the old key signed is untrusted.
  EXPECT_EQ(Code(new_, "POST", "/v1/grants", {{"rcap", late->ToJson()}}),
            core::StatusCode::kPermissionDenied);
  // The new key grants, and manages the site's nodes.
  env_.Grant(new_, "n1", alice.public_key(), now, now + 3600, 1000);
  core::PrivateKey n4 = NewKey();
  env_.Ok(new_, "POST", "/v1/sites/mit/nodes",
          {{"id", "n4"}, {"key", n4.public_key().ToText()}, {"capacity", MarketEnv::Res(1000)}});
  core::PrivateKey n1 = NewKey();
  Rekey(new_, "n1", n1.public_key());

  // Roots the old key granted stay bindable; one it signed but never
  // granted is not.
  auto bind = [&](const ledger::Rcap& root) {
    return Code(alice, "POST", "/v1/slices/mit_web/bindings",
                {{"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{root})}});
  };
  EXPECT_EQ(bind(old_a), core::StatusCode::kOk);
  EXPECT_EQ(bind(*unrecorded), core::StatusCode::kPermissionDenied);
  EXPECT_EQ(bind(old_b), core::StatusCode::kOk);
  // ... and redeemable: the node (under its new key) reports it redeemed.
  json rep = env_.Ok(
      n1, "POST", "/v1/nodes/n1/redemptions",
      {{"redemptions",
        json::array(
            {{{"rcap", old_a.id}, {"slice", "mit_web"}, {"state", "active"}, {"ts", now}}})}});
  EXPECT_EQ(rep["recorded"], 1);
  env_.ExpectLedgerVerifies();
}

TEST_F(KeyRotationTest, AnAdminRotatesAPiKeyAndTheOldPiLosesTheSite) {
  json r = env_.Ok(env_.admin_, "POST", "/v1/sites/mit/pi", {{"pi", new_.public_key().ToText()}});
  EXPECT_EQ(r["by"], env_.admin_.public_key().ToText());
  // The old PI key is no principal now: 401, as for any unknown key.
  EXPECT_EQ(Code(env_.pi_, "POST", "/v1/sites/mit/pi", {{"pi", NewKey().public_key().ToText()}}),
            core::StatusCode::kUnauthenticated);
  EXPECT_EQ(Code(env_.pi_, "POST", "/v1/nodes/n1/key", {{"key", NewKey().public_key().ToText()}}),
            core::StatusCode::kUnauthenticated);
  json p = env_.Ok(env_.admin_, "GET", "/v1/principals/" + new_.public_key().ToText());
  EXPECT_EQ(p["name"], "mit.pi");
  EXPECT_EQ(p["site"], "mit");
  // Bad key text names the member.
  auto bad = env_.C(new_).Call("POST", "/v1/sites/mit/pi", {{"pi", 7}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("400: pi: "), std::string::npos) << bad.status().message();
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
