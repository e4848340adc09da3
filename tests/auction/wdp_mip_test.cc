// Winner determination on CBC (auction/internal/wdp_mip.h) and ClearRound's
// mechanism tiers, held to the exhaustive reference (tests/auction/exhaustive.h)
// on thousands of tiny rounds and to the proven optimum on CATS-like rounds
// (tests/auction/cats_generator.h); then rounds built to break them: budgets
// too small to solve, limits that push floating point, bidders raising each
// other's payments.
//
// BOURSE_WDP_TINY_ROUNDS=N (default 1500) runs N tiny rounds, from seed
// BOURSE_WDP_TINY_FIRST (default 1000); a failure names the seed and prints
// the round (BOURSE_WDP_TINY_FIRST=seed BOURSE_WDP_TINY_ROUNDS=1 reruns it).
#include "auction/internal/wdp_mip.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "auction/combinatorial.h"
#include "core/money.h"
#include "tests/auction/cats_generator.h"
#include "tests/auction/exhaustive.h"

namespace bourse::auction {
namespace {

using core::Money;
using internal::kNoBid;
using internal::kNoBundle;
using internal::Pick;
using internal::WdpMip;

// Money and Mechanism as failure messages show them (a PrintTo for Money
// itself would clash with the byte printer other test files instantiate).
struct Shown {
  Money m;
  auto operator<=>(const Shown&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const Shown& s) { return os << s.m.ToString(); }
};
Shown C(const Money& m) { return {m}; }
std::string Name(Mechanism m) { return MechanismName(m); }

int RoundsFromEnv(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && std::atoi(v) > 0 ? std::atoi(v) : fallback;
}

// A tiny round (testkit::TinyCatsParams): <= max_bids bids over <= 5 nodes.
Round Tiny(uint64_t seed, int max_bids = 12) {
  auto r = testkit::GenerateCatsRound(testkit::TinyCatsParams(seed, max_bids));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Round{};
}

Round Cats(int bids, int nodes, uint64_t seed, testkit::CatsMix mix = {}) {
  auto r = testkit::GenerateCatsRound(
      {.bids = bids, .nodes = nodes, .nodes_per_site = 4, .seed = seed, .mix = mix});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Round{};
}

// The allocation of a solver result, as an outcome with pays 0.
RoundOutcome FromPicks(const Round& r, const std::vector<Pick>& picks) {
  RoundOutcome o;
  for (uint32_t i = 0; i < picks.size(); ++i) {
    if (picks[i].bundle == kNoBundle) continue;
    o.winners.push_back({i, picks[i].bundle, picks[i].nodes, Money()});
    o.welfare = *o.welfare.Add(r.bids[i].limit);
  }
  return o;
}

double Ratio(const Money& a, const Money& b) {
  if (b.is_zero()) return 1;
  return a.nanos().convert_to<double>() / b.nanos().convert_to<double>();
}

// The properties every ClearRound outcome has, whatever the budget.
void ExpectSound(const Round& r, const RoundOutcome& out) {
  core::Status s = CheckOutcome(r, out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_GE(out.gap, 0.0);
  EXPECT_LE(out.gap, 1.0);
  if (out.optimal) {
    EXPECT_EQ(out.gap, 0.0);
  }
  if (out.mechanism == Mechanism::kVcg) {
    EXPECT_TRUE(out.optimal);
  }
  for (const Winner& w : out.winners) {
    EXPECT_FALSE(w.pay.is_negative());
    EXPECT_LE(C(w.pay), C(r.bids[w.bid].limit)) << "winner " << r.bids[w.bid].id;
  }
}

// On a tiny round: what ClearRound claims is true of the exhaustive optimum.
// An optimal claim means the exhaustive welfare, and kVcg the exhaustive VCG
// payments; any outcome stays at or below the optimum.
void ExpectTruthfulClaims(const Round& r, const RoundOutcome& out) {
  ExpectSound(r, out);
  auto opt = testkit::ExhaustiveSolve(r);
  ASSERT_TRUE(opt.ok()) << opt.status().ToString();
  EXPECT_LE(C(out.welfare), C(opt->welfare));
  if (out.optimal) {
    EXPECT_EQ(C(out.welfare), C(opt->welfare)) << "claimed optimal";
  }
  if (out.mechanism == Mechanism::kVcg) {
    auto pay = testkit::ExhaustiveVcgPayments(r, out);
    ASSERT_TRUE(pay.ok()) << pay.status().ToString();
    for (size_t k = 0; k < out.winners.size(); ++k) {
      EXPECT_EQ(C(out.winners[k].pay), C((*pay)[k]))
          << "VCG pay of " << r.bids[out.winners[k].bid].id;
    }
  }
}

// ------------------------------------------------------------ tiny rounds

TEST(WdpMipTest, TinyRoundsMatchTheExhaustiveOptimumAndVcgPayments) {
  const int rounds = RoundsFromEnv("BOURSE_WDP_TINY_ROUNDS", 1500);
  const uint64_t first = static_cast<uint64_t>(RoundsFromEnv("BOURSE_WDP_TINY_FIRST", 1000));
  int winners = 0, counted = 0;
  for (int k = 0; k < rounds; ++k) {
    const uint64_t seed = first + static_cast<uint64_t>(k);
    const Round r = Tiny(seed);
    auto opt = testkit::ExhaustiveSolve(r);
    ASSERT_TRUE(opt.ok()) << opt.status().ToString();
    ASSERT_TRUE(CheckOutcome(r, opt->allocation).ok());  // the reference itself

    WdpMip mip(r);
    auto res = mip.Solve(kNoBid, nullptr, 30);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    const RoundOutcome alloc = FromPicks(r, res->picks);
    EXPECT_TRUE(res->optimal);
    EXPECT_TRUE(CheckOutcome(r, alloc).ok()) << CheckOutcome(r, alloc).ToString();
    EXPECT_EQ(C(alloc.welfare), C(opt->welfare));
    EXPECT_GE(res->bound_nanos, opt->welfare.nanos().convert_to<double>() * (1 - 1e-9));

    // Without one bid (the re-solve behind a VCG payment).
    if (!r.bids.empty()) {
      const uint32_t gone = static_cast<uint32_t>(seed % r.bids.size());
      auto opt_gone = testkit::ExhaustiveSolve(r, gone);
      auto res_gone = mip.Solve(gone, nullptr, 30);
      ASSERT_TRUE(opt_gone.ok() && res_gone.ok());
      EXPECT_TRUE(res_gone->optimal);
      EXPECT_EQ(res_gone->picks[gone].bundle, kNoBundle);
      EXPECT_EQ(C(FromPicks(r, res_gone->picks).welfare), C(opt_gone->welfare))
          << "without " << gone;
    }

    auto out = ClearRound(r, {.time_budget_s = 30});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(out->optimal);
    EXPECT_EQ(Name(out->mechanism), "vcg");
    EXPECT_EQ(out->gap, 0.0);
    ExpectTruthfulClaims(r, *out);
    winners += static_cast<int>(out->winners.size());
    for (const RoundBid& b : r.bids) {
      for (const Bundle& u : b.bundles) counted += u.is_count();
    }
    if (HasFailure()) {
      FAIL() << "seed " << seed << " (Tiny(" << seed << ")):\n" << testkit::DescribeRound(r);
    }
  }
  std::printf("%d tiny rounds: %d winners, %d count bundles\n", rounds, winners, counted);
  EXPECT_GT(winners, rounds);
  EXPECT_GT(counted, rounds / 2);
}

// The solver's start is a hint: a feasible start, even the optimum, changes
// nothing in the answer.
TEST(WdpMipTest, StartingFromAFeasibleAllocationKeepsTheOptimum) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const Round r = Tiny(seed);
    auto opt = testkit::ExhaustiveSolve(r);
    ASSERT_TRUE(opt.ok());
    std::vector<Pick> start(r.bids.size());
    for (const Winner& w : opt->allocation.winners) start[w.bid] = {w.bundle, w.nodes};
    std::vector<Pick> empty(r.bids.size());
    WdpMip mip(r);
    for (const std::vector<Pick>* s : {&start, &empty}) {
      auto res = mip.Solve(kNoBid, s, 30);
      ASSERT_TRUE(res.ok()) << res.status().ToString();
      EXPECT_TRUE(res->optimal);
      EXPECT_EQ(C(FromPicks(r, res->picks).welfare), C(opt->welfare)) << "seed " << seed;
    }
  }
}

// The re-solves behind VCG payments: without each bid in turn, started from
// the optimum less that bid (as ClearRound starts them) or from nothing.
// Tiny rounds that once failed first:
// - 1246 (one node, 11 bids): without b9, CBC proved 54.215356250 while
//   57.932187500 (b0, b3, b7) is feasible; knapsack cover cuts on capacity
//   rows divided by the capacity (0.1 + 0.05 + ... is not exact in binary).
// - 2002 (3 nodes in 2 sites, 11 bids, count requests): without b7, CBC
//   proves 146.779155888 (b1, b10) while 153.206431568 (b1, b2, b9) is
//   feasible, with or without a start; turning off any one of CBC's cut
//   generators (gomory, knapsack, twoMirCuts, probing) finds 153.206431568.
// - 2902 without b2, 3382 and 3925 without b5 and b6: the same, 1-4% short
//   (found by sweeping seeds 1000-3999: 6 wrong proofs in 42,000 solves, all
//   of them re-solves without one bid).
TEST(WdpMipTest, ResolvesWithoutEachBidMatchTheExhaustiveOptimum) {
  std::vector<uint64_t> seeds = {1246, 2002, 2902, 3382, 3925};
  for (uint64_t s = 1; s <= 150; ++s) seeds.push_back(s * 17);
  int solves = 0;
  for (uint64_t seed : seeds) {
    const Round r = Tiny(seed);
    auto opt = testkit::ExhaustiveSolve(r);
    ASSERT_TRUE(opt.ok());
    WdpMip mip(r);
    for (uint32_t i = 0; i < r.bids.size(); ++i) {
      auto without = testkit::ExhaustiveSolve(r, i);
      ASSERT_TRUE(without.ok());
      std::vector<Pick> start(r.bids.size());
      for (const Winner& w : opt->allocation.winners) {
        if (w.bid != i) start[w.bid] = {w.bundle, w.nodes};
      }
      const std::vector<Pick>* from_optimum = &start;
      const std::vector<Pick>* from_nothing = nullptr;
      for (const std::vector<Pick>* s : {from_optimum, from_nothing}) {
        auto res = mip.Solve(i, s, 30);
        ASSERT_TRUE(res.ok()) << res.status().ToString();
        const RoundOutcome alloc = FromPicks(r, res->picks);
        EXPECT_TRUE(res->optimal);
        EXPECT_TRUE(CheckOutcome(r, alloc).ok());
        EXPECT_EQ(res->picks[i].bundle, kNoBundle);
        EXPECT_EQ(C(alloc.welfare), C(without->welfare))
            << "without b" << i << (s ? ", started from the optimum less it" : "");
        ++solves;
      }
    }
    if (HasFailure()) FAIL() << "seed " << seed << ":\n" << testkit::DescribeRound(r);
  }
  EXPECT_GT(solves, 1000);
}

// ------------------------------------------------------------ CATS-like rounds

TEST(WdpMipTest, CatsRoundsOfUpTo50BidsClearAtTheOptimum) {
  struct Case {
    int bids, nodes;
    uint64_t seed;
    testkit::CatsMix mix;
  };
  // Mixed rounds, and each kind alone (count requests alone are the hardest
  // to prove: up to seconds per solve at 25 x 10, docs/perf/auction.md).
  // (More rounds per size: bench_auction's BM_CombinatorialCats.)
  const Case cases[] = {
      {25, 10, 500, {}},        {25, 10, 503, {1, 0, 0}}, {25, 10, 504, {0, 1, 0}},
      {25, 10, 500, {0, 0, 1}}, {50, 15, 500, {}},
  };
  double ratio_sum = 0, worst = 1;
  int rounds = 0, greedy_optimal = 0, vcg = 0;
  for (const Case& c : cases) {
    const uint64_t seed = c.seed;
    const Round r = Cats(c.bids, c.nodes, seed, c.mix);
    auto out = ClearRound(r, {.time_budget_s = 30});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectSound(r, *out);
    EXPECT_TRUE(out->optimal) << c.bids << "x" << c.nodes << " seed " << seed;
    // VCG needs every winner's re-solve proven too: for information. (The
    // solver alone, without ClearRound's start, is held to the same optimum
    // on the tiny rounds; a second solve here doubled the test's time.)
    vcg += out->mechanism == Mechanism::kVcg;
    // The greedy tier, for information.
    auto greedy = SolveHeuristic(r);
    ASSERT_TRUE(greedy.ok());
    const double ratio = Ratio(greedy->welfare, out->welfare);
    EXPECT_LE(ratio, 1 + 1e-12);
    ratio_sum += ratio;
    worst = std::min(worst, ratio);
    greedy_optimal += greedy->welfare == out->welfare;
    ++rounds;
  }
  std::printf(
      "%d rounds of 25-50 bids: VCG on %d; greedy + local search alone: mean %.4f of the "
      "optimum, worst %.4f, optimal on %d\n",
      rounds, vcg, ratio_sum / rounds, worst, greedy_optimal);
  RecordProperty("greedy_mean_ratio", std::to_string(ratio_sum / rounds));
}

// 100 bids x 30 nodes: a 2 s clearing stays within the bound of a longer
// solve (4 s more, started from it) and at or above the greedy tier, and its
// share of the best allocation that solve finds is printed. Whether 1 s
// reaches issue #19's 99% is the benchmark's question (bench_auction,
// docs/perf/auction.md): under ASan or on a loaded machine the solver gets a
// fraction of the CPU, so a share asserted here would be a timing assertion.
// (Until session 14 both solves returned their start when cut short, so the
// 99% this test asserted then held trivially.)
TEST(WdpMipTest, Cats100By30StayWithinTheBoundAndAboveTheGreedy) {
  double sum = 0;
  const int rounds = 2;
  for (int s = 0; s < rounds; ++s) {
    const Round r = Cats(100, 30, 700 + static_cast<uint64_t>(s));
    auto out = ClearRound(r, {.time_budget_s = 2});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectSound(r, *out);
    auto greedy = SolveHeuristic(r);
    ASSERT_TRUE(greedy.ok());
    EXPECT_GE(C(out->welfare), C(greedy->welfare));
    std::vector<Pick> start(r.bids.size());
    for (const Winner& w : out->winners) start[w.bid] = {w.bundle, w.nodes};
    WdpMip mip(r);
    auto best = mip.Solve(kNoBid, &start, 4);
    ASSERT_TRUE(best.ok()) << best.status().ToString();
    const RoundOutcome found = FromPicks(r, best->picks);
    EXPECT_TRUE(CheckOutcome(r, found).ok());
    const double w = out->welfare.nanos().convert_to<double>();
    const double known = std::max(w, found.welfare.nanos().convert_to<double>());
    EXPECT_LE(w, best->bound_nanos * (1 + 1e-9));
    EXPECT_LE(known, best->bound_nanos * (1 + 1e-9));
    sum += w / known;
  }
  std::printf("100 x 30, 2 s: mean %.5f of the best allocation a further 4 s found, %d rounds\n",
              sum / rounds, rounds);
}

// ------------------------------------------------------------ budgets

// A solve cut short by its budget returns the best allocation its search
// found, not only its start: CbcMain1 searches a copy of the model and, when
// stopped on the time limit, left the caller's copy without a solution (so
// every 1 s clearing of a 100-bid round returned the greedy allocation).
// Without a start, anything above nothing is the search's own; the 100 x 30
// round of seed 2 is not proven within 40 s, so the search is cut short
// (seed 1 is proven in about 3 s, and a finished search did hand its
// solution back). 4 s: CBC's root heuristics find their first allocation in
// about 0.1 s here, so under ASan too.
TEST(WdpMipTest, ASolveCutShortReturnsTheBestAllocationItFound) {
  for (uint64_t seed = 2; seed <= 2; ++seed) {
    const Round r = Cats(100, 30, seed);
    WdpMip mip(r);
    auto res = mip.Solve(kNoBid, nullptr, 4.0);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    const RoundOutcome alloc = FromPicks(r, res->picks);
    EXPECT_TRUE(CheckOutcome(r, alloc).ok()) << CheckOutcome(r, alloc).ToString();
    EXPECT_GT(C(alloc.welfare), C(Money())) << "seed " << seed;
    EXPECT_GE(res->bound_nanos, alloc.welfare.nanos().convert_to<double>() * (1 - 1e-9));
  }
}

// The gap of a clearing cut short bounds every allocation, not only the one
// it found: CbcMain1's searched copy reports its incumbent's value as the
// best possible when stopped by the time limit, and taken as the bound that
// read as gap 0 on rounds with 12% more welfare to find. Here a longer solve,
// started from the clearing's allocation, finds a better one.
TEST(WdpMipTest, TheGapOfAClearingCutShortCoversBetterAllocations) {
  const Round r = Cats(50, 15, 1);
  auto out = ClearRound(r, {.time_budget_s = 1});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ExpectSound(r, *out);
  std::vector<Pick> start(r.bids.size());
  for (const Winner& w : out->winners) start[w.bid] = {w.bundle, w.nodes};
  WdpMip mip(r);
  auto longer = mip.Solve(kNoBid, &start, 4);
  ASSERT_TRUE(longer.ok()) << longer.status().ToString();
  const RoundOutcome found = FromPicks(r, longer->picks);
  ASSERT_TRUE(CheckOutcome(r, found).ok());
  const double w = out->welfare.nanos().convert_to<double>();
  const double better = found.welfare.nanos().convert_to<double>();
  // gap = (bound - w) / bound, so bound = w / (1 - gap) must reach `better`.
  EXPECT_GE(out->gap, 1 - w / better - 1e-6) << (out->optimal ? "optimal" : "cut short");
  std::printf("50 x 15 seed 1: 1 s clearing %s, gap %.4f; 4 s more found %.4f of it more\n",
              out->optimal ? "optimal" : "cut short", out->gap, better / w - 1);
}

TEST(WdpMipTest, ABudgetTooSmallToSolveFallsBackToTheGreedyTier) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const Round r = Cats(100, 30, seed);
    auto greedy = SolveHeuristic(r);
    ASSERT_TRUE(greedy.ok());
    auto tiny = ClearRound(r, {.time_budget_s = 1e-6});
    ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
    ExpectSound(r, *tiny);
    EXPECT_EQ(Name(tiny->mechanism), "greedy");
    EXPECT_GE(C(tiny->welfare), C(greedy->welfare));  // the greedy is the solver's start

    // No budget: the greedy tier's outcome, as SolveHeuristic gives it.
    auto none = ClearRound(r, {.time_budget_s = 0});
    ASSERT_TRUE(none.ok());
    ExpectSound(r, *none);
    EXPECT_EQ(Name(none->mechanism), "greedy");
    EXPECT_EQ(C(none->welfare), C(greedy->welfare));
    ASSERT_EQ(none->winners.size(), greedy->winners.size());
    for (size_t k = 0; k < none->winners.size(); ++k) {
      EXPECT_EQ(none->winners[k].bid, greedy->winners[k].bid);
      EXPECT_EQ(C(none->winners[k].pay), C(greedy->winners[k].pay));
    }

    // A model above max_solver_columns skips the solver (the improvement
    // search still runs: 1 s, not 30, bounds it under ASan too, where its
    // 1,000 moves per pair took 10 s a clearing).
    auto big = ClearRound(r, {.time_budget_s = 1, .max_solver_columns = 1});
    ASSERT_TRUE(big.ok());
    ExpectSound(r, *big);
    EXPECT_EQ(Name(big->mechanism), "greedy");
    EXPECT_GE(C(big->welfare), C(greedy->welfare));
    auto dense = ClearRound(r, {.time_budget_s = 1, .max_solver_nonzeros = 1});
    ASSERT_TRUE(dense.ok());
    EXPECT_EQ(Name(dense->mechanism), "greedy");
  }
}

// An attacker's round: bids at the broker's limits (16 bundles, each a count
// request over 500 nodes; 30 such bids are 240,480 terms, within the 250,000
// a broker round takes). Its model would take hundreds of megabytes; it is
// sized before it is built, skipped, and the greedy tier clears the round.
TEST(WdpMipTest, ARoundTooLargeToModelIsNeverBuilt) {
  Round r;
  for (int n = 0; n < 500; ++n) {
    r.nodes.push_back({"n" + std::to_string(n), "s" + std::to_string(n / 4),
                       {.cpu_mcores = 4000, .mem_mib = 8192, .disk_mib = 0, .net_min_kbps = 0,
                        .net_max_kbps = 0}});
  }
  Bundle any;
  any.count = 2;
  any.min_sites = 2;
  any.res = {.cpu_mcores = 100, .mem_mib = 0, .disk_mib = 0, .net_min_kbps = 0, .net_max_kbps = 0};
  for (uint32_t n = 0; n < 500; ++n) any.from.push_back(n);
  for (int b = 0; b < 30; ++b) {
    RoundBid bid{.id = "b" + std::to_string(b), .bidder = "x", .limit = Money::FromNanos(1 + b),
                 .bundles = std::vector<Bundle>(16, any)};
    r.bids.push_back(std::move(bid));
  }
  const WdpMip::Size size = WdpMip::Estimate(r);
  EXPECT_GT(size.columns, ClearOptions{}.max_solver_columns);
  auto out = ClearRound(r);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ExpectSound(r, *out);
  EXPECT_EQ(Name(out->mechanism), "greedy");
  EXPECT_FALSE(out->optimal);
}

// A large round under a short budget: whatever is found in time is feasible,
// with a gap in [0, 1]. (How far the solver gets depends on the machine; the
// properties do not.)
TEST(WdpMipTest, ALargeRoundUnderAShortBudgetStaysFeasible) {
  const Round r = Cats(2000, 200, 9);
  for (double budget : {0.05, 0.3}) {
    auto out = ClearRound(r, {.time_budget_s = budget});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectSound(r, *out);
    std::printf("2000 x 200, budget %.2f s: %s, gap %.4f, %zu winners\n", budget,
                MechanismName(out->mechanism), out->gap, out->winners.size());
  }
}

// ------------------------------------------------------------ attacks

// A bidder raising its own limit, or adding a shill bid for a winner's very
// bundle, can raise that winner's payment only up to its limit: each outcome
// stays sound and every claim true (tiny rounds, exhaustive reference), in
// both mechanisms.
TEST(WdpMipTest, NoBidderRaisesAnotherWinnersPaymentAboveItsLimit) {
  int attacks = 0;
  for (uint64_t seed = 1; seed <= 15; ++seed) {
    const Round r = Tiny(seed * 13, 8);
    auto base = ClearRound(r, {.time_budget_s = 30});
    ASSERT_TRUE(base.ok());
    for (const Winner& w : base->winners) {
      const Money lim = r.bids[w.bid].limit;
      std::vector<Round> attacked;
      for (uint32_t k = 0; k < r.bids.size(); ++k) {  // a loser bids higher
        if (k == w.bid) continue;
        for (int64_t factor : {3, 1000}) {
          Round a = r;
          a.bids[k].limit = *a.bids[k].limit.MulInt(factor);
          attacked.push_back(std::move(a));
        }
      }
      for (int64_t delta : {-1, 0, 1}) {  // a shill for the winner's bundle
        Round a = r;
        RoundBid shill = r.bids[w.bid];
        shill.id = "shill";
        shill.bidder = "mallory";
        shill.bundles = {r.bids[w.bid].bundles[w.bundle]};
        shill.limit = *lim.Add(Money::FromNanos(delta));
        a.bids.push_back(shill);
        attacked.push_back(std::move(a));
      }
      for (const Round& a : attacked) {
        for (double budget : {30.0, 0.0}) {
          auto out = ClearRound(a, {.time_budget_s = budget});
          ASSERT_TRUE(out.ok()) << out.status().ToString();
          ExpectTruthfulClaims(a, *out);
          ++attacks;
        }
        if (HasFailure()) FAIL() << "seed " << seed * 13 << ":\n" << testkit::DescribeRound(a);
      }
    }
  }
  EXPECT_GT(attacks, 200);
}

// Limits far above 2^53 nano-credits, up to near Money's maximum: floating
// point cannot tell the allocations apart, so the outcome must never claim an
// optimum it does not have.
TEST(WdpMipTest, HugeLimitsNeverYieldAFalseOptimum) {
  int optimal = 0, rounds = 0;
  const Money::Rep max = Money::MaxNanos();
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Round r = Tiny(seed * 7);
    for (uint32_t i = 0; i < r.bids.size(); ++i) {  // about 2^120: 12 of them fit in Money
      auto big = Money::FromRep(r.bids[i].limit.nanos() * (Money::Rep(1) << 80) + i + 1);
      ASSERT_TRUE(big.ok());
      r.bids[i].limit = *big;
    }
    auto out = ClearRound(r, {.time_budget_s = 30});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectTruthfulClaims(r, *out);
    optimal += out->optimal;
    ++rounds;
    if (HasFailure()) FAIL() << "seed " << seed * 7 << ":\n" << testkit::DescribeRound(r);
  }
  std::printf("limits near 2^120: optimal claimed on %d of %d rounds\n", optimal, rounds);

  // One pair of nodes; x wants both for X + 1, y and z one each for X / 2:
  // only exact arithmetic sees that x wins (and, flipped, that y and z do).
  const Money::Rep x = max / 16;
  for (bool pair_wins : {true, false}) {
    Round r;
    core::ResourceVector all{.cpu_mcores = 1000, .net_max_kbps = 10};
    r.nodes = {{"n0", "s0", all}, {"n1", "s1", all}};
    Bundle both, first, second;
    both.items = {{0, all}, {1, all}};
    first.items = {{0, all}};
    second.items = {{1, all}};
    r.bids.push_back({"x", "x", *Money::FromRep(x + (pair_wins ? 1 : 0)), {both}});
    r.bids.push_back({"y", "y", *Money::FromRep(x / 2), {first}});
    r.bids.push_back({"z", "z", *Money::FromRep(x / 2 + (pair_wins ? 0 : 1)), {second}});
    auto out = ClearRound(r, {.time_budget_s = 30});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectTruthfulClaims(r, *out);
  }
  // A one-nano-credit bid beside a 2^126 one, on separate nodes: both win.
  {
    Round r;
    core::ResourceVector all{.cpu_mcores = 1000, .net_max_kbps = 10};
    r.nodes = {{"n0", "s0", all}, {"n1", "s1", all}};
    Bundle first, second;
    first.items = {{0, all}};
    second.items = {{1, all}};
    r.bids.push_back({"big", "big", *Money::FromRep(max / 2), {first}});
    r.bids.push_back({"nano", "nano", Money::FromNanos(1), {second}});
    auto out = ClearRound(r, {.time_budget_s = 30});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectTruthfulClaims(r, *out);
  }
}

// Limits whose greatest common divisor is one nano-credit: with sums below
// 2^53 the objective is exact and every round clears at the exhaustive
// optimum with VCG payments; above it, claims stay true.
TEST(WdpMipTest, LimitsWithUnitGcdClearExactly) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Round r = Tiny(seed * 11);
    Round above = r;
    // Around 10^14 (12 of them below 2^53 = 9.007e15), and around 3 * 10^15
    // (above); the last limit nudged until the gcd of each set is 1.
    std::vector<int64_t> low, high;
    for (const RoundBid& b : r.bids) {
      low.push_back(100'000'000'000'000 + b.limit.nanos().convert_to<int64_t>() % 1'000'003);
      high.push_back(3'000'000'000'000'000 + low.back());
    }
    for (std::vector<int64_t>* v : {&low, &high}) {
      auto gcd = [&] {
        int64_t g = 0;
        for (int64_t x : *v) g = std::gcd(g, x);
        return g;
      };
      while (v->size() > 1 && gcd() != 1) ++v->back();
    }
    for (uint32_t i = 0; i < r.bids.size(); ++i) {
      r.bids[i].limit = Money::FromNanos(low[i]);
      above.bids[i].limit = Money::FromNanos(high[i]);
    }
    auto out = ClearRound(r, {.time_budget_s = 30});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(out->optimal);
    EXPECT_EQ(Name(out->mechanism), "vcg");
    ExpectTruthfulClaims(r, *out);
    auto out_above = ClearRound(above, {.time_budget_s = 30});
    ASSERT_TRUE(out_above.ok()) << out_above.status().ToString();
    ExpectTruthfulClaims(above, *out_above);
    if (HasFailure()) {
      FAIL() << "seed " << seed * 11 << ":\n"
             << testkit::DescribeRound(r) << "above:\n"
             << testkit::DescribeRound(above);
    }
  }
}

}  // namespace
}  // namespace bourse::auction
