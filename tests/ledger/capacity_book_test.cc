// The capacity book (DESIGN 4.1): CapacityLog refuses every use that breaks
// the rule, and the auditor (`bourse ledger verify`) catches a ledger whose
// entries were forged with the ledger key to break each clause, at the seq of
// the first offending entry.
#include <gtest/gtest.h>

#include <functional>

#include "core/json_codec.h"
#include "ledger/accounts.h"
#include "ledger/audit.h"
#include "ledger/store.h"
#include "ledger_test_util.h"

namespace bourse::ledger {
namespace {

using core::ResourceVector;
using core::StatusCode;
using testing::KeyFromByte;
using testing::TempDir;

constexpr int64_t kT0 = 1'700'000'000;

ResourceVector Res(int64_t cpu, int64_t mem = 0) {
  return {
      .cpu_mcores = cpu, .mem_mib = mem, .disk_mib = 0, .net_min_kbps = 0, .net_max_kbps = 1000};
}

class CapacityBookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("l.db");
    StoreOptions o;
    o.signing_key = ledger_key_;
    store_ = std::move(*Store::Open(path_, o));
    ASSERT_TRUE(Do([&](Txn& t) { return AddNode(t, "n1", Res(1000, 1000)); }).ok());
  }
  core::Status Do(const std::function<core::Status(Txn&)>& fn) {
    auto r = store_->Commit(fn);
    return r.ok() ? core::Status::Ok() : r.status();
  }
  static core::Status AddNode(Txn& t, const std::string& id, const ResourceVector& cap) {
    return CapacityLog::RecordNode(t, id, cap,
                                   {{"node", id}, {"capacity", core::ResourceVectorToJson(cap)}});
  }
  Rcap Root(const std::string& id, const ResourceVector& res, core::Interval iv,
            const std::string& node = "n1") {
    return *IssueRoot(
        site_,
        {.id = id, .holder = broker_.public_key(), .node = node, .res = res, .interval = iv});
  }
  Rcap Child(const Rcap& parent, const core::PrivateKey& parent_holder, const std::string& id,
             const ResourceVector& res, core::Interval iv) {
    return *Delegate(parent, parent_holder,
                     {.id = id, .holder = alice_.public_key(), .res = res, .interval = iv});
  }
  core::Status Issue(const Rcap& r) {
    return Do([&](Txn& t) { return CapacityLog::RecordIssued(t, r); });
  }
  core::Status Delegated(const Rcap& r) {
    return Do([&](Txn& t) { return CapacityLog::RecordDelegated(t, r); });
  }
  core::Status Bind(const Rcap& r, const std::string& slice = "pl_s") {
    return Do([&](Txn& t) { return CapacityLog::RecordBound(t, r, slice); });
  }
  // Appends an entry as a dishonest broker would: the ledger key signs it,
  // no rule is applied.
  uint64_t Forge(std::string_view type, nlohmann::json body) {
    auto r = store_->Append(type, std::move(body));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->first_seq : 0;
  }
  std::optional<Violation> Audit() {
    auto a = AuditStore(path_, ledger_key_.public_key());
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->violation : std::nullopt;
  }
  void ExpectViolationAt(uint64_t seq, std::string_view words) {
    auto v = Audit();
    ASSERT_TRUE(v.has_value()) << "the forged ledger passed verification";
    EXPECT_EQ(v->seq, seq) << v->ToString();
    EXPECT_EQ(v->rule, "capacity") << v->ToString();
    EXPECT_NE(v->detail.find(words), std::string::npos) << v->ToString();
  }
  static void ExpectRefused(const core::Status& st, std::string_view reason) {
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
    EXPECT_EQ(st.message().rfind(reason, 0), 0u) << st.ToString();
  }

  TempDir dir_;
  std::string path_;
  core::PrivateKey ledger_key_ = KeyFromByte(90), site_ = KeyFromByte(91),
                   broker_ = KeyFromByte(92), alice_ = KeyFromByte(93);
  std::unique_ptr<Store> store_;
};

TEST_F(CapacityBookTest, RootsNeverExceedTheNodeAtAnyInstant) {
  ASSERT_TRUE(Issue(Root("A", Res(600), {kT0, kT0 + 100})).ok());
  // Overlaps A in [kT0+50, kT0+100): 600 + 600 > 1000 there.
  uint64_t before = store_->Head().size;
  core::Status over = Issue(Root("B", Res(600), {kT0 + 50, kT0 + 150}));
  ExpectRefused(over, "oversubscribed");
  EXPECT_NE(over.message().find("rcap B"), std::string::npos) << over.message();
  EXPECT_NE(over.message().find("cpu_mcores"), std::string::npos) << over.message();
  EXPECT_NE(over.message().find("t=" + std::to_string(kT0 + 50)), std::string::npos)
      << over.message();
  EXPECT_EQ(store_->Head().size, before) << "a refused root wrote an entry";
  // After A ends the whole node is free again; alongside A, what is left.
  EXPECT_TRUE(Issue(Root("C", Res(1000), {kT0 + 100, kT0 + 200})).ok());
  EXPECT_TRUE(Issue(Root("D", Res(400), {kT0, kT0 + 100})).ok());
  ExpectRefused(Issue(Root("E", Res(1), {kT0 + 99, kT0 + 101})), "oversubscribed");
  // A ceiling above the node's (net_max_kbps is not summed, but no root may
  // promise more than the node's link has).
  Rcap wide = Root("W", Res(1), {kT0 + 200, kT0 + 300});
  wide.res.net_max_kbps = 1001;
  wide = *IssueRoot(site_, {.id = "W",
                            .holder = broker_.public_key(),
                            .node = "n1",
                            .res = wide.res,
                            .interval = wide.interval});
  ExpectRefused(Issue(wide), "exceeds_node");
  // A root for a node nobody registered.
  ExpectRefused(Issue(Root("F", Res(1), {kT0, kT0 + 10}, "ghost")), "unknown_node");
  EXPECT_FALSE(Audit().has_value());
}

TEST_F(CapacityBookTest, ABoundRcapHasNoChildrenAndIsBoundOnce) {
  Rcap root = Root("R", Res(1000), {kT0, kT0 + 100});
  ASSERT_TRUE(Issue(root).ok());
  Rcap x = Child(root, broker_, "X", Res(500), {kT0, kT0 + 100});
  ASSERT_TRUE(Delegated(x).ok());
  // Sell part of X (a child), then try to bind X itself: refused.
  Rcap part = Child(x, alice_, "X.sold", Res(100), {kT0, kT0 + 50});
  ASSERT_TRUE(Delegated(part).ok());
  core::Status bind_parent = Bind(x);
  ExpectRefused(bind_parent, "has_children");
  EXPECT_NE(bind_parent.message().find("rcap X "), std::string::npos) << bind_parent.message();
  // The reverse order: bind Y, then split it or sell from it: refused.
  Rcap y = Child(root, broker_, "Y", Res(500), {kT0, kT0 + 100});
  ASSERT_TRUE(Delegated(y).ok());
  ASSERT_TRUE(Bind(y).ok());
  ExpectRefused(Delegated(Child(y, alice_, "Y.1", Res(1), {kT0, kT0 + 10})), "bound");
  ExpectRefused(Do([&](Txn& t) {
                  std::vector<Rcap> kids{Child(y, alice_, "Y.2", Res(1), {kT0 + 90, kT0 + 100})};
                  return CapacityLog::RecordSplit(t, "Y", kids);
                }),
                "bound");
  ExpectRefused(Bind(y, "pl_other"), "bound");
  // A child of zero quantities is still a child.
  Rcap z = Child(root, broker_, "Z", Res(0), {kT0, kT0 + 100});
  ASSERT_TRUE(Delegated(z).ok());
  ASSERT_TRUE(Delegated(Child(z, alice_, "Z.0", Res(0), {kT0, kT0 + 1})).ok());
  ExpectRefused(Bind(z), "has_children");
  // What is free of R over a window: 1000 - (500 + 500) over [kT0, kT0+100).
  ASSERT_TRUE(
      Do([&](Txn& t) -> core::Status {
        BOURSE_ASSIGN_OR_RETURN(ResourceVector f, CapacityLog::Free(t, "R", {kT0, kT0 + 100}));
        EXPECT_EQ(f.cpu_mcores, 0);
        BOURSE_ASSIGN_OR_RETURN(f, CapacityLog::Free(t, "X", {kT0 + 50, kT0 + 100}));
        EXPECT_EQ(f.cpu_mcores, 500);
        BOURSE_ASSIGN_OR_RETURN(f, CapacityLog::Free(t, "Y", {kT0, kT0 + 100}));
        EXPECT_EQ(f.cpu_mcores, 0) << "a bound rcap has nothing free";
        return core::Status::Ok();
      }).ok());
  EXPECT_FALSE(Audit().has_value());
}

TEST_F(CapacityBookTest, NodesAreRegisteredOnce) {
  EXPECT_EQ(Do([&](Txn& t) { return AddNode(t, "n1", Res(5)); }).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(Do([&](Txn& t) {
              return CapacityLog::RecordNode(t, "n2", Res(5), {{"node", "n3"}, {"capacity", "x"}});
            }).code(),
            StatusCode::kInvalidArgument);
}

// ---- verify catches each clause in a forged ledger ----

TEST_F(CapacityBookTest, VerifyCatchesARootAboveTheNode) {
  ASSERT_TRUE(Issue(Root("A", Res(600), {kT0, kT0 + 100})).ok());
  uint64_t seq =
      Forge("rcap_issued", {{"rcap", Root("B", Res(600), {kT0 + 50, kT0 + 60}).ToJson()}});
  ExpectViolationAt(seq, "oversubscribed: root rcap B");
}

TEST_F(CapacityBookTest, VerifyCatchesARootAboveTheNodesCeiling) {
  ResourceVector res = Res(1);
  res.net_max_kbps = 5000;
  Rcap wide = *IssueRoot(site_, {.id = "W",
                                 .holder = broker_.public_key(),
                                 .node = "n1",
                                 .res = res,
                                 .interval = {kT0, kT0 + 10}});
  uint64_t seq = Forge("rcap_issued", {{"rcap", wide.ToJson()}});
  ExpectViolationAt(seq, "exceeds_node");
}

TEST_F(CapacityBookTest, VerifyCatchesARootForAnUnregisteredNode) {
  uint64_t seq =
      Forge("rcap_issued", {{"rcap", Root("G", Res(1), {kT0, kT0 + 10}, "ghost").ToJson()}});
  ExpectViolationAt(seq, "unknown_node");
}

TEST_F(CapacityBookTest, VerifyCatchesANodeAddedTwice) {
  uint64_t seq =
      Forge("node_added", {{"node", "n1"}, {"capacity", core::ResourceVectorToJson(Res(99999))}});
  ExpectViolationAt(seq, "already registered");
}

TEST_F(CapacityBookTest, VerifyCatchesBindingAnRcapWithChildren) {
  Rcap root = Root("R", Res(1000), {kT0, kT0 + 100});
  ASSERT_TRUE(Issue(root).ok());
  Rcap x = Child(root, broker_, "X", Res(500), {kT0, kT0 + 100});
  ASSERT_TRUE(Delegated(x).ok());
  ASSERT_TRUE(Delegated(Child(x, alice_, "X.1", Res(100), {kT0, kT0 + 10})).ok());
  uint64_t seq = Forge("rcap_bound", {{"rcap", x.ToJson()}, {"slice", "pl_s"}});
  ExpectViolationAt(seq, "has_children: rcap X");
}

TEST_F(CapacityBookTest, VerifyCatchesAChildOfABoundRcap) {
  Rcap root = Root("R", Res(1000), {kT0, kT0 + 100});
  ASSERT_TRUE(Issue(root).ok());
  Rcap x = Child(root, broker_, "X", Res(500), {kT0, kT0 + 100});
  ASSERT_TRUE(Delegated(x).ok());
  ASSERT_TRUE(Bind(x).ok());
  Rcap kid = Child(x, alice_, "X.1", Res(100), {kT0, kT0 + 10});
  uint64_t seq = Forge("rcap_split", {{"parent", "X"}, {"children", {kid.ToJson()}}});
  ExpectViolationAt(seq, "bound: rcap X");
}

TEST_F(CapacityBookTest, VerifyCatchesABindingTwice) {
  Rcap root = Root("R", Res(1000), {kT0, kT0 + 100});
  ASSERT_TRUE(Issue(root).ok());
  ASSERT_TRUE(Bind(root).ok());
  uint64_t seq = Forge("rcap_bound", {{"rcap", root.ToJson()}, {"slice", "pl_t"}});
  ExpectViolationAt(seq, "already bound");
}

TEST_F(CapacityBookTest, VerifyCatchesChildrenAboveTheirParent) {
  Rcap root = Root("R", Res(1000), {kT0, kT0 + 100});
  ASSERT_TRUE(Issue(root).ok());
  ASSERT_TRUE(Delegated(Child(root, broker_, "A", Res(700), {kT0, kT0 + 60})).ok());
  uint64_t seq =
      Forge("rcap_delegated",
            {{"rcap", Child(root, broker_, "B", Res(700), {kT0 + 59, kT0 + 100}).ToJson()}});
  ExpectViolationAt(seq, "t=" + std::to_string(kT0 + 59));
}

// A node refuses a chain of more than kMaxChainLength links, so the broker
// never records the link that would make one, and verify catches a ledger
// that has it.
TEST_F(CapacityBookTest, NoChainGrowsPastTheLinksANodeAccepts) {
  Rcap root = Root("R", Res(1000), {kT0, kT0 + 100});
  ASSERT_TRUE(Issue(root).ok());
  Rcap leaf = Child(root, broker_, "L2", Res(1000), {kT0, kT0 + 100});
  ASSERT_TRUE(Delegated(leaf).ok());
  for (size_t link = 3; link <= kMaxChainLength; ++link) {
    leaf = Child(leaf, alice_, "L" + std::to_string(link), Res(1000), {kT0, kT0 + 100});
    ASSERT_TRUE(Delegated(leaf).ok()) << link;
  }
  ASSERT_TRUE(store_
                  ->Read([&](storage::Connection* db) -> core::Status {
                    auto chain = CapacityLog::ChainOf(db, leaf.id);
                    if (!chain.ok()) return chain.status();
                    EXPECT_EQ(chain->size(), kMaxChainLength);
                    return core::Status::Ok();
                  })
                  .ok());
  Rcap over = Child(leaf, alice_, "L33", Res(1000), {kT0, kT0 + 100});
  core::Status st = Delegated(over);
  ExpectRefused(st, "chain_too_long: a child of rcap L32");
  EXPECT_NE(st.message().find("link 33"), std::string::npos) << st.ToString();
  ASSERT_TRUE(store_
                  ->Read([&](storage::Connection* db) -> core::Status {
                    EXPECT_EQ(CapacityLog::Get(db, "L33").status().code(), StatusCode::kNotFound);
                    return core::Status::Ok();
                  })
                  .ok());
  EXPECT_FALSE(Audit().has_value());
  // Forged with the ledger key, it fails verification at its entry.
  uint64_t seq = Forge("rcap_delegated", {{"rcap", over.ToJson()}});
  ExpectViolationAt(seq, "chain_too_long");
}

// ---- rcap_released: an unused escrow given back whole ----

class CapacityReleaseTest : public CapacityBookTest {
 protected:
  void SetUp() override {
    CapacityBookTest::SetUp();
    root_ = Root("R", Res(1000), {kT0, kT0 + 100});
    ASSERT_TRUE(Issue(*root_).ok());
    held_ = Child(*root_, broker_, "H", Res(1000), {kT0, kT0 + 100});  // alice holds H
    ASSERT_TRUE(Delegated(*held_).ok());
  }
  // A child of H that alice signs to the broker (the ledger key): an escrow.
  Rcap Escrow(const std::string& id, const ResourceVector& res = Res(1000)) {
    return *Delegate(
        *held_, alice_,
        {.id = id, .holder = ledger_key_.public_key(), .res = res, .interval = {kT0, kT0 + 100}});
  }
  core::Status Release(const Rcap& r) {
    return Do([&](Txn& t) { return CapacityLog::RecordReleased(t, r, ledger_key_.public_key()); });
  }

  std::optional<Rcap> root_, held_;
};

TEST_F(CapacityReleaseTest, AnUnusedEscrowIsReleasedOnceAndItsParentIsFreeAgain) {
  Rcap e1 = Escrow("E1");
  ASSERT_TRUE(Delegated(e1).ok());
  ExpectRefused(Delegated(Escrow("E2")), "oversubscribed");
  ASSERT_TRUE(Release(e1).ok());
  // H is whole again: offered again with no extra link, 20 times over.
  for (int i = 0; i < 20; ++i) {
    Rcap e = Escrow("E1." + std::to_string(i));
    ASSERT_TRUE(Delegated(e).ok()) << i;
    ASSERT_TRUE(Release(e).ok()) << i;
  }
  Rcap e2 = Escrow("E2");
  ASSERT_TRUE(Delegated(e2).ok());
  ASSERT_TRUE(
      Do([&](Txn& t) -> core::Status {
        BOURSE_ASSIGN_OR_RETURN(ResourceVector f, CapacityLog::Free(t, "E1", {kT0, kT0 + 1}));
        EXPECT_EQ(f.cpu_mcores, 0) << "a released rcap has nothing free";
        BOURSE_ASSIGN_OR_RETURN(f, CapacityLog::Free(t, "H", {kT0, kT0 + 100}));
        EXPECT_EQ(f.cpu_mcores, 0) << "E2 uses all of H";
        return core::Status::Ok();
      }).ok());
  uint64_t size = store_->Head().size;
  // A released rcap is gone: no second release, no child, no binding.
  ExpectRefused(Release(e1), "released: rcap E1");
  ExpectRefused(Delegated(Child(e1, ledger_key_, "E1.k", Res(1), {kT0, kT0 + 1})), "released");
  ExpectRefused(Bind(e1), "released: rcap E1");
  // Only an unused child the broker holds is released.
  ExpectRefused(Release(*held_), "not_broker_held: rcap H");
  ExpectRefused(Release(*root_), "root: rcap R");
  ASSERT_TRUE(Delegated(Child(e2, ledger_key_, "E2.sold", Res(100), {kT0, kT0 + 10})).ok());
  size = store_->Head().size;
  ExpectRefused(Release(e2), "has_children: rcap E2");
  Rcap other = Escrow("E3", Res(0));
  EXPECT_EQ(Release(other).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Head().size, size) << "a refused release wrote an entry";
  ASSERT_TRUE(store_
                  ->Read([&](storage::Connection* db) -> core::Status {
                    EXPECT_TRUE(*CapacityLog::IsReleased(db, "E1"));
                    EXPECT_FALSE(*CapacityLog::IsReleased(db, "E2"));
                    EXPECT_TRUE(*CapacityLog::InUse(db, "E2"));
                    EXPECT_FALSE(*CapacityLog::InUse(db, "H.none"));
                    return core::Status::Ok();
                  })
                  .ok());
  EXPECT_FALSE(Audit().has_value()) << Audit()->ToString();
}

TEST_F(CapacityReleaseTest, VerifyCatchesAReleaseOfAnRcapWithAChild) {
  Rcap e = Escrow("E");
  ASSERT_TRUE(Delegated(e).ok());
  ASSERT_TRUE(Delegated(Child(e, ledger_key_, "E.sold", Res(100), {kT0, kT0 + 10})).ok());
  uint64_t seq = Forge("rcap_released", {{"rcap", e.ToJson()}});
  ExpectViolationAt(seq, "has_children: rcap E");
}

TEST_F(CapacityReleaseTest, VerifyCatchesAReleaseOfAnRcapTheBrokerDoesNotHold) {
  uint64_t seq = Forge("rcap_released", {{"rcap", held_->ToJson()}});
  ExpectViolationAt(seq, "not_broker_held: rcap H");
}

TEST_F(CapacityReleaseTest, VerifyCatchesAReleaseTwice) {
  Rcap e = Escrow("E");
  ASSERT_TRUE(Delegated(e).ok());
  ASSERT_TRUE(Release(e).ok());
  uint64_t seq = Forge("rcap_released", {{"rcap", e.ToJson()}});
  ExpectViolationAt(seq, "released: rcap E");
}

TEST_F(CapacityReleaseTest, VerifyCatchesAChildOfAReleasedRcap) {
  Rcap e = Escrow("E");
  ASSERT_TRUE(Delegated(e).ok());
  ASSERT_TRUE(Release(e).ok());
  Rcap kid = Child(e, ledger_key_, "E.1", Res(100), {kT0, kT0 + 10});
  uint64_t seq = Forge("rcap_delegated", {{"rcap", kid.ToJson()}});
  ExpectViolationAt(seq, "released: rcap E");
}

}  // namespace
}  // namespace bourse::ledger
