#include "auction/combinatorial.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <queue>
#include <tuple>
#include <unordered_set>

#include "auction/internal/anneal.h"
#include "auction/internal/problem.h"
#include "auction/internal/wdp_mip.h"

namespace bourse::auction {

using core::Money;
using core::ResourceVector;
using core::Result;
using core::Status;

namespace {

using internal::AddQ;
using internal::Choice;
using internal::FitsQ;
using internal::i128;
using internal::kDims;
using internal::kNone;
using internal::Need;
using internal::PBid;
using internal::PBundle;
using internal::Problem;
using internal::Q;
using internal::SubQ;
using internal::ToQ;

Result<Money> MoneyFrom128(i128 nanos) {
  return Money::FromRep(Money::Rep(static_cast<long long>(nanos >> 64)) * (Money::Rep(1) << 64) +
                        Money::Rep(static_cast<unsigned long long>(nanos)));
}

// limit_j * sqrt(size_i / size_j), rounded up to the nano-credit.
Money CriticalPay(const Money& limit_j, double size_i, double size_j) {
  if (size_i == size_j) return limit_j;
  long double ratio = std::sqrt(static_cast<long double>(size_i) / size_j);
  if (ratio > 1e6L) return Money::FromRep(Money::MaxNanos()).value();
  const long double scale = 1099511627776.0L;  // 2^40
  auto num = static_cast<long long>(std::ceil(ratio * scale));
  auto r = limit_j.MulFrac(Money::Rep(num), Money::Rep(1099511627776LL), core::Rounding::kCeil);
  return r.ok() ? *r : Money::FromRep(Money::MaxNanos()).value();
}

Result<RoundOutcome> BuildOutcome(Problem& p, const std::vector<Choice>& choice,
                                  const std::vector<Money>& pay) {
  RoundOutcome out;
  for (uint32_t i = 0; i < choice.size(); ++i) {
    if (choice[i].bundle == kNone) continue;
    Winner w;
    w.bid = i;
    w.bundle = choice[i].bundle;
    w.nodes = choice[i].nodes;
    w.pay = std::clamp(pay[i], Money(), p.bids[i].limit);
    BOURSE_ASSIGN_OR_RETURN(out.welfare, out.welfare.Add(p.bids[i].limit));
    out.winners.push_back(std::move(w));
  }
  Status s = CheckOutcome(p.round, out);
  if (!s.ok()) return core::Internal("auction: infeasible outcome (bug): " + s.message());
  return out;
}

// ---------------------------------------------------------------- heuristic

class Greedy {
 public:
  explicit Greedy(Problem& p) : p_(p) {}

  Result<RoundOutcome> Run(bool local_search, bool reference_payments) {
    const size_t nb = p_.bids.size(), nn = p_.cap.size();
    for (uint32_t i = 0; i < nb; ++i) {
      for (uint32_t b = 0; b < p_.bids[i].bundles.size(); ++b) {
        const PBundle& pb = p_.bids[i].bundles[b];
        if (!pb.possible) continue;
        pairs_.push_back({p_.bids[i].dvalue / std::sqrt(pb.size), i, b});
      }
    }
    std::sort(pairs_.begin(), pairs_.end(), [](const Pair& a, const Pair& b) {
      if (a.score != b.score) return a.score > b.score;
      if (a.bid != b.bid) return a.bid < b.bid;
      return a.bundle < b.bundle;
    });
    // The last pair touching each node: a bundle whose nodes no later pair
    // touches can no longer be blocked.
    std::vector<uint32_t> last_touch(nn, 0);
    for (uint32_t k = 0; k < pairs_.size(); ++k) {
      const PBundle& b = p_.bids[pairs_[k].bid].bundles[pairs_[k].bundle];
      if (b.count) {
        for (uint32_t n : b.from) last_touch[n] = k;
      } else {
        for (const Need& x : b.needs) last_touch[x.node] = k;
      }
    }
    horizon_.assign(nb, {});
    for (uint32_t i = 0; i < nb; ++i) {
      for (const PBundle& b : p_.bids[i].bundles) {
        uint32_t h = 0;
        if (b.count) {
          for (uint32_t n : b.from) h = std::max(h, last_touch[n]);
        } else {
          for (const Need& x : b.needs) h = std::max(h, last_touch[x.node]);
        }
        horizon_[i].push_back(h);
      }
    }
    pairs_on_node_.assign(nn, {});
    pairs_of_bid_.assign(nb, {});
    for (uint32_t k = 0; k < pairs_.size(); ++k) {
      const PBundle& b = p_.bids[pairs_[k].bid].bundles[pairs_[k].bundle];
      if (b.count) {
        for (uint32_t n : b.from) pairs_on_node_[n].push_back(k);
      } else {
        for (const Need& x : b.needs) pairs_on_node_[x.node].push_back(k);
      }
      pairs_of_bid_[pairs_[k].bid].push_back(k);
    }
    orig_won_pair_.assign(pairs_.size(), 0);
    orig_win_k_.assign(nb, UINT32_MAX);
    live_ = p_.cap;
    hist_.assign(nn, {});
    choice_.assign(nb, Choice{});
    pay_.assign(nb, Money());
    ov_stamp_.assign(nn, 0);
    ov_q_.assign(nn, Q{});
    bid_stamp_.assign(nb, 0);
    orig_cand_.assign(reference_payments ? 0 : pairs_.size(), {});
    auto live = [&](uint32_t n) -> Q& { return live_[n]; };
    for (uint32_t k = 0; k < pairs_.size(); ++k) {
      const Pair& pr = pairs_[k];
      if (choice_[pr.bid].bundle != kNone) continue;
      const PBundle& b = p_.bids[pr.bid].bundles[pr.bundle];
      if (!p_.Fits(b, [&](uint32_t n) -> const Q& { return live_[n]; })) continue;
      if (reference_payments) pay_[pr.bid] = Payment(k);
      Choice& c = choice_[pr.bid];
      if (!reference_payments && b.count) {
        // Placed from its candidates, which the payments keep.
        const auto& cand = orig_cand_[k];
        p_.Candidates(b, [&](uint32_t n) -> const Q& { return live_[n]; }, &orig_cand_[k]);
        size_t a = 0;
        if (!p_.SelectCount(
                b, [&] { return a < cand.size() ? cand[a++].second : kNone; }, &c.nodes)) {
          return core::Internal("auction: greedy place failed");
        }
        for (uint32_t n : c.nodes) SubQ(live_[n], b.q);
      } else if (!p_.Place(b, live, kNone, c)) {
        return core::Internal("auction: greedy place failed");
      }
      c.bundle = pr.bundle;
      alloc_pair_.push_back(k);
      orig_won_pair_[k] = 1;
      orig_win_k_[pr.bid] = k;
      for (uint32_t n : c.nodes) hist_[n].push_back({k, live_[n]});
    }
    if (!reference_payments) {
      cone_dirty_.assign(nn, 0);
      cone_val_.assign(nn, Q{});
      cone_stream_.assign(nn, 0);
      cone_div_.assign(nb, 0);
      cone_won_.assign(nb, 0);
      cone_pushed_.assign(pairs_.size(), 0);
      sorted_from_.assign(pairs_.size(), {});
      for (uint32_t k = 0; k < pairs_.size(); ++k) {
        const PBundle& b = p_.bids[pairs_[k].bid].bundles[pairs_[k].bundle];
        if (!b.count) continue;
        sorted_from_[k] = b.from;
        std::sort(sorted_from_[k].begin(), sorted_from_[k].end());
      }
      for (uint32_t i = 0; i < nb; ++i) {
        if (choice_[i].bundle != kNone) pay_[i] = ConePayment(orig_win_k_[i]);
      }
    }
    stage_pay_ = pay_;
    stage_winner_.assign(nb, false);
    for (uint32_t i = 0; i < nb; ++i) stage_winner_[i] = choice_[i].bundle != kNone;
    if (local_search) LocalSearch();
    return BuildOutcome(p_, choice_, pay_);
  }

  // After Run: the allocation, and the greedy stage's winners with their
  // critical values (before the local search).
  const std::vector<Choice>& choice() const { return choice_; }
  bool stage_winner(uint32_t i) const { return stage_winner_[i]; }
  const Money& stage_pay(uint32_t i) const { return stage_pay_[i]; }

 private:
  struct Pair {
    double score;
    uint32_t bid;
    uint32_t bundle;
  };

  // One critical-value search (Payment, ConePayment) for a bid i: pending_
  // holds i's bundles that still fit the simulated run without i; `best` is
  // the least i would have had to bid to rank ahead of an allocation that
  // blocked one of its bundles.
  struct Critical {
    std::optional<Money> best;
    uint32_t horizon = UINT32_MAX;  // min over the pending bundles' horizons
  };

  // Bundle b was blocked by the allocation at pairs_[pair_index]: what i would
  // have had to pay to rank ahead of it.
  void Consider(uint32_t pair_index, const PBundle& b, Critical* c) const {
    const Pair& blocker = pairs_[pair_index];
    const PBundle& jb = p_.bids[blocker.bid].bundles[blocker.bundle];
    Money pay = CriticalPay(p_.bids[blocker.bid].limit, b.size, jb.size);
    if (!c->best || pay < *c->best) c->best = pay;
  }

  // Starts the search for bid i with `read` the residual just before i's
  // winning pair: a bundle that fits there is pending; one that does not was
  // blocked earlier in the original run, by the allocation a binary search
  // finds.
  template <class Res>
  Critical StartCritical(uint32_t i, Res&& read) {
    const PBid& bid = p_.bids[i];
    Critical c;
    pending_.clear();
    pending_horizon_.clear();
    for (size_t bi = 0; bi < bid.bundles.size(); ++bi) {
      const PBundle& b = bid.bundles[bi];
      if (!b.possible) continue;
      if (p_.Fits(b, read)) {
        pending_.push_back(&b);
        pending_horizon_.push_back(horizon_[i][bi]);
        c.horizon = std::min(c.horizon, horizon_[i][bi]);
        continue;
      }
      if (alloc_pair_.empty()) continue;  // cannot happen: it fits an empty round
      uint32_t lo = 0, hi = static_cast<uint32_t>(alloc_pair_.size()) - 1;
      while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        const uint32_t before = alloc_pair_[mid] + 1;
        if (p_.Fits(b, [&](uint32_t n) -> const Q& { return OrigBefore(n, before); })) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      Consider(alloc_pair_[lo], b, &c);
    }
    return c;
  }

  // The simulated run allocated at pairs_[k] and now reads `read`: the pending
  // bundles that no longer fit were blocked by that allocation.
  template <class Res>
  void DropBlocked(uint32_t k, Res&& read, Critical* c) {
    for (size_t x = 0; x < pending_.size();) {
      if (!p_.Fits(*pending_[x], read)) {
        Consider(k, *pending_[x], c);
        pending_[x] = pending_.back();
        pending_.pop_back();
        pending_horizon_[x] = pending_horizon_.back();
        pending_horizon_.pop_back();
        c->horizon = UINT32_MAX;
        for (uint32_t h : pending_horizon_) c->horizon = std::min(c->horizon, h);
      } else {
        ++x;
      }
    }
  }

  // A bundle still pending at the end was never blocked: critical value 0.
  Money CriticalValue(const Critical& c) const {
    if (!pending_.empty()) return Money();
    return c.best ? *c.best : Money();
  }

  // The greedy critical value of the bid winning at pairs_[k], computed on the
  // run without it: for each of its bundles, the first allocation after which
  // the bundle no longer fits; the bid must rank ahead of that allocation.
  Money Payment(uint32_t k) {
    const uint32_t i = pairs_[k].bid;
    Critical c = StartCritical(i, [&](uint32_t n) -> const Q& { return live_[n]; });
    // Forward simulation of the run without bid i, on an overlay of live_.
    ++epoch_;
    auto ov = [&](uint32_t n) -> Q& {
      if (ov_stamp_[n] != epoch_) {
        ov_stamp_[n] = epoch_;
        ov_q_[n] = live_[n];
      }
      return ov_q_[n];
    };
    auto ov_read = [&](uint32_t n) -> const Q& {
      return ov_stamp_[n] == epoch_ ? ov_q_[n] : live_[n];
    };
    Choice scratch;
    for (uint32_t k2 = k + 1; k2 < pairs_.size() && !pending_.empty(); ++k2) {
      // A pending bundle no later pair touches is never blocked: the
      // critical value is 0.
      if (k2 > c.horizon) return Money();
      const Pair& pr = pairs_[k2];
      if (pr.bid == i || choice_[pr.bid].bundle != kNone || bid_stamp_[pr.bid] == epoch_) continue;
      const PBundle& jb = p_.bids[pr.bid].bundles[pr.bundle];
      if (!p_.Fits(jb, ov_read)) continue;
      p_.Place(jb, ov, kNone, scratch);
      bid_stamp_[pr.bid] = epoch_;
      DropBlocked(k2, ov_read, &c);
    }
    return CriticalValue(c);
  }

  // Residual of node n in the original greedy run just before pair k.
  const Q& OrigBefore(uint32_t n, uint32_t k) const {
    const auto& h = hist_[n];
    auto it = std::lower_bound(h.begin(), h.end(), k,
                               [](const auto& e, uint32_t key) { return e.first < key; });
    return it == h.begin() ? p_.cap[n] : std::prev(it)->second;
  }

  // The same critical value as Payment(), computed after the greedy run by
  // simulating the run without bid i only where it can differ from the
  // original run: pairs on "dirty" nodes (whose residual differs), on nodes of
  // i's pending bundles, and of bids whose outcome diverged. Every other pair
  // sees the same residual and bid state as in the original run, so it
  // decides and allocates exactly as it did there.
  Money ConePayment(uint32_t w) {
    const uint32_t i = pairs_[w].bid;
    ++epoch_;
    uint32_t now = w;  // the sim state is "just before pair now"
    auto read = [&](uint32_t n) -> const Q& {
      return cone_dirty_[n] == epoch_ ? cone_val_[n] : OrigBefore(n, now);
    };
    // Candidate streams: (next pair index, stream, position). Streams < nn
    // are nodes, others bids. A pair is in the heap at most once: a stream
    // steps over pairs another stream already pushed (count requests put one
    // pair on up to 1,000 node streams).
    using Entry = std::tuple<uint32_t, uint32_t, uint32_t>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
    const uint32_t nn = static_cast<uint32_t>(p_.cap.size());
    auto push_stream = [&](uint32_t stream, const std::vector<uint32_t>& l, size_t pos) {
      while (pos < l.size() && cone_pushed_[l[pos]] == epoch_) ++pos;
      if (pos == l.size()) return;
      cone_pushed_[l[pos]] = epoch_;
      heap.emplace(l[pos], stream, static_cast<uint32_t>(pos));
    };
    auto add_node_stream = [&](uint32_t n, uint32_t after) {
      if (cone_stream_[n] == epoch_) return;
      cone_stream_[n] = epoch_;
      const auto& l = pairs_on_node_[n];
      push_stream(n, l, std::upper_bound(l.begin(), l.end(), after) - l.begin());
    };
    auto add_bid_stream = [&](uint32_t j, uint32_t after) {
      const auto& l = pairs_of_bid_[j];
      push_stream(nn + j, l, std::upper_bound(l.begin(), l.end(), after) - l.begin());
    };
    cone_dirty_list_.clear();
    auto make_dirty = [&](uint32_t n) {
      if (cone_dirty_[n] == epoch_) return;
      cone_val_[n] = OrigBefore(n, now);
      cone_dirty_[n] = epoch_;
      cone_dirty_list_.push_back(n);
      add_node_stream(n, now);
    };
    // i's bundles: blocked before w (binary search), or pending.
    Critical c = StartCritical(i, read);
    if (pending_.empty()) return CriticalValue(c);
    // Without i, its allocated nodes keep their residual from before w.
    for (uint32_t n : choice_[i].nodes) make_dirty(n);
    for (const PBundle* b : pending_) {
      if (b->count) {
        for (uint32_t n : b->from) add_node_stream(n, w);
      } else {
        for (const Need& x : b->needs) add_node_stream(x.node, w);
      }
    }
    Choice sim;
    while (!heap.empty()) {
      auto [k2, stream, pos] = heap.top();
      heap.pop();
      push_stream(stream, stream < nn ? pairs_on_node_[stream] : pairs_of_bid_[stream - nn],
                  pos + 1);
      if (k2 > c.horizon) return Money();  // a pending bundle can no longer be blocked
      now = k2;
      const Pair& pr = pairs_[k2];
      const uint32_t j = pr.bid;
      if (j == i) continue;
      const PBundle& jb = p_.bids[j].bundles[pr.bundle];
      const bool diverged = cone_div_[j] == epoch_;
      if (!diverged && DecidesAsOriginal(k2, jb)) {
        if (orig_won_pair_[k2] != 0) {
          now = k2 + 1;
          DropBlocked(k2, read, &c);
          if (pending_.empty()) break;
        }
        continue;
      }
      const bool won_before = diverged ? cone_won_[j] == epoch_ : orig_win_k_[j] < k2;
      bool sim_alloc = false;
      if (!won_before && jb.count && orig_won_pair_[k2] != 0) {
        sim_alloc = SimPlaceCount(k2, jb, &sim.nodes);
      } else if (!won_before && p_.Fits(jb, read)) {
        sim_alloc = true;
        if (jb.count) {
          p_.PlaceCount(jb, read, kNone, &sim.nodes);
        } else {
          sim.nodes.clear();
          for (const Need& x : jb.needs) sim.nodes.push_back(x.node);
        }
      }
      const bool orig_alloc = orig_won_pair_[k2] != 0;
      const bool same = sim_alloc == orig_alloc && (!sim_alloc || sim.nodes == choice_[j].nodes);
      if (!same) {
        if (orig_alloc) {
          for (uint32_t n : choice_[j].nodes) make_dirty(n);
        }
        if (sim_alloc) {
          for (uint32_t n : sim.nodes) make_dirty(n);
        }
        if (!diverged) {
          cone_div_[j] = epoch_;
          if (won_before) cone_won_[j] = epoch_;
          add_bid_stream(j, k2);
        }
      }
      if (sim_alloc) {
        cone_won_[j] = epoch_;
        if (!same && !diverged) cone_div_[j] = epoch_;
        for (size_t x = 0; x < sim.nodes.size(); ++x) {
          const uint32_t n = sim.nodes[x];
          if (cone_dirty_[n] != epoch_) continue;  // clean: same as the original run
          if (jb.count) {
            SubQ(cone_val_[n], jb.q);
          } else {
            SubQ(cone_val_[n], jb.needs[x].q);
          }
        }
        now = k2 + 1;
        DropBlocked(k2, read, &c);
        if (pending_.empty()) break;
      }
      // Otherwise (the original run allocated here and the simulation did
      // not) the pending bundles only gain room: nothing to check.
    }
    return CriticalValue(c);
  }

  // In the current ConePayment simulation, just before pair k, which placed
  // count request b in the original run: b's placement (false if it does not
  // fit). The original run's candidates at k hold for the clean nodes, so
  // only the dirty nodes of `from` are read again, and the best-fit order is
  // the merge of the two.
  bool SimPlaceCount(uint32_t k, const PBundle& b, std::vector<uint32_t>* out) {
    dirty_cand_.clear();
    AllDirtyInFrom(k, [&](uint32_t d) {
      if (FitsQ(b.q, cone_val_[d])) dirty_cand_.push_back({p_.Slack(d, cone_val_[d], b.q), d});
      return true;
    });
    std::sort(dirty_cand_.begin(), dirty_cand_.end());
    const auto& orig = orig_cand_[k];
    size_t a = 0, x = 0;
    return p_.SelectCount(
        b,
        [&] {
          while (a < orig.size() && cone_dirty_[orig[a].second] == epoch_) ++a;
          if (a < orig.size() && (x == dirty_cand_.size() || orig[a] < dirty_cand_[x])) {
            return orig[a++].second;
          }
          return x < dirty_cand_.size() ? dirty_cand_[x++].second : kNone;
        },
        out);
  }

  // In the current ConePayment simulation, just before pair k (of a bid whose
  // outcome has not diverged, with bundle b): whether the pair decides and
  // places as in the original run without simulating it: it won earlier in
  // both runs, or none of the nodes b may use is dirty (it reads the
  // original run's residual).
  bool DecidesAsOriginal(uint32_t k, const PBundle& b) {
    const uint32_t j = pairs_[k].bid;
    if (orig_win_k_[j] < k) return true;  // won earlier in both runs
    if (!b.count) {
      for (const Need& x : b.needs) {
        if (cone_dirty_[x.node] == epoch_) return false;
      }
      return true;
    }
    return AllDirtyInFrom(k, [](uint32_t) { return false; });
  }

  // Calls f(d) for each dirty node d of the `from` of pair k's count request
  // (through the dirty list when it is the shorter, else through `from`)
  // until f returns false; returns whether it went through them all.
  template <class F>
  bool AllDirtyInFrom(uint32_t k, F&& f) {
    const std::vector<uint32_t>& from = sorted_from_[k];
    if (cone_dirty_list_.size() * 16 < from.size()) {
      for (uint32_t d : cone_dirty_list_) {
        if (std::binary_search(from.begin(), from.end(), d) && !f(d)) return false;
      }
      return true;
    }
    for (uint32_t d : from) {
      if (cone_dirty_[d] == epoch_ && !f(d)) return false;
    }
    return true;
  }

  // Value-based local search (hill climbing) from the greedy allocation. A
  // move removes some winners (one winner; or, to force a loser's bundle in,
  // the cheapest winners blocking it), then refills the freed capacity with
  // losers in greedy order; it is kept only if welfare strictly rises.
  void LocalSearch() {
    const size_t nb = p_.bids.size();
    on_node_.assign(p_.cap.size(), {});
    for (uint32_t i = 0; i < nb; ++i) {
      if (choice_[i].bundle != kNone) AddOnNodes(i);
    }
    greedy_winner_.assign(nb, false);
    for (uint32_t i = 0; i < nb; ++i) greedy_winner_[i] = choice_[i].bundle != kNone;
    for (int pass = 0; pass < 3; ++pass) {
      bool improved = false;
      for (uint32_t w = 0; w < nb; ++w) {
        if (choice_[w].bundle == kNone) continue;
        improved |= TryMove({w}, kNone, 0);
      }
      for (uint32_t k = 0; k < pairs_.size(); ++k) {
        const Pair& pr = pairs_[k];
        if (choice_[pr.bid].bundle != kNone) continue;
        const PBundle& b = p_.bids[pr.bid].bundles[pr.bundle];
        if (b.count) continue;
        // The cheapest winners on the nodes where the bundle does not fit.
        std::vector<uint32_t> blockers;
        for (const Need& x : b.needs) {
          if (FitsQ(x.q, live_[x.node])) continue;
          for (uint32_t w : on_node_[x.node]) {
            if (std::find(blockers.begin(), blockers.end(), w) == blockers.end()) {
              blockers.push_back(w);
            }
          }
        }
        std::sort(blockers.begin(), blockers.end(), [&](uint32_t a, uint32_t c) {
          if (p_.bids[a].value != p_.bids[c].value) return p_.bids[a].value < p_.bids[c].value;
          return a < c;
        });
        // Remove the fewest cheapest blockers that let the bundle fit.
        i128 removed_value = 0;
        std::vector<uint32_t> remove;
        auto live = [&](uint32_t n) -> Q& { return live_[n]; };
        std::vector<Choice> saved;
        bool fits = false;
        for (uint32_t w : blockers) {
          removed_value += p_.bids[w].value;
          // The refill may still make up for blockers worth more than the
          // loser, but not without bound.
          if (removed_value >= 2 * p_.bids[pr.bid].value) break;
          remove.push_back(w);
          saved.push_back(choice_[w]);
          p_.Unplace(p_.bids[w].bundles[choice_[w].bundle], live, choice_[w]);
          if (p_.Fits(b, [&](uint32_t n) -> const Q& { return live_[n]; })) {
            fits = true;
            break;
          }
        }
        for (size_t x = remove.size(); x-- > 0;) Reapply(remove[x], saved[x]);
        if (fits) improved |= TryMove(remove, pr.bid, pr.bundle);
      }
      if (!improved) break;
    }
    // Winners the local search added lost the greedy stage: their greedy
    // critical value is at least their limit, so they pay their limit.
    for (uint32_t i = 0; i < nb; ++i) {
      if (choice_[i].bundle != kNone && !greedy_winner_[i]) pay_[i] = p_.bids[i].limit;
    }
  }

  // Re-applies a winner's recorded allocation (it fitted there before).
  void Reapply(uint32_t w, const Choice& c) {
    const PBundle& b = p_.bids[w].bundles[c.bundle];
    if (b.count) {
      for (uint32_t n : c.nodes) SubQ(live_[n], b.q);
    } else {
      for (const Need& x : b.needs) SubQ(live_[x.node], x.q);
    }
  }

  // Removes `remove`, places (force_bid, force_bundle) if given, refills from
  // losers touching the freed nodes in greedy order; keeps the result when
  // welfare strictly rises, else restores the exact previous state.
  bool TryMove(const std::vector<uint32_t>& remove, uint32_t force_bid, uint32_t force_bundle) {
    auto live = [&](uint32_t n) -> Q& { return live_[n]; };
    i128 delta = 0;
    std::vector<std::pair<uint32_t, Choice>> removed;
    std::vector<uint32_t> added;
    std::vector<uint32_t> freed;
    for (uint32_t w : remove) {
      removed.push_back({w, choice_[w]});
      p_.Unplace(p_.bids[w].bundles[choice_[w].bundle], live, choice_[w]);
      for (uint32_t n : choice_[w].nodes) freed.push_back(n);
      choice_[w] = Choice{};
      delta -= p_.bids[w].value;
    }
    auto admit = [&](uint32_t bid, uint32_t bundle) {
      Choice c;
      if (!p_.Place(p_.bids[bid].bundles[bundle], live, kNone, c)) return false;
      c.bundle = bundle;
      choice_[bid] = std::move(c);
      added.push_back(bid);
      delta += p_.bids[bid].value;
      return true;
    };
    if (force_bid != kNone && !admit(force_bid, force_bundle)) {
      // Cannot happen (the caller checked it fits), but restore regardless.
      delta = -1;
    } else {
      std::vector<uint32_t> cands;
      for (uint32_t n : freed) {
        cands.insert(cands.end(), pairs_on_node_[n].begin(), pairs_on_node_[n].end());
      }
      std::sort(cands.begin(), cands.end());
      cands.erase(std::unique(cands.begin(), cands.end()), cands.end());
      for (uint32_t k : cands) {
        const Pair& pr = pairs_[k];
        // Removed winners may come back with another bundle (an XOR switch).
        if (choice_[pr.bid].bundle != kNone) continue;
        bool same = false;
        for (const auto& [w, c] : removed) same |= w == pr.bid && c.bundle == pr.bundle;
        if (!same) admit(pr.bid, pr.bundle);
      }
    }
    if (delta > 0) {
      for (auto& [w, c] : removed) {
        for (uint32_t n : c.nodes) std::erase(on_node_[n], w);
      }
      for (uint32_t a : added) AddOnNodes(a);
      return true;
    }
    for (size_t x = added.size(); x-- > 0;) {
      const uint32_t a = added[x];
      p_.Unplace(p_.bids[a].bundles[choice_[a].bundle], live, choice_[a]);
      choice_[a] = Choice{};
    }
    for (auto& [w, c] : removed) {
      Reapply(w, c);
      choice_[w] = c;
    }
    return false;
  }

  void AddOnNodes(uint32_t i) {
    for (uint32_t n : choice_[i].nodes) on_node_[n].push_back(i);
  }
  void RemoveOnNodes(uint32_t i) {
    for (uint32_t n : choice_[i].nodes) std::erase(on_node_[n], i);
  }

  Problem& p_;
  std::vector<Pair> pairs_;
  std::vector<Q> live_;
  std::vector<std::vector<std::pair<uint32_t, Q>>> hist_;  // (pair index, residual after)
  std::vector<uint32_t> alloc_pair_;
  std::vector<Choice> choice_;
  std::vector<Money> pay_;
  std::vector<Money> stage_pay_;
  std::vector<bool> stage_winner_;
  std::vector<const PBundle*> pending_;
  std::vector<uint32_t> pending_horizon_;
  std::vector<uint32_t> ov_stamp_;
  std::vector<Q> ov_q_;
  std::vector<uint32_t> bid_stamp_;
  uint32_t epoch_ = 0;
  std::vector<std::vector<uint32_t>> on_node_;
  std::vector<std::vector<uint32_t>> pairs_on_node_;
  std::vector<bool> greedy_winner_;
  std::vector<std::vector<uint32_t>> horizon_;
  std::vector<std::vector<uint32_t>> pairs_of_bid_;
  std::vector<uint8_t> orig_won_pair_;
  std::vector<uint32_t> orig_win_k_;
  std::vector<uint32_t> cone_dirty_, cone_stream_, cone_div_, cone_won_, cone_pushed_;
  std::vector<uint32_t> cone_dirty_list_;           // this simulation's dirty nodes
  std::vector<std::vector<uint32_t>> sorted_from_;  // per pair: a count request's from, sorted
  // Per pair that placed a count request in the original run: the nodes that
  // fit it then, in best-fit order.
  std::vector<std::vector<std::pair<double, uint32_t>>> orig_cand_;
  std::vector<std::pair<double, uint32_t>> dirty_cand_;
  std::vector<Q> cone_val_;
};

// ---------------------------------------------------------------- solver

using internal::kNoBid;
using internal::Pick;
using internal::WdpMip;

i128 Value(const Problem& p, const std::vector<Choice>& choice) {
  i128 v = 0;
  for (uint32_t i = 0; i < choice.size(); ++i) {
    if (choice[i].bundle != kNone) v += p.bids[i].value;
  }
  return v;
}

std::vector<Pick> ToPicks(const std::vector<Choice>& choice) {
  std::vector<Pick> picks(choice.size());
  for (size_t i = 0; i < choice.size(); ++i) {
    if (choice[i].bundle == kNone) continue;
    picks[i].bundle = choice[i].bundle;
    picks[i].nodes = choice[i].nodes;
  }
  return picks;
}

std::vector<Choice> ToChoices(const std::vector<Pick>& picks) {
  std::vector<Choice> choice(picks.size());
  for (size_t i = 0; i < picks.size(); ++i) {
    if (picks[i].bundle == internal::kNoBundle) continue;
    choice[i].bundle = picks[i].bundle;
    choice[i].nodes = picks[i].nodes;
  }
  return choice;
}

// Whether an allocation (without any pay) is feasible: CheckOutcome's rule.
bool Feasible(Problem& p, const std::vector<Choice>& choice) {
  std::vector<Money> zero(choice.size());
  return BuildOutcome(p, choice, zero).ok();
}

// An upper bound on the welfare, in nano-credits, from relaxations of the
// capacity rows: per resource, and their sum, the node capacities are pooled
// and each bid takes its smallest bundle fractionally (a fractional knapsack).
double RelaxationBound(const Problem& p) {
  const size_t nb = p.bids.size();
  std::array<double, kDims> pool{};
  for (const Q& c : p.cap) {
    for (int d = 0; d < kDims; ++d) pool[d] += static_cast<double>(c.v[d]);
  }
  // weights[r][i]: bid i's least use of relaxation r (kDims resources, then the sum).
  std::vector<std::array<double, kDims + 1>> weights(nb);
  double best = 0;
  std::vector<char> live(nb, 0);
  for (size_t i = 0; i < nb; ++i) {
    std::array<double, kDims + 1> w;
    w.fill(HUGE_VAL);
    for (const PBundle& b : p.bids[i].bundles) {
      if (!b.possible) continue;
      live[i] = 1;
      std::array<double, kDims> q{};
      if (b.count) {
        for (int d = 0; d < kDims; ++d) q[d] = static_cast<double>(b.q.v[d]) * b.n;
      } else {
        for (const Need& x : b.needs) {
          for (int d = 0; d < kDims; ++d) q[d] += static_cast<double>(x.q.v[d]);
        }
      }
      double sum = 0;
      for (int d = 0; d < kDims; ++d) {
        const double share = pool[d] > 0 ? q[d] / pool[d] : 0;
        w[d] = std::min(w[d], share);
        sum += share;
      }
      w[kDims] = std::min(w[kDims], sum);
    }
    weights[i] = w;
    if (live[i]) best += p.bids[i].dvalue;
  }
  std::vector<std::pair<double, size_t>> order;
  for (int r = 0; r <= kDims; ++r) {
    double room = r < kDims ? 1.0 : static_cast<double>(kDims);
    double bound = 0;
    order.clear();
    for (size_t i = 0; i < nb; ++i) {
      if (!live[i]) continue;
      const double w = weights[i][r];
      if (w <= 0) {
        bound += p.bids[i].dvalue;
      } else {
        order.push_back({p.bids[i].dvalue / w, i});
      }
    }
    std::sort(order.begin(), order.end(), std::greater<>());
    for (const auto& [density, i] : order) {
      if (room <= 0) break;
      const double w = weights[i][r];
      const double take = std::min(1.0, room / w);
      bound += take * p.bids[i].dvalue;
      room -= take * w;
    }
    best = std::min(best, bound);
  }
  return best;
}

// A Lagrangian bound: the capacity rows (each node and resource, divided by
// the capacity) priced by multipliers lambda >= 0. For any lambda,
//   L(lambda) = sum_rows lambda_r + sum_i max(0, max_b (limit_i - cost_b))
// bounds the welfare from above (cost_b = the bundle's priced use; a count
// request takes its `count` cheapest nodes, its min-sites condition dropped,
// which only lowers the cost). Subgradient steps (Polyak, towards the
// incumbent) lower it; `iterations` and `deadline` bound the work.
double LagrangianBound(const Problem& p, double incumbent, int iterations,
                       std::chrono::steady_clock::time_point deadline) {
  const size_t nn = p.cap.size(), nb = p.bids.size();
  std::vector<double> lambda(nn * kDims, 0.0), usage(nn * kDims, 0.0), node_cost(nn, 0.0);
  auto frac = [&](uint32_t n, int d, int64_t q) {
    return p.cap[n].v[d] > 0 ? static_cast<double>(q) / static_cast<double>(p.cap[n].v[d]) : 0.0;
  };
  double best = HUGE_VAL, theta = 1.0;
  int since_better = 0;
  std::vector<std::pair<double, uint32_t>> pick;
  for (int it = 0; it < iterations; ++it) {
    if ((it & 7) == 0 && std::chrono::steady_clock::now() >= deadline) break;
    double l = 0;
    for (double x : lambda) l += x;
    std::fill(usage.begin(), usage.end(), 0.0);
    for (size_t i = 0; i < nb; ++i) {
      double gain = 0;
      const PBundle* arg = nullptr;
      for (const PBundle& b : p.bids[i].bundles) {
        if (!b.possible) continue;
        double cost = 0;
        if (b.count) {
          pick.clear();
          for (uint32_t v : b.from) {
            double c = 0;
            for (int d = 0; d < kDims; ++d) c += lambda[v * kDims + d] * frac(v, d, b.q.v[d]);
            pick.push_back({c, v});
          }
          if (pick.size() < b.n) continue;
          std::nth_element(pick.begin(), pick.begin() + (b.n - 1), pick.end());
          for (uint32_t k = 0; k < b.n; ++k) cost += pick[k].first;
        } else {
          for (const Need& x : b.needs) {
            for (int d = 0; d < kDims; ++d) cost += lambda[x.node * kDims + d] * frac(x.node, d, x.q.v[d]);
          }
        }
        if (p.bids[i].dvalue - cost > gain) {
          gain = p.bids[i].dvalue - cost;
          arg = &b;
        }
      }
      l += gain;
      if (!arg) continue;
      if (arg->count) {
        // The same cheapest nodes as above, recomputed for the chosen bundle.
        pick.clear();
        for (uint32_t v : arg->from) {
          double c = 0;
          for (int d = 0; d < kDims; ++d) c += lambda[v * kDims + d] * frac(v, d, arg->q.v[d]);
          pick.push_back({c, v});
        }
        std::nth_element(pick.begin(), pick.begin() + (arg->n - 1), pick.end());
        for (uint32_t k = 0; k < arg->n; ++k) {
          const uint32_t v = pick[k].second;
          for (int d = 0; d < kDims; ++d) usage[v * kDims + d] += frac(v, d, arg->q.v[d]);
        }
      } else {
        for (const Need& x : arg->needs) {
          for (int d = 0; d < kDims; ++d) usage[x.node * kDims + d] += frac(x.node, d, x.q.v[d]);
        }
      }
    }
    if (l < best && (best == HUGE_VAL || l < best - 1e-9 * best)) {
      best = l;
      since_better = 0;
    } else if (++since_better >= 5) {
      theta /= 2;
      since_better = 0;
    }
    // Subgradient of L: 1 - usage per row (rows of zero capacity stay at 0).
    double norm = 0;
    for (size_t r = 0; r < lambda.size(); ++r) {
      if (p.cap[r / kDims].v[r % kDims] <= 0) continue;
      const double g = 1.0 - usage[r];
      if (lambda[r] > 0 || g < 0) norm += g * g;
    }
    if (norm <= 0 || l <= incumbent) break;  // no direction left, or proven
    const double step = theta * (l - incumbent) / norm;
    for (size_t r = 0; r < lambda.size(); ++r) {
      if (p.cap[r / kDims].v[r % kDims] <= 0) continue;
      lambda[r] = std::max(0.0, lambda[r] - step * (1.0 - usage[r]));
    }
  }
  return best;
}

double Gap(i128 value, double bound) {
  const double v = static_cast<double>(value);
  if (!(bound > v)) return 0;
  // Rounded up to a millionth, so a published gap never understates.
  return std::clamp(std::ceil((bound - v) / bound * 1e6) / 1e6, 0.0, 1.0);
}

using Clock = std::chrono::steady_clock;

double SecondsLeft(Clock::time_point deadline) {
  return std::chrono::duration<double>(deadline - Clock::now()).count();
}

// The greedy tier's payments for an allocation: a greedy-stage winner pays
// its greedy critical value, anyone else its limit.
std::vector<Money> GreedyPayments(const Problem& p, const Greedy& g,
                                  const std::vector<Choice>& choice) {
  std::vector<Money> pay(choice.size());
  for (uint32_t i = 0; i < choice.size(); ++i) {
    if (choice[i].bundle == kNone) continue;
    pay[i] = g.stage_winner(i) ? g.stage_pay(i) : p.bids[i].limit;
  }
  return pay;
}

// The share of a round's time budget its search (solver, Lagrangian bound,
// VCG re-solves) may take; the rest is for what follows the deadline (the
// greedy payments, building and checking the outcome), so the whole clearing
// stays within the budget (about 20 ms on the 10k-bid round).
constexpr double kSearchShare = 0.95;

// The improvement search's moves per (bid, bundle) pair: its effort when the
// time share does not stop it first (small rounds, long budgets), after which
// the solver takes the rest of the time.
constexpr uint64_t kAnnealMovesPerPair = 1000;

// Rounds whose model has fewer columns go to the solver without the
// improvement search first: CBC proves them in milliseconds (the tiny
// rounds of the exhaustive tests have 1-60 columns, CATS 25 x 10 rounds
// 60-140).
constexpr size_t kImproveMinColumns = 64;

Result<RoundOutcome> Clear(const Round& round, const ClearOptions& options, bool use_solver) {
  const Clock::time_point deadline =
      Clock::now() +
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
          kSearchShare * std::max(0.0, options.time_budget_s)));
  Problem p(round);
  Greedy g(p);
  BOURSE_ASSIGN_OR_RETURN(RoundOutcome greedy, g.Run(options.local_search, options.reference_payments));
  std::vector<Choice> best = g.choice();
  i128 value = Value(p, best);
  // The improvement search from `best`, until `until` or its move budget.
  uint64_t pairs = 0;
  for (const PBid& b : p.bids) {
    for (const PBundle& u : b.bundles) pairs += u.possible;
  }
  auto improve = [&](Clock::time_point until, uint64_t seed) {
    if (until <= Clock::now()) return;
    internal::AnnealResult a = internal::Anneal(
        p, best, {.deadline = until, .max_moves = kAnnealMovesPerPair * pairs}, seed);
    if (a.value > value && Feasible(p, a.best)) {
      best = std::move(a.best);
      value = a.value;
    }
  };
  double bound = RelaxationBound(p);
  bool optimal = false;
  bool solver_bound = false;  // the root LP's bound at least
  std::optional<WdpMip> mip;
  const WdpMip::Size size = WdpMip::Estimate(round);
  if (use_solver && options.time_budget_s > 0 && SecondsLeft(deadline) > 0 &&
      size.columns <= options.max_solver_columns &&
      size.nonzeros <= options.max_solver_nonzeros) {
    mip.emplace(round);
  }
  // The improvement search first (its share of what is left once the model
  // is built, less a tenth of the budget kept for a bound), then the solver
  // from its best allocation.
  const bool small = mip && mip->columns() < kImproveMinColumns;
  if (use_solver && options.improve_share > 0 && !small) {
    const double left = SecondsLeft(deadline) - 0.1 * options.time_budget_s;
    if (left > 0) {
      improve(Clock::now() +
                  std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(std::min(1.0, options.improve_share) * left)),
              1);
    }
  }
  if (mip && SecondsLeft(deadline) > 0) {
    const std::vector<Pick> start = ToPicks(best);
    // A tenth of the budget stays for the Lagrangian bound if the root LP
    // does not finish before it. Once the LP is solved its bound is at least
    // as tight as the Lagrangian one (which relaxes the same capacity rows,
    // and the site conditions too), so the branch and bound takes the rest.
    const double reserve = 0.1 * options.time_budget_s;
    const double left = SecondsLeft(deadline);
    Result<internal::WdpResult> r = mip->Solve(kNoBid, &start, left, left - reserve);
    if (r.ok()) {
      std::vector<Choice> found = ToChoices(r->picks);
      const i128 v = Value(p, found);
      if (v >= value && Feasible(p, found)) {
        best = std::move(found);
        value = v;
        optimal = r->optimal;
      }
      bound = std::min(bound, r->bound_nanos);
      solver_bound = r->bound_nanos < HUGE_VAL;
    }
  }
  if (use_solver && !optimal && options.improve_share > 0) {
    // The solver's time limit often leaves part of the budget unused (CBC
    // stops up to 0.1 s early): the improvement search takes it up again
    // from the best allocation, leaving the Lagrangian bound its reserve
    // when the solver gave no bound.
    const double reserve = solver_bound ? 0 : 0.1 * options.time_budget_s;
    improve(deadline -
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(reserve)),
            2);
  }
  if (!optimal) {
    // A tighter bound than the pooled relaxation when the solver did not
    // prove one (the root LP did not finish, or the solver did not run).
    bound = std::min(bound, LagrangianBound(p, static_cast<double>(value), 200, deadline));
  }
  if (optimal) bound = static_cast<double>(value);
  std::vector<Money> pay;
  Mechanism mechanism = Mechanism::kGreedy;
  if (optimal) {
    // VCG: each winner's round without it, solved to its proven optimum.
    pay.assign(best.size(), Money());
    bool all = true;
    for (uint32_t i = 0; i < best.size() && all; ++i) {
      if (best[i].bundle == kNone) continue;
      std::vector<Choice> without = best;
      without[i] = Choice{};
      const i128 floor = value - p.bids[i].value;  // W - limit_i: feasible without i
      const double left = SecondsLeft(deadline);
      if (left <= 0) {
        all = false;
        break;
      }
      const std::vector<Pick> start = ToPicks(without);
      Result<internal::WdpResult> r = mip->Solve(i, &start, left);
      if (!r.ok() || !r->optimal) {
        all = false;
        break;
      }
      std::vector<Choice> alt = ToChoices(r->picks);
      if (alt[i].bundle != kNone || !Feasible(p, alt)) {
        all = false;  // the solver's answer does not check out exactly
        break;
      }
      i128 vcg = std::max(floor, Value(p, alt)) - floor;
      vcg = std::clamp<i128>(vcg, 0, p.bids[i].value);
      BOURSE_ASSIGN_OR_RETURN(pay[i], MoneyFrom128(vcg));
    }
    if (all) mechanism = Mechanism::kVcg;
  }
  if (mechanism != Mechanism::kVcg) pay = GreedyPayments(p, g, best);
  BOURSE_ASSIGN_OR_RETURN(RoundOutcome out, BuildOutcome(p, best, pay));
  out.optimal = optimal;
  out.gap = optimal ? 0 : Gap(value, bound);
  out.mechanism = mechanism;
  return out;
}

std::string BidName(const Round& r, size_t i) {
  return "bids[" + std::to_string(i) + "] (\"" + r.bids[i].id + "\")";
}

}  // namespace

Status ValidateRound(const Round& round) {
  std::unordered_set<std::string> ids;
  for (size_t i = 0; i < round.nodes.size(); ++i) {
    const RoundNode& n = round.nodes[i];
    std::string name = "nodes[" + std::to_string(i) + "]";
    if (n.id.empty()) return core::InvalidArgument(name + ".id: empty");
    if (!ids.insert(n.id).second) {
      return core::InvalidArgument(name + ".id: duplicate node id \"" + n.id + "\"");
    }
    BOURSE_RETURN_IF_ERROR(n.capacity.Validate().WithContext(name + ".capacity"));
  }
  ids.clear();
  const size_t nn = round.nodes.size();
  for (size_t i = 0; i < round.bids.size(); ++i) {
    const RoundBid& b = round.bids[i];
    const std::string name = BidName(round, i);
    if (b.id.empty()) return core::InvalidArgument(name + ".id: empty");
    if (!ids.insert(b.id).second) {
      return core::InvalidArgument(name + ".id: duplicate bid id");
    }
    if (!b.limit.is_positive()) return core::InvalidArgument(name + ".limit: must be positive");
    if (b.bundles.empty()) return core::InvalidArgument(name + ".bundles: empty");
    for (size_t k = 0; k < b.bundles.size(); ++k) {
      const Bundle& u = b.bundles[k];
      const std::string bn = name + ".bundles[" + std::to_string(k) + "]";
      if (u.is_count()) {
        if (!u.items.empty()) return core::InvalidArgument(bn + ": both items and count");
        if (u.from.empty()) return core::InvalidArgument(bn + ".from: empty");
        std::vector<uint32_t> sorted = u.from;
        std::sort(sorted.begin(), sorted.end());
        if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
          return core::InvalidArgument(bn + ".from: a node appears twice");
        }
        if (sorted.back() >= nn) return core::InvalidArgument(bn + ".from: unknown node");
        if (u.count > static_cast<int64_t>(u.from.size())) {
          return core::InvalidArgument(bn + ".count: more than the nodes in from");
        }
        if (u.min_sites < 0 || u.min_sites > u.count) {
          return core::InvalidArgument(bn + ".min_sites: must be in [0, count]");
        }
        BOURSE_RETURN_IF_ERROR(u.res.Validate().WithContext(bn + ".res"));
      } else {
        if (u.count < 0) return core::InvalidArgument(bn + ".count: must be positive");
        if (u.items.empty()) return core::InvalidArgument(bn + ".items: empty");
        for (size_t j = 0; j < u.items.size(); ++j) {
          const std::string in = bn + ".items[" + std::to_string(j) + "]";
          if (u.items[j].node >= nn) return core::InvalidArgument(in + ".node: unknown node");
          BOURSE_RETURN_IF_ERROR(u.items[j].res.Validate().WithContext(in + ".res"));
        }
      }
    }
  }
  return Status();
}

const char* MechanismName(Mechanism m) { return m == Mechanism::kVcg ? "vcg" : "greedy"; }

std::string GapText(double gap) {
  const long long ppm = std::llround(std::clamp(gap, 0.0, 1.0) * 1e6);
  std::string frac = std::to_string(1'000'000 + ppm % 1'000'000).substr(1);  // 6 digits
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  std::string out = std::to_string(ppm / 1'000'000);
  if (!frac.empty()) out += "." + frac;
  return out;
}

Result<RoundOutcome> SolveHeuristic(const Round& round, const ClearOptions& options) {
  BOURSE_RETURN_IF_ERROR(ValidateRound(round));
  return Clear(round, options, /*use_solver=*/false);
}

Result<RoundOutcome> ClearRound(const Round& round, const ClearOptions& options) {
  BOURSE_RETURN_IF_ERROR(ValidateRound(round));
  return Clear(round, options, /*use_solver=*/true);
}

Status CheckOutcome(const Round& round, const RoundOutcome& outcome) {
  const size_t nn = round.nodes.size();
  std::vector<std::array<i128, kDims>> used(nn, {0, 0, 0, 0});
  std::vector<bool> bid_won(round.bids.size(), false);
  Money welfare;
  auto fail = [](std::string m) { return core::FailedPrecondition("outcome: " + m); };
  for (const Winner& w : outcome.winners) {
    if (w.bid >= round.bids.size()) return fail("winner of an unknown bid");
    const RoundBid& bid = round.bids[w.bid];
    const std::string name = "winner " + bid.id;
    if (bid_won[w.bid]) return fail(name + ": wins twice");
    bid_won[w.bid] = true;
    if (w.bundle >= bid.bundles.size()) return fail(name + ": unknown bundle");
    if (w.pay.is_negative() || w.pay > bid.limit) return fail(name + ": pay outside [0, limit]");
    auto sum = welfare.Add(bid.limit);
    if (!sum.ok()) return sum.status();
    welfare = *sum;
    const Bundle& b = bid.bundles[w.bundle];
    auto take = [&](uint32_t node, const ResourceVector& r) -> Status {
      if (node >= nn) return fail(name + ": unknown node");
      if (r.net_max_kbps > round.nodes[node].capacity.net_max_kbps) {
        return fail(name + ": net_max above node " + round.nodes[node].id + "'s ceiling");
      }
      Q q = ToQ(r);
      for (int d = 0; d < kDims; ++d) used[node][d] += q.v[d];
      return Status();
    };
    if (b.is_count()) {
      if (static_cast<int64_t>(w.nodes.size()) != b.count) return fail(name + ": wrong node count");
      std::vector<uint32_t> sorted = w.nodes;
      std::sort(sorted.begin(), sorted.end());
      if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
        return fail(name + ": a node chosen twice");
      }
      std::unordered_set<std::string> sites;
      for (uint32_t n : w.nodes) {
        if (std::find(b.from.begin(), b.from.end(), n) == b.from.end()) {
          return fail(name + ": node not in from");
        }
        sites.insert(round.nodes[n].site);
        BOURSE_RETURN_IF_ERROR(take(n, b.res));
      }
      if (static_cast<int64_t>(sites.size()) < b.min_sites) return fail(name + ": too few sites");
    } else {
      std::vector<uint32_t> want;
      for (const BundleItem& it : b.items) {
        if (std::find(want.begin(), want.end(), it.node) == want.end()) want.push_back(it.node);
        BOURSE_RETURN_IF_ERROR(take(it.node, it.res));
      }
      if (want != w.nodes) return fail(name + ": nodes do not match the bundle's items");
    }
  }
  for (size_t n = 0; n < nn; ++n) {
    Q c = ToQ(round.nodes[n].capacity);
    for (int d = 0; d < kDims; ++d) {
      if (used[n][d] > c.v[d]) return fail("node " + round.nodes[n].id + " over capacity");
    }
  }
  if (welfare != outcome.welfare) return fail("welfare is not the sum of the winners' limits");
  return Status();
}

}  // namespace bourse::auction
