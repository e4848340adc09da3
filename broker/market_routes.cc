// Markets: REST routes of the order-book markets (create, list, place,
// cancel, reduce, move, depth, trades, candles). docs/markets.md.
#include <algorithm>
#include <regex>

#include "broker/broker.h"
#include "broker/internal/market_state.h"
#include "broker/internal/schemas.h"
#include "broker/internal/sql.h"
#include "broker/internal/util.h"
#include "broker/markets.h"
#include "core/json_codec.h"
#include "core/random.h"
#include "ledger/accounts.h"

namespace bourse::broker {

using internal::LiveOrder;
using internal::MarketState;
using internal::OpCtx;
using internal::Stmt;
using nlohmann::json;

namespace {

constexpr int64_t kMaxQty = 1'000'000'000;

json MarketSchema() {
  using namespace internal;
  return SObj({{"id", SStr()},
               {"node",
                {{"type", json::array({"string", "null"})},
                 {"description", "the node of a node market; null for a site market"}}},
               {"site", SStr()},
               {"unit", SResources()},
               {"not_before", SInt()},
               {"not_after", SInt()},
               {"close", SInt("unix s: trading ends")},
               {"holder", {{"type", json::array({"string", "null"})}}},
               {"state", SStr("open|closed")},
               {"created_ms", SInt()}});
}

// The site of a registered node. Errors: not_found.
core::Result<std::string> NodeSite(storage::Connection* db, const std::string& node) {
  BOURSE_ASSIGN_OR_RETURN(internal::Stmt n, db->Prepare("SELECT site FROM b_nodes WHERE id=?"));
  n.Bind(1, node);
  BOURSE_ASSIGN_OR_RETURN(bool found, n.Step());
  if (!found) return core::NotFound("node: node " + node + " does not exist");
  return n.Text(0);
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

json OrderSchema() {
  using namespace internal;
  json nullable_str = {{"type", json::array({"string", "null"})}};
  return SObj({{"id", SInt()},
               {"market", SStr()},
               {"owner", SKey()},
               {"side", SStr("buy|sell")},
               {"type", SStr("limit|market")},
               {"tif", SStr("gtc|ioc")},
               {"qty", SInt()},
               {"price", nullable_str},
               {"remaining", SInt()},
               {"filled", SInt()},
               {"state", SStr("resting|filled|cancelled")},
               {"reason", nullable_str},
               {"created_ms", SInt()},
               {"escrow", nullable_str},
               {"rcap_escrow", SStr()},
               {"returned_rcap", nullable_str}});
}

json TradeSchema() {
  using namespace internal;
  return SObj({{"id", SInt()},
               {"market", SStr()},
               {"buy", SInt()},
               {"sell", SInt()},
               {"buyer", SKey()},
               {"seller", SKey()},
               {"qty", SInt()},
               {"price", SMoney()},
               {"rcap", SStr("the child rcap delegated to the buyer")},
               {"ts_ms", SInt()}});
}

json DepthSchema() {
  using namespace internal;
  json level = SObj({{"price", SMoney()}, {"qty", SInt()}, {"orders", SInt()}});
  return SObj({{"market", SStr()}, {"bids", SArr(level)}, {"asks", SArr(level)}});
}

json CandlesSchema() {
  using namespace internal;
  return SObj({{"market", SStr()},
               {"interval", SInt()},
               {"candles", SArr(SObj({{"t", SInt("bucket start, unix s")},
                                      {"open", SMoney()},
                                      {"high", SMoney()},
                                      {"low", SMoney()},
                                      {"close", SMoney()},
                                      {"volume", SInt()},
                                      {"trades", SInt()}}))}});
}

core::Result<int64_t> IntMember(const json& body, const char* name, int64_t min, int64_t max) {
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(body, "", name));
  return core::IntFromJson(*v, name, min, max);
}

core::Result<core::Money> MoneyMember(const json& body, const char* name) {
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(body, "", name));
  return core::MoneyFromJson(*v, name);
}

core::Result<int64_t> OrderIdParam(const ApiRequest& q) {
  const std::string& s = q.Param("order");
  if (s.empty() || s.size() > 15 || !std::all_of(s.begin(), s.end(), ::isdigit)) {
    return core::InvalidArgument("order: must be a decimal order id");
  }
  return std::stoll(s);
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

// Moves the order and trades out of ctx (called once, as the reply).
json OpResponse(OpCtx& ctx, int64_t id) {
  json out = json::object();
  auto it = ctx.final_orders.find(id);
  out["order"] = it != ctx.final_orders.end() ? it->second.ToJson() : json();
  out["trades"] = std::move(ctx.trades);
  return out;
}

// The order fields of a placement's body (side .. rcap) into st.
core::Status DecodeOrderFields(const json& body, internal::PlacedOrder* st) {
  using namespace internal;
  LiveOrder& o = st->o;
  BOURSE_ASSIGN_OR_RETURN(std::string side, StrField(body, "side", 8));
  if (side == "buy") {
    o.side = auction::Side::kBuy;
  } else if (side == "sell") {
    o.side = auction::Side::kSell;
  } else {
    return core::InvalidArgument("side: must be buy or sell");
  }
  if (Optional(body, "type") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(std::string type, StrField(body, "type", 8));
    if (type != "limit" && type != "market") {
      return core::InvalidArgument("type: must be limit or market");
    }
    o.is_market = type == "market";
  }
  if (Optional(body, "tif") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(std::string tif, StrField(body, "tif", 8));
    if (tif != "gtc" && tif != "ioc") return core::InvalidArgument("tif: must be gtc or ioc");
    o.ioc = tif == "ioc";
  }
  BOURSE_ASSIGN_OR_RETURN(o.qty, IntMember(body, "qty", 1, kMaxQty));
  const json* pj = Optional(body, "price");
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
    if (Optional(body, "escrow") || Optional(body, "rcap")) {
      return core::InvalidArgument("escrow: only a sell escrows capacity");
    }
  } else if (const json* e = Optional(body, "escrow")) {
    if (Optional(body, "rcap")) {
      return core::InvalidArgument("rcap: give either escrow or rcap, not both");
    }
    BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(*e, "escrow"));
    st->escrow = std::move(r);
  } else if (Optional(body, "rcap") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(st->pool_rcap, StrField(body, "rcap", ledger::kMaxRcapIdLength));
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
  st.broker_text = m.broker().broker_key().ToText();
  const std::string& broker_text = st.broker_text;
  if (!st.escrow) return core::Status::Ok();
  const ledger::Rcap& e = *st.escrow;
  if (e.issuer.ToText() != caller) {
    return core::InvalidArgument("escrow.issuer: must be the caller (the seller signs it)");
  }
  if (e.holder.ToText() != broker_text) {
    return core::InvalidArgument("escrow.holder: must be the broker's key " + broker_text);
  }
  if (!e.parent) return core::InvalidArgument("escrow.parent: must be an rcap the seller holds");
  if (!mi.node.empty()) {  // a site market checks the node's site in the transaction
    BOURSE_RETURN_IF_ERROR(InPool(mi, e.node, mi.site).WithContext("escrow.node"));
  }
  if (!(e.res == *want)) {
    return core::InvalidArgument("escrow.res: must be unit x qty = " + want->ToString());
  }
  if (!(e.interval == mi.window)) {
    return core::InvalidArgument("escrow.not_before/not_after: must be the market window");
  }
  if (!e.CheckSignature().ok()) {
    return core::PermissionDenied("escrow.sig: bad_signature: does not verify under the issuer");
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
                        const Principal& caller, const std::string& caller_text, LiveOrder& lo) {
  using namespace internal;
  const MarketInfo& mi = st.ms->info;
  const std::string& broker_text = st.broker_text;
  if (st.escrow) {
    const ledger::Rcap& escrow = *st.escrow;
    auto known = ledger::CapacityLog::Get(txn.db(), escrow.id);
    if (known.ok())
      return core::AlreadyExists("escrow.id: rcap " + escrow.id + " is already recorded");
    if (mi.node.empty()) {
      BOURSE_ASSIGN_OR_RETURN(std::string esite, NodeSite(txn.db(), escrow.node));
      BOURSE_RETURN_IF_ERROR(InPool(mi, escrow.node, esite).WithContext("escrow.node"));
    }
    // DESIGN 4.1: only the holder offers an rcap (403 before the
    // link rules would call it a broken link).
    auto from = ledger::CapacityLog::Get(txn.db(), *escrow.parent);
    if (from.ok()) {
      BOURSE_RETURN_IF_ERROR(RequireHolder(*from, caller_text, "escrow.parent"));
    }
    BOURSE_RETURN_IF_ERROR(m.broker().RecordRcapIfNew(txn, escrow).WithContext("escrow"));
    lo.cap_escrow = escrow.id;
    return core::Status::Ok();
  }
  if (caller.kind != PrincipalKind::kAdmin) {
    return core::PermissionDenied("rcap: only an admin sells from the broker's pool");
  }
  if (!mi.holder.empty() && mi.holder != broker_text) {
    return core::PermissionDenied("only " + mi.holder + " sells in market " + mi.id);
  }
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap src, ledger::CapacityLog::Get(txn.db(), st.pool_rcap));
  BOURSE_RETURN_IF_ERROR(Markets::RequireUncommitted(txn, st.pool_rcap, "rcap"));
  BOURSE_ASSIGN_OR_RETURN(std::string src_site, NodeSite(txn.db(), src.node));
  BOURSE_RETURN_IF_ERROR(InPool(mi, src.node, src_site).WithContext("rcap"));
  ledger::ChildSpec spec{
      .id = "", .holder = m.broker().broker_key(), .res = st.want, .interval = mi.window};
  BOURSE_ASSIGN_OR_RETURN(
      std::vector<ledger::Rcap> kids,
      m.broker().SplitHeld(txn, st.pool_rcap, std::span<const ledger::ChildSpec>(&spec, 1)));
  lo.cap_escrow = kids[0].id;
  lo.account = broker_text;
  return core::Status::Ok();
}

// The placement's book operation, inside its Mutate fn with the market's
// lock held: the market must be open; the escrow is taken, order_placed
// appended and the order placed in the book.
core::Status PlaceOrderInBook(Markets& m, OpCtx& c, internal::PlacedOrder& st, int64_t now_ms,
                              const std::string& caller_text) REQUIRES(c.ms->mu) {
  using namespace internal;
  MarketState* ms = c.ms;
  ledger::Txn& txn = *c.txn;
  if (ms->info.state != "open" || now_ms / 1000 >= ms->info.close_s) {
    return core::FailedPrecondition("market " + ms->info.id + " is closed for trading");
  }
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, caller_text));
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

// A reduce's qty, decoded before the operation but reported, as before the
// split, after the ownership check.
core::Result<int64_t> DecodeReduce(const json& body) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"qty"}));
  return IntMember(body, "qty", 1, kMaxQty);
}

struct NewPrice {
  core::Money price;
  int64_t nanos = 0;
};

core::Result<NewPrice> DecodeMove(const json& body) {
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
  *by_node = Optional(body, "node") != nullptr;
  if (*by_node == (Optional(body, "site") != nullptr)) {
    return core::InvalidArgument("node/site: give exactly one of node and site");
  }
  if (*by_node) {
    BOURSE_ASSIGN_OR_RETURN(mi.node, StrField(body, "node", 128));
  } else {
    BOURSE_ASSIGN_OR_RETURN(mi.site, StrField(body, "site", 128));
  }
  BOURSE_ASSIGN_OR_RETURN(const json* u, core::RequireMember(body, "", "unit"));
  BOURSE_ASSIGN_OR_RETURN(mi.unit, core::ResourceVectorFromJson(*u, "unit"));
  if (mi.unit.cpu_mcores == 0 && mi.unit.mem_mib == 0 && mi.unit.disk_mib == 0 &&
      mi.unit.net_min_kbps == 0) {
    return core::InvalidArgument("unit: must have a non-zero quantity");
  }
  BOURSE_ASSIGN_OR_RETURN(mi.window, WindowFields(body));
  mi.close_s = mi.window.not_before;
  if (const json* c = Optional(body, "close")) {
    BOURSE_ASSIGN_OR_RETURN(mi.close_s, core::IntFromJson(*c, "close", 0, core::kMaxSafeInteger));
  }
  if (mi.close_s > mi.window.not_after) {
    return core::InvalidArgument("close: must not be after not_after");
  }
  if (mi.close_s <= now_ms / 1000) {
    return core::InvalidArgument("close: trading would already have ended");
  }
  if (Optional(body, "holder") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey h, KeyField(body, "holder"));
    mi.holder = h.ToText();
  }
  return ms;
}

}  // namespace

void Markets::RegisterOrderRoutes() {
  using namespace internal;
  Router& router = broker_->router();
  const json market_schema = MarketSchema();
  const json order_schema = OrderSchema();
  const json op_schema = SObj({{"order", order_schema}, {"trades", SArr(TradeSchema())}});

  router.Add({.method = "POST",
              .pattern = "/v1/markets",
              .auth = Auth::kSigned,
              .signer_kinds = {"admin", "agent", "site"},
              .summary =
                  "Create an order-book market: one unit = `unit` on `node` (a node market) "
                  "or on any node of `site` (a site market: sellers offer capacity on any of "
                  "its nodes) for the window [not_before, not_after); trading ends at `close` "
                  "(default not_before); `holder` restricts sellers to one key (a holder's "
                  "pool). Admins, agents and the site's PI create markets",
              .tag = "markets",
              .request_schema = SObj({{"node", SStr("exactly one of node and site")},
                                      {"site", SStr("exactly one of node and site")},
                                      {"unit", SResources()},
                                      {"not_before", SInt()},
                                      {"not_after", SInt()},
                                      {"close", SInt()},
                                      {"holder", SKey()}},
                                     {"unit", "not_before", "not_after"}),
              .response_schema = SObj({{"market", market_schema}}),
              .success_status = 201,
              .handler = [this](const ApiRequest& q) { return CreateMarketRoute(q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets",
              .summary = "List markets (optionally of one node or site, or only open ones)",
              .tag = "markets",
              .query_params = {{"node", "string", false, "only this node's (node) markets"},
                               {"site", "string", false, "only markets on this site's nodes"},
                               {"state", "string", false, "open|closed"}},
              .response_schema = SObj({{"markets", SArr(market_schema)}}),
              .handler = [this](const ApiRequest& q) { return ListMarketsRoute(q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}",
              .summary = "A market, with its best bid and ask",
              .tag = "markets",
              .response_schema = SObj({{"market", market_schema},
                                       {"best_bid", {{"type", json::array({"string", "null"})}}},
                                       {"best_ask", {{"type", json::array({"string", "null"})}}},
                                       {"resting_orders", SInt()}}),
              .handler = [this](const ApiRequest& q) { return GetMarketRoute(q); }});

  router.Add({.method = "POST",
              .pattern = "/v1/markets/{market}/orders",
              .auth = Auth::kSigned,
              .summary =
                  "Place an order. A buy escrows price x qty credits while it rests (an incoming "
                  "buy pays each fill from the free balance). A sell escrows capacity: `escrow` "
                  "is an rcap the seller signed, child of an rcap it holds, held by the broker, "
                  "with res = unit x qty and the market's window; or, for the broker's pool, an "
                  "admin names the pool rcap in `rcap`",
              .tag = "markets",
              .request_schema = SObj({{"side", SStr("buy|sell")},
                                      {"type", SStr("limit|market (default limit)")},
                                      {"tif", SStr("gtc|ioc (default gtc)")},
                                      {"qty", SInt()},
                                      {"price", SMoney()},
                                      {"escrow", SRcap()},
                                      {"rcap", SStr("a broker-held pool rcap id (admin)")}},
                                     {"side", "qty"}),
              .response_schema = op_schema,
              .success_status = 201,
              // Async: checked here on the server's loop, run in the next commit
              // batch, answered once durable; no thread waits for the commit.
              .async_handler = [this](const ApiRequest& q, Respond respond) {
                PlaceOrderRoute(q, std::move(respond));
              }});

  auto change_route = [&](std::string method, std::string suffix, std::string summary,
                          json request_schema, Handler handler) {
    router.Add({.method = method,
                .pattern = "/v1/markets/{market}/orders/{order}" + suffix,
                .auth = Auth::kSigned,
                .summary = summary,
                .tag = "markets",
                .request_schema = request_schema,
                .response_schema = op_schema,
                .handler = std::move(handler)});
  };
  change_route("DELETE", "", "Cancel a resting order; its escrow is released exactly", nullptr,
               [this](const ApiRequest& q) { return CancelOrderRoute(q); });
  change_route("POST", "/reduce",
               "Take qty off a resting order (keeps its place; all of it cancels)",
               SObj({{"qty", SInt()}}, {"qty"}),
               [this](const ApiRequest& q) { return ReduceOrderRoute(q); });
  change_route("POST", "/move",
               "Move a resting order to a new price (back of that level; trades if it crosses)",
               SObj({{"price", SMoney()}}, {"price"}),
               [this](const ApiRequest& q) { return MoveOrderRoute(q); });

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/orders/{order}",
              .summary = "One order (any state)",
              .tag = "markets",
              .response_schema = SObj({{"order", order_schema}}),
              .handler = [this](const ApiRequest& q) { return GetOrderRoute(q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/orders",
              .summary = "Resting orders of a market in priority order (bids then asks)",
              .tag = "markets",
              .response_schema = SObj({{"bids", SArr(order_schema)}, {"asks", SArr(order_schema)}}),
              .handler = [this](const ApiRequest& q) { return RestingOrdersRoute(q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/depth",
              .summary = "Depth by price level, best first",
              .tag = "markets",
              .query_params = {{"levels", "integer", false,
                                "at most this many levels a side (default 50)"}},
              .response_schema = DepthSchema(),
              .handler = [this](const ApiRequest& q) { return DepthRoute(q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/trades",
              .summary = "Trades in execution order",
              .tag = "markets",
              .query_params = {{"after", "integer", false, "only trades with id > after"},
                               {"limit", "integer", false, "at most (default 100, max 1000)"}},
              .response_schema = SObj({{"trades", SArr(TradeSchema())}}),
              .handler = [this](const ApiRequest& q) { return TradesRoute(q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/candles",
              .summary = "OHLC candles of the trades, by bucket of `interval` seconds",
              .tag = "markets",
              .query_params = {{"interval", "integer", false, "bucket seconds (default 60)"},
                               {"from", "integer", false, "unix s, inclusive"},
                               {"to", "integer", false, "unix s, exclusive"}},
              .response_schema = CandlesSchema(),
              .handler = [this](const ApiRequest& q) { return CandlesRoute(q); }});
}

// ---- routes: decode, call the service, encode ----

core::Result<ApiResponse> Markets::CreateMarketRoute(const ApiRequest& q) {
  bool by_node = false;
  BOURSE_ASSIGN_OR_RETURN(std::unique_ptr<MarketState> ms,
                          DecodeMarket(q.json, q.now_ms, &by_node));
  BOURSE_ASSIGN_OR_RETURN(json out, CreateMarket(std::move(ms), by_node, q.caller_text));
  return JsonResponse(201, out);
}

core::Result<ApiResponse> Markets::ListMarketsRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(auto node, q.Query("node"));
  BOURSE_ASSIGN_OR_RETURN(auto site, q.Query("site"));
  BOURSE_ASSIGN_OR_RETURN(auto state, q.Query("state"));
  return JsonResponse(200, {{"markets", ListMarkets(node, site, state)}});
}

core::Result<ApiResponse> Markets::GetMarketRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, MarketSummary(q.Param("market")));
  return JsonResponse(200, out);
}

void Markets::PlaceOrderRoute(const ApiRequest& q, Respond respond) {
  auto st = std::make_shared<internal::PlacedOrder>();
  core::Status valid = DecodeOrder(q, st.get());
  if (!valid.ok()) {
    respond([valid]() -> core::Result<ApiResponse> { return valid; });
    return;
  }
  auto ctx = std::make_shared<OpCtx>();
  PlaceOrder(st, ctx, q.now_ms, q.caller_text, [respond, st, ctx](core::Status s) {
    respond([s, st, ctx]() -> core::Result<ApiResponse> {
      if (!s.ok()) return s;
      return JsonResponse(201, OpResponse(*ctx, st->id));
    });
  });
}

core::Status Markets::DecodeOrder(const ApiRequest& q, internal::PlacedOrder* st) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(
      q.json, "", {"side", "type", "tif", "qty", "price", "escrow", "rcap"}));
  BOURSE_ASSIGN_OR_RETURN(st->ms, Find(q.Param("market")));
  st->o.market = st->ms->info.id;
  st->o.owner = q.caller_text;
  st->o.account = q.caller_text;
  BOURSE_RETURN_IF_ERROR(DecodeOrderFields(q.json, st));
  return CheckOrder(*this, *st, q.caller_text);
}

core::Result<ApiResponse> Markets::CancelOrderRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(q.Param("market")));
  BOURSE_ASSIGN_OR_RETURN(int64_t id, OrderIdParam(q));
  BOURSE_ASSIGN_OR_RETURN(
      json out,
      ChangeOrder(ms, id, q.caller_text, "", [](OpCtx& c, LiveOrder* o, json*) -> core::Status {
        c.ms->mu.AssertHeld();  // RunBookOp holds it
        return c.ms->book->Cancel(static_cast<uint64_t>(o->id));
      }));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Markets::ReduceOrderRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(q.Param("market")));
  BOURSE_ASSIGN_OR_RETURN(int64_t id, OrderIdParam(q));
  core::Result<int64_t> qty = DecodeReduce(q.json);  // reported after the ownership check
  BOURSE_ASSIGN_OR_RETURN(
      json out, ChangeOrder(ms, id, q.caller_text, "order_reduced",
                            [&qty](OpCtx& c, LiveOrder* o, json* body) -> core::Status {
                              c.ms->mu.AssertHeld();  // RunBookOp holds it
                              BOURSE_RETURN_IF_ERROR(qty.status());
                              (*body)["qty"] = *qty;
                              return c.ms->book->Reduce(static_cast<uint64_t>(o->id), *qty);
                            }));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Markets::MoveOrderRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(q.Param("market")));
  BOURSE_ASSIGN_OR_RETURN(int64_t id, OrderIdParam(q));
  core::Result<NewPrice> np = DecodeMove(q.json);  // reported after the ownership check
  BOURSE_ASSIGN_OR_RETURN(
      json out, ChangeOrder(ms, id, q.caller_text, "order_moved",
                            [&np](OpCtx& c, LiveOrder* o, json* body) -> core::Status {
                              c.ms->mu.AssertHeld();  // RunBookOp holds it
                              BOURSE_RETURN_IF_ERROR(np.status());
                              (*body)["price"] = internal::MoneyText(np->nanos);
                              return c.ms->book->Move(static_cast<uint64_t>(o->id), np->price);
                            }));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Markets::GetOrderRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(int64_t id, OrderIdParam(q));
  BOURSE_ASSIGN_OR_RETURN(json out, GetOrder(q.Param("market"), id));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Markets::RestingOrdersRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, RestingOrders(q.Param("market")));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Markets::DepthRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(int64_t levels, q.QueryInt("levels", 1, 10000, 50));
  BOURSE_ASSIGN_OR_RETURN(json out, Depth(q.Param("market"), levels));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Markets::TradesRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(int64_t after, q.QueryInt("after", 0, core::kMaxSafeInteger, 0));
  BOURSE_ASSIGN_OR_RETURN(int64_t limit, q.QueryInt("limit", 1, 1000, 100));
  BOURSE_ASSIGN_OR_RETURN(json list, Trades(q.Param("market"), after, limit));
  return JsonResponse(200, {{"trades", list}});
}

core::Result<ApiResponse> Markets::CandlesRoute(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(int64_t interval, q.QueryInt("interval", 1, 86400 * 31, 60));
  BOURSE_ASSIGN_OR_RETURN(int64_t from, q.QueryInt("from", 0, core::kMaxSafeInteger / 1000, 0));
  BOURSE_ASSIGN_OR_RETURN(
      int64_t to, q.QueryInt("to", 0, core::kMaxSafeInteger / 1000, core::kMaxSafeInteger / 1000));
  BOURSE_ASSIGN_OR_RETURN(json candles, Candles(q.Param("market"), interval, from, to));
  return JsonResponse(
      200, {{"market", q.Param("market")}, {"interval", interval}, {"candles", candles}});
}

// ---- services ----

core::Result<json> Markets::CreateMarket(std::unique_ptr<MarketState> ms, bool by_node,
                                         const std::string& caller) {
  internal::MarketInfo& mi = ms->info;
  mi.id = core::NewId("mk_");
  mi.state = "open";
  BOURSE_RETURN_IF_ERROR(broker_
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
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, caller_text));
  if (by_node) {
    BOURSE_ASSIGN_OR_RETURN(mi.site, NodeSite(txn.db(), mi.node));
  } else {
    BOURSE_ASSIGN_OR_RETURN(Stmt n, txn.db()->Prepare("SELECT 1 FROM b_sites WHERE name=?"));
    n.Bind(1, mi.site);
    BOURSE_ASSIGN_OR_RETURN(bool found, n.Step());
    if (!found) return core::NotFound("site: site " + mi.site + " does not exist");
  }
  bool ok = caller.kind == PrincipalKind::kAdmin || caller.kind == PrincipalKind::kAgent ||
            (caller.kind == PrincipalKind::kSite && caller.site == mi.site);
  if (!ok) {
    return core::PermissionDenied("only an admin, an agent or the site's PI creates markets");
  }
  if (!mi.holder.empty()) {
    BOURSE_RETURN_IF_ERROR(Broker::LookupPrincipal(txn, mi.holder).status().WithContext("holder"));
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

void Markets::PlaceOrder(std::shared_ptr<internal::PlacedOrder> st, std::shared_ptr<OpCtx> ctx,
                         int64_t now_ms, std::string caller,
                         std::function<void(core::Status)> done) {
  MarketState* ms = st->ms;
  internal::RunBookOpAsync(
      this, ms,
      [this, st, now_ms, caller = std::move(caller)](OpCtx& c) -> core::Status {
        c.ms->mu.AssertHeld();  // RunBookOpAsync's commit fn holds it
        return PlaceOrderInBook(*this, c, *st, now_ms, caller);
      },
      std::move(ctx), std::move(done));
}

core::Result<json> Markets::ChangeOrder(MarketState* ms, int64_t id, const std::string& caller,
                                        const std::string& entry, const OrderChange& apply) {
  OpCtx ctx;
  BOURSE_RETURN_IF_ERROR(internal::RunBookOp(
      this, ms,
      [&](OpCtx& c) -> core::Status {
        c.ms->mu.AssertHeld();  // RunBookOp holds it
        BOURSE_ASSIGN_OR_RETURN(LiveOrder * o, OwnedLiveOrder(c, id, caller));
        json body = {{"market", ms->info.id}, {"order", id}};
        c.touched.insert(id);
        c.book_touched = true;
        BOURSE_RETURN_IF_ERROR(apply(c, o, &body));
        if (!entry.empty()) BOURSE_RETURN_IF_ERROR(c.txn->Append(entry, body).status());
        return core::Status::Ok();
      },
      &ctx));
  return OpResponse(ctx, id);
}

core::Result<json> Markets::GetOrder(const std::string& market, int64_t id) {
  json out;
  BOURSE_RETURN_IF_ERROR(broker_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(LiveOrder o, internal::LoadOrder(db, id));
    if (o.market != market) {
      return core::NotFound("order " + std::to_string(id) + " is not in market " + market);
    }
    out = {{"order", o.ToJson()}};
    return core::Status::Ok();
  }));
  return out;
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
  BOURSE_RETURN_IF_ERROR(broker_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(list,
                            internal::QueryArray(
                                db,
                                "SELECT id,market,buy,sell,buyer,seller,qty,price_nanos,rcap,"
                                "ts_ms FROM m_trades WHERE market=? AND id>? ORDER BY id LIMIT ?",
                                [&](Stmt& s) {
                                  s.Bind(1, market);
                                  s.Bind(2, after);
                                  s.Bind(3, limit);
                                },
                                [](Stmt& s) {
                                  return json{{"id", s.Int(0)},     {"market", s.Text(1)},
                                              {"buy", s.Int(2)},    {"sell", s.Int(3)},
                                              {"buyer", s.Text(4)}, {"seller", s.Text(5)},
                                              {"qty", s.Int(6)},    {"price", MoneyText(s.Int(7))},
                                              {"rcap", s.Text(8)},  {"ts_ms", s.Int(9)}};
                                }));
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
  BOURSE_RETURN_IF_ERROR(broker_->store().Read([&](storage::Connection* db) -> core::Status {
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

}  // namespace bourse::broker
