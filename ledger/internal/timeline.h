// Timeline: the time-aware capacity rule shared by rcap splitting, the
// redemption book and the ledger auditor: usage of one ticket as a step
// function of time, checked against the ticket's quantities (cpu_mcores,
// mem_mib, disk_mib, net_min_kbps; net_max_kbps is a ceiling, never summed).
//
// Thread safety: a value type.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/interval.h"
#include "core/resource_vector.h"

namespace bourse::ledger::internal {

class Timeline {
 public:
  using Quad = std::array<int64_t, 4>;

  // Largest usage per quantity at any instant of `iv` (net_max_kbps = 0).
  core::ResourceVector Peak(const core::Interval& iv) const;
  // nullopt when adding `r` over `iv` keeps usage <= cap at every instant;
  // else a detail naming the component, the amounts and the first instant.
  std::optional<std::string> CheckAdd(const core::Interval& iv, const core::ResourceVector& r,
                                      const core::ResourceVector& cap) const;
  void Add(const core::Interval& iv, const core::ResourceVector& r);
  void Remove(const core::Interval& iv, const core::ResourceVector& r);
  bool empty() const { return steps_.empty(); }

 private:
  void Apply(const core::Interval& iv, const Quad& q, int sign);
  // Usage from key until the next key; the last key carries the usage after it.
  std::map<int64_t, Quad> steps_;
};

Timeline::Quad ToQuad(const core::ResourceVector& r);

}  // namespace bourse::ledger::internal
