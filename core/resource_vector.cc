#include "core/resource_vector.h"

#include <algorithm>

namespace bourse::core {
namespace {

struct Field {
  const char* name;
  int64_t ResourceVector::*member;
};
constexpr Field kFields[] = {
    {"cpu_mcores", &ResourceVector::cpu_mcores},
    {"mem_mib", &ResourceVector::mem_mib},
    {"disk_mib", &ResourceVector::disk_mib},
    {"net_min_kbps", &ResourceVector::net_min_kbps},
    {"net_max_kbps", &ResourceVector::net_max_kbps},
};
constexpr int kQuantities = 4;  // the first four fields are summable

}  // namespace

Status ResourceVector::Validate() const {
  for (const Field& f : kFields) {
    if (this->*f.member < 0) {
      return InvalidArgument(std::string("resources: ") + f.name + " is negative (" +
                             std::to_string(this->*f.member) + ")");
    }
  }
  if (net_min_kbps > net_max_kbps) {
    return InvalidArgument("resources: net_min_kbps (" + std::to_string(net_min_kbps) +
                           ") exceeds net_max_kbps (" + std::to_string(net_max_kbps) + ")");
  }
  return Status::Ok();
}

bool ResourceVector::FitsWithin(const ResourceVector& limit) const {
  return QuantitiesFitWithin(limit) && net_max_kbps <= limit.net_max_kbps;
}

bool ResourceVector::QuantitiesFitWithin(const ResourceVector& limit) const {
  for (int i = 0; i < kQuantities; ++i) {
    if (this->*kFields[i].member > limit.*kFields[i].member) return false;
  }
  return true;
}

bool ResourceVector::IsZero() const { return *this == ResourceVector{}; }

Result<ResourceVector> ResourceVector::Plus(const ResourceVector& other) const {
  ResourceVector out = *this;
  for (int i = 0; i < kQuantities; ++i) {
    int64_t r;
    if (__builtin_add_overflow(this->*kFields[i].member, other.*kFields[i].member, &r)) {
      return InvalidArgument(std::string("resources: ") + kFields[i].name + " overflows");
    }
    out.*kFields[i].member = r;
  }
  out.net_max_kbps = std::max(net_max_kbps, other.net_max_kbps);
  return out;
}

Result<ResourceVector> ResourceVector::Minus(const ResourceVector& other) const {
  ResourceVector out = *this;
  for (int i = 0; i < kQuantities; ++i) {
    int64_t r;
    if (__builtin_sub_overflow(this->*kFields[i].member, other.*kFields[i].member, &r) ||
        r < 0) {
      return InvalidArgument(std::string("resources: ") + kFields[i].name +
                             " would go negative (" +
                             std::to_string(this->*kFields[i].member) + " - " +
                             std::to_string(other.*kFields[i].member) + ")");
    }
    out.*kFields[i].member = r;
  }
  return out;
}

Result<ResourceVector> ResourceVector::Times(int64_t n) const {
  if (n < 0) return InvalidArgument("resources: negative multiplier");
  ResourceVector out = *this;
  for (int i = 0; i < kQuantities; ++i) {
    int64_t r;
    if (__builtin_mul_overflow(this->*kFields[i].member, n, &r)) {
      return InvalidArgument(std::string("resources: ") + kFields[i].name + " overflows");
    }
    out.*kFields[i].member = r;
  }
  return out;
}

std::string ResourceVector::ToString() const {
  std::string out;
  for (const Field& f : kFields) {
    if (!out.empty()) out += ' ';
    out += f.name;
    out += '=';
    out += std::to_string(this->*f.member);
  }
  return out;
}

}  // namespace bourse::core
