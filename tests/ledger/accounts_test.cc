// Accounts and capacity records inside store transactions, and the auditor
// replaying them: every rule holds on write and is checked again on replay.
#include "ledger/accounts.h"

#include <gtest/gtest.h>

#include "core/canonical_json.h"
#include "core/json_codec.h"
#include "ledger/audit.h"
#include "ledger_test_util.h"

namespace bourse::ledger {
namespace {

using core::Money;
using testing::KeyFromByte;
using testing::TempDir;

constexpr int64_t kT0 = 1'700'000'000;

Money M(const char* s) { return *Money::Parse(s); }

class AccountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("l.db");
    StoreOptions o;
    o.signing_key = ledger_key_;
    auto s = Store::Open(path_, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ASSERT_TRUE(
        Do([&](Txn& t) { return Accounts::AddAdmin(t, admin_.public_key(), nullptr); }).ok());
  }
  core::Status Do(const std::function<core::Status(Txn&)>& fn) {
    auto r = store_->Commit(fn);
    return r.ok() ? core::Status::Ok() : r.status();
  }
  Money Bal(const std::string& a) { return *Accounts::Balance(*store_, a); }
  void ExpectConserved() {
    auto t = Accounts::Totals(*store_);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(*t->balances.Add(t->escrowed), t->minted);
  }
  std::optional<Violation> Audit() {
    auto a = AuditStore(path_, ledger_key_.public_key());
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->violation : std::nullopt;
  }

  TempDir dir_;
  std::string path_;
  core::PrivateKey ledger_key_ = KeyFromByte(50), admin_ = KeyFromByte(51),
                   mallory_ = KeyFromByte(52);
  std::unique_ptr<Store> store_;
};

TEST_F(AccountsTest, MintTransferAndEscrowKeepEveryInvariant) {
  EXPECT_EQ(
      Do([&](Txn& t) { return Accounts::AddAdmin(t, mallory_.public_key(), nullptr); }).code(),
      core::StatusCode::kPermissionDenied);
  EXPECT_EQ(
      Do([&](Txn& t) { return Accounts::Mint(t, mallory_.public_key(), "alice", M("5")); }).code(),
      core::StatusCode::kPermissionDenied);
  ASSERT_TRUE(
      Do([&](Txn& t) { return Accounts::Mint(t, admin_.public_key(), "alice", M("100.5")); }).ok());
  EXPECT_EQ(Bal("alice"), M("100.5"));
  EXPECT_EQ(Bal("nobody"), Money());
  ASSERT_TRUE(
      Do([&](Txn& t) { return Accounts::Transfer(t, "alice", "bob", M("0.000000001")); }).ok());
  EXPECT_EQ(Bal("alice"), M("100.499999999"));
  auto over = Do([&](Txn& t) { return Accounts::Transfer(t, "alice", "bob", M("100.5")); });
  EXPECT_EQ(over.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(over.message().find("insufficient funds"), std::string::npos);
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::Transfer(t, "alice", "bob", M("0")); }).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::Transfer(t, "alice", "bob", M("-1")); }).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::Transfer(t, "alice", "alice", M("1")); }).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::Transfer(t, "", "bob", M("1")); }).code(),
            core::StatusCode::kInvalidArgument);

  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::EscrowHold(t, "e1", "alice", M("40")); }).ok());
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::EscrowHold(t, "e1", "alice", M("1")); }).code(),
            core::StatusCode::kAlreadyExists);
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::EscrowHold(t, "e2", "alice", M("61")); }).code(),
            core::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::EscrowSettle(t, "e1", "seller", M("30")); }).ok());
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::EscrowSettle(t, "e1", "seller", M("10.1")); }).code(),
            core::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::EscrowRelease(t, "e1", M("10")); }).ok());
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::EscrowRelease(t, "nope", M("1")); }).code(),
            core::StatusCode::kNotFound);
  EXPECT_EQ(Bal("seller"), M("30"));
  EXPECT_EQ(Bal("alice"), M("70.499999999"));
  auto e = Accounts::Escrow(*store_, "e1");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->remaining.is_zero());
  ExpectConserved();

  // A caller's own failure after a successful operation rolls the operation back.
  auto rolled = Do([&](Txn& t) -> core::Status {
    BOURSE_RETURN_IF_ERROR(Accounts::Transfer(t, "alice", "bob", M("1")));
    return core::Internal("later step failed");
  });
  EXPECT_FALSE(rolled.ok());
  EXPECT_EQ(Bal("alice"), M("70.499999999"));
  // Several operations in one caller are atomic together.
  ASSERT_TRUE(Do([&](Txn& t) -> core::Status {
                BOURSE_RETURN_IF_ERROR(Accounts::EscrowHold(t, "e3", "alice", M("5")));
                return Accounts::EscrowSettle(t, "e3", "seller", M("5"));
              }).ok());
  // A second admin, added by the first.
  auto admin2 = KeyFromByte(53);
  auto by = admin_.public_key();
  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::AddAdmin(t, admin2.public_key(), &by); }).ok());
  ASSERT_TRUE(
      Do([&](Txn& t) { return Accounts::Mint(t, admin2.public_key(), "bob", M("1")); }).ok());
  ExpectConserved();

  auto audit = AuditStore(path_, ledger_key_.public_key());
  ASSERT_TRUE(audit.ok());
  ASSERT_TRUE(audit->ok()) << audit->violation->ToString();
  EXPECT_EQ(audit->summary.minted, M("101.5"));
  auto totals = Accounts::Totals(*store_);
  EXPECT_EQ(audit->summary.balances, totals->balances);
  EXPECT_EQ(audit->summary.escrowed, totals->escrowed);
}

TEST_F(AccountsTest, AuditCatchesEntriesThatBreakTheRules) {
  ASSERT_TRUE(
      Do([&](Txn& t) { return Accounts::Mint(t, admin_.public_key(), "alice", M("10")); }).ok());
  // Entries written raw (bypassing Accounts) that break a rule: the auditor
  // names the rule and the seq.
  auto seq_of_bad =
      store_->Append("transfer", {{"amount", "11.000000000"}, {"from", "alice"}, {"to", "bob"}});
  ASSERT_TRUE(seq_of_bad.ok());
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, seq_of_bad->first_seq);
  EXPECT_EQ(v->rule, "negative_balance");
}

// escrow_topup (a moved buy's escrow, docs/ledger.md): from the escrow's own
// account into an open escrow; the same rule refuses it in the broker and in
// the audit's replay.
TEST_F(AccountsTest, EscrowTopUpTakesFromTheEscrowsAccountIntoAnOpenEscrowOnly) {
  ASSERT_TRUE(
      Do([&](Txn& t) { return Accounts::Mint(t, admin_.public_key(), "alice", M("10")); }).ok());
  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::EscrowHold(t, "e1", "alice", M("4")); }).ok());
  std::string account;
  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::EscrowTopUp(t, "e1", M("5"), &account); }).ok());
  EXPECT_EQ(account, "alice");
  EXPECT_EQ(Bal("alice"), M("1"));
  EXPECT_EQ(Accounts::Escrow(*store_, "e1")->remaining, M("9"));
  auto over = Do([&](Txn& t) { return Accounts::EscrowTopUp(t, "e1", M("1.000000001")); });
  EXPECT_EQ(over.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(over.message().find("insufficient funds"), std::string::npos);
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::EscrowTopUp(t, "nope", M("1")); }).code(),
            core::StatusCode::kNotFound);
  EXPECT_EQ(Do([&](Txn& t) { return Accounts::EscrowTopUp(t, "e1", M("0")); }).code(),
            core::StatusCode::kInvalidArgument);
  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::EscrowRelease(t, "e1", M("9")); }).ok());
  auto closed = Do([&](Txn& t) { return Accounts::EscrowTopUp(t, "e1", M("1")); });
  EXPECT_EQ(closed.code(), core::StatusCode::kNotFound);
  EXPECT_NE(closed.message().find("closed"), std::string::npos);
  EXPECT_EQ(Bal("alice"), M("10"));
  ExpectConserved();
  EXPECT_FALSE(Audit().has_value());
}

TEST_F(AccountsTest, AuditCatchesATopUpBeyondTheBalance) {
  ASSERT_TRUE(
      Do([&](Txn& t) { return Accounts::Mint(t, admin_.public_key(), "alice", M("10")); }).ok());
  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::EscrowHold(t, "e1", "alice", M("4")); }).ok());
  // A raw entry, bypassing Accounts: more than the account has.
  auto over = store_->Append("escrow_topup", {{"amount", "7.000000000"}, {"escrow", "e1"}});
  ASSERT_TRUE(over.ok());
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, over->first_seq);
  EXPECT_EQ(v->rule, "negative_balance");
}

TEST_F(AccountsTest, AuditCatchesATopUpOfAClosedEscrow) {
  ASSERT_TRUE(
      Do([&](Txn& t) { return Accounts::Mint(t, admin_.public_key(), "alice", M("10")); }).ok());
  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::EscrowHold(t, "e1", "alice", M("4")); }).ok());
  ASSERT_TRUE(Do([&](Txn& t) { return Accounts::EscrowRelease(t, "e1", M("4")); }).ok());
  auto raw = store_->Append("escrow_topup", {{"amount", "1.000000000"}, {"escrow", "e1"}});
  ASSERT_TRUE(raw.ok());
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, raw->first_seq);
  EXPECT_EQ(v->rule, "escrow");
  EXPECT_NE(v->detail.find("closed"), std::string::npos) << v->detail;
}

TEST_F(AccountsTest, AuditCatchesMintByNonAdmin) {
  auto r = store_->Append(
      "mint",
      {{"account", "m"}, {"amount", "1.000000000"}, {"by", mallory_.public_key().ToText()}});
  ASSERT_TRUE(r.ok());
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, r->first_seq);
  EXPECT_EQ(v->rule, "not_admin");
}

// Registers node `id` with `cap` in the capacity book (as the broker's
// node_added does).
core::Status AddNode(Txn& t, const std::string& id, const core::ResourceVector& cap) {
  return CapacityLog::RecordNode(t, id, cap,
                                 {{"node", id}, {"capacity", core::ResourceVectorToJson(cap)}});
}

TEST_F(AccountsTest, CapacityLogRecordsRcapsAndRefusesOverIssue) {
  auto site = KeyFromByte(60), broker = KeyFromByte(61), alice = KeyFromByte(62);
  core::ResourceVector cap{.cpu_mcores = 1000,
                           .mem_mib = 1000,
                           .disk_mib = 1000,
                           .net_min_kbps = 100,
                           .net_max_kbps = 1000};
  Rcap root = *IssueRoot(site, {.id = "R",
                                .holder = broker.public_key(),
                                .node = "n1",
                                .res = cap,
                                .interval = {kT0, kT0 + 100}});
  ASSERT_TRUE(Do([&](Txn& t) { return AddNode(t, "n1", cap); }).ok());
  ASSERT_TRUE(Do([&](Txn& t) { return CapacityLog::RecordIssued(t, root); }).ok());
  EXPECT_EQ(Do([&](Txn& t) { return CapacityLog::RecordIssued(t, root); }).code(),
            core::StatusCode::kAlreadyExists);
  auto half = cap;
  half.cpu_mcores = 600;
  auto kids = *Split(
      root, broker,
      std::vector<ChildSpec>{
          {.id = "A", .holder = alice.public_key(), .res = half, .interval = {kT0, kT0 + 50}},
          {.id = "B",
           .holder = alice.public_key(),
           .res = half,
           .interval = {kT0 + 50, kT0 + 100}}});
  ASSERT_TRUE(Do([&](Txn& t) { return CapacityLog::RecordSplit(t, "R", kids); }).ok());
  // A third child overlapping A would put R at 1200 > 1000 at t0+10.
  Rcap c = *Delegate(
      root, broker,
      {.id = "C", .holder = alice.public_key(), .res = half, .interval = {kT0 + 10, kT0 + 20}});
  auto over = Do([&](Txn& t) { return CapacityLog::RecordDelegated(t, c); });
  EXPECT_EQ(over.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(over.message().rfind("oversubscribed", 0), 0u) << over.message();
  // A child not signed by the parent's holder.
  Rcap forged = c;
  forged.res.cpu_mcores = 1;
  EXPECT_EQ(Do([&](Txn& t) { return CapacityLog::RecordDelegated(t, forged); }).code(),
            core::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Do([&](Txn& t) -> core::Status {
                BOURSE_RETURN_IF_ERROR(CapacityLog::RecordBound(t, kids[0], "pl_slice"));
                BOURSE_RETURN_IF_ERROR(CapacityLog::RecordRedeemed(t, kids[0], "n1"));
                return CapacityLog::RecordExpired(t, kids[0], "pl_slice");
              }).ok());
  EXPECT_EQ(Do([&](Txn& t) { return CapacityLog::RecordRedeemed(t, kids[0], "n1"); })
                .message()
                .rfind("double_redemption", 0),
            0u);
  EXPECT_EQ(Do([&](Txn& t) { return CapacityLog::RecordBound(t, c, "pl_slice"); }).code(),
            core::StatusCode::kNotFound);
  std::vector<Rcap> chain;
  ASSERT_TRUE(store_
                  ->Read([&](storage::Connection* db) -> core::Status {
                    BOURSE_ASSIGN_OR_RETURN(chain, CapacityLog::ChainOf(db, "B"));
                    return core::Status::Ok();
                  })
                  .ok());
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0], root);
  EXPECT_EQ(chain[1], kids[1]);
  auto v = Audit();
  EXPECT_FALSE(v.has_value()) << v->ToString();

  // An over-issued child written raw is caught by the auditor at its seq.
  auto raw = store_->Append("rcap_delegated", {{"rcap", c.ToJson()}});
  ASSERT_TRUE(raw.ok());
  v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, raw->first_seq);
  EXPECT_EQ(v->rule, "capacity");
}

TEST_F(AccountsTest, AuditorCatchesDoubleRedemptionInTheLedger) {
  auto site = KeyFromByte(60), broker = KeyFromByte(61);
  core::ResourceVector cap{
      .cpu_mcores = 1000, .mem_mib = 0, .disk_mib = 0, .net_min_kbps = 0, .net_max_kbps = 0};
  Rcap root = *IssueRoot(site, {.id = "R",
                                .holder = broker.public_key(),
                                .node = "n1",
                                .res = cap,
                                .interval = {kT0, kT0 + 100}});
  ASSERT_TRUE(Do([&](Txn& t) -> core::Status {
                BOURSE_RETURN_IF_ERROR(AddNode(t, "n1", cap));
                BOURSE_RETURN_IF_ERROR(CapacityLog::RecordIssued(t, root));
                return CapacityLog::RecordRedeemed(t, root, "n1");
              }).ok());
  auto raw = store_->Append("rcap_redeemed", {{"node", "n1"}, {"rcap", root.ToJson()}});
  ASSERT_TRUE(raw.ok());
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, raw->first_seq);
  EXPECT_NE(v->detail.find("double_redemption"), std::string::npos) << v->ToString();
}

// A binding's end (rcap_expired): only of a bound rcap, to its slice, after
// its not_after; the auditor refuses one written early or twice.
class ExpiryTest : public AccountsTest {
 protected:
  void SetUp() override {
    AccountsTest::SetUp();
    core::ResourceVector cap{.cpu_mcores = 1000};
    root_ = *IssueRoot(site_, {.id = "R",
                               .holder = broker_.public_key(),
                               .node = "n1",
                               .res = cap,
                               .interval = {kT0, kFar}});
    cap.cpu_mcores = 500;
    kids_ = *Split(
        *root_, broker_,
        std::vector<ChildSpec>{
            {.id = "A", .holder = alice_.public_key(), .res = cap, .interval = {kT0, kT0 + 50}},
            {.id = "F", .holder = alice_.public_key(), .res = cap, .interval = {kT0, kFar}}});
    ASSERT_TRUE(Do([&](Txn& t) -> core::Status {
                  BOURSE_RETURN_IF_ERROR(AddNode(t, "n1", root_->res));
                  BOURSE_RETURN_IF_ERROR(CapacityLog::RecordIssued(t, *root_));
                  BOURSE_RETURN_IF_ERROR(CapacityLog::RecordSplit(t, "R", kids_));
                  BOURSE_RETURN_IF_ERROR(CapacityLog::RecordBound(t, kids_[0], "pl_a"));
                  return CapacityLog::RecordBound(t, kids_[1], "pl_a");
                }).ok());
  }
  // After A's end is recorded, a raw rcap_expired of A naming `slice`: the
  // auditor refuses it at its seq, saying `words`.
  void RawExpiryOfA(const char* slice, const std::string& words) {
    ASSERT_TRUE(Do([&](Txn& t) { return CapacityLog::RecordExpired(t, kids_[0], "pl_a"); }).ok());
    auto raw = store_->Append("rcap_expired",
                              {{"node", "n1"}, {"rcap", kids_[0].ToJson()}, {"slice", slice}});
    ASSERT_TRUE(raw.ok());
    auto v = Audit();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->seq, raw->first_seq);
    EXPECT_NE(v->detail.find(words), std::string::npos) << v->ToString();
  }
  static constexpr int64_t kFar = 4'000'000'000;
  core::PrivateKey site_ = KeyFromByte(60), broker_ = KeyFromByte(61), alice_ = KeyFromByte(62);
  std::optional<Rcap> root_;
  std::vector<Rcap> kids_;
};

TEST_F(ExpiryTest, OnlyABoundRcapToItsSliceAfterItsEnd) {
  auto wrong = Do([&](Txn& t) { return CapacityLog::RecordExpired(t, kids_[0], "pl_b"); });
  EXPECT_EQ(wrong.message().rfind("not_bound", 0), 0u) << wrong.message();
  auto early = Do([&](Txn& t) { return CapacityLog::RecordExpired(t, kids_[1], "pl_a"); });
  EXPECT_EQ(early.message().rfind("not_expired", 0), 0u) << early.message();
  ASSERT_TRUE(Do([&](Txn& t) { return CapacityLog::RecordExpired(t, kids_[0], "pl_a"); }).ok());
  auto v = Audit();
  EXPECT_FALSE(v.has_value()) << v->ToString();
  // Written raw before the rcap's end: the auditor refuses it.
  auto raw = store_->Append("rcap_expired",
                            {{"node", "n1"}, {"rcap", kids_[1].ToJson()}, {"slice", "pl_a"}});
  ASSERT_TRUE(raw.ok());
  v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, raw->first_seq);
  EXPECT_NE(v->detail.find("before its not_after"), std::string::npos) << v->ToString();
}

TEST_F(ExpiryTest, AuditorRefusesAnExpiryNamingAnotherSlice) {
  RawExpiryOfA("pl_b", "not bound to that slice");
}

TEST_F(ExpiryTest, AuditorRefusesAnExpiryWrittenTwice) { RawExpiryOfA("pl_a", "expired twice"); }

TEST_F(AccountsTest, BadRcapSignatureIsReportedFirstEvenWhenCheckedInTheBackground) {
  auto site = KeyFromByte(60), broker = KeyFromByte(61);
  core::ResourceVector cap{
      .cpu_mcores = 1000, .mem_mib = 0, .disk_mib = 0, .net_min_kbps = 0, .net_max_kbps = 0};
  Rcap root = *IssueRoot(site, {.id = "R",
                                .holder = broker.public_key(),
                                .node = "n1",
                                .res = cap,
                                .interval = {kT0, kT0 + 100}});
  root.res.cpu_mcores = 5000;  // no longer what the site signed
  core::ResourceVector big = cap;
  big.cpu_mcores = 10000;
  ASSERT_TRUE(Do([&](Txn& t) { return AddNode(t, "n1", big); }).ok());
  auto raw = store_->Append("rcap_issued", {{"rcap", root.ToJson()}});
  ASSERT_TRUE(raw.ok());
  // A later, synchronous violation.
  ASSERT_TRUE(
      store_->Append("transfer", {{"amount", "1.000000000"}, {"from", "x"}, {"to", "y"}}).ok());
  for (int threads : {0, 1, 2}) {
    AuditOptions opt;
    opt.signature_threads = threads;
    auto a = AuditStore(path_, ledger_key_.public_key(), opt);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(a->violation.has_value());
    EXPECT_EQ(a->violation->seq, raw->first_seq) << threads;
    EXPECT_NE(a->violation->detail.find("bad_signature"), std::string::npos);
  }
  AuditOptions skip;
  skip.check_rcap_signatures = false;
  auto a = AuditStore(path_, ledger_key_.public_key(), skip);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->violation.has_value());
  EXPECT_EQ(a->violation->seq, raw->first_seq + 1);
}

TEST(AuditorTest, FedFromEntriesAndHeadsOfAnySource) {
  // The auditor takes entries and heads from anywhere (here: a store's read
  // API, as a client would from the REST endpoints).
  TempDir dir;
  auto key = KeyFromByte(70);
  StoreOptions o;
  o.signing_key = key;
  auto store = std::move(*Store::Open(dir.File("l.db"), o));
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(store->Append("note", {{"i", i}}).ok());
  auto texts = *store->EntryTexts(0, 25);
  LedgerAuditor good(key.public_key());
  for (const auto& t : texts) ASSERT_TRUE(good.AddEntryText(t));
  ASSERT_TRUE(good.AddHead(store->Head()));
  EXPECT_TRUE(good.Finish());
  EXPECT_EQ(good.CurrentRoot(), store->Head().root);

  // A head given before the entries is checked when they arrive.
  LedgerAuditor early(key.public_key());
  ASSERT_TRUE(early.AddHead(store->Head()));
  for (const auto& t : texts) ASSERT_TRUE(early.AddEntryText(t));
  EXPECT_TRUE(early.Finish());

  // Missing the last entry: the head is never reached.
  LedgerAuditor short_replay(key.public_key());
  ASSERT_TRUE(short_replay.AddHead(store->Head()));
  for (size_t i = 0; i + 1 < texts.size(); ++i) ASSERT_TRUE(short_replay.AddEntryText(texts[i]));
  EXPECT_FALSE(short_replay.Finish());
  EXPECT_EQ(short_replay.violation()->where, "head");

  // Wrong key.
  LedgerAuditor wrong(KeyFromByte(71).public_key());
  for (const auto& t : texts) wrong.AddEntryText(t);
  EXPECT_FALSE(wrong.AddHead(store->Head()));
  EXPECT_EQ(wrong.violation()->rule, "tree_head");

  // Non-canonical text of a valid entry.
  LedgerAuditor spaced(key.public_key());
  std::string t0 = texts[0];
  t0.insert(1, " ");
  EXPECT_FALSE(spaced.AddEntryText(t0));
  EXPECT_EQ(spaced.violation()->rule, "entry_format");
  EXPECT_EQ(spaced.violation()->seq, 0u);
}

}  // namespace
}  // namespace bourse::ledger
