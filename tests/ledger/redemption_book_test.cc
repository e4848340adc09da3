// The redemption book: double redemption and the time-aware oversubscription
// rule of DESIGN §3, all-or-nothing redemption, release and restore.
#include "ledger/redemption_book.h"

#include <gtest/gtest.h>

#include <chrono>

#include "ledger_test_util.h"

namespace bourse::ledger {
namespace {

using testing::KeyFromByte;

constexpr int64_t kT0 = 1'700'000'000;

core::ResourceVector Cpu(int64_t cpu, int64_t mem = 0) {
  return {.cpu_mcores = cpu, .mem_mib = mem, .disk_mib = 0, .net_min_kbps = 0, .net_max_kbps = 0};
}

class RedemptionBookTest : public ::testing::Test {
 protected:
  core::PrivateKey site_ = KeyFromByte(1), broker_ = KeyFromByte(2), alice_ = KeyFromByte(3),
                   bob_ = KeyFromByte(4);
  Rcap root_ = *IssueRoot(site_, {.id = "R",
                                  .holder = broker_.public_key(),
                                  .node = "n1",
                                  .res = Cpu(1000, 1000),
                                  .interval = {kT0, kT0 + 100}});

  Rcap Child(const Rcap& parent, const core::PrivateKey& key, const std::string& id,
             core::ResourceVector res, core::Interval iv,
             const core::PrivateKey* holder = nullptr) {
    auto c = Delegate(
        parent, key,
        {.id = id, .holder = (holder ? *holder : alice_).public_key(), .res = res, .interval = iv});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return *c;
  }
  static RefusalReason Reason(const Verdict<Redemption>& v) { return v.refusal().reason; }
};

TEST_F(RedemptionBookTest, DoubleRedemptionRefused) {
  RedemptionBook book;
  Rcap a = Child(root_, broker_, "A", Cpu(100), {kT0, kT0 + 10});
  std::vector<Rcap> chain{root_, a};
  auto r = book.Redeem(chain);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->leaf_id, "A");
  EXPECT_EQ(r->ancestry, (std::vector<std::string>{"R", "A"}));
  auto again = book.Redeem(chain);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(Reason(again), RefusalReason::kDoubleRedemption);
  // The same id with other content (a holder signing two different tickets
  // under one id) is also double redemption.
  Rcap forged = Child(root_, broker_, "A", Cpu(50), {kT0 + 20, kT0 + 30});
  auto f = book.Redeem(std::vector<Rcap>{root_, forged});
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(Reason(f), RefusalReason::kDoubleRedemption);
}

TEST_F(RedemptionBookTest, OverlappingSiblingsCannotExceedTheParent) {
  RedemptionBook book;
  Rcap a = Child(root_, broker_, "A", Cpu(600), {kT0, kT0 + 50});
  Rcap b = Child(root_, broker_, "B", Cpu(600), {kT0 + 40, kT0 + 90});
  ASSERT_TRUE(book.Redeem(std::vector<Rcap>{root_, a}).ok());
  auto rb = book.Redeem(std::vector<Rcap>{root_, b});
  ASSERT_FALSE(rb.ok());
  EXPECT_EQ(Reason(rb), RefusalReason::kOversubscribed);
  EXPECT_NE(rb.refusal().detail.find("ticket R"), std::string::npos) << rb.refusal().detail;
  EXPECT_NE(rb.refusal().detail.find("t=1700000040"), std::string::npos) << rb.refusal().detail;
  EXPECT_FALSE(book.IsRedeemed("B"));
  // Not overlapping in time: each may use all of the parent.
  Rcap c = Child(root_, broker_, "C", Cpu(1000, 1000), {kT0 + 50, kT0 + 100});
  EXPECT_TRUE(book.Redeem(std::vector<Rcap>{root_, c}).ok());
  EXPECT_EQ(book.PeakUse("R", {kT0, kT0 + 100}).cpu_mcores, 1000);
  EXPECT_EQ(book.PeakUse("R", {kT0, kT0 + 50}).cpu_mcores, 600);
}

TEST_F(RedemptionBookTest, DescendantsCountAgainstEveryAncestor) {
  RedemptionBook book;
  // R(1000) -> A(600, all) -> A1(400, [0,50)), A2(400, [30,80)): overlap at
  // [30,50) is 800 > A's 600, although well under R's 1000.
  Rcap a = Child(root_, broker_, "A", Cpu(600), {kT0, kT0 + 100});
  Rcap a1 = Child(a, alice_, "A1", Cpu(400), {kT0, kT0 + 50}, &bob_);
  Rcap a2 = Child(a, alice_, "A2", Cpu(400), {kT0 + 30, kT0 + 80}, &bob_);
  ASSERT_TRUE(book.Redeem(std::vector<Rcap>{root_, a, a1}).ok());
  auto r2 = book.Redeem(std::vector<Rcap>{root_, a, a2});
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(Reason(r2), RefusalReason::kOversubscribed);
  EXPECT_NE(r2.refusal().detail.find("ticket A"), std::string::npos);
  // Shifted to start when A1 ends: fine.
  Rcap a3 = Child(a, alice_, "A3", Cpu(600), {kT0 + 50, kT0 + 100}, &bob_);
  EXPECT_TRUE(book.Redeem(std::vector<Rcap>{root_, a, a3}).ok());
  // B under R overlapping A1 and A3: R has 1000 - 600 = 400 left at any instant.
  Rcap b = Child(root_, broker_, "B", Cpu(400), {kT0, kT0 + 100}, &bob_);
  EXPECT_TRUE(book.Redeem(std::vector<Rcap>{root_, b}).ok());
  Rcap b2 = Child(root_, broker_, "B2", Cpu(1), {kT0 + 99, kT0 + 100}, &bob_);
  auto rb2 = book.Redeem(std::vector<Rcap>{root_, b2});
  ASSERT_FALSE(rb2.ok());
  EXPECT_EQ(Reason(rb2), RefusalReason::kOversubscribed);
}

TEST_F(RedemptionBookTest, ATicketRedeemedItselfLeavesNothingForItsChildren) {
  RedemptionBook book;
  Rcap a = Child(root_, broker_, "A", Cpu(500), {kT0, kT0 + 100});
  Rcap a1 = Child(a, alice_, "A1", Cpu(1), {kT0, kT0 + 10}, &bob_);
  ASSERT_TRUE(book.Redeem(std::vector<Rcap>{root_, a}).ok());
  auto r = book.Redeem(std::vector<Rcap>{root_, a, a1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Reason(r), RefusalReason::kOversubscribed);
  // And the other way round.
  RedemptionBook book2;
  ASSERT_TRUE(book2.Redeem(std::vector<Rcap>{root_, a, a1}).ok());
  auto r2 = book2.Redeem(std::vector<Rcap>{root_, a});
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(Reason(r2), RefusalReason::kOversubscribed);
}

TEST_F(RedemptionBookTest, RefusedChainChangesNothingAndReleaseFreesCapacity) {
  RedemptionBook book;
  Rcap a = Child(root_, broker_, "A", Cpu(700), {kT0, kT0 + 100});
  Rcap b = Child(root_, broker_, "B", Cpu(700), {kT0, kT0 + 100});
  ASSERT_TRUE(book.Redeem(std::vector<Rcap>{root_, a}).ok());
  auto before = book.PeakUse("R", {kT0, kT0 + 100});
  EXPECT_FALSE(book.Redeem(std::vector<Rcap>{root_, b}).ok());
  EXPECT_EQ(book.PeakUse("R", {kT0, kT0 + 100}), before);
  EXPECT_EQ(book.PeakUse("B", {kT0, kT0 + 100}), core::ResourceVector{});
  EXPECT_EQ(book.size(), 1u);
  EXPECT_TRUE(book.Check(std::vector<Rcap>{root_, b}).has_value());
  EXPECT_TRUE(book.Release("A"));
  EXPECT_FALSE(book.Release("A"));
  EXPECT_FALSE(book.Check(std::vector<Rcap>{root_, b}).has_value());
  EXPECT_TRUE(book.Redeem(std::vector<Rcap>{root_, b}).ok());
  // Broken links by id.
  Rcap orphan = Child(root_, broker_, "O", Cpu(1), {kT0, kT0 + 1});
  orphan.parent = "elsewhere";
  auto bl = book.Redeem(std::vector<Rcap>{root_, orphan});
  ASSERT_FALSE(bl.ok());
  EXPECT_EQ(Reason(bl), RefusalReason::kBrokenLink);
}

TEST_F(RedemptionBookTest, ReleaseExpired) {
  RedemptionBook book;
  Rcap a = Child(root_, broker_, "A", Cpu(1000), {kT0, kT0 + 10});
  Rcap b = Child(root_, broker_, "B", Cpu(1000), {kT0 + 10, kT0 + 20});
  ASSERT_TRUE(book.Redeem(std::vector<Rcap>{root_, a}).ok());
  ASSERT_TRUE(book.Redeem(std::vector<Rcap>{root_, b}).ok());
  auto gone = book.ReleaseExpired(kT0 + 10);
  EXPECT_EQ(gone, std::vector<std::string>{"A"});
  EXPECT_FALSE(book.IsRedeemed("A"));
  EXPECT_TRUE(book.IsRedeemed("B"));
}

TEST_F(RedemptionBookTest, RestoreIsAllOrNothingAndFastForAThousandSlivers) {
  // 10 roots (nodes' capacity), each split into 100 slivers over time and
  // resources: 1,000 chains, as a node guard replays them at boot.
  std::vector<std::vector<Rcap>> chains;
  for (int r = 0; r < 10; ++r) {
    Rcap root = *IssueRoot(site_, {.id = "root" + std::to_string(r),
                                   .holder = broker_.public_key(),
                                   .node = "n1",
                                   .res = Cpu(10000, 10000),
                                   .interval = {kT0, kT0 + 1000}});
    for (int i = 0; i < 100; ++i) {
      int64_t start = kT0 + (i % 10) * 100;
      Rcap c = *Delegate(root, broker_,
                         {.id = "s" + std::to_string(r) + "_" + std::to_string(i),
                          .holder = alice_.public_key(),
                          .res = Cpu(1000, 1000),
                          .interval = {start, start + 100}});
      chains.push_back({root, c});
    }
  }
  RedemptionBook book;
  auto t0 = std::chrono::steady_clock::now();
  auto n = book.Restore(chains);
  auto ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(n.ok()) << n.refusal().detail;
  EXPECT_EQ(*n, 1000u);
  EXPECT_EQ(book.size(), 1000u);
  std::printf("restore of 1000 chains: %.2f ms\n", ms);
  // One more overlapping sliver on a full root: refused; a conflicting
  // restore list leaves the book exactly as it was.
  Rcap extra = *Delegate(
      chains[0][0], broker_,
      {.id = "extra", .holder = alice_.public_key(), .res = Cpu(1), .interval = {kT0, kT0 + 1}});
  std::vector<std::vector<Rcap>> more = {chains[0], {chains[0][0], extra}};
  RedemptionBook fresh;
  std::vector<std::vector<Rcap>> first_half(chains.begin(), chains.begin() + 10);
  ASSERT_TRUE(fresh.Restore(first_half).ok());
  std::vector<std::vector<Rcap>> conflicting(chains.begin() + 10, chains.begin() + 20);
  conflicting.push_back(chains[3]);  // already redeemed
  auto bad = fresh.Restore(conflicting);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.refusal().reason, RefusalReason::kDoubleRedemption);
  EXPECT_EQ(bad.refusal().detail.rfind("chains[10]", 0), 0u) << bad.refusal().detail;
  EXPECT_EQ(fresh.size(), 10u);
  EXPECT_FALSE(fresh.IsRedeemed(chains[10][1].id));
  auto over = book.Redeem(std::vector<Rcap>{chains[0][0], extra});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.refusal().reason, RefusalReason::kOversubscribed);
}

}  // namespace
}  // namespace bourse::ledger
