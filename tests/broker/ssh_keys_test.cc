// Slice owners' ssh keys (issue #20, docs/broker.md "ssh keys"): every key
// belongs to one owner; GET /v1/nodes/{node}/ssh_keys, signed by the node's
// key, hands a node the keys of the current owners of each slice bound or
// instantiated there, so an owner removed with assign_owners loses access.
#include <gtest/gtest.h>

#include <string>

#include "tests/broker/market_fixture.h"
#include "tests/ssh_test_keys.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

constexpr const char* kAliceKey = testkeys::kAliceSshKey;
constexpr const char* kBobKey = testkeys::kBobSshKey;

class SshKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.SetupSites();
    alice_ = env_.AddUser("alice", "", "mit");
    bob_ = env_.AddUser("bob", "", "mit");
    env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
    int64_t now = core::SystemClock::Get().NowSeconds();
    ledger::Rcap r = env_.Grant(env_.pi_, "n1", alice_.public_key(), now - 10, now + 3600, 500);
    env_.Ok(alice_, "POST", "/v1/slices/mit_web/bindings",
            {{"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{r})}});
  }
  std::string A() const { return alice_.public_key().ToText(); }
  std::string B() const { return bob_.public_key().ToText(); }
  core::Result<json> Owners(const core::PrivateKey& by, const json& body) {
    return env_.C(by).Call("PUT", "/v1/slices/mit_web/owners", body);
  }
  // n1's guard asks (MarketEnv::SetupSites: n1 is the first node key).
  core::Result<json> NodeKeys(size_t node_index, const std::string& node) {
    return env_.C(env_.node_keys_.at(node_index))
        .CallSigned("GET", "/v1/nodes/" + node + "/ssh_keys");
  }
  void ExpectRefused(const core::Result<json>& r, std::string_view needle) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  }

  MarketEnv env_;
  core::PrivateKey alice_ = NewKey(), bob_ = NewKey();
};

TEST_F(SshKeysTest, TheNodeGetsTheKeysOfTheCurrentOwnersOnly) {
  // A plain string is the caller's key; an object names its owner.
  auto set = Owners(alice_, {{"owners", {A(), B()}},
                             {"ssh_keys", {kAliceKey, {{"owner", B()}, {"key", kBobKey}}}}});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  json both =
      json::array({{{"owner", A()}, {"key", kAliceKey}}, {{"owner", B()}, {"key", kBobKey}}});
  EXPECT_EQ((*set)["ssh_keys"], both);
  auto n1 = NodeKeys(0, "n1");
  ASSERT_TRUE(n1.ok()) << n1.status().ToString();
  EXPECT_EQ((*n1)["node"], "n1");
  ASSERT_EQ((*n1)["slices"].size(), 1u);
  EXPECT_EQ((*n1)["slices"][0]["slice"], "mit_web");
  EXPECT_EQ((*n1)["slices"][0]["keys"], both);
  // n3 has no sliver of the slice: nothing.
  auto n3 = NodeKeys(1, "n3");
  ASSERT_TRUE(n3.ok()) << n3.status().ToString();
  EXPECT_EQ((*n3)["slices"], json::array());

  // Bob removed (no ssh_keys given): Alice keeps hers, Bob's goes.
  auto removed = Owners(alice_, {{"owners", {A()}}});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  json alice_only = json::array({{{"owner", A()}, {"key", kAliceKey}}});
  EXPECT_EQ((*removed)["ssh_keys"], alice_only);
  n1 = NodeKeys(0, "n1");
  ASSERT_TRUE(n1.ok());
  EXPECT_EQ((*n1)["slices"][0]["keys"], alice_only);
  // The ledger entry of the change names the keys.
  env_.ExpectLedgerVerifies();
}

// A best-effort sliver (issue #20): a slice instantiated on a node without an
// rcap there has a sliver on it, so the node gets its owners' keys, and stops
// getting them when the slice leaves the node.
TEST_F(SshKeysTest, ANodeGetsTheKeysOfSlicesInstantiatedWithoutAnRcap) {
  auto set = Owners(alice_, {{"owners", {A()}}, {"ssh_keys", {kAliceKey}}});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  json alice_only = json::array({{{"owner", A()}, {"key", kAliceKey}}});
  auto before = NodeKeys(1, "n3");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ((*before)["slices"], json::array());

  env_.Ok(alice_, "POST", "/v1/slices/mit_web/instantiate", {{"nodes", {"n3"}}});
  auto n3 = NodeKeys(1, "n3");
  ASSERT_TRUE(n3.ok()) << n3.status().ToString();
  ASSERT_EQ((*n3)["slices"].size(), 1u) << n3->dump();
  EXPECT_EQ((*n3)["slices"][0]["slice"], "mit_web");
  EXPECT_EQ((*n3)["slices"][0]["keys"], alice_only);
  // Instantiated on n1 as well, where it also holds an rcap: listed once.
  env_.Ok(alice_, "POST", "/v1/slices/mit_web/instantiate", {{"nodes", {"n1"}}});
  auto n1 = NodeKeys(0, "n1");
  ASSERT_TRUE(n1.ok()) << n1.status().ToString();
  ASSERT_EQ((*n1)["slices"].size(), 1u) << n1->dump();

  env_.Ok(alice_, "POST", "/v1/slices/mit_web/remove_nodes", {{"nodes", {"n3"}}});
  auto after = NodeKeys(1, "n3");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ((*after)["slices"], json::array());
}

TEST_F(SshKeysTest, OnlyTheNodesOwnKeyMayAsk) {
  auto by_user = env_.C(alice_).CallSigned("GET", "/v1/nodes/n1/ssh_keys");
  ASSERT_FALSE(by_user.ok());
  EXPECT_EQ(by_user.status().code(), core::StatusCode::kPermissionDenied)
      << by_user.status().ToString();
  auto other_node = NodeKeys(1, "n1");  // n3's key asking for n1
  ASSERT_FALSE(other_node.ok());
  EXPECT_EQ(other_node.status().code(), core::StatusCode::kPermissionDenied);
  auto unsigned_get = env_.Anon().Call("GET", "/v1/nodes/n1/ssh_keys");
  ASSERT_FALSE(unsigned_get.ok());
  EXPECT_EQ(unsigned_get.status().code(), core::StatusCode::kUnauthenticated);
  auto unknown = NodeKeys(0, "nosuch");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kNotFound);
}

TEST_F(SshKeysTest, BadKeysAreRefusedNamingTheElement) {
  std::string key = kAliceKey;
  ExpectRefused(Owners(alice_, {{"owners", {A()}}, {"ssh_keys", "ssh-ed25519 AAAA"}}),
                "ssh_keys: must be an array");
  ExpectRefused(Owners(alice_, {{"owners", {A()}}, {"ssh_keys", {"command=\"sh\" " + key}}}),
                "ssh_keys[0]: ssh key: unknown key type");
  ExpectRefused(Owners(alice_, {{"owners", {A()}}, {"ssh_keys", {key + "\nssh-ed25519 AAAA x"}}}),
                "ssh_keys[0]: ssh key: control character 10");
  ExpectRefused(Owners(alice_, {{"owners", {A()}}, {"ssh_keys", {key, "ssh-ed25519 AAAA= x"}}}),
                "ssh_keys[1]: ssh key:");
  // A key for someone who is not an owner.
  ExpectRefused(
      Owners(alice_, {{"owners", {A()}}, {"ssh_keys", {{{"owner", B()}, {"key", kBobKey}}}}}),
      "ssh_keys[0].owner: " + B() + " is not one of the owners");
  // A plain string is the caller's: Alice hands the slice to Bob alone.
  ExpectRefused(Owners(alice_, {{"owners", {B()}}, {"ssh_keys", {kBobKey}}}),
                "ssh_keys[0]: a key given as a string belongs to the caller");
  ExpectRefused(Owners(alice_, {{"owners", {A()}}, {"ssh_keys", {key, key}}}),
                "ssh_keys[1]: the same key twice");
  ExpectRefused(
      Owners(alice_, {{"owners", {A()}}, {"ssh_keys", {{{"owner", A()}, {"key", key}, {"x", 1}}}}}),
      "ssh_keys[0].x: unknown field");
  ExpectRefused(Owners(alice_, {{"owners", {A()}}, {"ssh_keys", {{{"key", key}}}}}),
                "ssh_keys[0].owner: missing");
  // Nothing changed.
  auto slice = env_.Anon().Call("GET", "/v1/slices/mit_web");
  ASSERT_TRUE(slice.ok());
  EXPECT_EQ((*slice)["ssh_keys"], json::array());
}

TEST_F(SshKeysTest, TheRouteIsInTheOpenApiDocument) {
  json doc = env_.Anon().Call("GET", "/openapi.json").value();
  ASSERT_TRUE(doc["paths"].contains("/v1/nodes/{node}/ssh_keys"));
  EXPECT_TRUE(doc["paths"]["/v1/nodes/{node}/ssh_keys"].contains("get"));
}

}  // namespace
}  // namespace bourse::broker::testing
