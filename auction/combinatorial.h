// Combinatorial sealed-bid rounds (Bellagio-style): winner determination and
// critical-value payments for XOR bids on bundles of node resources.
//
//   Round round;
//   round.nodes = {{"n1", "s1", cap}, {"n2", "s2", cap}};
//   Bundle pair;  // both nodes, 500 mcores each
//   pair.items = {{.node = 0, .res = half}, {.node = 1, .res = half}};
//   Bundle any;   // or: any 2 of {n1, n2} in >= 2 sites
//   any.count = 2; any.from = {0, 1}; any.min_sites = 2; any.res = half;
//   round.bids.push_back({.id = "b1", .bidder = "x", .limit = ten, .bundles = {pair, any}});
//   BOURSE_ASSIGN_OR_RETURN(RoundOutcome out, ClearRound(round));
//   for (const Winner& w : out.winners) { ... w.bid, w.bundle, w.nodes, w.pay ... }
//
// Model. Nodes have capacity vectors and are multi-unit: several bundles may
// share a node while its capacity lasts (cpu, mem, disk and net_min add up;
// net_max is a ceiling each request must fit under). A bid has a limit (its
// declared value) and one or more bundles, of which at most one wins (XOR). A
// bundle is either a set of items (node, vector) or a count request: any
// `count` distinct nodes of `from`, in at least `min_sites` distinct sites,
// each granting `res`.
//
// Mechanism (docs/auction.md has the precise rules and the proofs):
// - Winner determination is an integer program (one binary per bundle, XOR per
//   bid, count requests as node-choice variables with the min-sites
//   condition, capacity per node and resource) solved by COIN-OR CBC within a
//   time budget (auction/internal/wdp_mip.h). The greedy of Lehmann,
//   O'Callaghan and Shoham by limit / sqrt(size) with a local search, then
//   an improvement search (simulated annealing, auction/internal/anneal.h),
//   give the solver its starting solution and are the fallback.
// - Within the budget the solver proves the optimum (`optimal`) or returns its
//   best allocation with the proven `gap` to its upper bound.
// - Payments: when the optimum is proven for the round and for each winner's
//   round without it (one more solve per winner, same budget), VCG payments:
//   W(without i) - (W - limit_i), clamped to [0, limit_i]
//   (mechanism = kVcg; truthful). Otherwise the greedy tier's rule
//   (kGreedy): a winner the greedy stage picked pays its greedy critical value
//   limit_j * sqrt(size_i / size_j) (j = the first allocation of the run
//   without it that would have blocked it; 0 if none); a winner only the
//   local search, the improvement search or the solver added pays its
//   limit. Payments never exceed limits.
// - The budget is the only clock read here (steady_clock, as a limit): it
//   decides how much of the search runs, never the format of a result.
// Every outcome is checked feasible before it is returned (CheckOutcome).
//
// Thread safety: pure functions over immutable inputs; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/money.h"
#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::auction {

struct RoundNode {
  std::string id;
  std::string site;
  core::ResourceVector capacity;
};

struct BundleItem {
  uint32_t node = 0;  // index into Round::nodes
  core::ResourceVector res;
};

// Items (non-empty) or a count request (count > 0), not both.
struct Bundle {
  std::vector<BundleItem> items;
  int64_t count = 0;
  std::vector<uint32_t> from;  // node indices, distinct
  int64_t min_sites = 0;
  core::ResourceVector res;  // per node, for a count request
  bool is_count() const { return count > 0; }
};

struct RoundBid {
  std::string id;
  std::string bidder;
  core::Money limit;  // > 0
  std::vector<Bundle> bundles;
};

struct Round {
  std::vector<RoundNode> nodes;
  std::vector<RoundBid> bids;
};

struct Winner {
  uint32_t bid = 0;     // index into Round::bids
  uint32_t bundle = 0;  // index into the bid's bundles
  // Item bundle: the distinct item nodes in item order. Count request: the
  // chosen nodes in the order they were chosen.
  std::vector<uint32_t> nodes;
  core::Money pay;
};

enum class Mechanism {
  kVcg,     // proven optimum, VCG payments
  kGreedy,  // best allocation found, greedy critical values (limit if not greedy-picked)
};
const char* MechanismName(Mechanism m);  // "vcg", "greedy"

// A gap as published (bourse auction clear, a round's result, the ledger,
// whose canonical JSON has no floating point): the shortest decimal string of
// the gap's millionths, e.g. "0.117648", "0.328", "1".
std::string GapText(double gap);

struct RoundOutcome {
  std::vector<Winner> winners;  // ordered by bid index
  core::Money welfare;          // sum of the winners' limits
  // The solver proved `welfare` maximal for the round.
  bool optimal = false;
  // (bound - welfare) / bound, bound the least upper bound on the welfare
  // proven within the budget (the solver's, or a relaxation's when the solver
  // did not run), rounded up to a multiple of 1e-6; 0 when optimal, 1 when
  // nothing was allocated below a positive bound.
  double gap = 0;
  Mechanism mechanism = Mechanism::kGreedy;
};

struct ClearOptions {
  // Seconds for the whole clearing: greedy, solver and the VCG re-solves.
  // <= 0: the greedy tier alone.
  double time_budget_s = 1.0;
  // Rounds whose model would have more columns than this skip the solver
  // (the greedy tier decides, the gap is against the relaxation bounds); the
  // size is counted before the model is built.
  size_t max_solver_columns = 200'000;
  // ... or more nonzeros than this (about 50 MB of model).
  size_t max_solver_nonzeros = 2'000'000;
  // Run the local search after the greedy.
  bool local_search = true;
  // The share of the search's time (after the greedy tier) given to the
  // improvement search (simulated annealing, auction/internal/anneal.h)
  // before the solver; the solver starts from its best allocation. 0: none.
  double improve_share = 0.9;
  // Tests: compute greedy critical values by simulating the whole run without
  // each winner (slow) instead of only the part that can differ.
  bool reference_payments = false;
};

// Errors: invalid_argument naming the bid, bundle or node at fault (duplicate
// ids, a node index out of range, a limit <= 0, an empty bundle, a count
// request with count > |from|, min_sites > count, repeated nodes in from, an
// invalid resource vector).
core::Status ValidateRound(const Round& round);

// Validates and clears a round. Errors: those of ValidateRound; internal if
// the outcome fails CheckOutcome (a bug, never a silent over-allocation).
core::Result<RoundOutcome> ClearRound(const Round& round, const ClearOptions& options = {});

// The greedy tier on its own (greedy, local search if asked, greedy payments;
// gap against the relaxation bound).
core::Result<RoundOutcome> SolveHeuristic(const Round& round, const ClearOptions& options = {});

// Checks that an outcome is feasible for the round: at most one winner per bid,
// the nodes match the bundle's rule, no node's quantities allocated above its
// capacity, every request under its node's net_max ceiling, 0 <= pay <= limit,
// welfare = sum of limits. Errors: failed_precondition naming the violation.
core::Status CheckOutcome(const Round& round, const RoundOutcome& outcome);

}  // namespace bourse::auction
