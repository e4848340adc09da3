// Markets: engine lifecycle, order-book state, and the settlement of book
// events into the ledger (the escrow hook).
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "broker/markets/internal/escrow.h"
#include "broker/markets/internal/market_state.h"
#include "broker/markets/internal/order_ops.h"
#include "broker/markets/markets.h"
#include "core/json_codec.h"
#include "ledger/accounts.h"

namespace bourse::markets {

using internal::LiveOrder;
using internal::MarketState;
using internal::OpCtx;
using internal::Stmt;
using nlohmann::json;

namespace internal {

std::string MoneyText(int64_t nanos) { return core::Money::FromNanos(nanos).ToString(); }

json MarketInfo::ToJson() const {
  return {{"id", id},
          {"node", node.empty() ? json() : json(node)},
          {"site", site},
          {"unit", core::ResourceVectorToJson(unit)},
          {"not_before", window.not_before},
          {"not_after", window.not_after},
          {"close", close_s},
          {"holder", holder.empty() ? json() : json(holder)},
          {"state", state},
          {"created_ms", created_ms}};
}

json LiveOrder::ToJson() const {
  json j = {{"id", id},
            {"market", market},
            {"owner", owner},
            {"side", SideName(side)},
            {"type", is_market ? "market" : "limit"},
            {"tif", ioc || is_market ? "ioc" : "gtc"},
            {"qty", qty},
            {"price", is_market ? json() : json(MoneyText(price_nanos))},
            {"remaining", remaining},
            {"filled", filled},
            {"state", state},
            {"reason", reason.empty() ? json() : json(reason)},
            {"created_ms", created_ms}};
  if (side == auction::Side::kBuy) {
    j["escrow"] = escrow.empty() ? json() : json(escrow);
  } else {
    j["rcap_escrow"] = cap_escrow;
    j["returned_rcap"] = returned_rcap.empty() ? json() : json(returned_rcap);
  }
  return j;
}

LiveOrder* OpCtx::Get(int64_t id) {
  auto it = ms->orders.find(id);
  if (it == ms->orders.end()) {
    Fail(core::Internal("markets: order " + std::to_string(id) + " is not in memory"));
    return nullptr;
  }
  touched.insert(id);
  return &it->second;
}

// ---- hook ------------------------------------------------------------------

namespace {

// A resting buy's escrow id: "mo_" + the seq of its escrow_hold entry (16
// digits, so ids sort in the order they were made) + "_" + the order. Ids in
// creation order keep the escrow table's inserts, and the releases of the
// escrows a batch made before, on a few B-tree pages at its right edge
// (docs/perf/batch.md); ids by order scattered them over a page per order.
std::string EscrowId(uint64_t seq, int64_t order) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "mo_%016llu_%lld", static_cast<unsigned long long>(seq),
                static_cast<long long>(order));
  return buf;
}

// The refusal of a buy being placed that its owner cannot fund: what it
// needs (its fills so far plus this step) against what the account had
// when the placement began. `more_may_follow`: a fill, after which the
// order could need more (the needed amount is a lower bound).
core::Status PlacingBuyShortfall(OpCtx& ctx, const LiveOrder& o, const core::Money& step,
                                 bool more_may_follow) {
  auto bal = ledger::Accounts::Balance(ctx.txn->db(), o.account);
  if (!bal.ok()) return bal.status();
  auto available = bal->Add(ctx.placing_paid);
  auto needed = ctx.placing_paid.Add(step);
  if (!available.ok()) return available.status();
  if (!needed.ok()) return needed.status();
  auto short_by = needed->Sub(*available);
  return core::InsufficientFunds(
      "insufficient funds: buy order " + std::to_string(o.id) + " needs " +
      (more_may_follow ? "at least " : "") + needed->ToMinimalString() + " credits (" +
      ctx.placing_paid.ToMinimalString() + " for fills so far, " + step.ToMinimalString() +
      (more_may_follow ? " for the next fill" : " to escrow what rests") + "), account " +
      o.account + " has " + available->ToMinimalString() + " available" +
      (short_by.ok() ? " (short by " + short_by->ToMinimalString() + ")" : std::string()));
}

// Releases what a moved buy's escrow still holds for it (OpCtx::move_held).
void ReleaseMoveHeld(OpCtx& c, const LiveOrder& o) {
  if (o.id != c.moving || !c.move_held.is_positive()) return;
  const core::Money held = c.move_held;
  c.move_held = core::Money();
  core::Status st = c.markets->host().EscrowRelease(*c.txn, o.escrow, held);
  if (!st.ok()) c.Fail(st.WithContext("releasing a buy's escrow"));
}

// A moved buy rests again needing `need` in escrow: its escrow, which still
// holds c.move_held, gives back or takes the difference. False when the
// owner cannot fund a raise: the escrow is then released whole, as for any
// buy coming to rest, and the caller tries a new one.
bool AdjustMovedEscrow(OpCtx& c, const LiveOrder& o, const core::Money& need) {
  const core::Money held = c.move_held;
  Host& b = c.markets->host();
  core::Status st;
  if (need < held) {
    auto less = held.Sub(need);
    st = less.ok() ? b.EscrowRelease(*c.txn, o.escrow, *less) : less.status();
  } else if (held < need) {
    auto more = need.Sub(held);
    st = more.ok() ? b.EscrowTopUp(*c.txn, o.escrow, *more) : more.status();
  }
  if (st.ok()) {
    c.move_held = core::Money();
    return true;
  }
  if (st.code() != core::StatusCode::kFailedPrecondition) c.Fail(st);
  ReleaseMoveHeld(c, o);
  return false;
}

}  // namespace

core::Status MoveInBook(OpCtx& c, LiveOrder* o, const core::Money& price) {
  c.ms->mu.AssertHeld();  // the caller (a ChangeFn in RunBookOp) holds it
  c.moving = o->id;
  c.move_held = core::Money();
  core::Status st = c.ms->book->Move(static_cast<uint64_t>(o->id), price);
  ReleaseMoveHeld(c, *o);  // it did not rest again
  c.moving = 0;
  return st;
}

bool Forwarder::ReserveResting(const auction::EscrowRequest& r) {
  if (ctx == nullptr) return true;  // rebuilding: what rests was escrowed already
  // The book calls back inside RunBookOp, which holds it.
  ctx->ms->mu.AssertHeld();
  if (!ctx->error.ok()) return false;
  LiveOrder* o = ctx->Get(static_cast<int64_t>(r.order));
  if (o == nullptr) return false;
  Host& b = ctx->markets->host();
  if (r.side == auction::Side::kBuy) {
    if (o->id == ctx->moving && ctx->move_held.is_positive()) {
      if (AdjustMovedEscrow(*ctx, *o, r.credits())) return true;
      if (!ctx->error.ok()) return false;
    }
    std::string esc = EscrowId(ctx->txn->next_seq(), o->id);
    core::Status st = b.EscrowHold(*ctx->txn, esc, o->account, r.credits());
    if (!st.ok()) {
      if (st.code() != core::StatusCode::kFailedPrecondition) ctx->Fail(st);
      if (o->id == ctx->placing_buy) ctx->Fail(PlacingBuyShortfall(*ctx, *o, r.credits(), false));
      o->reason = "escrow_refused: " + st.message();
      return false;
    }
    o->escrow = esc;
    o->escrow_gen++;
    return true;
  }
  int64_t free_units = o->cap_units - o->cap_sold - o->cap_returned;
  if (free_units < r.qty) {
    o->reason = "escrow_refused: the escrowed capacity does not cover the remainder";
    return false;
  }
  return true;
}

bool Forwarder::SettleFill(const auction::Trade& t) {
  if (ctx == nullptr || !ctx->error.ok()) return false;
  ctx->ms->mu.AssertHeld();  // the book calls back inside RunBookOp, which holds it
  LiveOrder* buy = ctx->Get(static_cast<int64_t>(t.buy_order));
  LiveOrder* sell = ctx->Get(static_cast<int64_t>(t.sell_order));
  if (buy == nullptr || sell == nullptr) return false;
  Host& b = ctx->markets->host();
  ledger::Txn& txn = *ctx->txn;
  const core::Money notional = t.notional();
  // Money first: the only step that may legitimately be refused (an incoming
  // buyer without the funds); it applies nothing when it fails.
  if (t.aggressor == auction::Side::kSell) {
    core::Status st = b.EscrowSettle(txn, buy->escrow, sell->account, notional);
    if (!st.ok()) {
      ctx->Fail(st.WithContext("settling a fill from the resting buy's escrow"));
      return false;
    }
  } else {
    ReleaseMoveHeld(*ctx, *buy);  // a moved buy pays from its free balance
    if (!ctx->error.ok()) return false;
    core::Status st = b.Transfer(txn, buy->account, sell->account, notional);
    if (!st.ok()) {
      if (st.code() != core::StatusCode::kFailedPrecondition) ctx->Fail(st);
      if (buy->id == ctx->placing_buy) ctx->Fail(PlacingBuyShortfall(*ctx, *buy, notional, true));
      buy->reason = "escrow_refused: " + st.message();
      return false;
    }
    if (buy->id == ctx->placing_buy) {
      auto paid = ctx->placing_paid.Add(notional);
      if (!paid.ok()) {
        ctx->Fail(paid.status());
        return false;
      }
      ctx->placing_paid = *paid;
    }
  }
  // Capacity: a child of the sell's escrow rcap E, delegated to the buyer
  // (to the broker for acquire, which narrows it for the buyer).
  const MarketInfo& mi = ctx->ms->info;
  auto buyer_key = ctx->fills_to_broker ? core::Result<core::PublicKey>(b.broker_key())
                                        : core::PublicKey::FromText(buy->owner);
  auto res = mi.unit.Times(t.qty);
  if (!buyer_key.ok() || !res.ok()) {
    ctx->Fail(core::Internal("markets: bad buyer key or unit overflow"));
    return false;
  }
  ledger::ChildSpec spec{.id = "", .holder = *buyer_key, .res = *res, .interval = mi.window};
  auto kids = b.SplitHeld(txn, sell->cap_escrow, std::span<const ledger::ChildSpec>(&spec, 1));
  if (!kids.ok()) {
    ctx->Fail(kids.status().WithContext("splitting the sell's escrowed capacity"));
    return false;
  }
  const std::string child = (*kids)[0].id;
  sell->cap_sold += t.qty;
  buy->filled += t.qty;
  sell->filled += t.qty;
  auto ins = txn.Prepare(
      "INSERT INTO m_trades(market,buy,sell,buyer,seller,qty,price_nanos,rcap,ts_ms) "
      "VALUES(?,?,?,?,?,?,?,?,?)");
  if (!ins.ok()) {
    ctx->Fail(ins.status());
    return false;
  }
  Stmt s = std::move(*ins);
  s.Bind(1, mi.id);
  s.Bind(2, buy->id);
  s.Bind(3, sell->id);
  s.Bind(4, buy->owner);
  s.Bind(5, sell->account);
  s.Bind(6, t.qty);
  s.Bind(7, t.price_nanos);
  s.Bind(8, child);
  s.Bind(9, txn.now_millis());
  core::Status st = s.Run();
  if (!st.ok()) {
    ctx->Fail(st);
    return false;
  }
  int64_t trade_id = txn.db()->LastInsertRowId();
  json tj = {{"id", trade_id},      {"market", mi.id},
             {"buy", buy->id},      {"sell", sell->id},
             {"buyer", buy->owner}, {"seller", sell->account},
             {"qty", t.qty},        {"price", t.price().ToString()},
             {"rcap", child}};
  auto app = txn.Append("market_trade", tj);
  if (!app.ok()) {
    ctx->Fail(app.status());
    return false;
  }
  tj["ts_ms"] = txn.now_millis();
  ctx->trades.push_back(tj);
  ctx->bought_rcaps.push_back(child);
  return true;
}

void Forwarder::ReleaseResting(const auction::EscrowRequest& r) {
  if (ctx == nullptr) return;
  ctx->ms->mu.AssertHeld();  // the book calls back inside RunBookOp, which holds it
  LiveOrder* o = ctx->Get(static_cast<int64_t>(r.order));
  if (o == nullptr) return;
  if (r.side == auction::Side::kBuy && r.credits_nanos > 0) {
    if (o->id == ctx->moving) {  // kept for the order's next rest (MoveInBook)
      ctx->move_held = r.credits();
      return;
    }
    core::Status st = ctx->markets->host().EscrowRelease(*ctx->txn, o->escrow, r.credits());
    if (!st.ok()) ctx->Fail(st.WithContext("releasing a buy's escrow"));
  }
  // Sells: unsold capacity goes back to the seller in FinishOp, once the
  // order's fate in this operation is known (a move re-reserves at once).
}

void Forwarder::OnCancelled(auction::OrderId id, int64_t /*qty*/, auction::CancelReason reason) {
  if (ctx == nullptr) return;
  ctx->ms->mu.AssertHeld();  // the book calls back inside RunBookOp, which holds it
  LiveOrder* o = ctx->Get(static_cast<int64_t>(id));
  if (o == nullptr) return;
  if (reason != auction::CancelReason::kEscrowRefused || o->reason.empty()) {
    o->reason = std::string(auction::CancelReasonName(reason));
  }
}

void Forwarder::OnMoved(auction::OrderId id, int64_t new_price_nanos) {
  if (ctx == nullptr) return;
  ctx->ms->mu.AssertHeld();  // the book calls back inside RunBookOp, which holds it
  LiveOrder* o = ctx->Get(static_cast<int64_t>(id));
  if (o != nullptr) o->price_nanos = new_price_nanos;
}

void Forwarder::OnRested(auction::OrderId id, int64_t /*qty*/, int64_t price_nanos) {
  if (ctx == nullptr) return;
  ctx->ms->mu.AssertHeld();  // the book calls back inside RunBookOp, which holds it
  LiveOrder* o = ctx->Get(static_cast<int64_t>(id));
  if (o == nullptr) return;
  o->price_nanos = price_nanos;
  o->prio = 0;  // assigned in FinishOp (global priority counter)
}

// ---- persistence -------------------------------------------------------------

namespace {

// An existing order row, updated in place: only the columns an operation
// changes, so the row and its owner and cap_escrow index entries stay where
// they are (INSERT OR REPLACE deletes and re-inserts all of them), and its
// m_orders_live entry (market, state) too unless the state changed (a move
// or reduce leaves it). Sets *found to whether the row exists.
core::Status UpdateOrder(ledger::Txn& txn, const LiveOrder& o, bool state_changed, bool* found) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s,
      txn.Prepare(state_changed
                      ? "UPDATE m_orders SET price_nanos=?2,remaining=?3,filled=?4,state=?5,"
                        "reason=?6,prio=?7,escrow=?8,escrow_gen=?9,cap_units=?10,cap_sold=?11,"
                        "cap_returned=?12,returned_rcap=?13 WHERE id=?1"
                      : "UPDATE m_orders SET price_nanos=?2,remaining=?3,filled=?4,"
                        "reason=?6,prio=?7,escrow=?8,escrow_gen=?9,cap_units=?10,cap_sold=?11,"
                        "cap_returned=?12,returned_rcap=?13 WHERE id=?1 AND state=?5"));
  s.Bind(1, o.id);
  s.Bind(2, o.price_nanos);
  s.Bind(3, o.remaining);
  s.Bind(4, o.filled);
  s.Bind(5, o.state);
  s.Bind(6, o.reason);
  s.Bind(7, o.prio);
  s.Bind(8, o.escrow);
  s.Bind(9, o.escrow_gen);
  s.Bind(10, o.cap_units);
  s.Bind(11, o.cap_sold);
  s.Bind(12, o.cap_returned);
  s.Bind(13, o.returned_rcap);
  BOURSE_RETURN_IF_ERROR(s.Run());
  *found = txn.db()->Changes() > 0;
  return core::Status::Ok();
}

}  // namespace

core::Status SaveOrder(ledger::Txn& txn, const LiveOrder& o, bool existing, bool state_changed) {
  if (existing) {
    bool found = false;
    BOURSE_RETURN_IF_ERROR(UpdateOrder(txn, o, state_changed, &found));
    if (found) return core::Status::Ok();
  }
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s,
      txn.Prepare("INSERT OR REPLACE INTO m_orders(id,market,owner,account,side,is_market,ioc,qty,"
                  "price_nanos,remaining,filled,state,reason,prio,escrow,escrow_gen,cap_escrow,"
                  "cap_units,cap_sold,cap_returned,returned_rcap,created_ms) "
                  "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  s.Bind(1, o.id);
  s.Bind(2, o.market);
  s.Bind(3, o.owner);
  s.Bind(4, o.account);
  s.Bind(5, SideName(o.side));
  s.Bind(6, o.is_market ? 1 : 0);
  s.Bind(7, o.ioc ? 1 : 0);
  s.Bind(8, o.qty);
  s.Bind(9, o.price_nanos);
  s.Bind(10, o.remaining);
  s.Bind(11, o.filled);
  s.Bind(12, o.state);
  s.Bind(13, o.reason);
  s.Bind(14, o.prio);
  s.Bind(15, o.escrow);
  s.Bind(16, o.escrow_gen);
  s.Bind(17, o.cap_escrow);
  s.Bind(18, o.cap_units);
  s.Bind(19, o.cap_sold);
  s.Bind(20, o.cap_returned);
  s.Bind(21, o.returned_rcap);
  s.Bind(22, o.created_ms);
  return s.Run();
}

namespace {
constexpr const char* kOrderCols =
    "id,market,owner,account,side,is_market,ioc,qty,price_nanos,remaining,filled,state,reason,"
    "prio,escrow,escrow_gen,cap_escrow,cap_units,cap_sold,cap_returned,returned_rcap,created_ms";

LiveOrder OrderFromRow(const Stmt& s) {
  LiveOrder o;
  o.id = s.Int(0);
  o.market = s.Text(1);
  o.owner = s.Text(2);
  o.account = s.Text(3);
  o.side = s.Text(4) == "buy" ? auction::Side::kBuy : auction::Side::kSell;
  o.is_market = s.Int(5) != 0;
  o.ioc = s.Int(6) != 0;
  o.qty = s.Int(7);
  o.price_nanos = s.Int(8);
  o.remaining = s.Int(9);
  o.filled = s.Int(10);
  o.state = s.Text(11);
  o.reason = s.Text(12);
  o.prio = s.Int(13);
  o.escrow = s.Text(14);
  o.escrow_gen = s.Int(15);
  o.cap_escrow = s.Text(16);
  o.cap_units = s.Int(17);
  o.cap_sold = s.Int(18);
  o.cap_returned = s.Int(19);
  o.returned_rcap = s.Text(20);
  o.created_ms = s.Int(21);
  return o;
}
}  // namespace

core::Result<LiveOrder> LoadOrder(storage::Connection* db, int64_t id) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare(std::string("SELECT ") + kOrderCols + " FROM m_orders WHERE id=?"));
  s.Bind(1, id);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return core::NotFound("order " + std::to_string(id) + " does not exist");
  return OrderFromRow(s);
}

core::Result<std::vector<LiveOrder>> LoadOwnerOrders(storage::Connection* db,
                                                     const std::string& owner, bool open_only,
                                                     const std::string& market, int64_t limit) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare(std::string("SELECT ") + kOrderCols +
                          " FROM m_orders WHERE owner=?1 AND (?2=0 OR state='resting') AND "
                          "(?3='' OR market=?3) ORDER BY id DESC LIMIT ?4"));
  s.Bind(1, owner);
  s.Bind(2, int64_t{open_only ? 1 : 0});
  s.Bind(3, market);
  s.Bind(4, limit);
  std::vector<LiveOrder> out;
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(OrderFromRow(s));
  }
  return out;
}

core::Status RebuildBook(Markets* m, storage::Connection* db, MarketState* ms) {
  ms->orders.clear();
  ms->fwd.ctx = nullptr;
  ms->book = std::make_unique<auction::OrderBook>(&ms->fwd, &ms->fwd);
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare(std::string("SELECT ") + kOrderCols +
                                              " FROM m_orders WHERE market=? AND state='resting' "
                                              "ORDER BY prio"));
  s.Bind(1, ms->info.id);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    LiveOrder o = OrderFromRow(s);
    auction::OrderRequest req{.id = static_cast<uint64_t>(o.id),
                              .owner = m->OwnerId(o.owner),
                              .side = o.side,
                              .type = auction::OrderType::kLimit,
                              .tif = auction::TimeInForce::kGtc,
                              .qty = o.remaining,
                              .price = core::Money::FromNanos(o.price_nanos)};
    BOURSE_RETURN_IF_ERROR(ms->book->Place(req));
    auto found = ms->book->Find(req.id);
    if (!found || found->qty != o.remaining) {
      return core::Internal("markets: rebuilding market " + ms->info.id + ": order " +
                            std::to_string(o.id) + " did not come to rest (crossed book?)");
    }
    ms->orders.emplace(o.id, std::move(o));
  }
  ms->stale = false;
  return core::Status::Ok();
}

core::Status EnsureFresh(Markets* m, ledger::Txn& txn, MarketState* ms) {
  if (!ms->stale) return core::Status::Ok();
  return RebuildBook(m, txn.db(), ms);
}

core::Status FinishOp(OpCtx& ctx) {
  MarketState* ms = ctx.ms;
  ms->mu.AssertHeld();  // the caller holds ctx.ms->mu (the analysis does not see ms is ctx.ms)
  ms->fwd.ctx = nullptr;
  auto fail = [&](core::Status st) {
    ms->mu.AssertHeld();  // a lambda is analysed on its own; it runs here, under the lock
    ms->stale = true;
    return st;
  };
  if (!ctx.error.ok()) return fail(ctx.error);
  Host& b = ctx.markets->host();
  ledger::Txn& txn = *ctx.txn;
  for (int64_t id : ctx.touched) {
    auto it = ms->orders.find(id);
    if (it == ms->orders.end()) continue;
    LiveOrder& o = it->second;
    auto rest = ms->book->Find(static_cast<uint64_t>(id));
    std::string before = o.state;
    if (rest) {
      o.remaining = rest->qty;
      o.price_nanos = rest->price_nanos;
      o.state = "resting";
      o.reason.clear();
      if (o.prio == 0) o.prio = ctx.markets->next_prio();
    } else {
      o.remaining = 0;
      o.state = o.filled == o.qty ? "filled" : "cancelled";
      if (o.state == "filled") o.reason.clear();
    }
    if (o.side == auction::Side::kSell) {
      int64_t unsold = o.cap_units - o.cap_sold - o.cap_returned - o.remaining;
      if (unsold < 0) {
        return fail(core::Internal("markets: order " + std::to_string(id) +
                                   " rests more capacity than it escrowed"));
      }
      if (unsold > 0) {
        if (o.account != b.broker_key().ToText()) {
          auto res = ms->info.unit.Times(unsold);
          if (!res.ok()) return fail(core::Internal("markets: unit x unsold overflows"));
          auto kid =
              internal::ReturnEscrow(b, txn, o.cap_escrow, o.owner, *res, ms->info.window);
          if (!kid.ok()) return fail(kid.status().WithContext("returning unsold capacity"));
          o.returned_rcap = *kid;
        }
        o.cap_returned += unsold;
      }
    }
    if (o.state == "cancelled" && before != "cancelled") {
      auto app = txn.Append("order_cancelled", {{"market", o.market},
                                                {"order", o.id},
                                                {"unfilled", o.qty - o.filled},
                                                {"reason", o.reason}});
      if (!app.ok()) return fail(app.status());
    }
    BOURSE_RETURN_IF_ERROR(
        SaveOrder(txn, o, before != "new", o.state != before).WithContext("saving order"));
    ctx.final_orders[id] = o;
  }
  for (int64_t id : ctx.touched) {
    auto it = ms->orders.find(id);
    if (it != ms->orders.end() && it->second.state != "resting") ms->orders.erase(it);
  }
  return core::Status::Ok();
}

core::Status RunBookOpIn(Markets* m, MarketState* ms, ledger::Txn& txn,
                         const std::function<core::Status(OpCtx&)>& op, OpCtx* result,
                         bool* touched) {
  core::MutexLock l(&ms->mu);
  BOURSE_RETURN_IF_ERROR(EnsureFresh(m, txn, ms));
  *result = OpCtx{};
  result->markets = m;
  result->txn = &txn;
  result->ms = ms;
  ms->fwd.ctx = result;
  core::Status st = op(*result);
  *touched = *touched || result->book_touched || !result->touched.empty();
  if (!st.ok()) {
    ms->fwd.ctx = nullptr;
    if (*touched) ms->stale = true;
    return st;
  }
  result->ms->mu.AssertHeld();  // result->ms is ms
  return FinishOp(*result);
}

void MarkStale(MarketState* ms) {
  core::MutexLock l(&ms->mu);
  ms->stale = true;
}

namespace {

// One book operation's commit fn and its aftermath, shared by RunBookOp
// (waits) and RunBookOpAsync.
struct BookOp {
  Markets* m;
  MarketState* ms;
  std::function<core::Status(OpCtx&)> op;
  OpCtx* result;
  bool touched = false;

  core::Status Run(ledger::Txn& txn) { return RunBookOpIn(m, ms, txn, op, result, &touched); }
  // A failed commit (fn's error or the batch's) leaves a touched book stale.
  void After(const core::Status& st) {
    if (!st.ok() && touched) MarkStale(ms);
  }
};

}  // namespace

core::Status RunBookOp(Markets* m, MarketState* ms, const std::function<core::Status(OpCtx&)>& op,
                       OpCtx* result) {
  BookOp b{m, ms, op, result};
  auto r = m->host().Mutate([&](ledger::Txn& txn) { return b.Run(txn); });
  b.After(r.status());
  return r.status();
}

void RunBookOpAsync(Markets* m, MarketState* ms, std::function<core::Status(OpCtx&)> op,
                    std::shared_ptr<OpCtx> result, std::function<void(core::Status)> done) {
  auto b = std::make_shared<BookOp>(BookOp{m, ms, std::move(op), result.get()});
  m->host().MutateAsync([b, result](ledger::Txn& txn) { return b->Run(txn); },
                        [b, result, done = std::move(done)](core::Result<ledger::CommitResult> r) {
                          b->After(r.status());
                          done(r.status());
                        });
}

}  // namespace internal

// ---- Markets -------------------------------------------------------------------

Markets::Markets(Host* host, const core::PrivateKey& key, MarketsOptions options)
    : host_(host), key_(key), options_(options) {}

Markets::~Markets() {
  {
    core::MutexLock l(&stop_mu_);
    stop_ = true;
  }
  stop_cv_.SignalAll();
  if (ticker_.joinable()) ticker_.join();
}

core::Result<std::unique_ptr<Markets>> Markets::Open(Host* host, const core::PrivateKey& ledger_key,
                                                     MarketsOptions options) {
  std::unique_ptr<Markets> m(new Markets(host, ledger_key, options));
  BOURSE_RETURN_IF_ERROR(ledger::MigrateSchema(host->store(), MarketsSchema()));
  BOURSE_RETURN_IF_ERROR(m->LoadAll());
  {
    core::MutexLock l(&m->tick_mu_);  // no ticker yet; the analysis wants it held
    m->last_share_charge_s_ = host->clock().NowSeconds();
  }
  if (options.tick_ms > 0) {
    Markets* self = m.get();
    m->ticker_ = std::thread([self]() EXCLUDES(self->stop_mu_) {
      core::MutexLock l(&self->stop_mu_);
      while (!self->stop_) {
        self->stop_cv_.WaitFor(&self->stop_mu_, std::chrono::milliseconds(self->options_.tick_ms));
        if (self->stop_) break;
        l.Unlock();
        (void)self->Tick();
        l.Lock();
      }
    });
  }
  return m;
}

core::Status Markets::LoadAll() {
  return host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(
        Stmt s, db->Prepare("SELECT id,node,site,unit,not_before,not_after,close_s,holder,state,"
                            "created_ms FROM m_markets"));
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      auto ms = std::make_unique<MarketState>();
      internal::MarketInfo& mi = ms->info;
      mi.id = s.Text(0);
      mi.node = s.Text(1);
      mi.site = s.Text(2);
      json u = json::parse(s.Text(3), nullptr, false);
      BOURSE_ASSIGN_OR_RETURN(mi.unit, core::ResourceVectorFromJson(u, "unit"));
      mi.window = {s.Int(4), s.Int(5)};
      mi.close_s = s.Int(6);
      mi.holder = s.Text(7);
      mi.state = s.Text(8);
      mi.created_ms = s.Int(9);
      {
        core::MutexLock l(&ms->mu);  // not shared yet; the analysis wants it held
        BOURSE_RETURN_IF_ERROR(internal::RebuildBook(this, db, ms.get()));
      }
      core::MutexLock l(&mu_);
      markets_[mi.id] = std::move(ms);
    }
    BOURSE_ASSIGN_OR_RETURN(
        Stmt mx, db->Prepare("SELECT COALESCE(MAX(id),0), COALESCE(MAX(prio),0) FROM m_orders"));
    BOURSE_ASSIGN_OR_RETURN(bool row, mx.Step());
    if (row) {
      next_order_id_ = mx.Int(0) + 1;
      next_prio_ = mx.Int(1) + 1;
    }
    return core::Status::Ok();
  });
}

uint64_t Markets::OwnerId(const std::string& key) {
  core::MutexLock l(&mu_);
  auto [it, fresh] = owners_.emplace(key, owners_.size() + 1);
  return it->second;
}

void Markets::AddMarket(std::unique_ptr<internal::MarketState> ms) {
  core::MutexLock l(&mu_);
  std::string id = ms->info.id;
  markets_[id] = std::move(ms);
}

core::Result<internal::MarketState*> Markets::Find(const std::string& id) {
  core::MutexLock l(&mu_);
  auto it = markets_.find(id);
  if (it == markets_.end()) return core::NotFound("market " + id + " does not exist");
  return it->second.get();
}

core::Status Markets::Tick() {
  core::MutexLock l(&tick_mu_);
  core::Status a = CloseDueMarkets();
  core::Status b = ClearDueRounds();
  if (core::Status r = AwardDueRfqs(); !r.ok() && b.ok()) b = r;
  core::Status c = ChargeShares(false);
  core::Status d = host_->Tick();
  if (!a.ok()) return a;
  if (!b.ok()) return b;
  if (!c.ok()) return c;
  return d;
}

core::Status Markets::CloseDueMarkets() {
  int64_t now = host_->clock().NowSeconds();
  std::vector<MarketState*> due;
  {
    core::MutexLock l(&mu_);
    for (auto& [id, ms] : markets_) {
      if (ms->info.state == "open" && ms->info.close_s <= now) due.push_back(ms.get());
    }
  }
  for (MarketState* ms : due) {
    auto r = host_->Mutate([&](ledger::Txn& txn) -> core::Status {
      core::MutexLock l(&ms->mu);
      if (ms->info.state != "open") return core::Status::Ok();
      BOURSE_RETURN_IF_ERROR(internal::EnsureFresh(this, txn, ms));
      OpCtx ctx;
      ctx.markets = this;
      ctx.txn = &txn;
      ctx.ms = ms;
      ctx.ms->mu.AssertHeld();  // ctx.ms is ms
      ms->fwd.ctx = &ctx;
      for (auction::Side side : {auction::Side::kBuy, auction::Side::kSell}) {
        for (const auction::RestingOrder& o : ms->book->Orders(side)) {
          if (LiveOrder* lo = ctx.Get(static_cast<int64_t>(o.id))) lo->reason = "market_closed";
          (void)ms->book->Cancel(o.id);
        }
      }
      for (int64_t id : ctx.touched) ms->orders[id].reason = "market_closed";
      BOURSE_RETURN_IF_ERROR(internal::FinishOp(ctx));
      BOURSE_ASSIGN_OR_RETURN(Stmt up,
                              txn.Prepare("UPDATE m_markets SET state='closed' WHERE id=?"));
      up.Bind(1, ms->info.id);
      BOURSE_RETURN_IF_ERROR(up.Run());
      BOURSE_RETURN_IF_ERROR(txn.Append("market_closed", {{"market", ms->info.id}}).status());
      ms->info.state = "closed";
      return core::Status::Ok();
    });
    if (!r.ok()) {
      core::MutexLock l(&ms->mu);
      ms->stale = true;
      ms->info.state = "open";
      return r.status();
    }
  }
  return core::Status::Ok();
}

}  // namespace bourse::markets
