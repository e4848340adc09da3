// Unit tests of every OrderBook rule.
#include "auction/order_book.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bourse::auction {
namespace {

using core::Money;

Money P(const char* s) { return *Money::Parse(s); }
int64_t N(const char* s) { return static_cast<int64_t>(P(s).nanos()); }

struct Recorder : OrderListener {
  std::vector<Trade> trades;
  std::vector<std::pair<OrderId, RejectReason>> rejects;
  std::vector<std::tuple<OrderId, int64_t, CancelReason>> cancels;
  std::vector<OrderId> accepted;
  void OnAccepted(const OrderRequest& o) override { accepted.push_back(o.id); }
  void OnRejected(OrderId id, RejectReason r) override { rejects.emplace_back(id, r); }
  void OnTrade(const Trade& t) override { trades.push_back(t); }
  void OnCancelled(OrderId id, int64_t q, CancelReason r) override {
    cancels.emplace_back(id, q, r);
  }
};

OrderRequest Limit(OrderId id, OwnerId owner, Side side, int64_t qty, const char* price,
                   TimeInForce tif = TimeInForce::kGtc) {
  return {.id = id,
          .owner = owner,
          .side = side,
          .type = OrderType::kLimit,
          .tif = tif,
          .qty = qty,
          .price = P(price)};
}
OrderRequest Market(OrderId id, OwnerId owner, Side side, int64_t qty) {
  return {.id = id,
          .owner = owner,
          .side = side,
          .type = OrderType::kMarket,
          .tif = TimeInForce::kIoc,
          .qty = qty,
          .price = Money()};
}

class OrderBookTest : public ::testing::Test {
 protected:
  Recorder rec;
  OrderBook book{&rec};
};

TEST_F(OrderBookTest, RestsWithoutCrossAndReportsBestAndDepth) {
  ASSERT_TRUE(book.Place(Limit(1, 1, Side::kBuy, 10, "1.5")).ok());
  ASSERT_TRUE(book.Place(Limit(2, 1, Side::kBuy, 5, "1.5")).ok());
  ASSERT_TRUE(book.Place(Limit(3, 1, Side::kBuy, 7, "1.4")).ok());
  ASSERT_TRUE(book.Place(Limit(4, 2, Side::kSell, 3, "1.6")).ok());
  EXPECT_TRUE(rec.trades.empty());
  EXPECT_EQ(*book.BestBid(), P("1.5"));
  EXPECT_EQ(*book.BestAsk(), P("1.6"));
  auto d = book.Depth(Side::kBuy);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], (DepthLevel{N("1.5"), 15, 2}));
  EXPECT_EQ(d[1], (DepthLevel{N("1.4"), 7, 1}));
  EXPECT_EQ(book.Depth(Side::kBuy, 1).size(), 1u);
  EXPECT_EQ(book.resting_orders(), 4u);
}

TEST_F(OrderBookTest, PriceTimePriorityAndRestingPrice) {
  ASSERT_TRUE(book.Place(Limit(1, 1, Side::kSell, 5, "1.6")).ok());
  ASSERT_TRUE(book.Place(Limit(2, 2, Side::kSell, 5, "1.5")).ok());
  ASSERT_TRUE(book.Place(Limit(3, 3, Side::kSell, 5, "1.5")).ok());
  ASSERT_TRUE(book.Place(Limit(4, 4, Side::kBuy, 12, "1.7")).ok());
  ASSERT_EQ(rec.trades.size(), 3u);
  EXPECT_EQ(rec.trades[0].sell_order, 2u);  // best price first
  EXPECT_EQ(rec.trades[0].price_nanos, N("1.5"));
  EXPECT_EQ(rec.trades[1].sell_order, 3u);  // then time
  EXPECT_EQ(rec.trades[2].sell_order, 1u);
  EXPECT_EQ(rec.trades[2].qty, 2);
  EXPECT_EQ(rec.trades[2].price_nanos, N("1.6"));  // the resting order's price
  EXPECT_TRUE(rec.trades[2].buy_filled());
  EXPECT_FALSE(rec.trades[2].sell_filled());  // partially filled
  EXPECT_EQ(rec.trades[2].sell_remaining, 3);
  EXPECT_EQ(book.Find(1)->qty, 3);
  EXPECT_FALSE(book.BestBid().has_value());
}

TEST_F(OrderBookTest, GtcRemainderRestsIocAndMarketRemainderCancelled) {
  ASSERT_TRUE(book.Place(Limit(1, 1, Side::kSell, 5, "2")).ok());
  ASSERT_TRUE(book.Place(Limit(2, 2, Side::kBuy, 8, "2", TimeInForce::kIoc)).ok());
  EXPECT_EQ(rec.trades.size(), 1u);
  EXPECT_FALSE(book.Find(2).has_value());
  ASSERT_EQ(rec.cancels.size(), 1u);
  EXPECT_EQ(rec.cancels[0],
            std::make_tuple(OrderId{2}, int64_t{3}, CancelReason::kUnfilledRemainder));
  ASSERT_TRUE(book.Place(Market(3, 2, Side::kBuy, 4)).ok());  // empty book
  EXPECT_FALSE(book.Find(3).has_value());
  EXPECT_EQ(std::get<2>(rec.cancels.back()), CancelReason::kUnfilledRemainder);
  ASSERT_TRUE(book.Place(Limit(4, 2, Side::kBuy, 8, "2")).ok());
  EXPECT_EQ(book.Find(4)->qty, 8);
}

TEST_F(OrderBookTest, MarketOrderSweepsLevelsButNeverRests) {
  ASSERT_TRUE(book.Place(Limit(1, 1, Side::kBuy, 5, "3")).ok());
  ASSERT_TRUE(book.Place(Limit(2, 1, Side::kBuy, 5, "1")).ok());
  // A market order with any tif never rests.
  OrderRequest m = Market(3, 2, Side::kSell, 20);
  m.tif = TimeInForce::kGtc;
  ASSERT_TRUE(book.Place(m).ok());
  ASSERT_EQ(rec.trades.size(), 2u);
  EXPECT_EQ(rec.trades[1].price_nanos, N("1"));
  EXPECT_EQ(book.resting_orders(), 0u);
  EXPECT_FALSE(book.Find(3).has_value());
}

TEST_F(OrderBookTest, SelfTradePreventionCancelsResting) {
  ASSERT_TRUE(book.Place(Limit(1, 7, Side::kSell, 5, "1")).ok());
  ASSERT_TRUE(book.Place(Limit(2, 8, Side::kSell, 5, "1.1")).ok());
  ASSERT_TRUE(book.Place(Limit(3, 7, Side::kBuy, 6, "2")).ok());
  ASSERT_EQ(rec.cancels.size(), 1u);
  EXPECT_EQ(rec.cancels[0], std::make_tuple(OrderId{1}, int64_t{5}, CancelReason::kSelfTrade));
  ASSERT_EQ(rec.trades.size(), 1u);
  EXPECT_EQ(rec.trades[0].sell_order, 2u);
  EXPECT_EQ(book.Find(3)->qty, 1);
}

TEST_F(OrderBookTest, CancelReduceKeepPlaceAndRejections) {
  ASSERT_TRUE(book.Place(Limit(1, 1, Side::kBuy, 10, "1")).ok());
  ASSERT_TRUE(book.Place(Limit(2, 2, Side::kBuy, 10, "1")).ok());
  ASSERT_TRUE(book.Reduce(1, 4).ok());
  EXPECT_EQ(book.Find(1)->qty, 6);
  ASSERT_TRUE(book.Place(Limit(3, 3, Side::kSell, 6, "1")).ok());
  ASSERT_EQ(rec.trades.size(), 1u);
  EXPECT_EQ(rec.trades[0].buy_order, 1u);  // reduce kept its place
  EXPECT_FALSE(book.Find(1).has_value());
  ASSERT_TRUE(book.Reduce(2, 10).ok());  // all of it cancels
  EXPECT_EQ(std::get<2>(rec.cancels.back()), CancelReason::kReducedToZero);
  EXPECT_EQ(book.Cancel(2).code(), core::StatusCode::kNotFound);
  EXPECT_EQ(book.Reduce(99, 1).code(), core::StatusCode::kNotFound);
  EXPECT_EQ(book.Move(99, P("1")).code(), core::StatusCode::kNotFound);
  EXPECT_EQ(rec.rejects.back().second, RejectReason::kNotResting);
  ASSERT_TRUE(book.Place(Limit(4, 1, Side::kSell, 3, "5")).ok());
  EXPECT_EQ(book.Place(Limit(4, 1, Side::kSell, 3, "5")).code(), core::StatusCode::kAlreadyExists);
  EXPECT_EQ(book.Place(Limit(5, 1, Side::kSell, 0, "5")).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(book.Place(Limit(5, 1, Side::kSell, 1, "-1")).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(book.Place(Limit(5, 1, Side::kSell, 1, "0")).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(book.Reduce(4, 0).code(), core::StatusCode::kInvalidArgument);
  ASSERT_TRUE(book.Cancel(4).ok());
  EXPECT_EQ(book.resting_orders(), 0u);
}

TEST_F(OrderBookTest, NotionalOverflowIsAnErrorNeverAWrap) {
  // 10^9 credits per unit = 10^18 nanos; times 10 overflows int64.
  EXPECT_EQ(book.Place(Limit(1, 1, Side::kBuy, 10, "1000000000")).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(rec.rejects.back().second, RejectReason::kNotionalOverflow);
  ASSERT_TRUE(book.Place(Limit(2, 1, Side::kBuy, 9, "1000000000")).ok());
  // Price beyond int64 nanos.
  EXPECT_EQ(book.Place(Limit(3, 1, Side::kBuy, 1, "10000000000")).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(rec.rejects.back().second, RejectReason::kInvalidPrice);
  ASSERT_TRUE(book.Place(Limit(4, 1, Side::kBuy, 1000, "1")).ok());
  EXPECT_EQ(book.Move(4, P("1000000000")).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(book.Find(4)->price_nanos, N("1"));  // untouched
}

TEST_F(OrderBookTest, MoveGoesToBackOfNewLevelAndTradesAtOnce) {
  ASSERT_TRUE(book.Place(Limit(1, 1, Side::kBuy, 5, "1")).ok());
  ASSERT_TRUE(book.Place(Limit(2, 2, Side::kBuy, 5, "2")).ok());
  ASSERT_TRUE(book.Move(1, P("2")).ok());
  auto orders = book.Orders(Side::kBuy);
  ASSERT_EQ(orders.size(), 2u);
  EXPECT_EQ(orders[0].id, 2u);
  EXPECT_EQ(orders[1].id, 1u);
  ASSERT_TRUE(book.Place(Limit(3, 3, Side::kSell, 4, "3")).ok());
  ASSERT_TRUE(book.Move(3, P("2")).ok());  // crosses: trades with 2 at 2
  ASSERT_EQ(rec.trades.size(), 1u);
  EXPECT_EQ(rec.trades[0].buy_order, 2u);
  EXPECT_EQ(rec.trades[0].sell_order, 3u);
  EXPECT_EQ(rec.trades[0].aggressor, Side::kSell);
  EXPECT_FALSE(book.Find(3).has_value());
  // Moving to the same price still goes to the back.
  ASSERT_TRUE(book.Move(2, P("2")).ok());
  EXPECT_EQ(book.Orders(Side::kBuy)[0].id, 1u);
}

TEST_F(OrderBookTest, TombstoneLevelsAreReusedAndNeverReported) {
  for (int round = 0; round < 3; ++round) {
    for (OrderId i = 1; i <= 50; ++i) {
      ASSERT_TRUE(
          book.Place(Limit(round * 100 + i, 1, Side::kBuy, 1, std::to_string(i).c_str())).ok());
    }
    for (OrderId i = 2; i <= 49; ++i) ASSERT_TRUE(book.Cancel(round * 100 + i).ok());
    auto d = book.Depth(Side::kBuy);
    ASSERT_EQ(d.size(), 2u) << round;
    EXPECT_EQ(d[0], (DepthLevel{N("50"), round + 1, static_cast<uint32_t>(round + 1)}));
    EXPECT_EQ(d[1], (DepthLevel{N("1"), round + 1, static_cast<uint32_t>(round + 1)}));
  }
}

TEST_F(OrderBookTest, ManyEmptiedLevelsAreCompactedAndTheBookStaysExact) {
  // 10,000 price levels per side, then most inner ones emptied: the
  // tombstones are compacted away and matching still walks the right levels.
  for (OrderId i = 0; i < 10000; ++i) {
    ASSERT_TRUE(book.Place({.id = 1 + i,
                            .owner = 1,
                            .side = Side::kBuy,
                            .qty = 1,
                            .price = Money::FromNanos(1000 + static_cast<int64_t>(i))})
                    .ok());
    ASSERT_TRUE(book.Place({.id = 100001 + i,
                            .owner = 2,
                            .side = Side::kSell,
                            .qty = 1,
                            .price = Money::FromNanos(20000 + static_cast<int64_t>(i))})
                    .ok());
  }
  for (OrderId i = 0; i < 10000; ++i) {
    if (i % 100 != 0) {
      ASSERT_TRUE(book.Cancel(1 + i).ok());
      ASSERT_TRUE(book.Cancel(100001 + i).ok());
    }
  }
  EXPECT_EQ(book.Depth(Side::kBuy).size(), 100u);
  EXPECT_EQ(book.Depth(Side::kSell).size(), 100u);
  EXPECT_EQ(*book.BestBidNanos(), 1000 + 9900);
  EXPECT_EQ(*book.BestAskNanos(), 20000);
  // A market buy of 3 takes the three best asks in price order.
  ASSERT_TRUE(book.Place(Market(300000, 3, Side::kBuy, 3)).ok());
  ASSERT_EQ(rec.trades.size(), 3u);
  EXPECT_EQ(rec.trades[0].price_nanos, 20000);
  EXPECT_EQ(rec.trades[1].price_nanos, 20100);
  EXPECT_EQ(rec.trades[2].price_nanos, 20200);
  // Prices come back into compacted space.
  ASSERT_TRUE(book.Place(Limit(300001, 4, Side::kBuy, 2, "0.000001050")).ok());
  EXPECT_EQ(book.Depth(Side::kBuy).size(), 101u);
  EXPECT_EQ(book.Orders(Side::kBuy).size(), 101u);
}

// Escrow hook: records every call and refuses what it is told to.
struct Escrow : EscrowHook {
  std::vector<std::string> log;
  int64_t refuse_fill_qty = -1;
  OrderId refuse_rest = 0;
  bool ReserveResting(const EscrowRequest& r) override {
    log.push_back("reserve " + std::to_string(r.order) + " " + std::to_string(r.qty) + " " +
                  r.credits().ToMinimalString());
    return r.order != refuse_rest;
  }
  bool SettleFill(const Trade& t) override {
    bool ok = t.qty != refuse_fill_qty;
    log.push_back(std::string(ok ? "settle " : "refuse ") + std::to_string(t.buy_order) + "/" +
                  std::to_string(t.sell_order) + " " + std::to_string(t.qty) + " " +
                  t.notional().ToMinimalString());
    return ok;
  }
  void ReleaseResting(const EscrowRequest& r) override {
    log.push_back("release " + std::to_string(r.order) + " " + std::to_string(r.qty) + " " +
                  r.credits().ToMinimalString());
  }
};

TEST(OrderBookEscrowTest, ReportsExactAmountsAndRefusalLeavesBookConsistent) {
  Recorder rec;
  Escrow esc;
  OrderBook book(&rec, &esc);
  ASSERT_TRUE(book.Place(Limit(1, 1, Side::kBuy, 10, "1.5")).ok());
  ASSERT_TRUE(book.Place(Limit(2, 2, Side::kSell, 4, "1.2")).ok());
  ASSERT_TRUE(book.Reduce(1, 2).ok());
  ASSERT_TRUE(book.Place(Limit(3, 3, Side::kSell, 2, "1.7")).ok());
  ASSERT_TRUE(book.Move(3, P("1.6")).ok());
  ASSERT_TRUE(book.Cancel(3).ok());
  std::vector<std::string> want = {
      "reserve 1 10 15", "settle 1/2 4 6", "release 1 2 3", "reserve 3 2 0",
      "release 3 2 0",   "reserve 3 2 0",  "release 3 2 0",
  };
  EXPECT_EQ(esc.log, want);
  EXPECT_EQ(book.Find(1)->qty, 4);

  // A refused fill: the book is unchanged by it, the incoming remainder is cancelled.
  ASSERT_TRUE(book.Place(Limit(4, 4, Side::kBuy, 3, "1.5")).ok());  // behind order 1
  esc.log.clear();
  esc.refuse_fill_qty = 3;
  ASSERT_TRUE(book.Place(Market(5, 5, Side::kSell, 7)).ok());
  // Fill 4 with order 1 settles, the fill of 3 with order 4 is refused.
  EXPECT_EQ(esc.log, (std::vector<std::string>{"settle 1/5 4 6", "refuse 4/5 3 4.5"}));
  EXPECT_EQ(rec.cancels.back(),
            std::make_tuple(OrderId{5}, int64_t{3}, CancelReason::kEscrowRefused));
  ASSERT_EQ(book.Orders(Side::kBuy).size(), 1u);
  EXPECT_EQ(book.Find(4)->qty, 3);
  EXPECT_EQ(book.Depth(Side::kBuy)[0], (DepthLevel{N("1.5"), 3, 1}));

  // A refused rest: nothing rests.
  esc.refuse_rest = 6;
  ASSERT_TRUE(book.Place(Limit(6, 6, Side::kSell, 2, "9")).ok());
  EXPECT_FALSE(book.Find(6).has_value());
  EXPECT_EQ(std::get<2>(rec.cancels.back()), CancelReason::kEscrowRefused);
  EXPECT_FALSE(book.BestAsk().has_value());
}

TEST(OrderBookEscrowTest, SelfTradeReleasesRestingEscrow) {
  Escrow esc;
  OrderBook book(nullptr, &esc);
  ASSERT_TRUE(book.Place(Limit(1, 1, Side::kBuy, 2, "3")).ok());
  ASSERT_TRUE(book.Place(Market(2, 1, Side::kSell, 1)).ok());
  EXPECT_EQ(esc.log, (std::vector<std::string>{"reserve 1 2 6", "release 1 2 6"}));
  EXPECT_EQ(book.resting_orders(), 0u);
}

}  // namespace
}  // namespace bourse::auction
