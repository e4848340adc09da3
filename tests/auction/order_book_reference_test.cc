// The OrderBook against a deliberately simple reference book (one vector of
// orders, linear scans for the best price and the oldest order) over at least
// 1,000,000 random operations: same trades in the same order, same
// cancellations, same resting book. An escrow hook that refuses some fills and
// rests by a fixed rule runs in both.
//
// BOURSE_REF_OPS overrides the operation count (e.g. to run longer).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <tuple>
#include <vector>

#include "auction/order_book.h"
#include "core/random.h"

namespace bourse::auction {
namespace {

using core::Money;

// The refusal rule, shared by both books.
bool RefuseFill(OrderId buy, OrderId sell, int64_t qty) { return (buy * 7 + sell + qty) % 23 == 0; }
bool RefuseRest(OrderId id, int64_t qty) { return (id + qty) % 19 == 0; }

using Event = std::tuple<char, OrderId, OrderId, int64_t, int64_t>;  // kind, a, b, qty, price

class RefBook {
 public:
  struct Order {
    OrderId id;
    OwnerId owner;
    Side side;
    int64_t price;
    int64_t qty;
    uint64_t seq;
  };
  std::vector<Event> events;

  bool Place(OrderId id, OwnerId owner, Side side, bool market, bool gtc, int64_t price,
             int64_t qty) {
    if (qty <= 0 || Find(id) != orders_.end()) return false;
    if (!market) {
      int64_t n;
      if (price <= 0 || __builtin_mul_overflow(price, qty, &n)) return false;
    }
    Execute(id, owner, side, market, !market && gtc, price, qty);
    return true;
  }
  bool Cancel(OrderId id) {
    auto it = Find(id);
    if (it == orders_.end()) return false;
    events.emplace_back('c', id, 0, it->qty, 0);
    orders_.erase(it);
    return true;
  }
  bool Reduce(OrderId id, int64_t qty) {
    auto it = Find(id);
    if (qty <= 0 || it == orders_.end()) return false;
    if (qty >= it->qty) {
      events.emplace_back('z', id, 0, it->qty, 0);
      orders_.erase(it);
    } else {
      it->qty -= qty;
    }
    return true;
  }
  bool Move(OrderId id, int64_t price) {
    auto it = Find(id);
    if (it == orders_.end() || price <= 0) return false;
    Order o = *it;
    orders_.erase(it);
    Execute(o.id, o.owner, o.side, false, true, price, o.qty);
    return true;
  }
  // Priority order per side, as OrderBook::Orders reports it.
  std::vector<RestingOrder> Orders(Side side) const {
    std::vector<Order> v;
    for (const Order& o : orders_) {
      if (o.side == side) v.push_back(o);
    }
    std::sort(v.begin(), v.end(), [&](const Order& a, const Order& b) {
      if (a.price != b.price) return side == Side::kBuy ? a.price > b.price : a.price < b.price;
      return a.seq < b.seq;
    });
    std::vector<RestingOrder> out;
    for (const Order& o : v) out.push_back({o.id, o.owner, o.side, o.qty, o.price});
    return out;
  }
  const std::vector<Order>& orders() const { return orders_; }

 private:
  std::vector<Order>::iterator Find(OrderId id) {
    return std::find_if(orders_.begin(), orders_.end(), [&](const Order& o) { return o.id == id; });
  }
  void Execute(OrderId id, OwnerId owner, Side side, bool market, bool rest, int64_t price,
               int64_t qty) {
    while (qty > 0) {
      // Best opposite order by linear scan.
      int best = -1;
      for (size_t i = 0; i < orders_.size(); ++i) {
        const Order& o = orders_[i];
        if (o.side == side) continue;
        if (best < 0) {
          best = static_cast<int>(i);
          continue;
        }
        const Order& b = orders_[best];
        bool better = side == Side::kBuy ? o.price < b.price : o.price > b.price;
        if (better || (o.price == b.price && o.seq < b.seq)) best = static_cast<int>(i);
      }
      if (best < 0) break;
      Order& r = orders_[best];
      if (!market && (side == Side::kBuy ? r.price > price : r.price < price)) break;
      if (r.owner == owner) {
        events.emplace_back('s', r.id, 0, r.qty, 0);
        orders_.erase(orders_.begin() + best);
        continue;
      }
      int64_t q = std::min(qty, r.qty);
      OrderId buy = side == Side::kBuy ? id : r.id;
      OrderId sell = side == Side::kBuy ? r.id : id;
      if (RefuseFill(buy, sell, q)) {
        events.emplace_back('r', id, 0, qty, 0);
        return;
      }
      events.emplace_back('t', buy, sell, q, r.price);
      qty -= q;
      r.qty -= q;
      if (r.qty == 0) orders_.erase(orders_.begin() + best);
    }
    if (qty == 0) return;
    if (!rest) {
      events.emplace_back('u', id, 0, qty, 0);
      return;
    }
    if (RefuseRest(id, qty)) {
      events.emplace_back('r', id, 0, qty, 0);
      return;
    }
    orders_.push_back({id, owner, side, price, qty, next_seq_++});
  }

  std::vector<Order> orders_;
  uint64_t next_seq_ = 0;
};

// Records the real book's events in the reference's vocabulary.
struct Tape : OrderListener, EscrowHook {
  std::vector<Event> events;
  void OnTrade(const Trade& t) override {
    events.emplace_back('t', t.buy_order, t.sell_order, t.qty, t.price_nanos);
  }
  void OnCancelled(OrderId id, int64_t qty, CancelReason r) override {
    char k = r == CancelReason::kRequested       ? 'c'
             : r == CancelReason::kReducedToZero ? 'z'
             : r == CancelReason::kSelfTrade     ? 's'
             : r == CancelReason::kEscrowRefused ? 'r'
                                                 : 'u';
    events.emplace_back(k, id, 0, qty, 0);
  }
  bool ReserveResting(const EscrowRequest& r) override {
    EXPECT_EQ(r.credits_nanos, r.side == Side::kBuy ? r.price_nanos * r.qty : 0);
    return !RefuseRest(r.order, r.qty);
  }
  bool SettleFill(const Trade& t) override { return !RefuseFill(t.buy_order, t.sell_order, t.qty); }
  void ReleaseResting(const EscrowRequest&) override {}
};

int64_t OpCount() {
  if (const char* env = std::getenv("BOURSE_REF_OPS")) return std::atoll(env);
  return 1'000'000;
}

TEST(OrderBookReferenceTest, MillionRandomOperationsMatchTheReferenceBook) {
  const int64_t ops = OpCount();
  core::DeterministicRandom rng(20261124);
  RefBook ref;
  Tape tape;
  OrderBook book(&tape, &tape);
  OrderId next_id = 1;
  int64_t trades = 0;
  auto price = [&] { return 1'000'000'000 + static_cast<int64_t>(rng.Uniform(21)) * 10'000'000; };
  for (int64_t op = 0; op < ops; ++op) {
    const uint64_t kind = rng.Uniform(100);
    // Pick a target: usually a resting order, sometimes an unknown or old id.
    auto target = [&]() -> OrderId {
      const auto& o = ref.orders();
      if (!o.empty() && rng.Uniform(10) != 0) return o[rng.Uniform(o.size())].id;
      return 1 + rng.Uniform(next_id);
    };
    bool ref_ok = false, ok = false;
    if (kind < 50) {
      // Keep the book shallow enough for the reference's linear scans.
      const bool market = rng.Uniform(20) == 0;
      const bool gtc = ref.orders().size() < 60 ? rng.Uniform(5) != 0 : rng.Uniform(5) == 0;
      OrderId id = rng.Uniform(200) == 0 ? target() : next_id++;
      OrderRequest r{.id = id,
                     .owner = 1 + rng.Uniform(6),
                     .side = rng.Uniform(2) ? Side::kBuy : Side::kSell,
                     .type = market ? OrderType::kMarket : OrderType::kLimit,
                     .tif = gtc ? TimeInForce::kGtc : TimeInForce::kIoc,
                     .qty = static_cast<int64_t>(rng.Uniform(20)),  // 0 is rejected
                     .price = Money::FromNanos(price())};
      ref_ok = ref.Place(r.id, r.owner, r.side, market, gtc, static_cast<int64_t>(r.price.nanos()),
                         r.qty);
      ok = book.Place(r).ok();
    } else if (kind < 65) {
      OrderId id = target();
      ref_ok = ref.Cancel(id);
      ok = book.Cancel(id).ok();
    } else if (kind < 78) {
      OrderId id = target();
      int64_t q = static_cast<int64_t>(rng.Uniform(12));
      ref_ok = ref.Reduce(id, q);
      ok = book.Reduce(id, q).ok();
    } else {
      OrderId id = target();
      int64_t p = price();
      ref_ok = ref.Move(id, p);
      ok = book.Move(id, Money::FromNanos(p)).ok();
    }
    ASSERT_EQ(ok, ref_ok) << "op " << op;
    ASSERT_EQ(tape.events, ref.events) << "op " << op;
    trades += std::count_if(tape.events.begin(), tape.events.end(),
                            [](const Event& e) { return std::get<0>(e) == 't'; });
    tape.events.clear();
    ref.events.clear();
    if (op % 1000 == 0 || op + 1 == ops) {
      ASSERT_EQ(book.Orders(Side::kBuy), ref.Orders(Side::kBuy)) << "op " << op;
      ASSERT_EQ(book.Orders(Side::kSell), ref.Orders(Side::kSell)) << "op " << op;
      // Never crossed.
      if (book.BestBidNanos() && book.BestAskNanos()) {
        ASSERT_LT(*book.BestBidNanos(), *book.BestAskNanos());
      }
    }
  }
  EXPECT_GT(trades, ops / 10);  // the workload really trades
  EXPECT_EQ(book.resting_orders(), ref.orders().size());
}

}  // namespace
}  // namespace bourse::auction
