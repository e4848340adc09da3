// The improvement search of winner determination: simulated annealing over
// allocations of a prepared round (auction/internal/problem.h), from a
// feasible start, until a deadline.
//
//   AnnealResult r = Anneal(problem, greedy_choice, {.deadline = until}, /*seed=*/1);
//   // r.best: feasible, worth at least the start
//
// A move forces one bundle in (a loser's, or a winner's other XOR bundle),
// re-places a count-request winner on other nodes, or drops a winner. To
// force a bundle it picks the bundle's nodes (a count request the ones
// cheapest to clear, keeping its min-sites condition) and makes room on each
// of them: by moving count-request winners to other nodes of their `from`
// where they fit, or to a node cleared for them when that evicts less than
// the cheapest victim would cost (an ejection chain of two links), else by
// evicting the winners in the way (least limit per share of the shortfall
// first). The capacity the move freed is refilled with losers in greedy
// order. A move that lowers the welfare by d is kept with probability
// exp(-d / T); T falls geometrically from 0.3 to 0.03 times the mean limit
// over the first 90% of the search, then the search restarts from the best
// allocation seen and cools to a hundredth of that. The best allocation seen
// is returned. docs/auction.md §2 has the details and the reasons.
//
// Every allocation the search holds respects every node's capacity (the
// moves only ever place what fits the residual), but callers still check the
// result exactly (CheckOutcome) like any other.
//
// Thread safety: uses the Problem's scratch state; one call per Problem at a
// time.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "auction/internal/problem.h"

namespace bourse::auction::internal {

struct AnnealResult {
  std::vector<Choice> best;
  i128 value = 0;  // nano-credits, of best
  uint64_t moves = 0;
  uint64_t improvements = 0;  // moves that raised the best value
};

// The search stops at the deadline or after max_moves moves, whichever comes
// first; the temperature follows the larger share of either used (so a
// search bounded by moves alone is the same on every machine, for tests).
struct AnnealLimits {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  uint64_t max_moves = UINT64_MAX;
};

AnnealResult Anneal(Problem& p, const std::vector<Choice>& start, const AnnealLimits& limits,
                    uint64_t seed);

}  // namespace bourse::auction::internal
