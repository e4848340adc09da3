// Winner determination of a combinatorial round as a mixed-integer program,
// solved in-process by COIN-OR CBC (CbcModel over Clp; no files, no child
// processes).
//
//   WdpMip mip(round);                       // round already validated
//   Result<WdpResult> r = mip.Solve(kNoBid, &start, 0.5);
//   Result<WdpResult> without_3 = mip.Solve(3, &start_without_3, 0.2);
//
// Model (docs/auction.md "Winner determination"):
// - x[i,b] binary for each bundle b of bid i that fits an empty round;
//   objective max sum limit_i * x[i,b] (limits divided by their greatest
//   common divisor, so the objective is integral and exact below 2^53);
// - XOR: sum_b x[i,b] <= 1;
// - a count request (n of `from` in >= k sites, `res` each): y[i,b,v] binary
//   for each node v of `from` that can hold `res` alone, sum_v y = n * x,
//   y <= x; with k >= 2, z[i,b,s] in [0,1] per site s, z <= sum_{v in s} y,
//   sum_s z >= k * x;
// - capacity: per node and resource (cpu, mem, disk, net_min), the items and
//   chosen count nodes' quantities <= capacity (rows divided by the capacity);
//   net_max is a per-request ceiling: requests above a node's are not columns.
// The caller checks every returned allocation exactly (CheckOutcome): the
// solver works in floating point.
//
// Thread safety: one WdpMip per thread; construction and Solve serialise on a
// process-wide mutex, because CBC 2.10 keeps some global state.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "auction/combinatorial.h"
#include "core/status.h"

namespace bourse::auction::internal {

inline constexpr uint32_t kNoBundle = UINT32_MAX;
inline constexpr uint32_t kNoBid = UINT32_MAX;

// One bid's part of an allocation.
struct Pick {
  uint32_t bundle = kNoBundle;
  std::vector<uint32_t> nodes;  // as Winner::nodes (count request: in `from` order)
};

struct WdpResult {
  std::vector<Pick> picks;  // one per bid; the best allocation found
  bool optimal = false;     // proven optimal (within CBC's integrality)
  // An upper bound on the welfare, in nano-credits, over the round without
  // the excluded bid (the best allocation's value when optimal).
  double bound_nanos = 0;
};

class WdpMip {
 public:
  explicit WdpMip(const Round& round);
  ~WdpMip();
  WdpMip(const WdpMip&) = delete;
  WdpMip& operator=(const WdpMip&) = delete;

  // Columns of the model (its size, for ClearOptions::max_solver_columns).
  size_t columns() const;

  // Upper bounds on the columns and nonzeros the model of `round` would have,
  // counted without building it (a round too large to model is never built:
  // its bids' bundles could otherwise take gigabytes).
  struct Size {
    size_t columns = 0;
    size_t nonzeros = 0;
  };
  static Size Estimate(const Round& round);

  // Maximises welfare without bid `excluded` (kNoBid: none), starting from
  // `start` (one Pick per bid, feasible; may be null), within `seconds`
  // (wall clock), of which the root LP may take at most `lp_seconds`. When
  // the root LP is not solved in time, the result is the start with an
  // infinite bound (and the rest of `seconds` is left to the caller).
  core::Result<WdpResult> Solve(uint32_t excluded, const std::vector<Pick>* start, double seconds,
                                double lp_seconds = HUGE_VAL);

 private:
  struct Model;
  std::unique_ptr<Model> m_;
};

}  // namespace bourse::auction::internal
