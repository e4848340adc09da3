// Markets: REST routes of the order-book markets (create, list, place,
// cancel, reduce, move, depth, trades, candles). docs/markets.md.
#include <algorithm>
#include <regex>

#include "broker/markets/internal/escrow.h"
#include "broker/markets/internal/market_state.h"
#include "broker/markets/internal/order_ops.h"
#include "broker/markets/markets.h"
#include "core/json_codec.h"
#include "core/random.h"
#include "ledger/accounts.h"

namespace bourse::markets {

using internal::LiveOrder;
using internal::MarketState;
using internal::OpCtx;
using internal::Stmt;
using nlohmann::json;

namespace {

constexpr int64_t kMaxQty = 1'000'000'000;

// The site of a registered node. Errors: not_found.
core::Result<std::string> NodeSite(Host& host, storage::Connection* db, const std::string& node) {
  BOURSE_ASSIGN_OR_RETURN(std::optional<NodeInfo> n, host.FindNode(db, node));
  if (!n) return core::NotFound("node: node " + node + " does not exist");
  return n->site;
}

// Whether capacity on `node` (of `site`) may be sold in the market: on its
// node for a node market, on any node of its site for a site market.
core::Status InPool(const internal::MarketInfo& mi, const std::string& node,
                    const std::string& site) {
  if (!mi.node.empty()) {
    if (node != mi.node) {
      return core::InvalidArgument("is on node " + node + ", not the market's node " + mi.node);
    }
    return core::Status::Ok();
  }
  if (site != mi.site) {
    return core::InvalidArgument("node " + node + " is on site " + site +
                                 ", not the market's site " + mi.site);
  }
  return core::Status::Ok();
}

core::Result<int64_t> IntMember(const json& body, const char* name, int64_t min, int64_t max) {
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(body, "", name));
  return core::IntFromJson(*v, name, min, max);
}

core::Result<core::Money> MoneyMember(const json& body, const char* name) {
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(body, "", name));
  return core::MoneyFromJson(*v, name);
}

// A market whose book may be stale is refreshed through a no-op operation.
core::Status Refresh(Markets* m, MarketState* ms) {
  {
    core::MutexLock l(&ms->mu);
    if (!ms->stale) return core::Status::Ok();
  }
  OpCtx ctx;
  return internal::RunBookOp(
      m, ms, [](OpCtx&) { return core::Status::Ok(); }, &ctx);
}

// Checks the caller may change order `id` of `ms`, under ms->mu.
core::Result<LiveOrder*> OwnedLiveOrder(OpCtx& ctx, int64_t id, const std::string& caller)
    REQUIRES(ctx.ms->mu) {
  auto it = ctx.ms->orders.find(id);
  if (it == ctx.ms->orders.end()) {
    auto row = internal::LoadOrder(ctx.txn->db(), id);
    if (row.ok() && row->market == ctx.ms->info.id) {
      if (row->owner != caller)
        return core::PermissionDenied("order " + std::to_string(id) + " is not the caller's");
      return core::FailedPrecondition("order " + std::to_string(id) + " is not resting (state " +
                                      row->state + ")");
    }
    return core::NotFound("order " + std::to_string(id) + " does not exist in market " +
                          ctx.ms->info.id);
  }
  if (it->second.owner != caller) {
    return core::PermissionDenied("order " + std::to_string(id) + " is not the caller's");
  }
  return &it->second;
}

// The order fields of a placement's body (side .. rcap) into st.
core::Status DecodeOrderFields(const json& body, internal::PlacedOrder* st) {
  using namespace internal;
  LiveOrder& o = st->o;
  BOURSE_ASSIGN_OR_RETURN(std::string side, core::StrField(body, "side", 8));
  if (side == "buy") {
    o.side = auction::Side::kBuy;
  } else if (side == "sell") {
    o.side = auction::Side::kSell;
  } else {
    return core::InvalidArgument("side: must be buy or sell");
  }
  if (core::OptionalMember(body, "type") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(std::string type, core::StrField(body, "type", 8));
    if (type != "limit" && type != "market") {
      return core::InvalidArgument("type: must be limit or market");
    }
    o.is_market = type == "market";
  }
  if (core::OptionalMember(body, "tif") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(std::string tif, core::StrField(body, "tif", 8));
    if (tif != "gtc" && tif != "ioc") return core::InvalidArgument("tif: must be gtc or ioc");
    o.ioc = tif == "ioc";
  }
  BOURSE_ASSIGN_OR_RETURN(o.qty, IntMember(body, "qty", 1, kMaxQty));
  const json* pj = core::OptionalMember(body, "price");
  if (o.is_market) {
    if (pj != nullptr) return core::InvalidArgument("price: a market order has no price");
  } else {
    if (pj == nullptr) return core::InvalidArgument("price: required for a limit order");
    BOURSE_ASSIGN_OR_RETURN(core::Money p, core::MoneyFromJson(*pj, "price"));
    auto nanos = auction::OrderBook::PriceToNanos(p);
    if (!nanos.ok()) return core::InvalidArgument("price: must be > 0 and < 2^63 nano-credits");
    o.price_nanos = *nanos;
  }
  if (o.side == auction::Side::kBuy) {
    if (core::OptionalMember(body, "escrow") || core::OptionalMember(body, "rcap")) {
      return core::InvalidArgument("escrow: only a sell escrows capacity");
    }
  } else if (const json* e = core::OptionalMember(body, "escrow")) {
    if (core::OptionalMember(body, "rcap")) {
      return core::InvalidArgument("rcap: give either escrow or rcap, not both");
    }
    BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(*e, "escrow"));
    st->escrow = std::move(r);
  } else if (core::OptionalMember(body, "rcap") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(st->pool_rcap, core::StrField(body, "rcap", ledger::kMaxRcapIdLength));
  } else {
    return core::InvalidArgument(
        "escrow: a sell needs the capacity it sells: an rcap delegated to the broker "
        "(escrow) or, for an admin, a broker pool rcap id (rcap)");
  }
  return core::Status::Ok();
}

// The checks of a decoded placement against its market that need no
// transaction: unit x qty, and a seller's signed escrow.
core::Status CheckOrder(Markets& m, internal::PlacedOrder& st, const std::string& caller) {
  const internal::MarketInfo& mi = st.ms->info;  // immutable but for state
  auto want = mi.unit.Times(st.o.qty);
  if (!want.ok()) return core::InvalidArgument("qty: unit x qty overflows");
  st.want = *want;
  st.broker_text = m.host().broker_key().ToText();
  const std::string& broker_text = st.broker_text;
  if (!st.escrow) return core::Status::Ok();
  const ledger::Rcap& e = *st.escrow;
  BOURSE_RETURN_IF_ERROR(internal::CheckSignedEscrow(e, caller, broker_text, "escrow"));
  if (!mi.node.empty()) {  // a site market checks the node's site in the transaction
    BOURSE_RETURN_IF_ERROR(InPool(mi, e.node, mi.site).WithContext("escrow.node"));
  }
  if (!(e.res == *want)) {
    return core::InvalidArgument("escrow.res: must be unit x qty = " + want->ToString());
  }
  if (!(e.interval == mi.window)) {
    return core::InvalidArgument("escrow.not_before/not_after: must be the market window");
  }
  if (!mi.holder.empty() && mi.holder != caller) {
    return core::PermissionDenied("only " + mi.holder + " sells in market " + mi.id);
  }
  return core::Status::Ok();
}

// A sell's capacity escrow, in the placement's transaction: the seller's
// signed rcap is recorded, or an admin's pool rcap is split. Sets
// lo.cap_escrow (and lo.account for a pool sell).
core::Status EscrowSell(Markets& m, ledger::Txn& txn, const internal::PlacedOrder& st,
                        const core::Principal& caller, const std::string& caller_text,
                        LiveOrder& lo) {
  using namespace internal;
  const MarketInfo& mi = st.ms->info;
  const std::string& broker_text = st.broker_text;
  if (st.escrow) {
    const ledger::Rcap& escrow = *st.escrow;
    if (mi.node.empty()) {
      BOURSE_ASSIGN_OR_RETURN(std::string esite, NodeSite(m.host(), txn.db(), escrow.node));
      BOURSE_RETURN_IF_ERROR(InPool(mi, escrow.node, esite).WithContext("escrow.node"));
    }
    BOURSE_RETURN_IF_ERROR(
        internal::RecordSignedEscrow(m.host(), txn, escrow, caller_text, "escrow"));
    lo.cap_escrow = escrow.id;
    return core::Status::Ok();
  }
  if (caller.kind == core::PrincipalKind::kAdmin && !mi.holder.empty() &&
      mi.holder != broker_text) {
    return core::PermissionDenied("only " + mi.holder + " sells in market " + mi.id);
  }
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap src,
                          internal::PoolSource(txn, caller, st.pool_rcap, "rcap", "sells"));
  BOURSE_ASSIGN_OR_RETURN(std::string src_site, NodeSite(m.host(), txn.db(), src.node));
  BOURSE_RETURN_IF_ERROR(InPool(mi, src.node, src_site).WithContext("rcap"));
  ledger::ChildSpec spec{
      .id = "", .holder = m.host().broker_key(), .res = st.want, .interval = mi.window};
  BOURSE_ASSIGN_OR_RETURN(
      std::vector<ledger::Rcap> kids,
      m.host().SplitHeld(txn, st.pool_rcap, std::span<const ledger::ChildSpec>(&spec, 1)));
  lo.cap_escrow = kids[0].id;
  lo.account = broker_text;
  return core::Status::Ok();
}

// A reduce's qty, decoded before the operation but reported, as before the
// split, after the ownership check.
core::Result<int64_t> DecodeReduceQty(const json& body) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"qty"}));
  return IntMember(body, "qty", 1, kMaxQty);
}

struct NewPrice {
  core::Money price;
  int64_t nanos = 0;
};

core::Result<NewPrice> DecodeMovePrice(const json& body) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"price"}));
  BOURSE_ASSIGN_OR_RETURN(core::Money p, MoneyMember(body, "price"));
  auto nanos = auction::OrderBook::PriceToNanos(p);
  if (!nanos.ok()) return core::InvalidArgument("price: must be > 0 and < 2^63 nano-credits");
  return NewPrice{p, *nanos};
}

// The market of a decoded CreateMarket request, its fields checked.
core::Result<std::unique_ptr<MarketState>> DecodeMarket(const json& body, int64_t now_ms,
                                                        bool* by_node) {
  using namespace internal;
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(
      body, "", {"node", "site", "unit", "not_before", "not_after", "close", "holder"}));
  auto ms = std::make_unique<MarketState>();
  MarketInfo& mi = ms->info;
  *by_node = core::OptionalMember(body, "node") != nullptr;
  if (*by_node == (core::OptionalMember(body, "site") != nullptr)) {
    return core::InvalidArgument("node/site: give exactly one of node and site");
  }
  if (*by_node) {
    BOURSE_ASSIGN_OR_RETURN(mi.node, core::StrField(body, "node", 128));
  } else {
    BOURSE_ASSIGN_OR_RETURN(mi.site, core::StrField(body, "site", 128));
  }
  BOURSE_ASSIGN_OR_RETURN(const json* u, core::RequireMember(body, "", "unit"));
  BOURSE_ASSIGN_OR_RETURN(mi.unit, core::ResourceVectorFromJson(*u, "unit"));
  if (mi.unit.cpu_mcores == 0 && mi.unit.mem_mib == 0 && mi.unit.disk_mib == 0 &&
      mi.unit.net_min_kbps == 0) {
    return core::InvalidArgument("unit: must have a non-zero quantity");
  }
  BOURSE_ASSIGN_OR_RETURN(mi.window, core::WindowFields(body));
  mi.close_s = mi.window.not_before;
  if (const json* c = core::OptionalMember(body, "close")) {
    BOURSE_ASSIGN_OR_RETURN(mi.close_s, core::IntFromJson(*c, "close", 0, core::kMaxSafeInteger));
  }
  if (mi.close_s > mi.window.not_after) {
    return core::InvalidArgument("close: must not be after not_after");
  }
  if (mi.close_s <= now_ms / 1000) {
    return core::InvalidArgument("close: trading would already have ended");
  }
  if (core::OptionalMember(body, "holder") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey h, core::KeyField(body, "holder"));
    mi.holder = h.ToText();
  }
  return ms;
}

}  // namespace

namespace {

// A single route's change of a resting order (cancel, reduce, move): one
// book operation and its commit.
core::Result<json> RunChange(Markets* m, const internal::OrderChange& ch,
                             const std::string& caller) {
  OpCtx ctx;
  BOURSE_RETURN_IF_ERROR(internal::RunBookOp(
      m, ch.ms,
      [&](OpCtx& c) -> core::Status {
        c.ms->mu.AssertHeld();  // RunBookOp holds it
        return internal::ApplyChange(c, ch, caller);
      },
      &ctx));
  return internal::OpResponse(ctx, ch.id);
}

// An order id as given in a path.
core::Result<int64_t> ParseOrderId(const std::string& s) {
  if (s.empty() || s.size() > 15 || !std::all_of(s.begin(), s.end(), ::isdigit)) {
    return core::InvalidArgument("order: must be a decimal order id");
  }
  return std::stoll(s);
}

}  // namespace

core::Result<json> Markets::CreateMarket(const json& body, const std::string& caller,
                                         int64_t now_ms) {
  bool by_node = false;
  BOURSE_ASSIGN_OR_RETURN(std::unique_ptr<MarketState> ms, DecodeMarket(body, now_ms, &by_node));
  return CreateMarket(std::move(ms), by_node, caller);
}

void Markets::PlaceOrder(const std::string& market, const json& body, const std::string& caller,
                         int64_t now_ms, PlaceDone done) {
  auto st = std::make_shared<internal::PlacedOrder>();
  core::Status valid = DecodeOrder(market, body, caller, st.get());
  if (!valid.ok()) {
    done([valid]() -> core::Result<json> { return valid; });
    return;
  }
  auto ctx = std::make_shared<OpCtx>();
  PlaceOrderOp(st, ctx, now_ms, caller, [done, st, ctx](core::Status s) {
    done([s, st, ctx]() -> core::Result<json> {
      if (!s.ok()) return s;
      return internal::OpResponse(*ctx, st->id);
    });
  });
}

core::Status Markets::DecodeOrder(const std::string& market, const json& body,
                                  const std::string& caller, internal::PlacedOrder* st) {
  BOURSE_RETURN_IF_ERROR(
      core::CheckObjectFields(body, "", {"side", "type", "tif", "qty", "price", "escrow", "rcap"}));
  BOURSE_ASSIGN_OR_RETURN(st->ms, Find(market));
  st->o.market = st->ms->info.id;
  st->o.owner = caller;
  st->o.account = caller;
  BOURSE_RETURN_IF_ERROR(DecodeOrderFields(body, st));
  return CheckOrder(*this, *st, caller);
}

core::Result<json> Markets::CancelOrder(const std::string& market, const std::string& order,
                                        const std::string& caller) {
  BOURSE_ASSIGN_OR_RETURN(internal::OrderChange ch, internal::DecodeCancel(*this, market, order));
  return RunChange(this, ch, caller);
}

core::Result<json> Markets::ReduceOrder(const std::string& market, const std::string& order,
                                        const json& body, const std::string& caller) {
  BOURSE_ASSIGN_OR_RETURN(internal::OrderChange ch,
                          internal::DecodeReduce(*this, market, order, body));
  return RunChange(this, ch, caller);
}

core::Result<json> Markets::MoveOrder(const std::string& market, const std::string& order,
                                      const json& body, const std::string& caller) {
  BOURSE_ASSIGN_OR_RETURN(internal::OrderChange ch,
                          internal::DecodeMove(*this, market, order, body));
  return RunChange(this, ch, caller);
}

// ---- the operations single routes and batches share (internal/order_ops.h) ----

json internal::OpResponse(OpCtx& ctx, int64_t id) {
  json out = json::object();
  auto it = ctx.final_orders.find(id);
  out["order"] = it != ctx.final_orders.end() ? it->second.ToJson() : json();
  out["trades"] = std::move(ctx.trades);
  return out;
}

namespace {

// A change of order `order` (as in the path) of `market`; `invalid` is the
// decoding error of its body (reported after the ownership check). Errors:
// not_found (market), invalid_argument (order).
core::Result<internal::OrderChange> ChangeOf(Markets& m, const std::string& market,
                                             const std::string& order, std::string entry,
                                             core::Status invalid, internal::ChangeFn apply) {
  BOURSE_ASSIGN_OR_RETURN(MarketState * ms, m.Find(market));
  BOURSE_ASSIGN_OR_RETURN(int64_t id, ParseOrderId(order));
  return internal::OrderChange{ms, id, std::move(entry), std::move(invalid), std::move(apply)};
}

}  // namespace

core::Result<internal::OrderChange> internal::DecodeCancel(Markets& m, const std::string& market,
                                                           const std::string& order) {
  return ChangeOf(m, market, order, "", core::Status::Ok(),
                  [](OpCtx& c, LiveOrder* o, json*) -> core::Status {
                    c.ms->mu.AssertHeld();  // RunBookOp holds it
                    return c.ms->book->Cancel(static_cast<uint64_t>(o->id));
                  });
}

// A bad qty or price is reported after the ownership check, before the book
// is touched (ApplyChange).
core::Result<internal::OrderChange> internal::DecodeReduce(Markets& m, const std::string& market,
                                                           const std::string& order,
                                                           const json& body) {
  core::Result<int64_t> qty = DecodeReduceQty(body);
  const int64_t n = qty.ok() ? *qty : 0;
  return ChangeOf(m, market, order, "order_reduced", qty.status(),
                  [n](OpCtx& c, LiveOrder* o, json* entry) -> core::Status {
                    c.ms->mu.AssertHeld();  // RunBookOp holds it
                    (*entry)["qty"] = n;
                    return c.ms->book->Reduce(static_cast<uint64_t>(o->id), n);
                  });
}

core::Result<internal::OrderChange> internal::DecodeMove(Markets& m, const std::string& market,
                                                         const std::string& order,
                                                         const json& body) {
  core::Result<NewPrice> np = DecodeMovePrice(body);
  const NewPrice p = np.ok() ? *np : NewPrice{};
  BOURSE_ASSIGN_OR_RETURN(internal::OrderChange ch,
                          ChangeOf(m, market, order, "order_moved", np.status(),
                                   [p](OpCtx& c, LiveOrder* o, json* entry) -> core::Status {
                                     c.ms->mu.AssertHeld();  // RunBookOp holds it
                                     (*entry)["price"] = internal::MoneyText(p.nanos);
                                     return internal::MoveInBook(c, o, p.price);
                                   }));
  ch.trades = true;
  return ch;
}

core::Status internal::ApplyChange(OpCtx& c, const OrderChange& ch, const std::string& caller) {
  // Checks first: nothing is written and the book is not touched (so not
  // left stale) when the order is not the caller's or the body is bad.
  BOURSE_ASSIGN_OR_RETURN(LiveOrder * o, OwnedLiveOrder(c, ch.id, caller));
  BOURSE_RETURN_IF_ERROR(ch.invalid);
  if (ch.trades &&
      (c.ms->info.state != "open" || c.txn->now_millis() / 1000 >= c.ms->info.close_s)) {
    return core::FailedPrecondition("market " + c.ms->info.id + " is closed for trading");
  }
  json body = {{"market", c.ms->info.id}, {"order", ch.id}};
  c.touched.insert(ch.id);
  c.book_touched = true;
  BOURSE_RETURN_IF_ERROR(ch.apply(c, o, &body));
  if (!ch.entry.empty()) BOURSE_RETURN_IF_ERROR(c.txn->Append(ch.entry, body).status());
  return core::Status::Ok();
}

core::Status internal::PlaceOrderInBook(Markets& m, OpCtx& c, internal::PlacedOrder& st,
                                        int64_t now_ms, const std::string& caller_text) {
  MarketState* ms = c.ms;
  ledger::Txn& txn = *c.txn;
  if (ms->info.state != "open" || now_ms / 1000 >= ms->info.close_s) {
    return core::FailedPrecondition("market " + ms->info.id + " is closed for trading");
  }
  BOURSE_ASSIGN_OR_RETURN(core::Principal caller, m.host().LookupPrincipal(txn, caller_text));
  LiveOrder lo = st.o;
  lo.id = m.next_order_id();
  lo.created_ms = txn.now_millis();
  if (lo.side == auction::Side::kSell) {
    lo.cap_units = lo.qty;
    BOURSE_RETURN_IF_ERROR(EscrowSell(m, txn, st, caller, caller_text, lo));
  }
  json placed = {{"market", lo.market},
                 {"order", lo.id},
                 {"owner", lo.owner},
                 {"side", SideName(lo.side)},
                 {"type", lo.is_market ? "market" : "limit"},
                 {"tif", lo.ioc || lo.is_market ? "ioc" : "gtc"},
                 {"qty", lo.qty},
                 {"price", lo.is_market ? json() : json(MoneyText(lo.price_nanos))}};
  if (!lo.cap_escrow.empty()) placed["rcap_escrow"] = lo.cap_escrow;
  BOURSE_RETURN_IF_ERROR(txn.Append("order_placed", placed).status());
  st.id = lo.id;
  auction::OrderRequest req{
      .id = static_cast<uint64_t>(lo.id),
      .owner = m.OwnerId(lo.owner),
      .side = lo.side,
      .type = lo.is_market ? auction::OrderType::kMarket : auction::OrderType::kLimit,
      .tif = lo.ioc ? auction::TimeInForce::kIoc : auction::TimeInForce::kGtc,
      .qty = lo.qty,
      .price = core::Money::FromNanos(lo.price_nanos)};
  if (lo.side == auction::Side::kBuy) c.placing_buy = lo.id;
  int64_t id = lo.id;
  c.ms->orders[id] = std::move(lo);
  c.touched.insert(id);
  c.book_touched = true;
  return c.ms->book->Place(req);
}

// ---- services ----

core::Result<json> Markets::CreateMarket(std::unique_ptr<MarketState> ms, bool by_node,
                                         const std::string& caller) {
  internal::MarketInfo& mi = ms->info;
  mi.id = core::NewId("mk_");
  mi.state = "open";
  BOURSE_RETURN_IF_ERROR(host_
                             ->Mutate([&](ledger::Txn& txn) -> core::Status {
                               return InsertMarket(txn, mi, by_node, caller);
                             })
                             .status());
  {
    core::MutexLock l(&ms->mu);  // not shared yet; the analysis wants it held
    ms->book = std::make_unique<auction::OrderBook>(&ms->fwd, &ms->fwd);
  }
  json out = {{"market", mi.ToJson()}};
  AddMarket(std::move(ms));
  return out;
}

// Inside CreateMarket's Mutate fn: the caller may create it (admin, agent or
// the site's PI), its node/site/holder exist; the row and market_created.
core::Status Markets::InsertMarket(ledger::Txn& txn, internal::MarketInfo& mi, bool by_node,
                                   const std::string& caller_text) {
  using namespace internal;
  BOURSE_ASSIGN_OR_RETURN(core::Principal caller, host_->LookupPrincipal(txn, caller_text));
  if (by_node) {
    BOURSE_ASSIGN_OR_RETURN(mi.site, NodeSite(*host_, txn.db(), mi.node));
  } else {
    BOURSE_ASSIGN_OR_RETURN(bool found, host_->SiteExists(txn.db(), mi.site));
    if (!found) return core::NotFound("site: site " + mi.site + " does not exist");
  }
  bool ok = caller.kind == core::PrincipalKind::kAdmin ||
            caller.kind == core::PrincipalKind::kAgent ||
            (caller.kind == core::PrincipalKind::kSite && caller.site == mi.site);
  if (!ok) {
    return core::PermissionDenied("only an admin, an agent or the site's PI creates markets");
  }
  if (!mi.holder.empty()) {
    BOURSE_RETURN_IF_ERROR(host_->LookupPrincipal(txn, mi.holder).status().WithContext("holder"));
  }
  mi.created_ms = txn.now_millis();
  BOURSE_ASSIGN_OR_RETURN(Stmt s, txn.db()->Prepare("INSERT INTO m_markets(id,node,site,unit,"
                                                    "not_before,not_after,close_s,holder,state,"
                                                    "creator,created_ms) "
                                                    "VALUES(?,?,?,?,?,?,?,?,?,?,?)"));
  s.Bind(1, mi.id);
  s.Bind(2, mi.node);
  s.Bind(3, mi.site);
  s.Bind(4, core::ResourceVectorToJson(mi.unit).dump());
  s.Bind(5, mi.window.not_before);
  s.Bind(6, mi.window.not_after);
  s.Bind(7, mi.close_s);
  s.Bind(8, mi.holder);
  s.Bind(9, mi.state);
  s.Bind(10, caller_text);
  s.Bind(11, mi.created_ms);
  BOURSE_RETURN_IF_ERROR(s.Run());
  json body = mi.ToJson();
  body.erase("created_ms");
  body["by"] = caller_text;
  return txn.Append("market_created", body).status();
}

json Markets::ListMarkets(const std::optional<std::string>& node,
                          const std::optional<std::string>& site,
                          const std::optional<std::string>& state) {
  json list = json::array();
  std::vector<MarketState*> all;
  {
    core::MutexLock l(&mu_);
    for (auto& [id, ms] : markets_) all.push_back(ms.get());
  }
  for (MarketState* ms : all) {
    core::MutexLock l(&ms->mu);
    if (node && ms->info.node != *node) continue;
    if (site && ms->info.site != *site) continue;
    if (state && ms->info.state != *state) continue;
    list.push_back(ms->info.ToJson());
  }
  return list;
}

core::Result<json> Markets::MarketSummary(const std::string& market) {
  using internal::MoneyText;
  BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(market));
  BOURSE_RETURN_IF_ERROR(Refresh(this, ms));
  core::MutexLock l(&ms->mu);
  auto bb = ms->book->BestBidNanos();
  auto ba = ms->book->BestAskNanos();
  return json{{"market", ms->info.ToJson()},
              {"best_bid", bb ? json(MoneyText(*bb)) : json()},
              {"best_ask", ba ? json(MoneyText(*ba)) : json()},
              {"resting_orders", ms->book->resting_orders()}};
}

void Markets::PlaceOrderOp(std::shared_ptr<internal::PlacedOrder> st, std::shared_ptr<OpCtx> ctx,
                           int64_t now_ms, std::string caller,
                           std::function<void(core::Status)> done) {
  MarketState* ms = st->ms;
  internal::RunBookOpAsync(
      this, ms,
      [this, st, now_ms, caller = std::move(caller)](OpCtx& c) -> core::Status {
        c.ms->mu.AssertHeld();  // RunBookOpAsync's commit fn holds it
        return internal::PlaceOrderInBook(*this, c, *st, now_ms, caller);
      },
      std::move(ctx), std::move(done));
}

core::Result<json> Markets::GetOrder(const std::string& market, const std::string& order) {
  BOURSE_ASSIGN_OR_RETURN(int64_t id, ParseOrderId(order));
  json out;
  BOURSE_RETURN_IF_ERROR(host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(LiveOrder o, internal::LoadOrder(db, id));
    if (o.market != market) {
      return core::NotFound("order " + std::to_string(id) + " is not in market " + market);
    }
    out = {{"order", o.ToJson()}};
    return core::Status::Ok();
  }));
  return out;
}

core::Result<json> Markets::ListOrders(const std::optional<std::string>& owner,
                                       const std::optional<std::string>& state,
                                       const std::optional<std::string>& market) {
  if (!owner) return core::InvalidArgument("owner: required (a principal's key)");
  auto key = core::PublicKey::FromText(*owner);
  if (!key.ok()) return core::InvalidArgument("owner: " + key.status().message());
  const std::string which = state.value_or("open");
  if (which != "open" && which != "all") return core::InvalidArgument("state: must be open or all");
  if (market) BOURSE_RETURN_IF_ERROR(Find(*market).status());
  json list = json::array();
  BOURSE_RETURN_IF_ERROR(host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(std::vector<LiveOrder> orders,
                            internal::LoadOwnerOrders(db, key->ToText(), which == "open",
                                                      market.value_or(""), kMaxListed));
    for (const LiveOrder& o : orders) list.push_back(o.ToJson());
    return core::Status::Ok();
  }));
  return json{{"orders", list}};
}

core::Result<json> Markets::RestingOrders(const std::string& market) {
  BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(market));
  BOURSE_RETURN_IF_ERROR(Refresh(this, ms));
  core::MutexLock l(&ms->mu);
  json out = {{"bids", json::array()}, {"asks", json::array()}};
  for (auction::Side side : {auction::Side::kBuy, auction::Side::kSell}) {
    for (const auction::RestingOrder& r : ms->book->Orders(side)) {
      auto it = ms->orders.find(static_cast<int64_t>(r.id));
      if (it == ms->orders.end()) continue;
      out[side == auction::Side::kBuy ? "bids" : "asks"].push_back(it->second.ToJson());
    }
  }
  return out;
}

core::Result<json> Markets::Depth(const std::string& market, int64_t levels) {
  using internal::MoneyText;
  BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(market));
  BOURSE_RETURN_IF_ERROR(Refresh(this, ms));
  core::MutexLock l(&ms->mu);
  json out = {{"market", ms->info.id}};
  for (auction::Side side : {auction::Side::kBuy, auction::Side::kSell}) {
    json arr = json::array();
    for (const auction::DepthLevel& d : ms->book->Depth(side, static_cast<size_t>(levels))) {
      arr.push_back({{"price", MoneyText(d.price_nanos)}, {"qty", d.qty}, {"orders", d.orders}});
    }
    out[side == auction::Side::kBuy ? "bids" : "asks"] = arr;
  }
  return out;
}

core::Result<json> Markets::Trades(const std::string& market, int64_t after, int64_t limit) {
  using internal::MoneyText;
  BOURSE_RETURN_IF_ERROR(Find(market).status());
  json list;
  BOURSE_RETURN_IF_ERROR(host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(
        Stmt s, db->Prepare("SELECT id,market,buy,sell,buyer,seller,qty,price_nanos,rcap,"
                            "ts_ms FROM m_trades WHERE market=? AND id>? ORDER BY id LIMIT ?"));
    s.Bind(1, market);
    s.Bind(2, after);
    s.Bind(3, limit);
    list = json::array();
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      list.push_back(json{{"id", s.Int(0)},
                          {"market", s.Text(1)},
                          {"buy", s.Int(2)},
                          {"sell", s.Int(3)},
                          {"buyer", s.Text(4)},
                          {"seller", s.Text(5)},
                          {"qty", s.Int(6)},
                          {"price", MoneyText(s.Int(7))},
                          {"rcap", s.Text(8)},
                          {"ts_ms", s.Int(9)}});
    }
    return core::Status::Ok();
  }));
  return list;
}

namespace {

// Buckets trades (ts_ms, price_nanos, qty rows in id order) into candles.
class CandleBuilder {
 public:
  explicit CandleBuilder(int64_t interval) : interval_(interval) {}
  void Add(int64_t ts_ms, int64_t p, int64_t qty) {
    int64_t t = ts_ms / 1000 / interval_ * interval_;
    if (t != bucket_) {
      Flush();
      bucket_ = t;
      o_ = h_ = lo_ = p;
      vol_ = n_ = 0;
    }
    h_ = std::max(h_, p);
    lo_ = std::min(lo_, p);
    c_ = p;
    vol_ += qty;
    ++n_;
  }
  json Finish() {
    Flush();
    return std::move(candles_);
  }

 private:
  void Flush() {
    using internal::MoneyText;
    if (bucket_ < 0) return;
    candles_.push_back({{"t", bucket_},
                        {"open", MoneyText(o_)},
                        {"high", MoneyText(h_)},
                        {"low", MoneyText(lo_)},
                        {"close", MoneyText(c_)},
                        {"volume", vol_},
                        {"trades", n_}});
  }
  int64_t interval_;
  json candles_ = json::array();
  int64_t bucket_ = -1, o_ = 0, h_ = 0, lo_ = 0, c_ = 0, vol_ = 0, n_ = 0;
};

}  // namespace

core::Result<json> Markets::Candles(const std::string& market, int64_t interval, int64_t from,
                                    int64_t to) {
  BOURSE_RETURN_IF_ERROR(Find(market).status());
  CandleBuilder candles(interval);
  BOURSE_RETURN_IF_ERROR(host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(Stmt s,
                            db->Prepare("SELECT ts_ms,price_nanos,qty FROM m_trades WHERE market=? "
                                        "AND ts_ms>=? AND ts_ms<? ORDER BY id LIMIT 1000000"));
    s.Bind(1, market);
    s.Bind(2, from * 1000);
    s.Bind(3, to * 1000);
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      candles.Add(s.Int(0), s.Int(1), s.Int(2));
    }
    return core::Status::Ok();
  }));
  return candles.Finish();
}

}  // namespace bourse::markets
