// An exhaustive reference for tiny combinatorial rounds (<= 12 bids, <= 5
// nodes): the optimal welfare by enumeration, exact in integers, and VCG
// payments from it. Tests hold the MIP solver and ClearRound to it.
//
//   BOURSE_ASSIGN_OR_RETURN(testkit::ExhaustiveOptimum opt, testkit::ExhaustiveSolve(round));
//   opt.welfare;     // the optimum
//   opt.allocation;  // one optimal allocation (pays 0)
//   BOURSE_ASSIGN_OR_RETURN(std::vector<Money> pay,
//                           testkit::ExhaustiveVcgPayments(round, outcome));
//
// Every bid takes nothing or one of its bundles; a count request takes every
// subset of `from` of size `count` whose nodes span >= min_sites sites. An
// allocation is feasible when, on every node, the four summable quantities
// (cpu, mem, disk, net_min) of what it grants add up to at most the capacity
// and every request's net_max is at most the node's ceiling. The search is a
// depth-first enumeration over the bids in decreasing limit order, cut only
// where the current welfare plus every remaining limit cannot beat the best
// found (exact, so the optimum is never cut), and sums are 256-bit integers
// (12 limits near Money's maximum do not overflow).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "auction/combinatorial.h"
#include "core/money.h"
#include "core/status.h"

namespace bourse::auction::testkit {

inline constexpr size_t kExhaustiveMaxBids = 12;
inline constexpr size_t kExhaustiveMaxNodes = 5;
inline constexpr uint32_t kNoExcluded = UINT32_MAX;

struct ExhaustiveOptimum {
  core::Money welfare;
  RoundOutcome allocation;  // winners by bid index, pay 0; welfare set
};

// The optimum of `round` without bid `excluded` (kNoExcluded: with all).
// Errors: invalid_argument when the round has more than 12 bids or 5 nodes
// (saying which), or fails ValidateRound; or when the optimum exceeds Money.
core::Result<ExhaustiveOptimum> ExhaustiveSolve(const Round& round,
                                                uint32_t excluded = kNoExcluded);

// VCG payments of the winners of `outcome`, in its winners' order:
// pay_i = W(without i) - (welfare of outcome - limit_i), W the exhaustive
// optimum. For an optimal outcome each lies in [0, limit_i]; no clamping, so a
// sub-optimal outcome shows as a payment outside that range.
// Errors: those of ExhaustiveSolve; invalid_argument for a winner of an
// unknown bid.
core::Result<std::vector<core::Money>> ExhaustiveVcgPayments(const Round& round,
                                                             const RoundOutcome& outcome);

}  // namespace bourse::auction::testkit
