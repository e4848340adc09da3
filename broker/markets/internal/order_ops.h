// The order operations that the single order routes (orders.cc) and a batch
// of them (batch.cc, POST /v1/orders:batch) share, so both run one
// implementation: each is decoded and checked outside the transaction, then
// runs as one book operation inside a Mutate fn (RunBookOp for a single
// route, RunBookOpIn inside a savepoint for each op of a batch).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "broker/markets/internal/market_state.h"
#include "core/status.h"

namespace bourse::markets::internal {

// Changes resting order `id`, under the market's lock after the ownership
// check; fills the body of the change's ledger entry (if any).
using ChangeFn = std::function<core::Status(OpCtx&, LiveOrder*, nlohmann::json*)>;

// A decoded cancel, reduce or move of order `id` of market `ms`.
struct OrderChange {
  MarketState* ms = nullptr;
  int64_t id = 0;
  std::string entry;     // "order_reduced", "order_moved"; "" for a cancel (FinishOp writes it)
  core::Status invalid;  // the body's decoding error, reported after the ownership check
  ChangeFn apply;
  // A move, which can trade: refused once the market is closed for trading
  // (as a placement is), even before the tick closes it. A cancel or reduce
  // is allowed until the market closes.
  bool trades = false;
};

// DELETE /v1/markets/{market}/orders/{order} and the reduce ({qty}) and move
// ({price}) routes, decoded. Errors: not_found (market), invalid_argument
// (order). A bad qty or price is reported (as `invalid`) after the ownership
// check, as the single routes always did, and before the book is touched.
core::Result<OrderChange> DecodeCancel(Markets& m, const std::string& market,
                                       const std::string& order);
core::Result<OrderChange> DecodeReduce(Markets& m, const std::string& market,
                                       const std::string& order, const nlohmann::json& body);
core::Result<OrderChange> DecodeMove(Markets& m, const std::string& market,
                                     const std::string& order, const nlohmann::json& body);

// A change's book operation, inside RunBookOp(In) with the market's lock
// held: the caller must own the resting order and ch.invalid be ok (these
// checks write nothing and leave the book untouched); then apply and its
// entry.
core::Status ApplyChange(OpCtx& c, const OrderChange& ch, const std::string& caller)
    REQUIRES(c.ms->mu);

// A move of resting order `o` to `price` in the book, with the market's lock
// held: a buy's escrow is adjusted by the difference and keeps its id
// (OpCtx::moving).
core::Status MoveInBook(OpCtx& c, LiveOrder* o, const core::Money& price) REQUIRES(c.ms->mu);

// A placement's book operation (its fields and escrow checked before, by
// Markets::DecodeOrder), with the market's lock held: the market must be
// open; the escrow is taken, order_placed appended and the order placed.
// Sets st.id.
core::Status PlaceOrderInBook(Markets& m, OpCtx& c, PlacedOrder& st, int64_t now_ms,
                              const std::string& caller_text) REQUIRES(c.ms->mu);

// The reply of a finished operation on order `id`: {order, trades} (moves
// the trades out of ctx; call once).
nlohmann::json OpResponse(OpCtx& ctx, int64_t id);

// Tests only: when >= 0, op number N of a batch fails with an internal error
// right after its book operation, as a late failure would (batch.cc).
extern std::atomic<int> batch_fault_at_for_test;

}  // namespace bourse::markets::internal
