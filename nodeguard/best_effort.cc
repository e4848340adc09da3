#include "nodeguard/best_effort.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace bourse::nodeguard {

using nlohmann::json;

namespace {

constexpr int64_t kMaxShare = 10000;
constexpr int64_t kMaxMib = int64_t{1} << 40;

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
  for (char c : n) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

// e[key] as an integer in [min, max], else an error naming it.
std::string IntField(const json& e, const std::string& f, const char* key, int64_t min, int64_t max,
                     int64_t* out) {
  if (!e.contains(key) || !e[key].is_number_integer()) {
    return f + "." + key + ": missing or not an integer";
  }
  int64_t v = e[key].get<int64_t>();
  if (v < min || v > max) {
    return f + "." + key + ": " + std::to_string(v) + " outside [" + std::to_string(min) + ", " +
           std::to_string(max) + "]";
  }
  *out = v;
  return "";
}

}  // namespace

BestEffortParse ParseBestEffort(const json& slices) {
  BestEffortParse p;
  if (slices.is_null()) return p;
  if (!slices.is_array()) {
    p.errors.push_back("slices: not an array");
    return p;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < slices.size(); ++i) {
    const json& e = slices[i];
    std::string f = "slices[" + std::to_string(i) + "]";
    if (!e.is_object()) {
      p.errors.push_back(f + ": not an object");
      continue;
    }
    BestEffortSlice s;
    if (!e.contains("slice") || !e["slice"].is_string() ||
        !ValidName(e["slice"].get<std::string>())) {
      p.errors.push_back(f + ".slice: not 1..64 chars of [A-Za-z0-9_.-]");
      continue;
    }
    s.slice = e["slice"].get<std::string>();
    std::string err = IntField(e, f, "expires", 0, int64_t{1} << 53, &s.expires);
    if (err.empty()) err = IntField(e, f, "share", 1, kMaxShare, &s.share);
    if (err.empty()) err = IntField(e, f, "disk_mib", 0, kMaxMib, &s.disk_mib);
    if (err.empty()) err = IntField(e, f, "mem_mib", 0, kMaxMib, &s.mem_mib);
    if (err.empty() && e.contains("boot_script")) {
      if (!e["boot_script"].is_string()) {
        err = f + ".boot_script: not a string";
      } else {
        s.boot_script = e["boot_script"].get<std::string>();
      }
    }
    if (!err.empty()) {
      p.errors.push_back(err);
      continue;
    }
    if (!seen.insert(s.slice).second) {
      p.errors.push_back(f + ".slice: " + s.slice + " listed twice");
      continue;
    }
    p.slices.push_back(std::move(s));
  }
  std::sort(p.slices.begin(), p.slices.end(),
            [](const BestEffortSlice& a, const BestEffortSlice& b) { return a.slice < b.slice; });
  return p;
}

json BestEffortToJson(const std::vector<BestEffortSlice>& slices) {
  json out = json::array();
  for (const BestEffortSlice& s : slices) {
    out.push_back({{"slice", s.slice},
                   {"expires", s.expires},
                   {"boot_script", s.boot_script},
                   {"share", s.share},
                   {"disk_mib", s.disk_mib},
                   {"mem_mib", s.mem_mib}});
  }
  return out;
}

std::map<std::string, BestEffortGrant> ApplyBestEffort(const std::vector<BestEffortSlice>& slices,
                                                       const BestEffortPools& pools, int64_t now_s,
                                                       std::vector<SliverSpec>* desired) {
  std::map<std::string, const BestEffortSlice*> live;
  for (const BestEffortSlice& s : slices) {
    if (now_s < s.expires) live[s.slice] = &s;
  }
  int64_t cpu_used = 0, link_used = 0, total_share = 0;
  for (const SliverSpec& d : *desired) {
    cpu_used += d.res.cpu_mcores;
    link_used += d.res.net_min_kbps;
    auto it = live.find(d.name);
    if (it != live.end()) total_share += it->second->share;
  }
  std::map<std::string, BestEffortGrant> grants;
  if (total_share == 0) return grants;
  int64_t cpu_spare = std::max<int64_t>(0, pools.cpu_mcores - cpu_used);
  int64_t link_spare =
      pools.link_kbps == 0
          ? 0
          : std::max<int64_t>(0, pools.link_kbps - pools.default_min_kbps - link_used);
  for (SliverSpec& d : *desired) {
    auto it = live.find(d.name);
    if (it == live.end()) continue;
    const BestEffortSlice& s = *it->second;
    BestEffortGrant g;
    g.share = s.share;
    // Products stay far below 2^63: spare ≤ 2^40-ish mcores or kbps, share ≤ 10^4.
    g.cpu_mcores = cpu_spare * s.share / total_share;
    g.net_rate_kbps = link_spare * s.share / total_share;
    g.disk_mib = s.disk_mib;
    g.mem_mib = s.mem_mib;
    d.res.cpu_mcores += g.cpu_mcores;
    d.res.net_min_kbps += g.net_rate_kbps;
    d.res.net_max_kbps = std::max({d.res.net_max_kbps, d.res.net_min_kbps, pools.link_kbps});
    d.res.disk_mib += g.disk_mib;
    d.res.mem_mib += g.mem_mib;
    grants[d.name] = g;
  }
  return grants;
}

}  // namespace bourse::nodeguard
