// Interval: the half-open time span [not_before, not_after) in Unix seconds.
//
//   Interval week{.not_before = t0, .not_after = t0 + 7 * 86400};
//   week.Contains(now);  week.Overlaps(other);  other.IsSubsetOf(week);
//
// Thread safety: a value type.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace bourse::core {

struct Interval {
  int64_t not_before = 0;
  int64_t not_after = 0;

  // Errors: invalid_argument unless not_before < not_after and both >= 0.
  Status Validate() const;
  bool Empty() const { return not_after <= not_before; }
  // not_before <= t < not_after.
  bool Contains(int64_t t) const { return not_before <= t && t < not_after; }
  // Some instant lies in both (empty intervals overlap nothing).
  bool Overlaps(const Interval& o) const {
    return !Empty() && !o.Empty() && not_before < o.not_after && o.not_before < not_after;
  }
  // Every instant of *this lies in `outer` (an empty interval is a subset of anything).
  bool IsSubsetOf(const Interval& outer) const {
    return Empty() || (outer.not_before <= not_before && not_after <= outer.not_after);
  }
  int64_t Seconds() const { return Empty() ? 0 : not_after - not_before; }
  std::string ToString() const;

  friend bool operator==(const Interval&, const Interval&) = default;
};

}  // namespace bourse::core
