#include "tests/auction/cats_generator.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "core/money.h"
#include "core/random.h"
#include "core/resource_vector.h"

namespace bourse::auction::testkit {
namespace {

using core::Money;
using core::ResourceVector;

constexpr int kMaxItemsBundle = 6;
constexpr int kArbitraryCandidates = 64;
// round(n^0.2 * 1000): the complementarity of a bundle of n nodes.
constexpr std::array<int64_t, 13> kComplement = {0,    1000, 1149, 1246, 1320, 1380, 1431,
                                                 1476, 1516, 1552, 1585, 1615, 1644};

// Node classes: small, large, slow-link (low net_max ceiling).
constexpr std::array<ResourceVector, 3> kClasses = {{
    {.cpu_mcores = 4000,
     .mem_mib = 8192,
     .disk_mib = 200'000,
     .net_min_kbps = 100'000,
     .net_max_kbps = 1'000'000},
    {.cpu_mcores = 8000,
     .mem_mib = 32768,
     .disk_mib = 500'000,
     .net_min_kbps = 200'000,
     .net_max_kbps = 1'000'000},
    {.cpu_mcores = 2000,
     .mem_mib = 4096,
     .disk_mib = 100'000,
     .net_min_kbps = 50'000,
     .net_max_kbps = 100'000},
}};

enum class Kind { kRegions, kArbitrary, kCount };

class Generator {
 public:
  explicit Generator(const CatsParams& p) : p_(p), rng_(p.seed) {}

  Round Run() {
    MakeNodes();
    for (int b = 0; b < p_.bids; ++b) round_.bids.push_back(MakeBid(b));
    return std::move(round_);
  }

 private:
  uint64_t U(uint64_t bound) { return rng_.Uniform(bound); }
  // True with probability num / den.
  bool Chance(uint64_t num, uint64_t den) { return U(den) < num; }
  uint32_t n() const { return static_cast<uint32_t>(p_.nodes); }

  void MakeNodes() {
    const uint32_t width = Width();
    adj_.assign(n(), {});
    for (uint32_t v = 0; v < n(); ++v) {
      const ResourceVector& cap = kClasses[U(kClasses.size())];
      round_.nodes.push_back({"n" + std::to_string(v),
                              "s" + std::to_string(v / static_cast<uint32_t>(p_.nodes_per_site)),
                              cap});
      common_.push_back(1000 + static_cast<int64_t>(U(99'001)));  // milli-credits
      const uint32_t x = v % width;
      if (x + 1 < width && v + 1 < n()) Link(v, v + 1);
      if (v + width < n()) Link(v, v + width);
    }
    for (uint32_t v = 0; v < n(); ++v) {
      if (n() > 1 && Chance(1, 5)) Link(v, static_cast<uint32_t>(U(n())));
    }
  }
  uint32_t Width() const {
    uint32_t w = 1;
    while (w * w < n()) ++w;
    return w;
  }
  void Link(uint32_t a, uint32_t b) {
    if (a == b) return;
    if (std::find(adj_[a].begin(), adj_[a].end(), b) != adj_[a].end()) return;
    adj_[a].push_back(b);
    adj_[b].push_back(a);
  }
  // Symmetric random affinity of two nodes in [1, 1000] (CATS' edge weights
  // of the arbitrary distribution), derived from the seed without storage.
  int64_t Affinity(uint32_t a, uint32_t b) const {
    if (a > b) std::swap(a, b);
    uint64_t z = p_.seed ^ (static_cast<uint64_t>(a) << 32 | b);
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return 1 + static_cast<int64_t>(z % 1000);
  }

  Kind DrawKind() {
    const CatsMix& m = p_.mix;
    uint64_t r = U(static_cast<uint64_t>(m.regions + m.arbitrary + m.count));
    if (r < static_cast<uint64_t>(m.regions)) return Kind::kRegions;
    if (r < static_cast<uint64_t>(m.regions + m.arbitrary)) return Kind::kArbitrary;
    return Kind::kCount;
  }

  // A task shape: what the bid asks of every node of its bundle.
  ResourceVector DrawTask() {
    static constexpr int64_t kCpu[] = {250, 500, 1000, 1000, 2000};
    static constexpr int64_t kMem[] = {512, 1024, 2048, 4096};
    static constexpr int64_t kDisk[] = {0, 10'000, 50'000};
    static constexpr int64_t kNetMin[] = {0, 10'000, 50'000};
    ResourceVector t;
    t.cpu_mcores = kCpu[U(std::size(kCpu))];
    t.mem_mib = kMem[U(std::size(kMem))];
    t.disk_mib = kDisk[U(std::size(kDisk))];
    t.net_min_kbps = kNetMin[U(std::size(kNetMin))];
    const int64_t ceilings[] = {t.net_min_kbps, 100'000, 500'000};
    t.net_max_kbps = std::max(t.net_min_kbps, ceilings[U(3)]);
    return t;
  }
  // The task's share of a small node, in millionths (mean over the four
  // summable quantities).
  static int64_t ShareMillionths(const ResourceVector& t) {
    const ResourceVector& s = kClasses[0];
    return (t.cpu_mcores * 1'000'000 / s.cpu_mcores + t.mem_mib * 1'000'000 / s.mem_mib +
            t.disk_mib * 1'000'000 / s.disk_mib + t.net_min_kbps * 1'000'000 / s.net_min_kbps) /
           4;
  }

  // The bidder's value of one unit of `v` (common + private), milli-credits.
  int64_t NodeValue(uint32_t v) {
    auto it = private_.find(v);
    if (it == private_.end()) {
      const int64_t c = common_[v];
      it = private_.emplace(v, static_cast<int64_t>(U(static_cast<uint64_t>(c) + 1)) - c / 2).first;
    }
    return common_[v] + it->second;
  }

  // Grows a set of `size` nodes (at most) from a random start: to grid
  // neighbours (regions) or by affinity (arbitrary).
  std::vector<uint32_t> Grow(Kind kind, size_t size) {
    std::vector<uint32_t> set = {static_cast<uint32_t>(U(n()))};
    while (set.size() < size) {
      uint32_t next = kind == Kind::kArbitrary ? ByAffinity(set) : Neighbour(set);
      if (next == UINT32_MAX) break;
      set.push_back(next);
    }
    return set;
  }
  uint32_t Neighbour(const std::vector<uint32_t>& set) {
    for (int tries = 0; tries < 8; ++tries) {
      const std::vector<uint32_t>& a = adj_[set[U(set.size())]];
      if (a.empty()) continue;
      uint32_t v = a[U(a.size())];
      if (std::find(set.begin(), set.end(), v) == set.end()) return v;
    }
    return UINT32_MAX;
  }
  uint32_t ByAffinity(const std::vector<uint32_t>& set) {
    std::vector<uint32_t> cand;
    if (n() <= kArbitraryCandidates) {
      for (uint32_t v = 0; v < n(); ++v) cand.push_back(v);
    } else {
      for (int k = 0; k < kArbitraryCandidates; ++k) cand.push_back(static_cast<uint32_t>(U(n())));
    }
    std::vector<std::pair<uint32_t, int64_t>> w;
    int64_t total = 0;
    for (uint32_t v : cand) {
      if (std::find(set.begin(), set.end(), v) != set.end()) continue;
      int64_t a = 0;
      for (uint32_t s : set) a += Affinity(s, v);
      w.push_back({v, a});
      total += a;
    }
    if (total == 0) return UINT32_MAX;
    int64_t r = static_cast<int64_t>(U(static_cast<uint64_t>(total)));
    for (auto [v, a] : w) {
      if (r < a) return v;
      r -= a;
    }
    return w.back().first;
  }

  // An items bundle of `kind` (regions or arbitrary) and its value, nanos.
  std::pair<Bundle, int64_t> Items(Kind kind, size_t size, const ResourceVector& task) {
    Bundle b;
    int64_t value = 0;
    const std::vector<uint32_t> nodes = Grow(kind, size);
    const int64_t share = ShareMillionths(task);
    for (uint32_t v : nodes) {
      b.items.push_back({v, task});
      value += NodeValue(v) * share;
      if (Chance(1, 10)) {  // the same node twice: quantities add up
        b.items.push_back({v, task});
        value += NodeValue(v) * share;
      }
    }
    return {b, value * kComplement[nodes.size()] / 1000};
  }

  std::pair<Bundle, int64_t> Count(const ResourceVector& task) {
    Bundle b;
    b.count = std::min<int64_t>(1 + static_cast<int64_t>(U(4)), n());
    const size_t from_size =
        std::min<size_t>(n(), static_cast<size_t>(b.count) + static_cast<size_t>(U(8)));
    b.from = Grow(Chance(1, 2) ? Kind::kRegions : Kind::kArbitrary, from_size);
    if (static_cast<int64_t>(b.from.size()) < b.count) {  // growth stuck: top up
      for (uint32_t v = 0; static_cast<int64_t>(b.from.size()) < b.count; ++v) {
        if (std::find(b.from.begin(), b.from.end(), v) == b.from.end()) b.from.push_back(v);
      }
    }
    std::set<std::string> sites;
    int64_t sum = 0;
    for (uint32_t v : b.from) {
      sites.insert(round_.nodes[v].site);
      sum += NodeValue(v);
    }
    const int64_t spread = std::min<int64_t>(b.count, static_cast<int64_t>(sites.size()));
    b.min_sites = Chance(1, 20) ? b.count : std::min<int64_t>(spread, U(4));
    b.res = task;
    const int64_t mean = sum / static_cast<int64_t>(b.from.size());
    int64_t value = mean * ShareMillionths(task) * b.count * kComplement[b.count] / 1000;
    value += value / 10 * b.min_sites;
    return {b, value};
  }

  std::pair<Bundle, int64_t> MakeBundle(Kind kind, size_t size, const ResourceVector& task) {
    return kind == Kind::kCount ? Count(task) : Items(kind, size, task);
  }

  // The same nodes asked the same way (the task is the bid's).
  static bool Same(const Bundle& a, const Bundle& b) {
    auto nodes = [](const Bundle& u) {
      std::vector<uint32_t> v = u.from;
      for (const BundleItem& it : u.items) v.push_back(it.node);
      std::sort(v.begin(), v.end());
      return v;
    };
    return a.count == b.count && a.min_sites == b.min_sites && nodes(a) == nodes(b);
  }

  RoundBid MakeBid(int index) {
    private_.clear();
    RoundBid bid;
    bid.id = "b" + std::to_string(index);
    bid.bidder = "u" + std::to_string(index);
    const Kind kind = DrawKind();
    const ResourceVector task = DrawTask();
    size_t size = 1;
    while (static_cast<int>(size) < kMaxItemsBundle && Chance(3, 5)) ++size;
    auto [first, value] = MakeBundle(kind, size, task);
    bid.bundles.push_back(std::move(first));
    const uint64_t r = U(10);
    const int alternatives = r < 5 ? 0 : r < 8 ? 1 : 2;
    for (int a = 0; a < alternatives; ++a) {
      for (int tries = 0; tries < 5; ++tries) {
        const Kind k = kind == Kind::kCount && Chance(3, 10) ? Kind::kRegions : kind;
        // Not a structured binding: clang 14 cannot capture one in a lambda.
        auto made = MakeBundle(k, size, task);
        Bundle& alt = made.first;
        const auto v = made.second;
        const bool repeated = std::any_of(bid.bundles.begin(), bid.bundles.end(),
                                          [&](const Bundle& b) { return Same(b, alt); });
        if (!repeated && v * 4 >= value * 3 && v * 4 <= value * 5) {
          bid.bundles.push_back(std::move(alt));
          break;
        }
      }
    }
    bid.limit = Money::FromNanos(std::max<int64_t>(1, value));
    return bid;
  }

  const CatsParams& p_;
  core::DeterministicRandom rng_;
  Round round_;
  std::vector<std::vector<uint32_t>> adj_;
  std::vector<int64_t> common_;
  std::map<uint32_t, int64_t> private_;  // this bid's deviations, by node
};

}  // namespace

core::Result<Round> GenerateCatsRound(const CatsParams& params) {
  if (params.bids < 0) return core::InvalidArgument("cats: bids must be >= 0");
  if (params.nodes < 1) return core::InvalidArgument("cats: nodes must be >= 1");
  if (params.nodes_per_site < 1) return core::InvalidArgument("cats: nodes_per_site must be >= 1");
  const CatsMix& m = params.mix;
  if (m.regions < 0 || m.arbitrary < 0 || m.count < 0 || m.regions + m.arbitrary + m.count == 0) {
    return core::InvalidArgument("cats: mix weights must be >= 0 and not all 0");
  }
  return Generator(params).Run();
}

CatsParams TinyCatsParams(uint64_t seed, int max_bids) {
  static constexpr CatsMix kMixes[] = {{1, 1, 1}, {1, 0, 2}, {0, 1, 1}, {1, 0, 0}};
  return {.bids = 1 + static_cast<int>(seed * 7 % static_cast<uint64_t>(std::max(max_bids, 1))),
          .nodes = 1 + static_cast<int>(seed / 3 % 5),
          .nodes_per_site = 1 + static_cast<int>(seed % 3),
          .seed = seed,
          .mix = kMixes[seed / 15 % 4]};
}

std::string DescribeRound(const Round& round) {
  std::ostringstream o;
  for (const RoundNode& v : round.nodes) {
    o << "node " << v.id << " site " << v.site << " " << v.capacity.ToString() << "\n";
  }
  for (const RoundBid& b : round.bids) {
    o << "bid " << b.id << " bidder " << b.bidder << " limit " << b.limit.ToString() << "\n";
    for (const Bundle& u : b.bundles) {
      if (u.is_count()) {
        o << "  count " << u.count << " of {";
        for (size_t k = 0; k < u.from.size(); ++k) o << (k ? "," : "") << u.from[k];
        o << "} in >= " << u.min_sites << " sites, each " << u.res.ToString() << "\n";
      } else {
        o << "  items";
        for (const BundleItem& it : u.items)
          o << " [" << it.node << ": " << it.res.ToString() << "]";
        o << "\n";
      }
    }
  }
  return o.str();
}

}  // namespace bourse::auction::testkit
