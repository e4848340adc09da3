#include "auction/internal/anneal.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace bourse::auction::internal {

namespace {

using Clock = std::chrono::steady_clock;

// splitmix64: cheap, seeded, the same on every machine.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>((Next() >> 32) * n >> 32); }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t s_;
};

// The share of the search that anneals from t0 down to t1; the rest
// restarts from the best allocation and cools it further.
constexpr double kHotShare = 0.9;

// The nodes an ejection chain considers for each count-request winner it
// could move (a `from` may have a thousand).
constexpr uint32_t kEjectTargets = 16;

class Annealer {
 public:
  Annealer(Problem& p, uint64_t seed) : p_(p), rng_(seed) {}

  AnnealResult Run(const std::vector<Choice>& start, const AnnealLimits& limits) {
    const uint32_t nb = static_cast<uint32_t>(p_.bids.size());
    const uint32_t nn = static_cast<uint32_t>(p_.cap.size());
    AnnealResult out;
    live_ = p_.cap;
    on_node_.assign(nn, {});
    choice_.assign(nb, Choice{});
    touched_.assign(nb, 0);
    node_mark_.assign(nn, 0);
    pairs_on_node_.assign(nn, {});
    value_ = 0;
    // Pairs in greedy order (limit / sqrt(size)): the refill's order.
    for (uint32_t i = 0; i < nb; ++i) {
      for (uint32_t b = 0; b < p_.bids[i].bundles.size(); ++b) {
        if (p_.bids[i].bundles[b].possible) {
          pairs_.push_back({p_.bids[i].dvalue / std::sqrt(p_.bids[i].bundles[b].size), i, b});
        }
      }
    }
    std::sort(pairs_.begin(), pairs_.end(), [](const Pair& a, const Pair& b) {
      if (a.score != b.score) return a.score > b.score;
      if (a.bid != b.bid) return a.bid < b.bid;
      return a.bundle < b.bundle;
    });
    for (uint32_t k = 0; k < pairs_.size(); ++k) {
      const PBundle& b = Bundle(pairs_[k].bid, pairs_[k].bundle);
      if (b.count) {
        for (uint32_t n : b.from) pairs_on_node_[n].push_back(k);
      } else {
        for (const Need& x : b.needs) pairs_on_node_[x.node].push_back(k);
      }
    }
    pair_stamp_.assign(pairs_.size(), 0);
    Reset(start);
    journal_.clear();
    out.best = choice_;
    out.value = value_;
    if (pairs_.empty()) return out;

    double mean = 0;
    for (const PBid& b : p_.bids) mean += b.dvalue;
    mean /= std::max<uint32_t>(nb, 1);
    const double t0 = 0.3 * mean, t1 = 0.03 * mean;
    const Clock::time_point begin = Clock::now();
    const bool timed = limits.deadline != Clock::time_point::max();
    const double total = std::chrono::duration<double>(limits.deadline - begin).count();
    if ((timed && total <= 0) || limits.max_moves == 0) return out;
    double temp = t0;
    bool cold = false;
    for (uint64_t move = 0;; ++move) {
      if ((move & 3) == 0) {
        // The schedule's progress: the larger of the time and the moves used
        // (read often: a move on a round of wide count requests can take
        // milliseconds, and the deadline is the round's).
        double progress = static_cast<double>(move) / static_cast<double>(limits.max_moves);
        if (timed) {
          progress = std::max(progress,
                              std::chrono::duration<double>(Clock::now() - begin).count() / total);
        }
        if (progress >= 1) break;
        if (progress < kHotShare) {
          temp = t0 * std::pow(t1 / t0, progress / kHotShare);
        } else {
          // The last part: back to the best allocation, cooled to a hundredth
          // of t1 (intensification around it).
          if (!cold) {
            cold = true;
            Reset(out.best);
          }
          temp = t1 * std::pow(0.01, (progress - kHotShare) / (1 - kHotShare));
        }
      }
      if (move >= limits.max_moves) break;
      ++out.moves;
      const i128 before = value_;
      journal_.clear();
      ++epoch_;
      bool done;
      const Pair& pr = pairs_[rng_.Below(static_cast<uint32_t>(pairs_.size()))];
      if (choice_[pr.bid].bundle == pr.bundle) {
        // A winner's own bundle: a count request may move to other nodes
        // of its `from` (re-placed, which changes no welfare by itself);
        // otherwise drop it and refill.
        if (Bundle(pr.bid, pr.bundle).count && rng_.Below(2) == 0) {
          done = Force(pr.bid, pr.bundle);
        } else {
          Remove(pr.bid);
          done = true;
        }
      } else {
        done = Force(pr.bid, pr.bundle);
      }
      if (done) Refill();
      const double delta = static_cast<double>(value_ - before);
      if (!done || (delta < 0 && rng_.Unit() >= std::exp(delta / temp))) {
        Rollback(before);
        continue;
      }
      if (value_ > out.value) {
        out.value = value_;
        out.best = choice_;
        ++out.improvements;
      }
    }
    return out;
  }

 private:
  struct Pair {
    double score;
    uint32_t bid;
    uint32_t bundle;
  };

  const PBundle& Bundle(uint32_t i, uint32_t b) const { return p_.bids[i].bundles[b]; }

  // Makes `to` the current allocation (every node's residual, winners per
  // node and the welfare recomputed).
  void Reset(const std::vector<Choice>& to) {
    live_ = p_.cap;
    for (auto& on : on_node_) on.clear();
    choice_.assign(p_.bids.size(), Choice{});
    value_ = 0;
    ++epoch_;
    for (uint32_t i = 0; i < choice_.size() && i < to.size(); ++i) {
      if (to[i].bundle != kNone) Add(i, to[i].bundle, to[i].nodes);
    }
    journal_.clear();
    freed_.clear();
  }

  void Journal(uint32_t i) {
    if (touched_[i] == epoch_) return;
    touched_[i] = epoch_;
    journal_.push_back({i, choice_[i]});
  }

  // Calls f(node, quantities) for each node bid i's choice c uses.
  template <class F>
  void ForEachUse(uint32_t i, const Choice& c, F&& f) const {
    const PBundle& b = Bundle(i, c.bundle);
    if (b.count) {
      for (uint32_t n : c.nodes) f(n, b.q);
    } else {
      for (const Need& x : b.needs) f(x.node, x.q);
    }
  }

  // Takes bid i's allocation off the nodes (its freed nodes join the refill).
  void Remove(uint32_t i) {
    Journal(i);
    ForEachUse(i, choice_[i], [&](uint32_t n, const Q& q) { Free(i, n, q); });
    choice_[i] = Choice{};
    value_ -= p_.bids[i].value;
  }
  void Free(uint32_t i, uint32_t n, const Q& q) {
    AddQ(live_[n], q);
    auto& on = on_node_[n];
    on.erase(std::find(on.begin(), on.end(), i));
    freed_.push_back(n);
  }

  // Places bid i's bundle b on `nodes` (count request) or its items; the
  // caller made sure it fits.
  void Add(uint32_t i, uint32_t bundle, const std::vector<uint32_t>& nodes) {
    Journal(i);
    const PBundle& b = Bundle(i, bundle);
    Choice& c = choice_[i];
    c.bundle = bundle;
    c.nodes.clear();
    if (b.count) {
      for (uint32_t n : nodes) {
        SubQ(live_[n], b.q);
        on_node_[n].push_back(i);
        c.nodes.push_back(n);
      }
    } else {
      for (const Need& x : b.needs) {
        SubQ(live_[x.node], x.q);
        on_node_[x.node].push_back(i);
        c.nodes.push_back(x.node);
      }
    }
    value_ += p_.bids[i].value;
  }

  // Restores the allocation before the move.
  void Rollback(i128 before) {
    // (Not structured bindings: clang 14 cannot capture one in a lambda.)
    for (const auto& entry : journal_) {
      const uint32_t i = entry.first;
      if (choice_[i].bundle == kNone) continue;
      ForEachUse(i, choice_[i], [&](uint32_t n, const Q& q) { Unuse(i, n, q); });
      choice_[i] = Choice{};
    }
    for (const auto& entry : journal_) {
      const uint32_t i = entry.first;
      if (entry.second.bundle == kNone) continue;
      ForEachUse(i, entry.second, [&](uint32_t n, const Q& q) { Use(i, n, q); });
      choice_[i] = entry.second;
    }
    journal_.clear();
    freed_.clear();
    value_ = before;
  }
  void Unuse(uint32_t i, uint32_t n, const Q& q) {
    AddQ(live_[n], q);
    auto& on = on_node_[n];
    on.erase(std::find(on.begin(), on.end(), i));
  }
  void Use(uint32_t i, uint32_t n, const Q& q) {
    SubQ(live_[n], q);
    on_node_[n].push_back(i);
  }

  // The welfare lost by evicting the cheapest winners on node n until q fits
  // (HUGE_VAL when it cannot).
  double EvictCost(uint32_t n, const Q& q, double cap = HUGE_VAL) {
    if (FitsQ(q, live_[n])) return 0;
    victims_.assign(on_node_[n].begin(), on_node_[n].end());
    std::sort(victims_.begin(), victims_.end(),
              [&](uint32_t a, uint32_t b) { return p_.bids[a].value < p_.bids[b].value; });
    Q have = live_[n];
    double cost = 0;
    uint32_t last = kNone;
    for (uint32_t w : victims_) {
      if (w == last) continue;  // an items bundle is on the node once (aggregated)
      last = w;
      AddQ(have, UseOn(w, n));
      cost += p_.bids[w].dvalue;
      if (FitsQ(q, have)) return cost;
      if (cost >= cap) return HUGE_VAL;  // the caller has a cheaper way
    }
    return HUGE_VAL;
  }
  // Winner w's limit per share of q's shortfall on node n that evicting it
  // would cover (the lowest is the cheapest eviction).
  double EvictScore(uint32_t w, uint32_t n, const Q& q) const {
    const Q use = UseOn(w, n);
    double cover = 0;
    int short_dims = 0;
    for (int d = 0; d < kDims; ++d) {
      const int64_t shortfall = q.v[d] - live_[n].v[d];
      if (shortfall <= 0) continue;
      ++short_dims;
      cover += std::min(1.0, static_cast<double>(use.v[d]) / static_cast<double>(shortfall));
    }
    if (short_dims == 0) return p_.bids[w].dvalue;
    return p_.bids[w].dvalue / std::max(cover / short_dims, 1e-3);
  }

  // What winner w uses on node n.
  Q UseOn(uint32_t w, uint32_t n) const {
    const PBundle& b = Bundle(w, choice_[w].bundle);
    if (b.count) return b.q;
    for (const Need& x : b.needs) {
      if (x.node == n) return x.q;
    }
    return Q{};
  }

  // Calls try_node(u) for each node u of count-request winner w's `from`
  // that could take w's place on node n: not n, not one of w's nodes, not
  // marked for the incoming bundle, and keeping w's min-sites condition;
  // from a random first one, until try_node returns true. Returns whether
  // it did.
  template <class F>
  bool ForEachTarget(uint32_t w, uint32_t n, F&& try_node) {
    const PBundle& b = Bundle(w, choice_[w].bundle);
    if (!b.count) return false;
    const std::vector<uint32_t>& nodes = choice_[w].nodes;
    // Sites the other nodes already cover.
    uint32_t covered = 0;
    const uint32_t stamp = ++p_.stamp;
    for (uint32_t m : nodes) {
      if (m == n) continue;
      if (p_.site_stamp[p_.site_of[m]] != stamp) {
        p_.site_stamp[p_.site_of[m]] = stamp;
        ++covered;
      }
    }
    const uint32_t first = rng_.Below(static_cast<uint32_t>(b.from.size()));
    for (uint32_t k = 0; k < b.from.size(); ++k) {
      const uint32_t u = b.from[(first + k) % b.from.size()];
      if (u == n || node_mark_[u] == epoch_) continue;
      if (std::find(nodes.begin(), nodes.end(), u) != nodes.end()) continue;
      const bool new_site = p_.site_stamp[p_.site_of[u]] != stamp;
      if (covered + (new_site ? 1 : 0) < b.min_sites) continue;
      if (try_node(u)) return true;
    }
    return false;
  }

  // Moves count-request winner w from node n to node u (which fits it).
  void MoveNode(uint32_t w, uint32_t n, uint32_t u) {
    const PBundle& b = Bundle(w, choice_[w].bundle);
    Journal(w);
    Unuse(w, n, b.q);
    freed_.push_back(n);
    Use(w, u, b.q);
    *std::find(choice_[w].nodes.begin(), choice_[w].nodes.end(), n) = u;
  }

  // Moves count-request winner w off node n to a node where it fits as is.
  bool Relocate(uint32_t w, uint32_t n) {
    const Q& q = Bundle(w, choice_[w].bundle).q;
    uint32_t to = kNone;
    ForEachTarget(w, n, [&](uint32_t u) {
      if (!FitsQ(q, live_[u])) return false;
      to = u;
      return true;
    });
    if (to == kNone) return false;
    MoveNode(w, n, to);
    return true;
  }

  // Frees room for q on node n: moves count-request winners elsewhere, else
  // evicts winners, cheapest first (sometimes another one, for variety). At
  // the first level (eject), a count-request winner may instead move to a
  // node cleared for it, when what that evicts is worth less than the
  // victim: an ejection chain of two links.
  bool MakeRoom(uint32_t n, const Q& q, bool eject = true) {
    for (int guard = 0; !FitsQ(q, live_[n]); ++guard) {
      if (guard > 64 || on_node_[n].empty()) return false;
      bool moved = false;
      for (size_t k = 0; k < on_node_[n].size() && !moved; ++k) {
        moved = Relocate(on_node_[n][k], n);
      }
      if (moved) continue;
      const auto& on = on_node_[n];
      uint32_t victim = on[0];
      if (rng_.Below(4) == 0) {
        victim = on[rng_.Below(static_cast<uint32_t>(on.size()))];
      } else {
        double least = HUGE_VAL;
        for (uint32_t w : on) {
          const double score = EvictScore(w, n, q);
          if (score < least) {
            least = score;
            victim = w;
          }
        }
      }
      if (eject) {
        double cheapest = p_.bids[victim].dvalue;
        uint32_t mover = kNone, to = kNone;
        for (uint32_t w : on) {
          if (w == victim || !Bundle(w, choice_[w].bundle).count) continue;
          const Q& wq = Bundle(w, choice_[w].bundle).q;
          uint32_t tried = 0;  // from a random first target, at most kEjectTargets
          ForEachTarget(w, n, [&](uint32_t u) {
            const double cost = EvictCost(u, wq, cheapest);
            if (cost < cheapest) {
              cheapest = cost;
              mover = w;
              to = u;
            }
            return ++tried >= kEjectTargets;
          });
        }
        if (mover != kNone) {
          node_mark_[to] = epoch_;
          const Q wq = Bundle(mover, choice_[mover].bundle).q;
          if (!MakeRoom(to, wq, false)) return false;
          MoveNode(mover, n, to);
          continue;
        }
      }
      Remove(victim);
    }
    return true;
  }

  // Makes room for an incoming bundle on its nodes node(0..count-1), each for
  // q(k): each node's share is held while the next is cleared (so clearing
  // one cannot fill another), then handed back for the bundle's placement.
  template <class Node, class Need>
  bool MakeRoomOnEach(size_t count, Node&& node, Need&& q) {
    size_t held = 0;
    bool ok = true;
    for (; held < count && ok; ++held) {
      ok = MakeRoom(node(held), q(held));
      if (ok) SubQ(live_[node(held)], q(held));
    }
    if (!ok) --held;
    for (size_t k = 0; k < held; ++k) AddQ(live_[node(k)], q(k));
    return ok;
  }

  // Forces bid i's bundle b in (switching the bid's bundle if it wins).
  bool Force(uint32_t i, uint32_t bundle) {
    if (choice_[i].bundle != kNone) Remove(i);
    const PBundle& b = Bundle(i, bundle);
    chosen_.clear();
    if (b.count) {
      // The count request's nodes: cheapest to clear first (random ties),
      // one per site until min_sites are covered, then the rest.
      cand_.clear();
      for (uint32_t n : b.from) {
        const double cost = EvictCost(n, b.q);
        if (cost == HUGE_VAL) continue;
        cand_.push_back({cost + rng_.Unit() * 1e-3 * p_.bids[i].dvalue, n});
      }
      std::sort(cand_.begin(), cand_.end());
      ++p_.stamp;
      uint32_t covered = 0;
      for (const auto& [cost, n] : cand_) {
        if (covered >= b.min_sites) break;
        if (p_.site_stamp[p_.site_of[n]] == p_.stamp) continue;
        p_.site_stamp[p_.site_of[n]] = p_.stamp;
        ++covered;
        chosen_.push_back(n);
      }
      if (covered < b.min_sites) return false;
      for (const auto& [cost, n] : cand_) {
        if (chosen_.size() >= b.n) break;
        if (std::find(chosen_.begin(), chosen_.end(), n) == chosen_.end()) chosen_.push_back(n);
      }
      if (chosen_.size() < b.n) return false;
      for (uint32_t n : chosen_) node_mark_[n] = epoch_;
      if (!MakeRoomOnEach(
              chosen_.size(), [&](size_t k) { return chosen_[k]; },
              [&](size_t) -> const Q& { return b.q; })) {
        return false;
      }
    } else {
      for (const Need& x : b.needs) node_mark_[x.node] = epoch_;
      if (!MakeRoomOnEach(
              b.needs.size(), [&](size_t k) { return b.needs[k].node; },
              [&](size_t k) -> const Q& { return b.needs[k].q; })) {
        return false;
      }
    }
    Add(i, bundle, chosen_);
    return true;
  }

  // Losers touching the freed nodes, in greedy order, placed where they fit.
  void Refill() {
    refill_.clear();
    for (uint32_t n : freed_) {
      for (uint32_t k : pairs_on_node_[n]) {
        if (pair_stamp_[k] == epoch_) continue;
        pair_stamp_[k] = epoch_;
        refill_.push_back(k);
      }
    }
    freed_.clear();
    std::sort(refill_.begin(), refill_.end());
    auto live = [&](uint32_t n) -> Q& { return live_[n]; };
    for (uint32_t k : refill_) {
      const Pair& pr = pairs_[k];
      if (choice_[pr.bid].bundle != kNone) continue;
      const PBundle& b = Bundle(pr.bid, pr.bundle);
      Choice c;
      if (!p_.Place(b, live, kNone, c)) continue;
      p_.Unplace(b, live, c);
      Add(pr.bid, pr.bundle, c.nodes);
    }
  }

  Problem& p_;
  Rng rng_;
  std::vector<Q> live_;
  std::vector<std::vector<uint32_t>> on_node_;  // winners per node (items: once per node)
  std::vector<Choice> choice_;
  i128 value_ = 0;
  std::vector<Pair> pairs_;
  std::vector<std::vector<uint32_t>> pairs_on_node_;
  std::vector<std::pair<uint32_t, Choice>> journal_;  // bids touched by the move: old choice
  uint32_t epoch_ = 1;
  std::vector<uint32_t> touched_, node_mark_, pair_stamp_;
  std::vector<uint32_t> freed_, refill_, victims_, chosen_;
  std::vector<std::pair<double, uint32_t>> cand_;
};

}  // namespace

AnnealResult Anneal(Problem& p, const std::vector<Choice>& start, const AnnealLimits& limits,
                    uint64_t seed) {
  Annealer a(p, seed);
  return a.Run(start, limits);
}

}  // namespace bourse::auction::internal
