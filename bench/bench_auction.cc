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
//                           cleared by ClearRound (greedy + local search +
//                           critical-value payments).
//   BM_ProportionalShare    Recompute() of 1,000 nodes x 1,000 bidders each
//                           (exact shares -> largest-remainder CPU weights).
//
//   ./bench_auction --benchmark_filter=OrderBook
#include <benchmark/benchmark.h>

#include <vector>

#include "auction/combinatorial.h"
#include "auction/order_book.h"
#include "auction/proportional_share.h"
#include "core/random.h"

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
  for (auto _ : state) {
    auto out = ClearRound(round);
    if (!out.ok()) state.SkipWithError(out.status().ToString().c_str());
    winners = out->winners.size();
    benchmark::DoNotOptimize(winners);
  }
  state.counters["winners"] = static_cast<double>(winners);
}
BENCHMARK(BM_CombinatorialClear)->Unit(benchmark::kMillisecond);

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
