// bench_auction: the market mechanisms of auction/.
//
// Workloads:
//   BM_OrderBookInsert      liquibook's insert test: alternating buys and sells,
//                           prices from two overlapping bands (buys 18.80-19.29,
//                           sells 18.70-19.19 credits), quantities 100-1000 in
//                           hundreds, matching included; 1,000,000 orders per
//                           iteration into a fresh book. items/s = orders/s.
//   BM_OrderBookMixed       exchange-core's mix: 9% GTC limit, 3% IOC, 6% cancel,
//                           82% move, about 1,000 live orders over about 750
//                           price levels; 1,000,000 operations per iteration,
//                           generated beforehand by a simulation against a
//                           book so every target id is live. items/s = ops/s.
//   BM_CombinatorialClear   one sealed-bid round of 10,000 bids (1-3 XOR bundles
//                           of 1-5 node items on a 1,000-node grid, 10% count
//                           requests "any 2-4 of 20 nodes in >= 2 sites")
//                           cleared by ClearRound with the default 1 s budget
//                           (greedy + local search, then CBC; VCG payments if
//                           the optimum is proven, else greedy critical values).
//                           Counters: optimal (0/1), gap, winners.
//   BM_CombinatorialCats/BxN
//                           CATS-like rounds (tests/auction/cats_generator.h:
//                           regions, arbitrary and count requests mixed, 4
//                           nodes per site) of B bids over N nodes, for
//                           25x10, 50x15, 100x30, 1000x100 and 10000x1000;
//                           each iteration clears the next of the size's
//                           rounds (seeds 1..R) with the default 1 s budget.
//                           Counters: ratio = mean welfare / reference, where
//                           the reference is the optimum proven by one long
//                           solve per round outside the timed loop (started
//                           from a long improvement search), or, when
//                           that solve does not prove it, its upper bound
//                           (ref_proven = the fraction of rounds whose
//                           reference is the optimum; below 1 the ratio is a
//                           lower bound on the true one); ratio_known =
//                           mean welfare / the reference solve's best
//                           allocation (equal to ratio where proven, else
//                           an upper bound on the true ratio, capped at 1);
//                           optimal and vcg =
//                           fraction of rounds proven optimal / paid by VCG;
//                           gap = mean reported gap; s_mean and s_max =
//                           seconds per round (wall clock).
//   BM_CombinatorialCatsGreedy/BxN
//                           the same rounds, the greedy tier alone
//                           (time_budget_s = 0), for comparison.
//   BM_ProportionalShare    Recompute() of 1,000 nodes x 1,000 bidders each
//                           (exact shares -> largest-remainder CPU weights).
//
//   ./bench_auction --benchmark_filter=OrderBook
//   ./bench_auction --benchmark_filter=Comb   (minutes: the references' long solves)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "auction/combinatorial.h"
#include "auction/internal/anneal.h"
#include "auction/internal/wdp_mip.h"
#include "auction/order_book.h"
#include "auction/proportional_share.h"
#include "core/random.h"
#include "tests/auction/cats_generator.h"

namespace bourse::auction {
namespace {

using core::Money;

constexpr int64_t kTick = 10'000'000;  // 0.01 credit

struct CountingListener : OrderListener {
  int64_t trades = 0;
  int64_t volume = 0;
  void OnTrade(const Trade& t) override {
    ++trades;
    volume += t.qty;
  }
};

// ---------------------------------------------------------------- insert

std::vector<OrderRequest> LiquibookOrders(size_t n) {
  core::DeterministicRandom rng(1);
  std::vector<OrderRequest> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const bool buy = i % 2 == 0;
    const int64_t ticks = (buy ? 1880 : 1870) + static_cast<int64_t>(rng.Uniform(50));
    v.push_back({.id = i + 1,
                 .owner = 1 + rng.Uniform(1000),
                 .side = buy ? Side::kBuy : Side::kSell,
                 .type = OrderType::kLimit,
                 .tif = TimeInForce::kGtc,
                 .qty = static_cast<int64_t>(1 + rng.Uniform(10)) * 100,
                 .price = Money::FromNanos(ticks * kTick)});
  }
  return v;
}

void BM_OrderBookInsert(benchmark::State& state) {
  const std::vector<OrderRequest> orders = LiquibookOrders(1'000'000);
  int64_t trades = 0;
  for (auto _ : state) {
    CountingListener listener;
    OrderBook book(&listener);
    for (const OrderRequest& o : orders) {
      if (!book.Place(o).ok()) state.SkipWithError("place failed");
    }
    trades += listener.trades;
    benchmark::DoNotOptimize(book.resting_orders());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(orders.size()));
  state.counters["trades_per_order"] =
      static_cast<double>(trades) / static_cast<double>(state.iterations() * orders.size());
}
BENCHMARK(BM_OrderBookInsert)->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------- mixed

struct Op {
  enum Kind : uint8_t { kPlace, kCancel, kMove } kind;
  OrderRequest order;  // kPlace; id and price for kMove; id for kCancel
};

// Tracks live ids of a book so that the generator can target them.
struct LiveSet : OrderListener {
  std::vector<OrderId> ids;
  std::vector<uint32_t> pos;  // by id; UINT32_MAX = not live
  void Add(OrderId id) {
    if (pos.size() <= id) pos.resize(id * 2 + 16, UINT32_MAX);
    if (pos[id] != UINT32_MAX) return;
    pos[id] = static_cast<uint32_t>(ids.size());
    ids.push_back(id);
  }
  void Drop(OrderId id) {
    if (id >= pos.size() || pos[id] == UINT32_MAX) return;
    uint32_t p = pos[id];
    ids[p] = ids.back();
    pos[ids[p]] = p;
    ids.pop_back();
    pos[id] = UINT32_MAX;
  }
  void OnRested(OrderId id, int64_t, int64_t) override { Add(id); }
  void OnTrade(const Trade& t) override {
    if (t.buy_remaining == 0) Drop(t.buy_order);
    if (t.sell_remaining == 0) Drop(t.sell_order);
  }
  void OnCancelled(OrderId id, int64_t, CancelReason) override { Drop(id); }
  void OnMoved(OrderId id, int64_t) override { Drop(id); }  // re-added if it rests
};

struct Mix {
  int64_t gtc = 0, ioc = 0, cancel = 0, move = 0;
};

std::vector<Op> ExchangeCoreOps(size_t n, size_t* levels_seen, Mix* mix) {
  core::DeterministicRandom rng(2);
  LiveSet live;
  OrderBook book(&live);
  std::vector<Op> ops;
  ops.reserve(n + 1000);
  const int64_t mid = 100'000;
  OrderId next = 1;
  auto passive = [&](Side s) {  // one of ~375 levels on each side of the mid
    int64_t off = 1 + static_cast<int64_t>(rng.Uniform(375));
    return (s == Side::kBuy ? mid - off : mid + off) * kTick;
  };
  auto place = [&](Side s, int64_t price, int64_t qty, TimeInForce tif) {
    Op op{Op::kPlace,
          {.id = next++,
           .owner = 1 + rng.Uniform(2000),
           .side = s,
           .type = OrderType::kLimit,
           .tif = tif,
           .qty = qty,
           .price = Money::FromNanos(price)}};
    (void)book.Place(op.order);
    ops.push_back(op);
  };
  // Fill to about 1,000 live orders.
  while (live.ids.size() < 1000) {
    Side s = rng.Uniform(2) ? Side::kBuy : Side::kSell;
    place(s, passive(s), 1 + static_cast<int64_t>(rng.Uniform(100)), TimeInForce::kGtc);
  }
  while (ops.size() < n) {
    uint64_t r = rng.Uniform(100);
    // Hold about 1,000 live orders: a GTC draw becomes a cancel above 1,050
    // live orders and a cancel draw becomes a GTC below 950.
    if (r < 9 && live.ids.size() > 1050) r = 12;
    if (r >= 12 && r < 18 && live.ids.size() < 950) r = 0;
    if (r < 9) {  // GTC, rarely aggressive
      Side s = rng.Uniform(2) ? Side::kBuy : Side::kSell;
      int64_t price =
          rng.Uniform(50) == 0 ? passive(s == Side::kBuy ? Side::kSell : s) : passive(s);
      place(s, price, 1 + static_cast<int64_t>(rng.Uniform(100)), TimeInForce::kGtc);
    } else if (r < 12) {  // IOC, aggressive
      Side s = rng.Uniform(2) ? Side::kBuy : Side::kSell;
      place(s, passive(s == Side::kBuy ? Side::kSell : Side::kBuy),
            1 + static_cast<int64_t>(rng.Uniform(50)), TimeInForce::kIoc);
    } else if (r < 18) {  // cancel
      Op op{Op::kCancel, {.id = live.ids[rng.Uniform(live.ids.size())], .price = Money()}};
      (void)book.Cancel(op.order.id);
      ops.push_back(op);
    } else {  // move within its side, rarely across
      OrderId id = live.ids[rng.Uniform(live.ids.size())];
      auto o = book.Find(id);
      Side s = o->side;
      int64_t price =
          rng.Uniform(200) == 0 ? passive(s == Side::kBuy ? Side::kSell : s) : passive(s);
      Op op{Op::kMove, {.id = id, .price = Money::FromNanos(price)}};
      (void)book.Move(id, op.order.price);
      ops.push_back(op);
    }
  }
  *levels_seen = book.Depth(Side::kBuy).size() + book.Depth(Side::kSell).size();
  for (const Op& op : ops) {
    if (op.kind == Op::kPlace) {
      (op.order.tif == TimeInForce::kGtc ? mix->gtc : mix->ioc)++;
    } else {
      (op.kind == Op::kCancel ? mix->cancel : mix->move)++;
    }
  }
  return ops;
}

void BM_OrderBookMixed(benchmark::State& state) {
  size_t levels = 0;
  Mix mix;
  const std::vector<Op> ops = ExchangeCoreOps(1'000'000, &levels, &mix);
  size_t live = 0;
  for (auto _ : state) {
    CountingListener listener;
    OrderBook book(&listener);
    for (const Op& op : ops) {
      switch (op.kind) {
        case Op::kPlace:
          (void)book.Place(op.order);
          break;
        case Op::kCancel:
          (void)book.Cancel(op.order.id);
          break;
        case Op::kMove:
          (void)book.Move(op.order.id, op.order.price);
          break;
      }
    }
    live = book.resting_orders();
    benchmark::DoNotOptimize(live);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(ops.size()));
  state.counters["live_orders_end"] = static_cast<double>(live);
  state.counters["levels_end"] = static_cast<double>(levels);
  const double total = static_cast<double>(ops.size());
  state.counters["pct_gtc"] = 100.0 * static_cast<double>(mix.gtc) / total;
  state.counters["pct_ioc"] = 100.0 * static_cast<double>(mix.ioc) / total;
  state.counters["pct_cancel"] = 100.0 * static_cast<double>(mix.cancel) / total;
  state.counters["pct_move"] = 100.0 * static_cast<double>(mix.move) / total;
}
BENCHMARK(BM_OrderBookMixed)->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------- combinatorial

Round BigRound(int bids, int nodes) {
  core::DeterministicRandom rng(3);
  const int side = 40;  // grid width; 25 nodes per site
  Round r;
  for (int i = 0; i < nodes; ++i) {
    r.nodes.push_back({"n" + std::to_string(i),
                       "s" + std::to_string(i / 25),
                       {.cpu_mcores = 4000,
                        .mem_mib = 8192,
                        .disk_mib = 100000,
                        .net_min_kbps = 10000,
                        .net_max_kbps = 100000}});
  }
  for (int b = 0; b < bids; ++b) {
    RoundBid bid;
    bid.id = "b" + std::to_string(b);
    bid.bidder = bid.id;
    const int size = 1 + static_cast<int>(rng.Uniform(5));
    const int alts = 1 + static_cast<int>(rng.Uniform(3));
    core::ResourceVector res{.cpu_mcores = 500 * (1 + static_cast<int64_t>(rng.Uniform(4))),
                             .mem_mib = 1024 * (1 + static_cast<int64_t>(rng.Uniform(4))),
                             .disk_mib = 10000,
                             .net_min_kbps = 1000,
                             .net_max_kbps = 10000};
    for (int k = 0; k < alts; ++k) {
      Bundle u;
      uint32_t start = static_cast<uint32_t>(rng.Uniform(nodes));
      for (int s = 0; s < size; ++s) {
        uint32_t n = (start + static_cast<uint32_t>(s % 2 ? s * side : s)) % nodes;
        bool dup = false;
        for (auto& it : u.items) dup |= it.node == n;
        if (!dup) u.items.push_back({n, res});
      }
      bid.bundles.push_back(u);
    }
    if (rng.Uniform(10) == 0) {
      Bundle c;
      c.count = 2 + static_cast<int64_t>(rng.Uniform(3));
      uint32_t start = static_cast<uint32_t>(rng.Uniform(nodes));
      for (uint32_t k = 0; k < 20; ++k) c.from.push_back((start + k * 7) % nodes);
      c.min_sites = 2;
      c.res = res;
      bid.bundles.push_back(c);
    }
    bid.limit = Money::FromNanos(static_cast<int64_t>(rng.Uniform(100'000'000'000)) + 1);
    r.bids.push_back(std::move(bid));
  }
  return r;
}

void BM_CombinatorialClear(benchmark::State& state) {
  const Round round = BigRound(10'000, 1'000);
  size_t winners = 0;
  double gap = 0, optimal = 0;
  for (auto _ : state) {
    auto out = ClearRound(round);
    if (!out.ok()) {
      state.SkipWithError(out.status().ToString().c_str());
      break;
    }
    winners = out->winners.size();
    gap += out->gap;
    optimal += out->optimal;
    benchmark::DoNotOptimize(winners);
  }
  state.counters["winners"] = static_cast<double>(winners);
  state.counters["gap"] = gap / static_cast<double>(state.iterations());
  state.counters["optimal"] = optimal / static_cast<double>(state.iterations());
}
BENCHMARK(BM_CombinatorialClear)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---------------------------------------------------------------- wide count requests

// A round at the broker's term limit (250,000 terms: bids x |from|) made of
// count requests "4 of these nodes in >= 2 sites" over 1,000 nodes in sites of
// 4, each from a window of `from` consecutive nodes, with room for nearly
// every bid: best fit stacks the placements, so each winner's critical value
// simulates much of the run without it. The greedy tier's payments are
// computed before the search and are not bound by the budget.
Round WideCountRound(int bids, int from) {
  Round r;
  for (int v = 0; v < 1000; ++v) {
    r.nodes.push_back({"n" + std::to_string(v),
                       "s" + std::to_string(v / 4),
                       {.cpu_mcores = 16'000,
                        .mem_mib = 65'536,
                        .disk_mib = 1000,
                        .net_min_kbps = 1000,
                        .net_max_kbps = 100'000}});
  }
  for (int i = 0; i < bids; ++i) {
    Bundle u;
    u.count = 4;
    u.min_sites = 2;
    u.res = {.cpu_mcores = 1000 + 500 * (i % 3),
             .mem_mib = 1024,
             .disk_mib = 0,
             .net_min_kbps = 0,
             .net_max_kbps = 1000};
    for (int v = 0; v < from; ++v) u.from.push_back(static_cast<uint32_t>((v + i * 13) % 1000));
    r.bids.push_back({.id = "b" + std::to_string(i),
                      .bidder = "u" + std::to_string(i),
                      .limit = Money::FromNanos(1'000'000 + (i * 7919) % 100'000),
                      .bundles = {u}});
  }
  return r;
}

void BM_CombinatorialWideCounts(benchmark::State& state) {
  const Round round = WideCountRound(static_cast<int>(state.range(0)),
                                     static_cast<int>(state.range(1)));
  const double budget_s = static_cast<double>(state.range(2)) / 1000;
  size_t winners = 0;
  for (auto _ : state) {
    auto out = ClearRound(round, {.time_budget_s = budget_s});
    if (!out.ok()) {
      state.SkipWithError(out.status().ToString().c_str());
      break;
    }
    winners = out->winners.size();
    benchmark::DoNotOptimize(winners);
  }
  state.counters["winners"] = static_cast<double>(winners);
}
// Args: bids, |from|, budget in ms (0: the greedy tier alone).
BENCHMARK(BM_CombinatorialWideCounts)
    ->ArgsProduct({{250}, {1000}, {0, 1000}})
    ->ArgsProduct({{1000}, {250}, {0, 1000}})
    ->ArgsProduct({{2500}, {100}, {0, 1000}})
    ->ArgNames({"bids", "from", "budget_ms"})
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---------------------------------------------------------------- CATS-like sizes

struct CatsSize {
  int bids;
  int nodes;
  int rounds;          // seeds 1..rounds
  int iterations;      // timed clearings (cycling over the rounds)
  double reference_s;  // budget of the reference solve of each round
};
constexpr CatsSize kCatsSizes[] = {
    {25, 10, 20, 20, 20}, {50, 15, 10, 10, 20},       {100, 30, 5, 5, 30},
    {1000, 100, 2, 2, 20}, {10000, 1000, 1, 2, 10},
};

struct CatsReference {
  std::vector<Round> rounds;
  std::vector<double> best;   // nano-credits: the proven optimum or the bound
  std::vector<double> known;  // nano-credits: the reference solve's best allocation
  int proven = 0;
};

double Nanos(const Money& m) { return m.nanos().convert_to<double>(); }

// Built once per size and shared by both benchmarks (outside timed loops).
const CatsReference& ReferenceFor(size_t size) {
  static std::map<size_t, CatsReference> cache;
  auto it = cache.find(size);
  if (it != cache.end()) return it->second;
  const CatsSize& z = kCatsSizes[size];
  CatsReference ref;
  for (int s = 1; s <= z.rounds; ++s) {
    auto r = testkit::GenerateCatsRound({.bids = z.bids,
                                         .nodes = z.nodes,
                                         .nodes_per_site = 4,
                                         .seed = static_cast<uint64_t>(s),
                                         .mix = {}});
    ref.rounds.push_back(*r);
    // Started from a long improvement search (20,000 moves per bid and
    // bundle, ten times what a clearing allows itself, at most 5 million) from the greedy
    // tier's allocation, so the long solve always has a good solution to
    // improve (without one CBC may end with none).
    std::vector<internal::Pick> start(r->bids.size());
    auto greedy = SolveHeuristic(*r);
    if (greedy.ok()) {
      std::vector<internal::Choice> choice(r->bids.size());
      for (const Winner& w : greedy->winners) choice[w.bid] = {w.bundle, w.nodes};
      internal::Problem problem(*r);
      uint64_t pairs = 0;
      for (const RoundBid& b : r->bids) pairs += b.bundles.size();
      const internal::AnnealResult a = internal::Anneal(
          problem, choice, {.max_moves = std::min<uint64_t>(20'000 * pairs, 5'000'000)}, 7);
      for (uint32_t i = 0; i < a.best.size(); ++i) {
        if (a.best[i].bundle != internal::kNone) start[i] = {a.best[i].bundle, a.best[i].nodes};
      }
    }
    internal::WdpMip mip(ref.rounds.back());
    auto res = mip.Solve(internal::kNoBid, &start, z.reference_s);
    double best = res.ok() ? res->bound_nanos : std::nan("");  // NaN: no reference
    double known = res.ok() ? 0 : std::nan("");
    if (res.ok()) {
      for (uint32_t i = 0; i < res->picks.size(); ++i) {
        if (res->picks[i].bundle != internal::kNoBundle) known += Nanos(r->bids[i].limit);
      }
    }
    if (res.ok() && res->optimal) {
      best = known;
      ++ref.proven;
    }
    ref.best.push_back(best);
    ref.known.push_back(known);
  }
  return cache.emplace(size, std::move(ref)).first->second;
}

void CatsClear(benchmark::State& state, size_t size, double budget_s) {
  const CatsReference& ref = ReferenceFor(size);
  double ratio = 0, ratio_known = 0, optimal = 0, vcg = 0, gap = 0, seconds = 0, s_max = 0;
  size_t k = 0, with_ref = 0, with_known = 0;
  for (auto _ : state) {
    const size_t i = k++ % ref.rounds.size();
    const auto t0 = std::chrono::steady_clock::now();
    auto out = ClearRound(ref.rounds[i], {.time_budget_s = budget_s});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!out.ok()) {
      state.SkipWithError(out.status().ToString().c_str());
      break;
    }
    // NaN: that round has no reference; infinite: its solve found no bound
    // (the root LP did not finish), but its best allocation still counts.
    if (std::isfinite(ref.best[i]) && ref.best[i] > 0) {
      ratio += Nanos(out->welfare) / ref.best[i];
      ++with_ref;
    }
    if (ref.known[i] > 0) {
      ratio_known += std::min(1.0, Nanos(out->welfare) / ref.known[i]);
      ++with_known;
    }
    optimal += out->optimal;
    vcg += out->mechanism == Mechanism::kVcg;
    gap += out->gap;
    seconds += s;
    s_max = std::max(s_max, s);
  }
  const double n = static_cast<double>(std::max<size_t>(k, 1));
  state.counters["ratio"] = with_ref ? ratio / static_cast<double>(with_ref) : std::nan("");
  state.counters["ratio_known"] =
      with_known ? ratio_known / static_cast<double>(with_known) : std::nan("");
  state.counters["optimal"] = optimal / n;
  state.counters["vcg"] = vcg / n;
  state.counters["gap"] = gap / n;
  state.counters["s_mean"] = seconds / n;
  state.counters["s_max"] = s_max;
  state.counters["ref_proven"] =
      static_cast<double>(ref.proven) / static_cast<double>(ref.rounds.size());
}

[[maybe_unused]] const bool kCatsRegistered = [] {
  for (size_t i = 0; i < std::size(kCatsSizes); ++i) {
    const CatsSize& z = kCatsSizes[i];
    const std::string size = std::to_string(z.bids) + "x" + std::to_string(z.nodes);
    benchmark::RegisterBenchmark(("BM_CombinatorialCats/" + size).c_str(), CatsClear, i, 1.0)
        ->Iterations(z.iterations)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_CombinatorialCatsGreedy/" + size).c_str(), CatsClear, i, 0.0)
        ->Iterations(z.iterations)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  return true;
}();

// ---------------------------------------------------------------- proportional

void BM_ProportionalShare(benchmark::State& state) {
  core::DeterministicRandom rng(4);
  std::vector<ShareNode> nodes;
  for (int n = 0; n < 1000; ++n) {
    auto node = ShareNode::Create(10'000, Money::FromNanos(1'000'000));
    for (uint64_t b = 0; b < 1000; ++b) {
      (void)node->SetBid(b, Money::FromNanos(1 + static_cast<int64_t>(rng.Uniform(1'000'000'000))),
                         Money::FromNanos(1'000'000'000'000));
    }
    nodes.push_back(std::move(*node));
  }
  for (auto _ : state) {
    for (ShareNode& node : nodes) node.Recompute();
    benchmark::DoNotOptimize(nodes[0].units_of(0));
  }
  state.SetItemsProcessed(state.iterations() * 1000 * 1000);
}
BENCHMARK(BM_ProportionalShare)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bourse::auction

BENCHMARK_MAIN();
