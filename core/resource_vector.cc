#include "core/resource_vector.h"

#include <algorithm>
#include <charconv>

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

Result<ResourceVector> ResourceVector::Parse(std::string_view text) {
  if (text.empty()) return InvalidArgument("empty; write e.g. cpu_mcores=500,mem_mib=512");
  ResourceVector rv;
  for (;;) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    size_t eq = item.find('=');
    std::string name(item.substr(0, eq));
    const Field* field = nullptr;
    for (const Field& f : kFields) {
      if (name == f.name) field = &f;
    }
    if (field == nullptr) {
      return InvalidArgument("unknown resource \"" + name +
                             "\" (known: cpu_mcores, mem_mib, disk_mib, net_min_kbps, "
                             "net_max_kbps)");
    }
    std::string_view digits = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    int64_t v = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || digits.front() == '-' || ec != std::errc() ||
        p != digits.data() + digits.size()) {
      return InvalidArgument(name + ": \"" + std::string(item) +
                             "\" needs a non-negative integer value");
    }
    rv.*field->member = v;
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  BOURSE_RETURN_IF_ERROR(rv.Validate());
  return rv;
}

}  // namespace bourse::core
