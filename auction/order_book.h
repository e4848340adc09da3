// OrderBook: a continuous double auction (one per market) with price-time
// priority, limit and market orders, GTC and IOC, cancel, reduce and move,
// self-trade prevention and an escrow hook the broker uses to settle each fill.
//
//   class Printer : public OrderListener {
//     void OnTrade(const Trade& t) override { ... t.qty, t.price() ... }
//   };
//   Printer printer;
//   OrderBook book(&printer);                      // no escrow hook: all funded
//   BOURSE_ASSIGN_OR_RETURN(Money p, Money::Parse("1.5"));
//   BOURSE_RETURN_IF_ERROR(book.Place({.id = 1, .owner = 7, .side = Side::kSell,
//                                      .qty = 10, .price = p}));
//   BOURSE_RETURN_IF_ERROR(book.Place({.id = 2, .owner = 8, .side = Side::kBuy,
//                                      .type = OrderType::kMarket, .qty = 4}));
//   // printer saw one trade: buy 2, sell 1, qty 4 at 1.5; order 1 rests with 6.
//
// Rules (docs/auction.md has the full list):
// - Prices are Money per unit, strictly positive; the book keeps them as int64
//   nano-credits. A limit order whose notional (price x quantity, in
//   nano-credits) does not fit in int64 is rejected (kNotionalOverflow), so no
//   product computed by the book or reported to the hook can overflow.
// - An incoming order trades against the best opposite level first, oldest
//   order first; the trade price is the resting order's price. A limit order
//   trades while it crosses; a market order trades at any price and never rests;
//   an IOC order's unfilled remainder is cancelled; a GTC limit remainder rests
//   at the back of its level. The book never rests crossed.
// - Self-trade prevention: when an incoming (or moved) order meets a resting
//   order of the same owner, the resting one is cancelled (kSelfTrade) and
//   matching continues.
// - Reduce takes quantity off a resting order and keeps its place (reducing by
//   all of it or more cancels it). Move re-places the remaining quantity at a
//   new price, at the back of that level, and trades at once if it crosses.
// - Outcomes go to the OrderListener as events; failures are also returned as
//   Status. Nothing is thrown.
//
// Escrow semantics (EscrowHook): the book asks the hook before each fill and
// before any quantity rests, and tells it when resting quantity leaves the book
// other than by a fill:
// - A resting order was funded when it came to rest: a buy escrowed
//   price x remaining credits, a sell escrowed `remaining` units of capacity.
//   A fill at the resting price draws exactly price x qty credits (buy) or qty
//   units (sell) from that escrow, so the resting side never needs new funds.
// - SettleFill(trade) is asked once per fill, before the book changes. The
//   incoming side must be funded from the owner's free balance. If the hook
//   returns true it has settled the fill atomically (credits buyer -> seller,
//   capacity seller -> buyer); the book then applies it. If it returns false
//   the fill does not happen, the book is exactly as before that fill, the
//   incoming order stops matching and its remainder is cancelled
//   (kEscrowRefused). Fills settled before the refusal stand: each was settled
//   on its own, so a market order can leave fills behind but never a fill the
//   broker has not already honoured.
// - ReserveResting(request) is asked before a remainder rests (after matching,
//   including after a move). true = the broker escrowed request.credits (buy)
//   or request.qty units (sell); false = the remainder is cancelled
//   (kEscrowRefused) and nothing rests.
// - ReleaseResting(request) reports resting quantity leaving the book by
//   cancel, reduce, move (the whole old remainder is released before the order
//   is re-placed) or self-trade prevention; the broker frees that escrow.
//
// Thread safety: not thread-safe; one book per thread (or an external lock).
// The listener and the hook are called synchronously and must not call back
// into the book.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "auction/internal/id_map.h"
#include "core/money.h"
#include "core/status.h"

namespace bourse::auction {

enum class Side : uint8_t { kBuy, kSell };
enum class OrderType : uint8_t { kLimit, kMarket };
enum class TimeInForce : uint8_t { kGtc, kIoc };

enum class RejectReason : uint8_t {
  kInvalidQuantity,   // qty <= 0 (place, reduce)
  kInvalidPrice,      // limit price <= 0 or above int64 nano-credits
  kNotionalOverflow,  // price x qty does not fit in int64 nano-credits
  kDuplicateId,       // place with the id of a resting order
  kNotResting,        // cancel, reduce or move of an id that is not resting
};
enum class CancelReason : uint8_t {
  kRequested,          // Cancel()
  kReducedToZero,      // Reduce() by the whole remaining quantity or more
  kSelfTrade,          // resting order met an incoming order of its owner
  kUnfilledRemainder,  // IOC or market order: what did not trade at once
  kEscrowRefused,      // the hook refused a fill or refused to escrow a rest
};
// "invalid_quantity", "not_resting", "self_trade", ...
std::string_view RejectReasonName(RejectReason reason);
std::string_view CancelReasonName(CancelReason reason);

using OrderId = uint64_t;
using OwnerId = uint64_t;

struct OrderRequest {
  OrderId id = 0;
  OwnerId owner = 0;
  Side side = Side::kBuy;
  OrderType type = OrderType::kLimit;
  TimeInForce tif = TimeInForce::kGtc;
  int64_t qty = 0;
  core::Money price;  // per unit; ignored for market orders
};

// One fill. The "filled" and "partially filled" events of each order are
// carried here: an order whose remaining quantity is 0 after the trade is
// filled, otherwise partially filled.
struct Trade {
  OrderId buy_order = 0;
  OrderId sell_order = 0;
  OwnerId buyer = 0;
  OwnerId seller = 0;
  Side aggressor = Side::kBuy;  // side of the incoming order
  int64_t qty = 0;
  int64_t price_nanos = 0;     // the resting order's price
  int64_t buy_remaining = 0;   // after this trade
  int64_t sell_remaining = 0;  // after this trade

  core::Money price() const { return core::Money::FromNanos(price_nanos); }
  // Credits buyer -> seller. Cannot overflow: the resting order's notional
  // was checked when it was accepted.
  int64_t notional_nanos() const { return price_nanos * qty; }
  core::Money notional() const { return core::Money::FromNanos(notional_nanos()); }
  bool buy_filled() const { return buy_remaining == 0; }
  bool sell_filled() const { return sell_remaining == 0; }
};

// Escrow for resting quantity: `qty` units at `price_nanos`; a buy escrows
// credits_nanos = price x qty credits, a sell escrows qty units of capacity.
struct EscrowRequest {
  OrderId order = 0;
  OwnerId owner = 0;
  Side side = Side::kBuy;
  int64_t qty = 0;
  int64_t price_nanos = 0;
  int64_t credits_nanos = 0;  // price x qty for a buy, 0 for a sell

  core::Money price() const { return core::Money::FromNanos(price_nanos); }
  core::Money credits() const { return core::Money::FromNanos(credits_nanos); }
};

// Implemented by the broker. See "Escrow semantics" above.
class EscrowHook {
 public:
  virtual ~EscrowHook() = default;
  virtual bool ReserveResting(const EscrowRequest& request) = 0;
  virtual bool SettleFill(const Trade& trade) = 0;
  virtual void ReleaseResting(const EscrowRequest& request) = 0;
};

// Receives every outcome. Default implementations ignore the event.
class OrderListener {
 public:
  virtual ~OrderListener() = default;
  virtual void OnAccepted(const OrderRequest& /*order*/) {}
  virtual void OnRejected(OrderId /*id*/, RejectReason /*reason*/) {}
  virtual void OnTrade(const Trade& /*trade*/) {}
  // `qty` is the quantity that left the book (or never rested).
  virtual void OnCancelled(OrderId /*id*/, int64_t /*qty*/, CancelReason /*reason*/) {}
  virtual void OnReduced(OrderId /*id*/, int64_t /*remaining*/) {}
  virtual void OnMoved(OrderId /*id*/, int64_t /*new_price_nanos*/) {}
  // A GTC limit remainder came to rest (also after a move).
  virtual void OnRested(OrderId /*id*/, int64_t /*qty*/, int64_t /*price_nanos*/) {}
};

struct RestingOrder {
  OrderId id = 0;
  OwnerId owner = 0;
  Side side = Side::kBuy;
  int64_t qty = 0;
  int64_t price_nanos = 0;
  friend bool operator==(const RestingOrder&, const RestingOrder&) = default;
};

struct DepthLevel {
  int64_t price_nanos = 0;
  int64_t qty = 0;      // total resting quantity at this price
  uint32_t orders = 0;  // number of resting orders
  friend bool operator==(const DepthLevel&, const DepthLevel&) = default;
};

class OrderBook {
 public:
  // Both pointers may be null (no events / everything funded); they must
  // outlive the book.
  explicit OrderBook(OrderListener* listener = nullptr, EscrowHook* escrow = nullptr);
  OrderBook(const OrderBook&) = delete;
  OrderBook& operator=(const OrderBook&) = delete;

  // Places an order. Errors (also reported by OnRejected): invalid_argument
  // for kInvalidQuantity, kInvalidPrice, kNotionalOverflow; already_exists for
  // kDuplicateId. Once accepted, trades, rests or cancellations are events.
  core::Status Place(const OrderRequest& order);
  // Errors: not_found (kNotResting) when `id` is not resting.
  core::Status Cancel(OrderId id);
  // Takes `qty` off a resting order's remaining quantity, keeping its place;
  // all of it or more cancels the order. Errors: invalid_argument when
  // qty <= 0; not_found (kNotResting).
  core::Status Reduce(OrderId id, int64_t qty);
  // Re-places the remaining quantity at `new_price`, at the back of that
  // level, trading at once if it crosses. Errors: invalid_argument
  // (kInvalidPrice, kNotionalOverflow; the order is left untouched);
  // not_found (kNotResting).
  core::Status Move(OrderId id, const core::Money& new_price);

  std::optional<int64_t> BestBidNanos() const;
  std::optional<int64_t> BestAskNanos() const;
  std::optional<core::Money> BestBid() const;
  std::optional<core::Money> BestAsk() const;
  // Levels from the best price outward; at most max_levels (0 = all).
  std::vector<DepthLevel> Depth(Side side, size_t max_levels = 0) const;
  // Resting orders of a side in priority order.
  std::vector<RestingOrder> Orders(Side side) const;
  std::optional<RestingOrder> Find(OrderId id) const;
  size_t resting_orders() const { return ids_.size(); }

  // Price conversion at the boundary. Errors: invalid_argument when the price
  // is not in (0, 2^63) nano-credits.
  static core::Result<int64_t> PriceToNanos(const core::Money& price);

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  struct Node {
    OrderId id;
    OwnerId owner;
    int64_t price;
    int64_t qty;
    uint32_t prev;
    uint32_t next;
    Side side;
  };
  struct Level {
    int64_t price;
    int64_t qty;
    uint32_t head;
    uint32_t tail;
    uint32_t count;
  };
  // Levels of one side sorted so that the best price is at the back: bids
  // ascending, asks descending. Emptied levels inside the vector stay as
  // tombstones (count 0) so that prices coming back need no insertion; the
  // best (back) level is never empty.
  using Levels = std::vector<Level>;

  core::Status Reject(OrderId id, RejectReason reason);
  // Matches `qty` of an incoming order, then rests or cancels the remainder.
  void Execute(OrderId id, OwnerId owner, Side side, bool is_market, bool rest, int64_t price,
               int64_t qty);
  Levels& side_levels(Side s) { return s == Side::kBuy ? bids_ : asks_; }
  const Levels& side_levels(Side s) const { return s == Side::kBuy ? bids_ : asks_; }
  // Index of the level with `price`, or where it would be inserted.
  size_t LowerBound(const Levels& levels, Side side, int64_t price) const;
  Level& LevelFor(Side side, int64_t price);
  void Rest(uint32_t node);
  // Unlinks a resting node from its level (and the id map), frees it.
  void Remove(uint32_t node);
  void PopEmptyBest(Levels& levels);
  void MaybeCompact(Levels& levels);
  uint32_t AllocNode();
  void Release(const Node& n, int64_t qty);

  OrderListener* listener_;
  EscrowHook* escrow_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> free_;
  Levels bids_;
  Levels asks_;
  size_t empty_bid_levels_ = 0;
  size_t empty_ask_levels_ = 0;
  internal::IdMap ids_;
};

}  // namespace bourse::auction
