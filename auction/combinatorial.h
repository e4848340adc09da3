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
// - Rounds with at most exact_max_bids bids: exact branch and bound over a
//   fixed search space, maximising welfare (sum of the winners' limits);
//   payments are the critical values of that exact rule (VCG payments):
//   W(without i) - (W - limit_i), clamped to [0, limit_i].
// - Larger rounds (or when the exact search exceeds its node budget): the
//   greedy of Lehmann, O'Callaghan and Shoham by limit / sqrt(size), where
//   size is the bundle's resources normalised by the largest node capacity per
//   resource; then a local search (hill climbing: remove a winner, or the
//   cheapest winners blocking a loser and force the loser in, refill the
//   freed capacity in greedy order, keep the move if welfare rises). Greedy
//   winners pay their greedy critical value limit_j * sqrt(size_i / size_j)
//   (j = the first allocation of the run without them that would have
//   blocked them; 0 if none); bidders the local search added lost the greedy
//   stage and pay their limit. The exact tier and the greedy are monotone: a
//   winner who raises its limit still wins, a loser who lowers it still
//   loses. Payments never exceed limits.
// - Count requests are placed by a deterministic best-fit rule (least spare
//   capacity first, covering min_sites sites first); the exact tier searches
//   bids with count requests after the others, in bid order, so its search
//   space never depends on values.
// - The heuristic tier's local search uses values: it is not proved monotone
//   (set local_search = false for the pure LOS mechanism).
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

struct RoundOutcome {
  std::vector<Winner> winners;  // ordered by bid index
  core::Money welfare;          // sum of the winners' limits
  bool exact = false;           // true when the exact tier decided the round
};

struct ClearOptions {
  // Rounds with at most this many bids are solved exactly.
  size_t exact_max_bids = 40;
  // Search nodes the exact tier may expand (per solve) before the round falls
  // back to the heuristic tier.
  uint64_t exact_node_budget = 200'000;
  // Run the local search after the greedy.
  bool local_search = true;
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

// The tiers on their own (ClearRound picks one). SolveExact returns
// failed_precondition when the node budget is exhausted.
core::Result<RoundOutcome> SolveHeuristic(const Round& round, const ClearOptions& options = {});
core::Result<RoundOutcome> SolveExact(const Round& round, const ClearOptions& options = {});

// Checks that an outcome is feasible for the round: at most one winner per bid,
// the nodes match the bundle's rule, no node's quantities allocated above its
// capacity, every request under its node's net_max ceiling, 0 <= pay <= limit,
// welfare = sum of limits. Errors: failed_precondition naming the violation.
core::Status CheckOutcome(const Round& round, const RoundOutcome& outcome);

}  // namespace bourse::auction
