#include "ledger/internal/timeline.h"

#include <algorithm>

namespace bourse::ledger::internal {
namespace {

constexpr const char* kNames[4] = {"cpu_mcores", "mem_mib", "disk_mib", "net_min_kbps"};

}  // namespace

Timeline::Quad ToQuad(const core::ResourceVector& r) {
  return {r.cpu_mcores, r.mem_mib, r.disk_mib, r.net_min_kbps};
}

core::ResourceVector Timeline::Peak(const core::Interval& iv) const {
  Quad peak{0, 0, 0, 0};
  if (iv.Empty()) return {};
  auto it = steps_.upper_bound(iv.not_before);
  if (it != steps_.begin()) --it;
  for (; it != steps_.end() && it->first < iv.not_after; ++it) {
    for (int c = 0; c < 4; ++c) peak[c] = std::max(peak[c], it->second[c]);
  }
  return {.cpu_mcores = peak[0], .mem_mib = peak[1], .disk_mib = peak[2], .net_min_kbps = peak[3]};
}

std::optional<std::string> Timeline::CheckAdd(const core::Interval& iv,
                                              const core::ResourceVector& r,
                                              const core::ResourceVector& cap) const {
  Quad add = ToQuad(r), lim = ToQuad(cap);
  for (int c = 0; c < 4; ++c) {
    if (add[c] > lim[c]) {
      return std::string(kNames[c]) + " " + std::to_string(add[c]) + " alone exceeds " +
             std::to_string(lim[c]);
    }
  }
  if (iv.Empty()) return std::nullopt;
  auto it = steps_.upper_bound(iv.not_before);
  if (it != steps_.begin()) --it;
  for (; it != steps_.end() && it->first < iv.not_after; ++it) {
    for (int c = 0; c < 4; ++c) {
      if (it->second[c] + add[c] > lim[c]) {
        int64_t at = std::max(it->first, iv.not_before);
        return std::string(kNames[c]) + " would be " + std::to_string(it->second[c] + add[c]) +
               " > " + std::to_string(lim[c]) + " at t=" + std::to_string(at) + " (" +
               std::to_string(it->second[c]) + " already in use)";
      }
    }
  }
  return std::nullopt;
}

void Timeline::Apply(const core::Interval& iv, const Quad& q, int sign) {
  if (iv.Empty()) return;
  auto value_at = [&](int64_t t) -> Quad {
    auto it = steps_.upper_bound(t);
    if (it == steps_.begin()) return Quad{0, 0, 0, 0};
    return std::prev(it)->second;
  };
  // Breakpoints at both ends.
  if (!steps_.count(iv.not_after)) steps_.emplace(iv.not_after, value_at(iv.not_after));
  if (!steps_.count(iv.not_before)) steps_.emplace(iv.not_before, value_at(iv.not_before));
  auto first = steps_.find(iv.not_before);
  auto last = steps_.find(iv.not_after);
  for (auto it = first; it != last; ++it) {
    for (int c = 0; c < 4; ++c) it->second[c] += sign * q[c];
  }
  // Drop breakpoints that no longer change the value (keeps the map small).
  auto start = first == steps_.begin() ? first : std::prev(first);
  Quad prev_val{0, 0, 0, 0};
  if (start != steps_.begin()) prev_val = std::prev(start)->second;
  for (auto it = start; it != steps_.end();) {
    bool past = it->first > iv.not_after;
    if (it->second == prev_val) {
      it = steps_.erase(it);
    } else {
      prev_val = it->second;
      ++it;
    }
    if (past) break;
  }
}

void Timeline::Add(const core::Interval& iv, const core::ResourceVector& r) {
  Apply(iv, ToQuad(r), +1);
}

void Timeline::Remove(const core::Interval& iv, const core::ResourceVector& r) {
  Apply(iv, ToQuad(r), -1);
}

}  // namespace bourse::ledger::internal
