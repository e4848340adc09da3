#include "tests/auction/exhaustive.h"

#include <algorithm>
#include <array>
#include <bit>
#include <boost/multiprecision/cpp_int.hpp>
#include <set>
#include <string>

namespace bourse::auction::testkit {
namespace {

using boost::multiprecision::int256_t;
using core::Money;
using core::ResourceVector;
using core::Result;

__extension__ typedef __int128 i128;

constexpr int kDims = 4;  // cpu_mcores, mem_mib, disk_mib, net_min_kbps

std::array<int64_t, kDims> Quantities(const ResourceVector& r) {
  return {r.cpu_mcores, r.mem_mib, r.disk_mib, r.net_min_kbps};
}

// One way a bid can win: a bundle and the nodes it occupies, with the
// quantities it takes from each.
struct Option {
  uint32_t bundle = 0;
  std::vector<uint32_t> nodes;  // as Winner::nodes
  std::vector<std::pair<uint32_t, std::array<i128, kDims>>> use;
};

class Search {
 public:
  Search(const Round& r, uint32_t excluded) : r_(r) {
    for (uint32_t i = 0; i < r.bids.size(); ++i) {
      if (i != excluded) order_.push_back(i);
    }
    std::stable_sort(order_.begin(), order_.end(),
                     [&](uint32_t a, uint32_t b) { return r.bids[a].limit > r.bids[b].limit; });
    options_.resize(r.bids.size());
    for (uint32_t i : order_) options_[i] = OptionsOf(r.bids[i]);
    suffix_.assign(order_.size() + 1, 0);
    for (size_t k = order_.size(); k-- > 0;) suffix_[k] = suffix_[k + 1] + Limit(order_[k]);
    used_.assign(r.nodes.size(), {0, 0, 0, 0});
    choice_.assign(r.bids.size(), nullptr);
  }

  ExhaustiveOptimum Run() {
    Go(0, 0);
    ExhaustiveOptimum out;
    out.allocation.winners = best_winners_;
    return out;
  }
  const int256_t& best() const { return best_; }

 private:
  int256_t Limit(uint32_t i) const { return int256_t(r_.bids[i].limit.nanos()); }

  // The node's net_max ceiling admits `res`.
  bool Fits(uint32_t node, const ResourceVector& res) const {
    return res.net_max_kbps <= r_.nodes[node].capacity.net_max_kbps;
  }

  std::vector<Option> OptionsOf(const RoundBid& bid) const {
    std::vector<Option> out;
    for (uint32_t b = 0; b < bid.bundles.size(); ++b) {
      const Bundle& u = bid.bundles[b];
      if (u.is_count()) {
        CountOptions(b, u, &out);
        continue;
      }
      Option o{.bundle = b, .nodes = {}, .use = {}};
      bool ok = true;
      for (const BundleItem& it : u.items) {
        ok &= Fits(it.node, it.res);
        auto q = Quantities(it.res);
        auto at = std::find_if(o.use.begin(), o.use.end(),
                               [&](const auto& e) { return e.first == it.node; });
        if (at == o.use.end()) {
          o.nodes.push_back(it.node);
          o.use.push_back({it.node, {0, 0, 0, 0}});
          at = o.use.end() - 1;
        }
        for (int d = 0; d < kDims; ++d) at->second[d] += q[d];
      }
      if (ok && FitsAlone(o)) out.push_back(std::move(o));
    }
    return out;
  }

  void CountOptions(uint32_t b, const Bundle& u, std::vector<Option>* out) const {
    const size_t m = u.from.size();  // <= 5 distinct nodes
    auto q = Quantities(u.res);
    for (uint32_t mask = 0; mask < (1u << m); ++mask) {
      if (std::popcount(mask) != u.count) continue;
      Option o{.bundle = b, .nodes = {}, .use = {}};
      std::set<std::string> sites;
      bool ok = true;
      for (size_t k = 0; k < m; ++k) {
        if (!(mask >> k & 1)) continue;
        const uint32_t v = u.from[k];
        ok &= Fits(v, u.res);
        sites.insert(r_.nodes[v].site);
        o.nodes.push_back(v);
        o.use.push_back({v, {q[0], q[1], q[2], q[3]}});
      }
      if (ok && static_cast<int64_t>(sites.size()) >= u.min_sites && FitsAlone(o)) {
        out->push_back(std::move(o));
      }
    }
  }

  bool FitsAlone(const Option& o) const {
    for (const auto& [v, q] : o.use) {
      auto cap = Quantities(r_.nodes[v].capacity);
      for (int d = 0; d < kDims; ++d) {
        if (q[d] > cap[d]) return false;
      }
    }
    return true;
  }

  bool Take(const Option& o) {
    for (const auto& [v, q] : o.use) {
      auto cap = Quantities(r_.nodes[v].capacity);
      for (int d = 0; d < kDims; ++d) {
        if (used_[v][d] + q[d] > cap[d]) return false;
      }
    }
    for (const auto& [v, q] : o.use) {
      for (int d = 0; d < kDims; ++d) used_[v][d] += q[d];
    }
    return true;
  }
  void Release(const Option& o) {
    for (const auto& [v, q] : o.use) {
      for (int d = 0; d < kDims; ++d) used_[v][d] -= q[d];
    }
  }

  void Go(size_t k, const int256_t& welfare) {
    if (welfare > best_) {
      best_ = welfare;
      Record();
    }
    if (k == order_.size() || welfare + suffix_[k] <= best_) return;
    const uint32_t i = order_[k];
    for (const Option& o : options_[i]) {
      if (!Take(o)) continue;
      choice_[i] = &o;
      Go(k + 1, welfare + Limit(i));
      choice_[i] = nullptr;
      Release(o);
    }
    Go(k + 1, welfare);
  }

  void Record() {
    best_winners_.clear();
    for (uint32_t i = 0; i < r_.bids.size(); ++i) {
      if (choice_[i]) best_winners_.push_back({i, choice_[i]->bundle, choice_[i]->nodes, Money()});
    }
  }

  const Round& r_;
  std::vector<uint32_t> order_;
  std::vector<std::vector<Option>> options_;  // by bid
  std::vector<int256_t> suffix_;              // limits of order_[k..]
  std::vector<std::array<i128, kDims>> used_;
  std::vector<const Option*> choice_;  // by bid; null: nothing
  int256_t best_ = 0;
  std::vector<Winner> best_winners_;
};

Result<Money> ToMoney(const int256_t& v, const char* what) {
  if (abs(v) > int256_t(Money::MaxNanos())) {
    return core::InvalidArgument(std::string("exhaustive: ") + what + " exceeds Money's range");
  }
  return Money::FromRep(Money::Rep(v));
}

core::Status CheckSize(const Round& round) {
  if (round.bids.size() > kExhaustiveMaxBids) {
    return core::InvalidArgument("exhaustive: " + std::to_string(round.bids.size()) +
                                 " bids, at most 12");
  }
  if (round.nodes.size() > kExhaustiveMaxNodes) {
    return core::InvalidArgument("exhaustive: " + std::to_string(round.nodes.size()) +
                                 " nodes, at most 5");
  }
  return ValidateRound(round);
}

}  // namespace

Result<ExhaustiveOptimum> ExhaustiveSolve(const Round& round, uint32_t excluded) {
  BOURSE_RETURN_IF_ERROR(CheckSize(round));
  Search s(round, excluded);
  ExhaustiveOptimum out = s.Run();
  BOURSE_ASSIGN_OR_RETURN(out.welfare, ToMoney(s.best(), "the optimum"));
  out.allocation.welfare = out.welfare;
  return out;
}

Result<std::vector<Money>> ExhaustiveVcgPayments(const Round& round, const RoundOutcome& outcome) {
  BOURSE_RETURN_IF_ERROR(CheckSize(round));
  int256_t welfare = 0;
  for (const Winner& w : outcome.winners) {
    if (w.bid >= round.bids.size()) return core::InvalidArgument("exhaustive: unknown winner");
    welfare += int256_t(round.bids[w.bid].limit.nanos());
  }
  std::vector<Money> pay;
  for (const Winner& w : outcome.winners) {
    Search s(round, w.bid);
    s.Run();
    const int256_t others = welfare - int256_t(round.bids[w.bid].limit.nanos());
    BOURSE_ASSIGN_OR_RETURN(Money p, ToMoney(s.best() - others, "a payment"));
    pay.push_back(p);
  }
  return pay;
}

}  // namespace bourse::auction::testkit
