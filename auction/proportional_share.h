// Proportional share (Tycoon-style): per node and resource, each bid is a
// spending rate (Money per second); a bid's share is its rate over the sum of
// rates, exact. Charging over an interval is exact to the nano-credit and
// conserves money; bidders whose budget runs out drop out at that instant.
//
//   BOURSE_ASSIGN_OR_RETURN(ShareNode cpu, ShareNode::Create(/*units=*/10000,
//                                                            /*reserve_rate=*/Money()));
//   BOURSE_RETURN_IF_ERROR(cpu.SetBid(/*bidder=*/1, rate_a, budget_a));
//   BOURSE_RETURN_IF_ERROR(cpu.SetBid(2, rate_b, budget_b));
//   cpu.Recompute();
//   cpu.units_of(1);          // integer CPU weight, largest remainder
//   ShareFraction s = cpu.ShareOf(1);   // exact rate / total
//   BOURSE_ASSIGN_OR_RETURN(ChargeResult c, cpu.Advance(/*elapsed_ns=*/60'000'000'000));
//   // c.payments (per bidder), c.seller_receives == sum of payments, c.dropouts
//
//   // Spread a budget over nodes (Feldman, Lai and Zhang):
//   BOURSE_ASSIGN_OR_RETURN(std::vector<Money> rates, BestResponse(budget, weights, others));
//
// Rules (docs/auction.md):
// - Rates and budgets are Money; the node keeps rates as int64 nano-credits per
//   second (a rate above 2^63-1 nanos/s is refused). The optional reserve rate
//   is the owner's standing bid: it enters the denominator and its share stays
//   unsold (units_reserved()).
// - Integer units (CPU weight, link kbps) are apportioned by largest
//   remainder: each gets floor(units * w / W) and the leftover units go one
//   each to the largest remainders, ties to the earlier bid (insertion order);
//   the units always sum exactly to the node's units.
// - Advance(T): bidder i is active for t_i = min(T, budget_i / rate_i); it
//   pays exactly its budget when it runs out (then it leaves the node at that
//   instant, reported as an exact fraction of nanoseconds, and the remaining
//   bidders' shares grow from then), otherwise rate_i * T / 10^9 (T in ns)
//   rounded by a pro-rata split of the floored total among those bidders, so
//   each pays its exact amount rounded down or up by less than one
//   nano-credit and the seller receives exactly the sum of the payments.
//
// Thread safety: ShareNode is a value; not safe for concurrent mutation.
// BestResponse and ApportionLargestRemainder are pure.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/money.h"
#include "core/status.h"

namespace bourse::auction {

// numerator / denominator, both in nano-credits per second.
struct ShareFraction {
  int64_t numerator = 0;
  core::Money::Rep denominator = 0;  // 0 when nobody bids and there is no reserve
};

struct DropOut {
  uint64_t bidder = 0;
  // The exact instant, in nanoseconds after the start of the interval:
  // at_ns_num / at_ns_den.
  core::Money::Rep at_ns_num = 0;
  int64_t at_ns_den = 1;
};

struct ChargeResult {
  struct Payment {
    uint64_t bidder;
    core::Money amount;
  };
  std::vector<Payment> payments;  // one per bid active at the start, bid order
  core::Money seller_receives;    // == sum of payments, exactly
  std::vector<DropOut> dropouts;  // in time order (ties: bid order)
};

class ShareNode {
 public:
  // `units`: the integer capacity apportioned (e.g. total CPU weight or link
  // kbps), >= 0. Errors: invalid_argument for negative units or a negative or
  // too large reserve rate.
  static core::Result<ShareNode> Create(int64_t units, const core::Money& reserve_rate);

  // Adds or replaces a bidder's bid. A zero rate removes it. Errors:
  // invalid_argument when rate is negative or above 2^63-1 nanos/s, or budget
  // is negative or above 2^63-1 nanos.
  core::Status SetBid(uint64_t bidder, const core::Money& rate, const core::Money& budget);
  // Errors: not_found when the bidder has no bid.
  core::Status RemoveBid(uint64_t bidder);

  // Recomputes the integer units of every bid (and of the reserve).
  void Recompute();

  ShareFraction ShareOf(uint64_t bidder) const;
  // After Recompute(); 0 for an unknown bidder.
  int64_t units_of(uint64_t bidder) const;
  int64_t units_reserved() const { return reserve_units_; }
  size_t bids() const { return bidders_.size(); }
  core::Money budget_of(uint64_t bidder) const;

  // Charges `elapsed_ns` nanoseconds of the current bids: payments, budgets
  // reduced, bidders who run out removed (their drop-out instants reported);
  // Recompute() is called afterwards. Errors: invalid_argument when
  // elapsed_ns < 0.
  core::Result<ChargeResult> Advance(int64_t elapsed_ns);

 private:
  ShareNode() = default;
  size_t IndexOf(uint64_t bidder) const;
  void RemoveMarked(const std::vector<bool>& drop);

  int64_t units_ = 0;
  int64_t reserve_ = 0;
  std::unordered_map<uint64_t, size_t> index_;  // bidder -> position
  std::vector<uint64_t> bidders_;
  std::vector<int64_t> rates_;
  std::vector<int64_t> budgets_;
  std::vector<int64_t> units_out_;
  int64_t reserve_units_ = 0;
  // Scratch for Recompute.
  std::vector<int64_t> weights_;
  std::vector<int64_t> split_;
};

// Splits `total` integer units pro rata to `weights` (each >= 0, sum > 0) by
// largest remainder, ties to the lower index; writes weights.size() values
// summing exactly to total into `out`. Errors: invalid_argument for an empty
// or all-zero weight list, a negative weight or total.
core::Status ApportionLargestRemainder(std::span<const int64_t> weights, int64_t total,
                                       std::vector<int64_t>& out);

// Best response of one bidder in a proportional-share market (Feldman, Lai and
// Zhang, "Price of anarchy of proportional share", 2005): spreads `budget`
// over nodes to maximise sum_j weight_j * x_j / (x_j + others_j), where
// others_j is what the other bidders spend on node j. Closed form: sort nodes
// by weight_j / others_j, keep the longest prefix where the bid stays
// positive, x_j = sqrt(weight_j * others_j) * (budget + sum others) /
// (sum sqrt(weight * others)) - others_j. Nodes nobody else bids on get one
// nano-credit per second (already the whole node) first. The real-valued
// optimum is rounded to nano-credits by largest remainder so the rates sum
// exactly to `budget`. Errors: invalid_argument when the sizes differ, a
// weight is negative, budget or an others_j is negative, or no node has a
// positive weight.
core::Result<std::vector<core::Money>> BestResponse(const core::Money& budget,
                                                    std::span<const double> weights,
                                                    std::span<const core::Money> others);

}  // namespace bourse::auction
