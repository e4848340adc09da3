// The improvement search (auction/internal/anneal.h), bounded by moves so it
// runs the same on every machine: every allocation it returns is feasible
// and worth what it says, never less than its start nor more than the
// exhaustive optimum, and it finds that optimum on tiny rounds where the
// greedy tier misses it.
#include "auction/internal/anneal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "auction/combinatorial.h"
#include "auction/internal/problem.h"
#include "core/money.h"
#include "tests/auction/cats_generator.h"
#include "tests/auction/exhaustive.h"

namespace bourse::auction {
namespace {

using core::Money;
using internal::Anneal;
using internal::AnnealResult;
using internal::Choice;
using internal::kNone;
using internal::Problem;

Round Generate(const testkit::CatsParams& params) {
  auto r = testkit::GenerateCatsRound(params);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Round{};
}

std::vector<Choice> ChoicesOf(const Round& r, const RoundOutcome& out) {
  std::vector<Choice> c(r.bids.size());
  for (const Winner& w : out.winners) c[w.bid] = {w.bundle, w.nodes};
  return c;
}

// The allocation as an outcome (pays 0), checked by CheckOutcome, and its
// value as the search reported it.
RoundOutcome Checked(const Round& r, const AnnealResult& a) {
  RoundOutcome o;
  for (uint32_t i = 0; i < a.best.size(); ++i) {
    if (a.best[i].bundle == kNone) continue;
    o.winners.push_back({i, a.best[i].bundle, a.best[i].nodes, Money()});
    o.welfare = *o.welfare.Add(r.bids[i].limit);
  }
  const core::Status s = CheckOutcome(r, o);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(o.welfare.nanos() == Money::Rep(static_cast<long long>(a.value)));
  return o;
}

// A fifth as many rounds as the solver's exhaustive comparison
// (BOURSE_WDP_TINY_ROUNDS, default 1500: 300 here; ./dev.sh asan runs 300
// there, so 60 here).
TEST(AnnealTest, TinyRoundsStayFeasibleAndReachTheExhaustiveOptimum) {
  const char* env = std::getenv("BOURSE_WDP_TINY_ROUNDS");
  const int count = std::max(1, (env && std::atoi(env) > 0 ? std::atoi(env) : 1500) / 5);
  int rounds = 0, optimal = 0, greedy_optimal = 0;
  for (uint64_t seed = 1000; seed < 1000 + static_cast<uint64_t>(count); ++seed) {
    const Round r = Generate(testkit::TinyCatsParams(seed));
    auto opt = testkit::ExhaustiveSolve(r);
    ASSERT_TRUE(opt.ok()) << opt.status().ToString();
    auto greedy = SolveHeuristic(r);
    ASSERT_TRUE(greedy.ok());
    Problem p(r);
    const AnnealResult a = Anneal(p, ChoicesOf(r, *greedy), {.max_moves = 30'000}, seed);
    const RoundOutcome o = Checked(r, a);
    EXPECT_TRUE(o.welfare >= greedy->welfare);
    EXPECT_TRUE(o.welfare <= opt->welfare);
    ++rounds;
    optimal += o.welfare == opt->welfare;
    EXPECT_TRUE(o.welfare == opt->welfare)
        << "found " << o.welfare.ToString() << " of " << opt->welfare.ToString();
    greedy_optimal += greedy->welfare == opt->welfare;
    if (HasFailure()) FAIL() << "seed " << seed << ":\n" << testkit::DescribeRound(r);
  }
  std::printf("%d tiny rounds: the search found the optimum of %d, the greedy tier of %d\n", rounds,
              optimal, greedy_optimal);
  EXPECT_LT(greedy_optimal, rounds);
}

TEST(AnnealTest, CatsRoundsImproveOnTheGreedyTier) {
  for (uint64_t seed = 700; seed < 702; ++seed) {
    const Round r = Generate({.bids = 100, .nodes = 30, .nodes_per_site = 4, .seed = seed, .mix = {}});
    auto greedy = SolveHeuristic(r);
    ASSERT_TRUE(greedy.ok());
    Problem p(r);
    const AnnealResult a = Anneal(p, ChoicesOf(r, *greedy), {.max_moves = 50'000}, 1);
    const RoundOutcome o = Checked(r, a);
    EXPECT_TRUE(o.welfare > greedy->welfare) << "seed " << seed;
    EXPECT_GT(a.improvements, 0u);
    EXPECT_EQ(a.moves, 50'000u);
  }
}

TEST(AnnealTest, TheSameSeedAndMovesGiveTheSameAllocation) {
  const Round r = Generate({.bids = 60, .nodes = 20, .nodes_per_site = 3, .seed = 9, .mix = {}});
  auto greedy = SolveHeuristic(r);
  ASSERT_TRUE(greedy.ok());
  Problem p1(r), p2(r);
  const AnnealResult a = Anneal(p1, ChoicesOf(r, *greedy), {.max_moves = 20'000}, 5);
  const AnnealResult b = Anneal(p2, ChoicesOf(r, *greedy), {.max_moves = 20'000}, 5);
  ASSERT_EQ(a.best.size(), b.best.size());
  for (size_t i = 0; i < a.best.size(); ++i) {
    EXPECT_EQ(a.best[i].bundle, b.best[i].bundle);
    EXPECT_EQ(a.best[i].nodes, b.best[i].nodes);
  }
}

TEST(AnnealTest, NoMovesOrAPastDeadlineReturnTheStart) {
  const Round r = Generate({.bids = 40, .nodes = 12, .nodes_per_site = 4, .seed = 3, .mix = {}});
  auto greedy = SolveHeuristic(r);
  ASSERT_TRUE(greedy.ok());
  Problem p(r);
  const AnnealResult none = Anneal(p, ChoicesOf(r, *greedy), {.max_moves = 0}, 1);
  EXPECT_TRUE(Checked(r, none).welfare == greedy->welfare);
  EXPECT_EQ(none.moves, 0u);
  const AnnealResult late =
      Anneal(p, ChoicesOf(r, *greedy), {.deadline = std::chrono::steady_clock::now()}, 1);
  EXPECT_TRUE(Checked(r, late).welfare == greedy->welfare);
  EXPECT_EQ(late.moves, 0u);
}

// Rounds where nothing can win, and a round with no bids: nothing to move.
TEST(AnnealTest, RoundsWithNothingToAllocateStayEmpty) {
  Round empty;
  empty.nodes = {{"n0", "s0", {.cpu_mcores = 1000, .mem_mib = 1024}}};
  Problem p0(empty);
  EXPECT_EQ(static_cast<long long>(Anneal(p0, {}, {.max_moves = 100}, 1).value), 0);

  Round too_big = empty;
  Bundle b;
  b.items = {{.node = 0, .res = {.cpu_mcores = 2000, .mem_mib = 1}}};
  too_big.bids.push_back({.id = "b", .bidder = "x", .limit = Money::FromNanos(5), .bundles = {b}});
  Problem p1(too_big);
  const AnnealResult a = Anneal(p1, {Choice{}}, {.max_moves = 100}, 1);
  EXPECT_EQ(static_cast<long long>(a.value), 0);
  EXPECT_EQ(a.best[0].bundle, kNone);
}

}  // namespace
}  // namespace bourse::auction
