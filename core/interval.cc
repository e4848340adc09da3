#include "core/interval.h"

namespace bourse::core {

Status Interval::Validate() const {
  if (not_before < 0) return InvalidArgument("interval: not_before is negative");
  if (not_after <= not_before) {
    return InvalidArgument("interval: not_after (" + std::to_string(not_after) +
                           ") must be after not_before (" + std::to_string(not_before) + ")");
  }
  return Status::Ok();
}

std::string Interval::ToString() const {
  return "[" + std::to_string(not_before) + ", " + std::to_string(not_after) + ")";
}

}  // namespace bourse::core
