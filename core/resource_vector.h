// ResourceVector: the capacity a node has or a ticket grants.
//
//   ResourceVector a{.cpu_mcores = 2000, .mem_mib = 4096, .disk_mib = 10240,
//                    .net_min_kbps = 1000, .net_max_kbps = 10000};
//   BOURSE_RETURN_IF_ERROR(a.Validate());
//   bool fits = child.FitsWithin(parent);          // component-wise <=
//   BOURSE_ASSIGN_OR_RETURN(ResourceVector left, parent.Minus(child));
//
// All components are non-negative integers; net_min_kbps <= net_max_kbps.
// net_max_kbps is a ceiling, not a quantity: it is compared (a child's ceiling
// is at most its parent's) but never summed or subtracted; Plus keeps the
// larger ceiling and Minus keeps the minuend's. The JSON codec is in
// core/json_codec.h so that pure components need no JSON.
//
// Thread safety: a value type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace bourse::core {

struct ResourceVector {
  int64_t cpu_mcores = 0;
  int64_t mem_mib = 0;
  int64_t disk_mib = 0;
  int64_t net_min_kbps = 0;
  int64_t net_max_kbps = 0;

  // Errors: invalid_argument naming the negative component, or net_min > net_max.
  Status Validate() const;

  // Component-wise <= on every component (ceilings included).
  bool FitsWithin(const ResourceVector& limit) const;
  // Component-wise <= on the summable quantities only (cpu, mem, disk, net_min).
  bool QuantitiesFitWithin(const ResourceVector& limit) const;
  bool IsZero() const;

  // Quantities added, ceiling = max. Errors: invalid_argument on overflow.
  Result<ResourceVector> Plus(const ResourceVector& other) const;
  // Quantities subtracted, ceiling kept. Errors: invalid_argument naming the
  // component that would go negative.
  Result<ResourceVector> Minus(const ResourceVector& other) const;
  // Every quantity times n. Errors: invalid_argument on overflow or n < 0.
  Result<ResourceVector> Times(int64_t n) const;

  // "cpu_mcores=2000 mem_mib=4096 disk_mib=0 net_min_kbps=0 net_max_kbps=0".
  std::string ToString() const;

  // DESIGN §8's text form, "cpu_mcores=500,mem_mib=512" (omitted names = 0; each value a
  // non-negative integer; the result must Validate()). Errors: invalid_argument naming the
  // unknown name, the bad value, or the Validate() failure.
  static Result<ResourceVector> Parse(std::string_view text);

  friend bool operator==(const ResourceVector&, const ResourceVector&) = default;
};

}  // namespace bourse::core
