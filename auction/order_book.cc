#include "auction/order_book.h"

#include <algorithm>
#include <string>

namespace bourse::auction {

using core::Money;
using core::Result;
using core::Status;

std::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kInvalidQuantity:
      return "invalid_quantity";
    case RejectReason::kInvalidPrice:
      return "invalid_price";
    case RejectReason::kNotionalOverflow:
      return "notional_overflow";
    case RejectReason::kDuplicateId:
      return "duplicate_id";
    case RejectReason::kNotResting:
      return "not_resting";
  }
  return "unknown";
}

std::string_view CancelReasonName(CancelReason reason) {
  switch (reason) {
    case CancelReason::kRequested:
      return "requested";
    case CancelReason::kReducedToZero:
      return "reduced_to_zero";
    case CancelReason::kSelfTrade:
      return "self_trade";
    case CancelReason::kUnfilledRemainder:
      return "unfilled_remainder";
    case CancelReason::kEscrowRefused:
      return "escrow_refused";
  }
  return "unknown";
}

namespace {

// True when an incoming order on `side` limited at `limit` may trade at `resting`.
inline bool Crosses(Side side, int64_t limit, int64_t resting) {
  return side == Side::kBuy ? resting <= limit : resting >= limit;
}

inline Side Opposite(Side s) { return s == Side::kBuy ? Side::kSell : Side::kBuy; }

}  // namespace

OrderBook::OrderBook(OrderListener* listener, EscrowHook* escrow)
    : listener_(listener), escrow_(escrow) {
  nodes_.reserve(1024);
}

Result<int64_t> OrderBook::PriceToNanos(const Money& price) {
  if (!price.is_positive()) {
    return core::InvalidArgument("price: must be positive, got " + price.ToMinimalString());
  }
  if (price.nanos() > INT64_MAX) {
    return core::InvalidArgument("price: above the order book's maximum of 2^63-1 nano-credits");
  }
  return static_cast<int64_t>(price.nanos());
}

Status OrderBook::Reject(OrderId id, RejectReason reason) {
  if (listener_) listener_->OnRejected(id, reason);
  std::string msg = "order " + std::to_string(id) + ": " + std::string(RejectReasonName(reason));
  switch (reason) {
    case RejectReason::kDuplicateId:
      return core::AlreadyExists(msg + " (an order with this id is resting)");
    case RejectReason::kNotResting:
      return core::NotFound(msg + " (no resting order with this id)");
    case RejectReason::kInvalidQuantity:
      return core::InvalidArgument(msg + " (qty must be a positive integer)");
    case RejectReason::kInvalidPrice:
      return core::InvalidArgument(msg + " (price must be in (0, 2^63) nano-credits)");
    case RejectReason::kNotionalOverflow:
      return core::InvalidArgument(msg + " (price x qty exceeds 2^63-1 nano-credits)");
  }
  return core::Internal(msg);
}

Status OrderBook::Place(const OrderRequest& order) {
  if (order.qty <= 0) return Reject(order.id, RejectReason::kInvalidQuantity);
  const bool is_market = order.type == OrderType::kMarket;
  int64_t price = 0;
  if (!is_market) {
    // Inline fast path of PriceToNanos.
    const Money::Rep& n = order.price.nanos();
    if (n <= 0 || n > INT64_MAX) return Reject(order.id, RejectReason::kInvalidPrice);
    price = static_cast<int64_t>(n);
    int64_t notional;
    if (__builtin_mul_overflow(price, order.qty, &notional)) {
      return Reject(order.id, RejectReason::kNotionalOverflow);
    }
  }
  if (ids_.Find(order.id) != internal::IdMap::kAbsent) {
    return Reject(order.id, RejectReason::kDuplicateId);
  }
  if (listener_) listener_->OnAccepted(order);
  Execute(order.id, order.owner, order.side, is_market,
          !is_market && order.tif == TimeInForce::kGtc, price, order.qty);
  return Status();
}

Status OrderBook::Cancel(OrderId id) {
  uint32_t idx = ids_.Find(id);
  if (idx == internal::IdMap::kAbsent) return Reject(id, RejectReason::kNotResting);
  const int64_t qty = nodes_[idx].qty;
  Release(nodes_[idx], qty);
  Remove(idx);
  if (listener_) listener_->OnCancelled(id, qty, CancelReason::kRequested);
  return Status();
}

Status OrderBook::Reduce(OrderId id, int64_t qty) {
  if (qty <= 0) return Reject(id, RejectReason::kInvalidQuantity);
  uint32_t idx = ids_.Find(id);
  if (idx == internal::IdMap::kAbsent) return Reject(id, RejectReason::kNotResting);
  Node& n = nodes_[idx];
  if (qty >= n.qty) {
    const int64_t left = n.qty;
    Release(n, left);
    Remove(idx);
    if (listener_) listener_->OnCancelled(id, left, CancelReason::kReducedToZero);
    return Status();
  }
  Release(n, qty);
  n.qty -= qty;
  LevelFor(n.side, n.price).qty -= qty;
  if (listener_) listener_->OnReduced(id, n.qty);
  return Status();
}

Status OrderBook::Move(OrderId id, const Money& new_price) {
  uint32_t idx = ids_.Find(id);
  if (idx == internal::IdMap::kAbsent) return Reject(id, RejectReason::kNotResting);
  const Money::Rep& np = new_price.nanos();
  if (np <= 0 || np > INT64_MAX) return Reject(id, RejectReason::kInvalidPrice);
  const int64_t price = static_cast<int64_t>(np);
  const Node n = nodes_[idx];
  int64_t notional;
  if (__builtin_mul_overflow(price, n.qty, &notional)) {
    return Reject(id, RejectReason::kNotionalOverflow);
  }
  Release(n, n.qty);
  Remove(idx);
  if (listener_) listener_->OnMoved(id, price);
  Execute(id, n.owner, n.side, /*is_market=*/false, /*rest=*/true, price, n.qty);
  return Status();
}

void OrderBook::Release(const Node& n, int64_t qty) {
  if (!escrow_) return;
  EscrowRequest r{.order = n.id,
                  .owner = n.owner,
                  .side = n.side,
                  .qty = qty,
                  .price_nanos = n.price,
                  .credits_nanos = n.side == Side::kBuy ? n.price * qty : 0};
  escrow_->ReleaseResting(r);
}

void OrderBook::Execute(OrderId id, OwnerId owner, Side side, bool is_market, bool rest,
                        int64_t price, int64_t qty) {
  Levels& opp = side_levels(Opposite(side));
  bool refused = false;
  while (qty > 0 && !opp.empty()) {
    Level* lvl = &opp.back();
    if (!is_market && !Crosses(side, price, lvl->price)) break;
    const uint32_t ridx = lvl->head;
    Node& r = nodes_[ridx];
    if (r.owner == owner) {
      const int64_t q = r.qty;
      const OrderId rid = r.id;
      Release(r, q);
      Remove(ridx);
      if (listener_) listener_->OnCancelled(rid, q, CancelReason::kSelfTrade);
      continue;
    }
    const int64_t q = std::min(qty, r.qty);
    Trade t;
    t.aggressor = side;
    t.qty = q;
    t.price_nanos = r.price;
    if (side == Side::kBuy) {
      t.buy_order = id;
      t.buyer = owner;
      t.sell_order = r.id;
      t.seller = r.owner;
      t.buy_remaining = qty - q;
      t.sell_remaining = r.qty - q;
    } else {
      t.sell_order = id;
      t.seller = owner;
      t.buy_order = r.id;
      t.buyer = r.owner;
      t.sell_remaining = qty - q;
      t.buy_remaining = r.qty - q;
    }
    if (escrow_ && !escrow_->SettleFill(t)) {
      refused = true;
      break;
    }
    qty -= q;
    r.qty -= q;
    lvl->qty -= q;
    if (r.qty == 0) Remove(ridx);
    if (listener_) listener_->OnTrade(t);
  }
  if (qty == 0) return;
  if (refused || !rest) {
    if (listener_) {
      listener_->OnCancelled(
          id, qty, refused ? CancelReason::kEscrowRefused : CancelReason::kUnfilledRemainder);
    }
    return;
  }
  if (escrow_) {
    EscrowRequest r{.order = id,
                    .owner = owner,
                    .side = side,
                    .qty = qty,
                    .price_nanos = price,
                    .credits_nanos = side == Side::kBuy ? price * qty : 0};
    if (!escrow_->ReserveResting(r)) {
      if (listener_) listener_->OnCancelled(id, qty, CancelReason::kEscrowRefused);
      return;
    }
  }
  const uint32_t idx = AllocNode();
  nodes_[idx] = Node{id, owner, price, qty, kNil, kNil, side};
  Rest(idx);
  if (listener_) listener_->OnRested(id, qty, price);
}

uint32_t OrderBook::AllocNode() {
  if (!free_.empty()) {
    uint32_t i = free_.back();
    free_.pop_back();
    return i;
  }
  nodes_.push_back(Node{});
  return static_cast<uint32_t>(nodes_.size() - 1);
}

size_t OrderBook::LowerBound(const Levels& levels, Side side, int64_t price) const {
  // Bids ascending, asks descending: first level not "before" price.
  size_t lo = 0, hi = levels.size();
  if (side == Side::kBuy) {
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (levels[mid].price < price)
        lo = mid + 1;
      else
        hi = mid;
    }
  } else {
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (levels[mid].price > price)
        lo = mid + 1;
      else
        hi = mid;
    }
  }
  return lo;
}

OrderBook::Level& OrderBook::LevelFor(Side side, int64_t price) {
  Levels& levels = side_levels(side);
  // Fast path: the best level.
  if (!levels.empty() && levels.back().price == price) return levels.back();
  size_t i = LowerBound(levels, side, price);
  return levels[i];  // callers only ask for prices that have a level
}

void OrderBook::Rest(uint32_t idx) {
  Node& n = nodes_[idx];
  Levels& levels = side_levels(n.side);
  size_t& empties = n.side == Side::kBuy ? empty_bid_levels_ : empty_ask_levels_;
  Level* lvl;
  if (!levels.empty() && levels.back().price == n.price) {
    lvl = &levels.back();
  } else {
    size_t i = LowerBound(levels, n.side, n.price);
    if (i < levels.size() && levels[i].price == n.price) {
      lvl = &levels[i];
      if (lvl->count == 0) --empties;
    } else {
      levels.insert(levels.begin() + static_cast<ptrdiff_t>(i), Level{n.price, 0, kNil, kNil, 0});
      lvl = &levels[i];
    }
  }
  n.prev = lvl->tail;
  n.next = kNil;
  if (lvl->tail != kNil) {
    nodes_[lvl->tail].next = idx;
  } else {
    lvl->head = idx;
  }
  lvl->tail = idx;
  lvl->qty += n.qty;
  ++lvl->count;
  ids_.Put(n.id, idx);
}

void OrderBook::Remove(uint32_t idx) {
  Node& n = nodes_[idx];
  Levels& levels = side_levels(n.side);
  Level& lvl = LevelFor(n.side, n.price);
  if (n.prev != kNil)
    nodes_[n.prev].next = n.next;
  else
    lvl.head = n.next;
  if (n.next != kNil)
    nodes_[n.next].prev = n.prev;
  else
    lvl.tail = n.prev;
  lvl.qty -= n.qty;
  --lvl.count;
  ids_.Erase(n.id);
  free_.push_back(idx);
  if (lvl.count == 0) {
    if (&lvl == &levels.back()) {
      PopEmptyBest(levels);
    } else {
      size_t& empties = n.side == Side::kBuy ? empty_bid_levels_ : empty_ask_levels_;
      ++empties;
      MaybeCompact(levels);
    }
  }
}

void OrderBook::PopEmptyBest(Levels& levels) {
  size_t& empties = &levels == &bids_ ? empty_bid_levels_ : empty_ask_levels_;
  levels.pop_back();
  while (!levels.empty() && levels.back().count == 0) {
    levels.pop_back();
    --empties;
  }
}

void OrderBook::MaybeCompact(Levels& levels) {
  size_t& empties = &levels == &bids_ ? empty_bid_levels_ : empty_ask_levels_;
  // Tombstones make returning prices cheap; drop them when they dominate.
  if (empties < 4096 || empties * 2 < levels.size()) return;
  std::erase_if(levels, [](const Level& l) { return l.count == 0; });
  empties = 0;
}

std::optional<int64_t> OrderBook::BestBidNanos() const {
  if (bids_.empty()) return std::nullopt;
  return bids_.back().price;
}
std::optional<int64_t> OrderBook::BestAskNanos() const {
  if (asks_.empty()) return std::nullopt;
  return asks_.back().price;
}
std::optional<Money> OrderBook::BestBid() const {
  auto p = BestBidNanos();
  if (!p) return std::nullopt;
  return Money::FromNanos(*p);
}
std::optional<Money> OrderBook::BestAsk() const {
  auto p = BestAskNanos();
  if (!p) return std::nullopt;
  return Money::FromNanos(*p);
}

std::vector<DepthLevel> OrderBook::Depth(Side side, size_t max_levels) const {
  std::vector<DepthLevel> out;
  const Levels& levels = side_levels(side);
  for (auto it = levels.rbegin(); it != levels.rend(); ++it) {
    if (it->count == 0) continue;
    if (max_levels != 0 && out.size() >= max_levels) break;
    out.push_back(DepthLevel{it->price, it->qty, it->count});
  }
  return out;
}

std::vector<RestingOrder> OrderBook::Orders(Side side) const {
  std::vector<RestingOrder> out;
  const Levels& levels = side_levels(side);
  for (auto it = levels.rbegin(); it != levels.rend(); ++it) {
    for (uint32_t i = it->head; i != kNil; i = nodes_[i].next) {
      const Node& n = nodes_[i];
      out.push_back(RestingOrder{n.id, n.owner, n.side, n.qty, n.price});
    }
  }
  return out;
}

std::optional<RestingOrder> OrderBook::Find(OrderId id) const {
  uint32_t idx = ids_.Find(id);
  if (idx == internal::IdMap::kAbsent) return std::nullopt;
  const Node& n = nodes_[idx];
  return RestingOrder{n.id, n.owner, n.side, n.qty, n.price};
}

}  // namespace bourse::auction
