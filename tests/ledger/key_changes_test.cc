// Key changes in the ledger (ledger/key_changes.h): `bourse ledger verify`
// replays node_key_changed and site_pi_changed with the broker's own rule,
// tracking each site's PI key and each node's key through the log, and
// names the first forged change.
#include "ledger/key_changes.h"

#include <gtest/gtest.h>

#include "ledger/accounts.h"
#include "ledger/audit.h"
#include "ledger_test_util.h"

namespace bourse::ledger {
namespace {

using nlohmann::json;
using testing::KeyFromByte;
using testing::TempDir;

std::string K(uint8_t b) { return KeyFromByte(b).public_key().ToText(); }

class KeyChangesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("l.db");
    StoreOptions o;
    o.signing_key = KeyFromByte(60);
    auto s = Store::Open(path_, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ASSERT_TRUE(store_
                    ->Commit([&](Txn& t) {
                      return Accounts::AddAdmin(t, KeyFromByte(61).public_key(), nullptr);
                    })
                    .ok());
    // Sites mit (PI 62) and ucb (PI 63), as the broker registers them.
    Add("principal_added", {{"key", K(62)}, {"kind", "site"}, {"name", "mit.pi"}, {"site", "mit"}});
    Add("site_added", {{"site", "mit"}, {"pi", K(62)}, {"slice_limit", 10}, {"by", admin_}});
    Add("principal_added", {{"key", K(63)}, {"kind", "site"}, {"name", "ucb.pi"}, {"site", "ucb"}});
    Add("site_added", {{"site", "ucb"}, {"pi", K(63)}, {"slice_limit", 10}, {"by", admin_}});
    // Node n1 of mit, key 64; a user, key 65.
    Add("node_added", {{"node", "n1"},
                       {"site", "mit"},
                       {"key", K(64)},
                       {"capacity",
                        {{"cpu_mcores", 1000},
                         {"mem_mib", 0},
                         {"disk_mib", 0},
                         {"net_min_kbps", 0},
                         {"net_max_kbps", 0}}},
                       {"by", K(62)}});
    Add("principal_added", {{"key", K(65)}, {"kind", "user"}, {"name", "alice"}, {"site", "mit"}});
  }
  uint64_t Add(std::string_view type, const json& body) {
    auto r = store_->Append(type, body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->first_seq : 0;
  }
  uint64_t NodeKey(const std::string& key, const std::string& old, const std::string& by) {
    return Add(kEntryNodeKeyChanged, {{"node", "n1"}, {"key", key}, {"old", old}, {"by", by}});
  }
  uint64_t SitePi(const std::string& pi, const std::string& old, const std::string& by) {
    return Add(kEntrySitePiChanged, {{"site", "mit"}, {"pi", pi}, {"old", old}, {"by", by}});
  }
  std::optional<Violation> Audit() {
    auto a = AuditStore(path_, std::nullopt);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->violation : std::nullopt;
  }
  // The audit fails at `seq` with rule key_change and `detail` in its text.
  void ExpectForged(uint64_t seq, const std::string& detail) {
    auto v = Audit();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->seq, seq) << v->ToString();
    EXPECT_EQ(v->rule, "key_change") << v->ToString();
    EXPECT_NE(v->detail.find(detail), std::string::npos) << v->ToString();
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
  const std::string admin_ = K(61);
};

TEST_F(KeyChangesTest, ChangesByThePiOrAnAdminVerifyAndMoveTheKeys) {
  NodeKey(K(70), K(64), K(62));   // by mit's PI
  NodeKey(K(71), K(70), admin_);  // by an admin
  SitePi(K(72), K(62), K(62));    // the PI itself
  NodeKey(K(73), K(71), K(72));   // the new PI manages the node
  SitePi(K(74), K(72), admin_);
  EXPECT_FALSE(Audit().has_value()) << Audit()->ToString();
}

TEST_F(KeyChangesTest, ANodeChangingItsOwnKeyIsForged) {
  ExpectForged(NodeKey(K(70), K(64), K(64)), "own key");
}

TEST_F(KeyChangesTest, AnotherSitesPiOrAUserChangingIsForged) {
  ExpectForged(NodeKey(K(70), K(64), K(63)), "neither");
}

TEST_F(KeyChangesTest, AUserChangingAPiIsForged) {
  ExpectForged(SitePi(K(70), K(62), K(65)), "neither");
}

TEST_F(KeyChangesTest, AReplacedPiKeyChangesNothingAnyMore) {
  SitePi(K(72), K(62), admin_);
  ExpectForged(NodeKey(K(70), K(64), K(62)), "neither");
}

TEST_F(KeyChangesTest, AChangeFromAKeyThatIsNotCurrentIsForged) {
  NodeKey(K(70), K(64), K(62));
  ExpectForged(NodeKey(K(71), K(64), K(62)), "body.old");
}

TEST_F(KeyChangesTest, AKeyInUseOrRetiredIsNeverTaken) {
  NodeKey(K(70), K(64), K(62));
  ExpectForged(NodeKey(K(64), K(70), K(62)), "never registered");
}

TEST_F(KeyChangesTest, AnotherPrincipalsKeyIsNeverTaken) {
  ExpectForged(SitePi(K(65), K(62), admin_), "never registered");
}

TEST_F(KeyChangesTest, AChangeOfAnUnknownNodeIsForged) {
  ExpectForged(
      Add(kEntryNodeKeyChanged, {{"node", "n9"}, {"key", K(70)}, {"old", K(64)}, {"by", admin_}}),
      "does not exist");
}

TEST_F(KeyChangesTest, AMalformedBodyIsNamed) {
  ExpectForged(Add(kEntrySitePiChanged, {{"site", "mit"}, {"pi", K(70)}, {"by", admin_}}),
               "body.old");
}

}  // namespace
}  // namespace bourse::ledger
