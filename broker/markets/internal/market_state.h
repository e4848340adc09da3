// Private state of the markets engine (markets.h): one MarketState
// per order-book market, the live orders it mirrors from m_orders, and the
// per-operation context that turns the book's escrow hook calls into ledger
// operations inside one Mutate transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "auction/order_book.h"
#include "broker/markets/markets.h"
#include "core/canonical_json.h"
#include "core/interval.h"
#include "core/json_codec.h"
#include "core/mutex.h"
#include "core/resource_vector.h"
#include "ledger/store.h"

namespace bourse::markets::internal {

// 128-bit intermediate for price x quantity sums (no overflow below 2^127).
__extension__ using Int128 = __int128;

struct MarketInfo {
  std::string id;
  std::string node;
  std::string site;
  core::ResourceVector unit;
  core::Interval window;
  int64_t close_s = 0;  // trading ends at this instant (unix s)
  std::string holder;   // "" : anyone may sell; else only this key
  std::string state;    // "open" | "closed"
  int64_t created_ms = 0;
  nlohmann::json ToJson() const;
};

struct LiveOrder {
  int64_t id = 0;
  std::string market;
  std::string owner;    // signer's key text
  std::string account;  // credits account (owner; the broker for pool sells)
  auction::Side side = auction::Side::kBuy;
  bool is_market = false;
  bool ioc = false;
  int64_t qty = 0;
  int64_t price_nanos = 0;  // 0 for market orders
  int64_t remaining = 0;    // resting quantity (0 when not resting)
  int64_t filled = 0;
  std::string state = "new";  // new | resting | filled | cancelled
  std::string reason;         // cancel reason
  int64_t prio = 0;
  std::string escrow;  // current credit escrow id (buy)
  int64_t escrow_gen = 0;
  std::string cap_escrow;  // rcap E (sell)
  int64_t cap_units = 0;
  int64_t cap_sold = 0;
  int64_t cap_returned = 0;
  std::string returned_rcap;  // what went back: E's parent (E released) or a child of E
  int64_t created_ms = 0;
  nlohmann::json ToJson() const;
};

struct OpCtx;

// Forwards the book's hook and listener calls to the current operation.
class Forwarder : public auction::EscrowHook, public auction::OrderListener {
 public:
  OpCtx* ctx = nullptr;
  bool ReserveResting(const auction::EscrowRequest& r) override;
  bool SettleFill(const auction::Trade& t) override;
  void ReleaseResting(const auction::EscrowRequest& r) override;
  void OnCancelled(auction::OrderId id, int64_t qty, auction::CancelReason reason) override;
  void OnMoved(auction::OrderId id, int64_t new_price_nanos) override;
  void OnRested(auction::OrderId id, int64_t qty, int64_t price_nanos) override;
};

struct MarketState {
  // Fixed once the market is created, but for info.state, which only the tick
  // thread writes (under mu); readers on other threads hold mu.
  MarketInfo info;
  core::Mutex mu;
  Forwarder fwd GUARDED_BY(mu);
  std::unique_ptr<auction::OrderBook> book GUARDED_BY(mu);
  std::map<int64_t, LiveOrder> orders GUARDED_BY(mu);  // live (resting or in an operation)
  bool stale GUARDED_BY(mu) = false;  // the book may disagree with m_orders: rebuild first
};

// One book operation inside one Mutate fn.
struct OpCtx {
  Markets* markets = nullptr;
  ledger::Txn* txn = nullptr;
  MarketState* ms = nullptr;
  std::set<int64_t> touched;
  nlohmann::json trades = nlohmann::json::array();
  std::vector<std::string> bought_rcaps;      // children delegated to buyers
  std::map<int64_t, LiveOrder> final_orders;  // set by FinishOp
  core::Status error;                         // first internal failure
  bool book_touched = false;                  // set before the first book call
  // The buy being placed (POST /v1/markets/{market}/orders), 0 for other
  // operations. When a fill from its free balance or the escrow of its
  // resting remainder cannot be funded, the whole placement is refused
  // (insufficient_funds, 402) and nothing is written; other orders keep the
  // book's rule (cancelled with escrow_refused).
  int64_t placing_buy = 0;
  core::Money placing_paid;  // what its fills have paid so far in this op
  // acquire (acquire.cc): each fill's child of the sell's escrow is held by
  // the broker, not the buyer, and acquire delegates the buyer exactly what
  // it asked out of it. Trades, orders and credits are as for any fill.
  bool fills_to_broker = false;
  // A resting buy being moved (MoveInBook): its id, and the credits the book
  // released from its escrow when it took the order off, which ReleaseResting
  // leaves in the escrow. When the order rests again, ReserveResting adjusts
  // that same escrow by the difference (one escrow_release or escrow_topup);
  // a fill it takes first as the aggressor, or its not resting again,
  // releases them first.
  int64_t moving = 0;
  core::Money move_held;
  LiveOrder* Get(int64_t id) REQUIRES(ms->mu);
  void Fail(core::Status st) {
    if (error.ok()) error = std::move(st);
  }
};

// Runs `op` on one market inside one Mutate: locks the market, rebuilds a
// stale book, runs op (which calls the book with ctx.book_touched set), then
// FinishOp. On any failure after the book was touched, the book is marked
// stale (rebuilt from the rolled-back tables before its next use).
// An order placement between its checks (on the server's loop) and its
// book operation (on the ledger's writer).
struct PlacedOrder {
  MarketState* ms = nullptr;
  LiveOrder o;
  std::optional<ledger::Rcap> escrow;  // a sell's escrowed capacity, as signed by the seller
  std::string pool_rcap;               // or the broker pool rcap an admin sells from
  core::ResourceVector want;           // unit x qty
  std::string broker_text;
  int64_t id = 0;  // assigned in the book operation
};

core::Status RunBookOp(Markets* m, MarketState* ms, const std::function<core::Status(OpCtx&)>& op,
                       OpCtx* result) EXCLUDES(ms->mu);
// RunBookOp's part inside the caller's own Mutate fn (RunBookOp, and each
// op of a batch, batch.cc): *touched is set once op touched the book, and
// then a failure of the op or of the commit leaves the book stale (the
// former is marked here; mark the latter with MarkStale).
core::Status RunBookOpIn(Markets* m, MarketState* ms, ledger::Txn& txn,
                         const std::function<core::Status(OpCtx&)>& op, OpCtx* result,
                         bool* touched) EXCLUDES(ms->mu);
// The book may disagree with m_orders: it is rebuilt before its next use.
void MarkStale(MarketState* ms) EXCLUDES(ms->mu);
// The same without waiting: `done` gets the outcome on the ledger store's syncer
// thread once the commit is durable (Host::MutateAsync), so it must only
// hand it on; *result is complete by then.
void RunBookOpAsync(Markets* m, MarketState* ms, std::function<core::Status(OpCtx&)> op,
                    std::shared_ptr<OpCtx> result, std::function<void(core::Status)> done);

// Loads market info + resting orders from m_* tables and rebuilds the book.
core::Status RebuildBook(Markets* m, storage::Connection* db, MarketState* ms) REQUIRES(ms->mu);
// Brings the book up to date with m_orders if it is stale.
core::Status EnsureFresh(Markets* m, ledger::Txn& txn, MarketState* ms) REQUIRES(ms->mu);
// After a book operation: derives each touched order's state, returns unsold
// capacity to sellers, writes rows and ledger entries. On any failure marks
// the book stale and returns the error (the caller's fn must return it).
core::Status FinishOp(OpCtx& ctx) REQUIRES(ctx.ms->mu);
// Writes one order row; `existing`: it was saved before (an UPDATE of the
// columns an operation changes, an INSERT if the row is not there after all).
core::Status SaveOrder(ledger::Txn& txn, const LiveOrder& o, bool existing = false,
                       bool state_changed = true);
core::Result<LiveOrder> LoadOrder(storage::Connection* db, int64_t id);
// The orders of `owner`, newest first, at most `limit`: only resting ones
// when `open_only`, only those of `market` unless it is "".
core::Result<std::vector<LiveOrder>> LoadOwnerOrders(storage::Connection* db,
                                                     const std::string& owner, bool open_only,
                                                     const std::string& market, int64_t limit);

inline std::string_view SideName(auction::Side s) {
  return s == auction::Side::kBuy ? "buy" : "sell";
}
std::string MoneyText(int64_t nanos);
// The ids `sql` selects with the host's clock (unix s) as its one parameter:
// the rounds or RFQs whose close has passed (rfqs.cc).
core::Result<std::vector<std::string>> DueIds(Host& host, const char* sql);

using Stmt = storage::Statement;
using core::ParseStoredJson;

}  // namespace bourse::markets::internal
