// The prepared form of a combinatorial round that the greedy tier, the
// improvement search and the outcome check share: node capacities as 4-vectors
// (cpu, mem, disk, net_min), bundles aggregated per node, count requests with
// the nodes that can hold them, and best-fit placement on a residual.
//
//   Problem p(round);                        // round already validated
//   std::vector<Q> live = p.cap;
//   Choice c;
//   if (p.Place(p.bids[i].bundles[b], [&](uint32_t n) -> Q& { return live[n]; }, kNone, c)) ...
//
// Thread safety: a Problem has scratch state; one per thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "auction/combinatorial.h"
#include "core/money.h"
#include "core/resource_vector.h"

namespace bourse::auction::internal {

__extension__ typedef __int128 i128;

inline constexpr int kDims = 4;  // cpu_mcores, mem_mib, disk_mib, net_min_kbps
inline constexpr uint32_t kNone = UINT32_MAX;

struct Q {
  int64_t v[kDims];
};

inline Q ToQ(const core::ResourceVector& r) {
  return {{r.cpu_mcores, r.mem_mib, r.disk_mib, r.net_min_kbps}};
}

inline bool FitsQ(const Q& need, const Q& have) {
  for (int d = 0; d < kDims; ++d) {
    if (need.v[d] > have.v[d]) return false;
  }
  return true;
}
inline void SubQ(Q& have, const Q& need) {
  for (int d = 0; d < kDims; ++d) have.v[d] -= need.v[d];
}
inline void AddQ(Q& have, const Q& need) {
  for (int d = 0; d < kDims; ++d) have.v[d] += need.v[d];
}

struct Need {
  uint32_t node;
  Q q;
};

// A bundle prepared for solving.
struct PBundle {
  bool count = false;
  bool possible = true;     // fits an empty round at all
  std::vector<Need> needs;  // items aggregated per node, first-occurrence order
  uint32_t n = 0;
  uint32_t min_sites = 0;
  std::vector<uint32_t> from;  // only nodes whose ceiling and capacity allow res
  Q q{};
  double size = 0;
};

struct PBid {
  core::Money limit;
  i128 value = 0;  // limit in nano-credits
  double dvalue = 0;
  std::vector<PBundle> bundles;
};

// One allocation decision: a bundle and, for count requests, its nodes.
struct Choice {
  uint32_t bundle = kNone;
  std::vector<uint32_t> nodes;
};

class Problem {
 public:
  explicit Problem(const Round& r) : round(r) {
    const size_t nn = r.nodes.size();
    cap.resize(nn);
    inv_cap.resize(nn);
    ceil.resize(nn);
    site_of.resize(nn);
    std::vector<std::string> sites;
    for (size_t i = 0; i < nn; ++i) {
      cap[i] = ToQ(r.nodes[i].capacity);
      for (int d = 0; d < kDims; ++d) {
        inv_cap[i][d] = cap[i].v[d] > 0 ? 1.0 / static_cast<double>(cap[i].v[d]) : 0.0;
      }
      ceil[i] = r.nodes[i].capacity.net_max_kbps;
      auto it = std::find(sites.begin(), sites.end(), r.nodes[i].site);
      site_of[i] = static_cast<uint32_t>(it - sites.begin());
      if (it == sites.end()) sites.push_back(r.nodes[i].site);
    }
    site_stamp.assign(sites.size() + 1, 0);
    double cmax[kDims] = {0, 0, 0, 0};
    for (const Q& c : cap) {
      for (int d = 0; d < kDims; ++d) cmax[d] = std::max(cmax[d], static_cast<double>(c.v[d]));
    }
    auto norm = [&](const Q& q) {
      double s = 0;
      for (int d = 0; d < kDims; ++d) {
        if (cmax[d] > 0) s += static_cast<double>(q.v[d]) / cmax[d];
      }
      return s;
    };
    bids.resize(r.bids.size());
    for (size_t i = 0; i < r.bids.size(); ++i) {
      const RoundBid& rb = r.bids[i];
      PBid& pb = bids[i];
      pb.limit = rb.limit;
      pb.value = static_cast<i128>(rb.limit.nanos());
      pb.dvalue = rb.limit.nanos().convert_to<double>();
      for (const Bundle& b : rb.bundles) {
        PBundle p;
        if (b.is_count()) {
          has_count = true;
          p.count = true;
          p.n = static_cast<uint32_t>(b.count);
          p.min_sites = static_cast<uint32_t>(b.min_sites);
          p.q = ToQ(b.res);
          for (uint32_t node : b.from) {
            if (b.res.net_max_kbps <= ceil[node] && FitsQ(p.q, cap[node])) p.from.push_back(node);
          }
          p.size = norm(p.q) * static_cast<double>(b.count);
        } else {
          for (const BundleItem& it : b.items) {
            if (it.res.net_max_kbps > ceil[it.node]) p.possible = false;
            Q q = ToQ(it.res);
            auto found = std::find_if(p.needs.begin(), p.needs.end(),
                                      [&](const Need& x) { return x.node == it.node; });
            if (found == p.needs.end()) {
              p.needs.push_back({it.node, q});
            } else {
              for (int d = 0; d < kDims; ++d) {
                if (__builtin_add_overflow(found->q.v[d], q.v[d], &found->q.v[d])) {
                  p.possible = false;
                }
              }
            }
          }
          for (const Need& x : p.needs) p.size += norm(x.q);
        }
        p.size = std::max(p.size, 1e-12);
        pb.bundles.push_back(std::move(p));
      }
      for (PBundle& p : pb.bundles) {
        if (p.possible) p.possible = Fits(p, [&](uint32_t n) -> const Q& { return cap[n]; });
      }
    }
  }

  // Whether bundle b fits residual `res` (a callable node -> const Q&).
  template <class Res>
  bool Fits(const PBundle& b, Res&& res) {
    if (!b.possible) return false;
    if (!b.count) {
      for (const Need& x : b.needs) {
        if (!FitsQ(x.q, res(x.node))) return false;
      }
      return true;
    }
    return PlaceCount(b, res, kNone, nullptr);
  }

  // What is left of node's residual r after q, as a sum of shares of its
  // capacity: the best-fit order of count placement.
  double Slack(uint32_t node, const Q& r, const Q& q) const {
    double slack = 0;
    for (int d = 0; d < kDims; ++d) {
      slack += static_cast<double>(r.v[d] - q.v[d]) * inv_cap[node][d];
    }
    return slack;
  }

  // Places a count request: picks `n` distinct nodes of `from` that fit, at
  // least min_sites sites, best fit first (least spare capacity after the
  // request, then node index). `blocked` is a node not to use. With out ==
  // nullptr it only answers whether a placement exists.
  template <class Res>
  bool PlaceCount(const PBundle& b, Res&& res, uint32_t blocked, std::vector<uint32_t>* out) {
    ++stamp;
    uint32_t feasible = 0, sites = 0;
    cand.clear();
    for (uint32_t node : b.from) {
      if (node == blocked || !FitsQ(b.q, res(node))) continue;
      ++feasible;
      if (site_stamp[site_of[node]] != stamp) {
        site_stamp[site_of[node]] = stamp;
        ++sites;
      }
      if (!out && feasible >= b.n && sites >= b.min_sites) return true;
      if (out) {
        cand.push_back({Slack(node, res(node), b.q), node});
      }
    }
    if (feasible < b.n || sites < b.min_sites) return false;
    if (!out) return true;
    // The candidates in best-fit order, taken lazily from a heap: a request
    // needs a handful of the up to 1,000 nodes of its `from`.
    const auto later = std::greater<>();
    std::make_heap(cand.begin(), cand.end(), later);
    auto end = cand.end();
    return SelectCount(
        b,
        [&] {
          if (end == cand.begin()) return kNone;
          std::pop_heap(cand.begin(), end, later);
          return (--end)->second;
        },
        out);
  }

  // The nodes of count request b that fit `res`, in best-fit order (the
  // order PlaceCount takes them in).
  template <class Res>
  void Candidates(const PBundle& b, Res&& res, std::vector<std::pair<double, uint32_t>>* out) {
    out->clear();
    for (uint32_t node : b.from) {
      const Q& r = res(node);
      if (FitsQ(b.q, r)) out->push_back({Slack(node, r, b.q), node});
    }
    std::sort(out->begin(), out->end());
  }

  // Count request b's placement from the nodes that fit, which next() yields
  // in best-fit order (kNone when there are no more): the best node of each
  // site until min_sites sites are covered, then the best of the rest (those
  // passed over first, then next()'s order). False if they do not suffice.
  template <class Next>
  bool SelectCount(const PBundle& b, Next&& next, std::vector<uint32_t>* out) {
    out->clear();
    skipped.clear();
    ++stamp;
    for (uint32_t covered = 0; covered < b.min_sites;) {
      const uint32_t node = next();
      if (node == kNone) return false;
      if (site_stamp[site_of[node]] == stamp) {
        skipped.push_back(node);
        continue;
      }
      site_stamp[site_of[node]] = stamp;
      ++covered;
      out->push_back(node);
    }
    for (size_t k = 0; k < skipped.size() && out->size() < b.n; ++k) out->push_back(skipped[k]);
    while (out->size() < b.n) {
      const uint32_t node = next();
      if (node == kNone) return false;
      out->push_back(node);
    }
    return true;
  }

  // Places bundle b on `res` (mutable vector-like) and fills choice.nodes.
  // Returns false (and changes nothing) when it does not fit.
  template <class ResMut>
  bool Place(const PBundle& b, ResMut&& res, uint32_t blocked, Choice& choice) {
    if (!b.possible) return false;
    if (b.count) {
      if (!PlaceCount(
              b, [&](uint32_t n) -> const Q& { return res(n); }, blocked, &choice.nodes)) {
        return false;
      }
      for (uint32_t n : choice.nodes) SubQ(res(n), b.q);
      return true;
    }
    for (const Need& x : b.needs) {
      if (x.node == blocked || !FitsQ(x.q, res(x.node))) return false;
    }
    choice.nodes.clear();
    for (const Need& x : b.needs) {
      SubQ(res(x.node), x.q);
      choice.nodes.push_back(x.node);
    }
    return true;
  }

  template <class ResMut>
  void Unplace(const PBundle& b, ResMut&& res, const Choice& choice) {
    if (b.count) {
      for (uint32_t n : choice.nodes) AddQ(res(n), b.q);
    } else {
      for (const Need& x : b.needs) AddQ(res(x.node), x.q);
    }
  }

  const Round& round;
  std::vector<PBid> bids;
  std::vector<Q> cap;
  std::vector<std::array<double, kDims>> inv_cap;  // 1 / cap, 0 where cap is 0
  std::vector<int64_t> ceil;
  std::vector<uint32_t> site_of;
  bool has_count = false;
  // Scratch.
  std::vector<uint32_t> site_stamp;
  uint32_t stamp = 0;
  std::vector<std::pair<double, uint32_t>> cand;
  std::vector<uint32_t> skipped;
};

}  // namespace bourse::auction::internal
