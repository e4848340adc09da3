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

}  // namespace

void Markets::RegisterOrderRoutes() {
  using namespace internal;
  Router& router = broker_->router();
  const json market_schema = MarketSchema();
  const json order_schema = OrderSchema();
  const json op_schema = SObj({{"order", order_schema}, {"trades", SArr(TradeSchema())}});

  router.Add(
      {.method = "POST",
       .pattern = "/v1/markets",
       .auth = Auth::kSigned,
       .signer_kinds = {"admin", "agent", "site"},
       .summary = "Create an order-book market: one unit = `unit` on `node` (a node market) "
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
       .handler = [this](const ApiRequest& q) -> core::Result<ApiResponse> {
         BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(
             q.json, "", {"node", "site", "unit", "not_before", "not_after", "close", "holder"}));
         auto ms = std::make_unique<MarketState>();
         MarketInfo& mi = ms->info;
         const bool by_node = Optional(q.json, "node") != nullptr;
         if (by_node == (Optional(q.json, "site") != nullptr)) {
           return core::InvalidArgument("node/site: give exactly one of node and site");
         }
         if (by_node) {
           BOURSE_ASSIGN_OR_RETURN(mi.node, StrField(q.json, "node", 128));
         } else {
           BOURSE_ASSIGN_OR_RETURN(mi.site, StrField(q.json, "site", 128));
         }
         BOURSE_ASSIGN_OR_RETURN(const json* u, core::RequireMember(q.json, "", "unit"));
         BOURSE_ASSIGN_OR_RETURN(mi.unit, core::ResourceVectorFromJson(*u, "unit"));
         if (mi.unit.cpu_mcores == 0 && mi.unit.mem_mib == 0 && mi.unit.disk_mib == 0 &&
             mi.unit.net_min_kbps == 0) {
           return core::InvalidArgument("unit: must have a non-zero quantity");
         }
         BOURSE_ASSIGN_OR_RETURN(mi.window, WindowFields(q.json));
         mi.close_s = mi.window.not_before;
         if (const json* c = Optional(q.json, "close")) {
           BOURSE_ASSIGN_OR_RETURN(mi.close_s,
                                   core::IntFromJson(*c, "close", 0, core::kMaxSafeInteger));
         }
         if (mi.close_s > mi.window.not_after) {
           return core::InvalidArgument("close: must not be after not_after");
         }
         if (mi.close_s <= q.now_ms / 1000) {
           return core::InvalidArgument("close: trading would already have ended");
         }
         if (Optional(q.json, "holder") != nullptr) {
           BOURSE_ASSIGN_OR_RETURN(core::PublicKey h, KeyField(q.json, "holder"));
           mi.holder = h.ToText();
         }
         mi.id = core::NewId("mk_");
         mi.state = "open";
         BOURSE_RETURN_IF_ERROR(
             broker_
                 ->Mutate([&](ledger::Txn& txn) -> core::Status {
                   BOURSE_ASSIGN_OR_RETURN(Principal caller,
                                           Broker::LookupPrincipal(txn, q.caller_text));
                   if (by_node) {
                     BOURSE_ASSIGN_OR_RETURN(mi.site, NodeSite(txn.db(), mi.node));
                   } else {
                     BOURSE_ASSIGN_OR_RETURN(
                         Stmt n, txn.db()->Prepare("SELECT 1 FROM b_sites WHERE name=?"));
                     n.Bind(1, mi.site);
                     BOURSE_ASSIGN_OR_RETURN(bool found, n.Step());
                     if (!found) return core::NotFound("site: site " + mi.site + " does not exist");
                   }
                   bool ok = caller.kind == PrincipalKind::kAdmin ||
                             caller.kind == PrincipalKind::kAgent ||
                             (caller.kind == PrincipalKind::kSite && caller.site == mi.site);
                   if (!ok) {
                     return core::PermissionDenied(
                         "only an admin, an agent or the site's PI creates markets");
                   }
                   if (!mi.holder.empty()) {
                     BOURSE_RETURN_IF_ERROR(
                         Broker::LookupPrincipal(txn, mi.holder).status().WithContext("holder"));
                   }
                   mi.created_ms = txn.now_millis();
                   BOURSE_ASSIGN_OR_RETURN(
                       Stmt s,
                       txn.db()->Prepare("INSERT INTO m_markets(id,node,site,unit,not_before,"
                                         "not_after,close_s,holder,state,creator,created_ms) "
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
                   s.Bind(10, q.caller_text);
                   s.Bind(11, mi.created_ms);
                   BOURSE_RETURN_IF_ERROR(s.Run());
                   json body = mi.ToJson();
                   body.erase("created_ms");
                   body["by"] = q.caller_text;
                   return txn.Append("market_created", body).status();
                 })
                 .status());
         {
           core::MutexLock l(&ms->mu);  // not shared yet; the analysis wants it held
           ms->book = std::make_unique<auction::OrderBook>(&ms->fwd, &ms->fwd);
         }
         json out = {{"market", mi.ToJson()}};
         AddMarket(std::move(ms));
         return JsonResponse(201, out);
       }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets",
              .summary = "List markets (optionally of one node or site, or only open ones)",
              .tag = "markets",
              .query_params = {{"node", "string", false, "only this node's (node) markets"},
                               {"site", "string", false, "only markets on this site's nodes"},
                               {"state", "string", false, "open|closed"}},
              .response_schema = SObj({{"markets", SArr(market_schema)}}),
              .handler = [this](const ApiRequest& q) -> core::Result<ApiResponse> {
                BOURSE_ASSIGN_OR_RETURN(auto node, q.Query("node"));
                BOURSE_ASSIGN_OR_RETURN(auto site, q.Query("site"));
                BOURSE_ASSIGN_OR_RETURN(auto state, q.Query("state"));
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
                return JsonResponse(200, {{"markets", list}});
              }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}",
              .summary = "A market, with its best bid and ask",
              .tag = "markets",
              .response_schema = SObj({{"market", market_schema},
                                       {"best_bid", {{"type", json::array({"string", "null"})}}},
                                       {"best_ask", {{"type", json::array({"string", "null"})}}},
                                       {"resting_orders", SInt()}}),
              .handler = [this](const ApiRequest& q) -> core::Result<ApiResponse> {
                BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(q.Param("market")));
                BOURSE_RETURN_IF_ERROR(Refresh(this, ms));
                core::MutexLock l(&ms->mu);
                auto bb = ms->book->BestBidNanos();
                auto ba = ms->book->BestAskNanos();
                return JsonResponse(200, {{"market", ms->info.ToJson()},
                                          {"best_bid", bb ? json(MoneyText(*bb)) : json()},
                                          {"best_ask", ba ? json(MoneyText(*ba)) : json()},
                                          {"resting_orders", ms->book->resting_orders()}});
              }});

  router.Add(
      {.method = "POST",
       .pattern = "/v1/markets/{market}/orders",
       .auth = Auth::kSigned,
       .summary = "Place an order. A buy escrows price x qty credits while it rests (an incoming "
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
         auto st = std::make_shared<PlacedOrder>();
         core::Status valid = [&]() -> core::Status {
           LiveOrder& o = st->o;
           std::optional<ledger::Rcap>& escrow = st->escrow;
           std::string& pool_rcap = st->pool_rcap;
           BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(
               q.json, "", {"side", "type", "tif", "qty", "price", "escrow", "rcap"}));
           BOURSE_ASSIGN_OR_RETURN(st->ms, Find(q.Param("market")));
           MarketState* ms = st->ms;
           o.market = ms->info.id;
           o.owner = q.caller_text;
           o.account = q.caller_text;
           BOURSE_ASSIGN_OR_RETURN(std::string side, StrField(q.json, "side", 8));
           if (side == "buy") {
             o.side = auction::Side::kBuy;
           } else if (side == "sell") {
             o.side = auction::Side::kSell;
           } else {
             return core::InvalidArgument("side: must be buy or sell");
           }
           if (Optional(q.json, "type") != nullptr) {
             BOURSE_ASSIGN_OR_RETURN(std::string type, StrField(q.json, "type", 8));
             if (type != "limit" && type != "market") {
               return core::InvalidArgument("type: must be limit or market");
             }
             o.is_market = type == "market";
           }
           if (Optional(q.json, "tif") != nullptr) {
             BOURSE_ASSIGN_OR_RETURN(std::string tif, StrField(q.json, "tif", 8));
             if (tif != "gtc" && tif != "ioc")
               return core::InvalidArgument("tif: must be gtc or ioc");
             o.ioc = tif == "ioc";
           }
           BOURSE_ASSIGN_OR_RETURN(o.qty, IntMember(q.json, "qty", 1, kMaxQty));
           const json* pj = Optional(q.json, "price");
           if (o.is_market) {
             if (pj != nullptr) return core::InvalidArgument("price: a market order has no price");
           } else {
             if (pj == nullptr) return core::InvalidArgument("price: required for a limit order");
             BOURSE_ASSIGN_OR_RETURN(core::Money p, core::MoneyFromJson(*pj, "price"));
             auto nanos = auction::OrderBook::PriceToNanos(p);
             if (!nanos.ok())
               return core::InvalidArgument("price: must be > 0 and < 2^63 nano-credits");
             o.price_nanos = *nanos;
           }
           if (o.side == auction::Side::kBuy) {
             if (Optional(q.json, "escrow") || Optional(q.json, "rcap")) {
               return core::InvalidArgument("escrow: only a sell escrows capacity");
             }
           } else if (const json* e = Optional(q.json, "escrow")) {
             if (Optional(q.json, "rcap")) {
               return core::InvalidArgument("rcap: give either escrow or rcap, not both");
             }
             BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(*e, "escrow"));
             escrow = std::move(r);
           } else if (Optional(q.json, "rcap") != nullptr) {
             BOURSE_ASSIGN_OR_RETURN(pool_rcap, StrField(q.json, "rcap", ledger::kMaxRcapIdLength));
           } else {
             return core::InvalidArgument(
                 "escrow: a sell needs the capacity it sells: an rcap delegated to the broker "
                 "(escrow) or, for an admin, a broker pool rcap id (rcap)");
           }
           const MarketInfo& mi = ms->info;  // immutable but for state
           auto want = mi.unit.Times(o.qty);
           if (!want.ok()) return core::InvalidArgument("qty: unit x qty overflows");
           st->want = *want;
           st->broker_text = broker_->broker_key().ToText();
           const std::string& broker_text = st->broker_text;
           if (escrow) {
             const ledger::Rcap& e = *escrow;
             if (e.issuer.ToText() != q.caller_text) {
               return core::InvalidArgument(
                   "escrow.issuer: must be the caller (the seller signs it)");
             }
             if (e.holder.ToText() != broker_text) {
               return core::InvalidArgument("escrow.holder: must be the broker's key " +
                                            broker_text);
             }
             if (!e.parent)
               return core::InvalidArgument("escrow.parent: must be an rcap the seller holds");
             if (!mi.node.empty()) {  // a site market checks the node's site in the transaction
               BOURSE_RETURN_IF_ERROR(InPool(mi, e.node, mi.site).WithContext("escrow.node"));
             }
             if (!(e.res == *want)) {
               return core::InvalidArgument("escrow.res: must be unit x qty = " + want->ToString());
             }
             if (!(e.interval == mi.window)) {
               return core::InvalidArgument(
                   "escrow.not_before/not_after: must be the market window");
             }
             if (!e.CheckSignature().ok()) {
               return core::PermissionDenied(
                   "escrow.sig: bad_signature: does not verify under the issuer");
             }
             if (!mi.holder.empty() && mi.holder != q.caller_text) {
               return core::PermissionDenied("only " + mi.holder + " sells in market " + mi.id);
             }
           }
           return core::Status::Ok();
         }();
         if (!valid.ok()) {
           respond([valid]() -> core::Result<ApiResponse> { return valid; });
           return;
         }
         auto ctx = std::make_shared<OpCtx>();
         internal::RunBookOpAsync(
             this, st->ms,
             [this, &q, st](OpCtx& c) -> core::Status {
               MarketState* ms = st->ms;
               ms->mu.AssertHeld();  // RunBookOpAsync's commit fn holds it
               const LiveOrder& o = st->o;
               const std::optional<ledger::Rcap>& escrow = st->escrow;
               const std::string& pool_rcap = st->pool_rcap;
               const core::ResourceVector* want = &st->want;
               const std::string& broker_text = st->broker_text;
               int64_t& id = st->id;
               ledger::Txn& txn = *c.txn;
               if (ms->info.state != "open" || q.now_ms / 1000 >= ms->info.close_s) {
                 return core::FailedPrecondition("market " + ms->info.id +
                                                 " is closed for trading");
               }
               BOURSE_ASSIGN_OR_RETURN(Principal caller,
                                       Broker::LookupPrincipal(txn, q.caller_text));
               LiveOrder lo = o;
               lo.id = next_order_id();
               lo.created_ms = txn.now_millis();
               if (lo.side == auction::Side::kSell) {
                 lo.cap_units = lo.qty;
                 if (escrow) {
                   auto known = ledger::CapacityLog::Get(txn.db(), escrow->id);
                   if (known.ok())
                     return core::AlreadyExists("escrow.id: rcap " + escrow->id +
                                                " is already recorded");
                   if (ms->info.node.empty()) {
                     BOURSE_ASSIGN_OR_RETURN(std::string esite, NodeSite(txn.db(), escrow->node));
                     BOURSE_RETURN_IF_ERROR(
                         InPool(ms->info, escrow->node, esite).WithContext("escrow.node"));
                   }
                   // DESIGN 4.1: only the holder offers an rcap (403 before the
                   // link rules would call it a broken link).
                   auto from = ledger::CapacityLog::Get(txn.db(), *escrow->parent);
                   if (from.ok()) {
                     BOURSE_RETURN_IF_ERROR(RequireHolder(*from, q.caller_text, "escrow.parent"));
                   }
                   BOURSE_RETURN_IF_ERROR(
                       broker_->RecordRcapIfNew(txn, *escrow).WithContext("escrow"));
                   lo.cap_escrow = escrow->id;
                 } else {
                   if (caller.kind != PrincipalKind::kAdmin) {
                     return core::PermissionDenied(
                         "rcap: only an admin sells from the broker's pool");
                   }
                   if (!ms->info.holder.empty() && ms->info.holder != broker_text) {
                     return core::PermissionDenied("only " + ms->info.holder + " sells in market " +
                                                   ms->info.id);
                   }
                   BOURSE_ASSIGN_OR_RETURN(ledger::Rcap src,
                                           ledger::CapacityLog::Get(txn.db(), pool_rcap));
                   BOURSE_RETURN_IF_ERROR(RequireUncommitted(txn, pool_rcap, "rcap"));
                   BOURSE_ASSIGN_OR_RETURN(std::string src_site, NodeSite(txn.db(), src.node));
                   BOURSE_RETURN_IF_ERROR(InPool(ms->info, src.node, src_site).WithContext("rcap"));
                   ledger::ChildSpec spec{.id = "",
                                          .holder = broker_->broker_key(),
                                          .res = *want,
                                          .interval = ms->info.window};
                   BOURSE_ASSIGN_OR_RETURN(
                       std::vector<ledger::Rcap> kids,
                       broker_->SplitHeld(txn, pool_rcap,
                                          std::span<const ledger::ChildSpec>(&spec, 1)));
                   lo.cap_escrow = kids[0].id;
                   lo.account = broker_text;
                 }
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
               id = lo.id;
               auction::OrderRequest req{
                   .id = static_cast<uint64_t>(lo.id),
                   .owner = OwnerId(lo.owner),
                   .side = lo.side,
                   .type = lo.is_market ? auction::OrderType::kMarket : auction::OrderType::kLimit,
                   .tif = lo.ioc ? auction::TimeInForce::kIoc : auction::TimeInForce::kGtc,
                   .qty = lo.qty,
                   .price = core::Money::FromNanos(lo.price_nanos)};
               if (lo.side == auction::Side::kBuy) c.placing_buy = lo.id;
               ms->orders[lo.id] = std::move(lo);
               c.touched.insert(id);
               c.book_touched = true;
               return ms->book->Place(req);
             },
             ctx,
             [respond, st, ctx](core::Status s) {
               respond([s, st, ctx]() -> core::Result<ApiResponse> {
                 if (!s.ok()) return s;
                 return JsonResponse(201, OpResponse(*ctx, st->id));
               });
             });
       }});

  auto change_route =
      [&](std::string method, std::string suffix, std::string summary, json request_schema,
          std::string entry,
          std::function<core::Status(const ApiRequest&, OpCtx&, LiveOrder*, json*)> apply) {
        router.Add(
            {.method = method,
             .pattern = "/v1/markets/{market}/orders/{order}" + suffix,
             .auth = Auth::kSigned,
             .summary = summary,
             .tag = "markets",
             .request_schema = request_schema,
             .response_schema = op_schema,
             .handler = [this, apply, entry](const ApiRequest& q) -> core::Result<ApiResponse> {
               BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(q.Param("market")));
               BOURSE_ASSIGN_OR_RETURN(int64_t id, OrderIdParam(q));
               OpCtx ctx;
               BOURSE_RETURN_IF_ERROR(internal::RunBookOp(
                   this, ms,
                   [&](OpCtx& c) -> core::Status {
                     c.ms->mu.AssertHeld();  // RunBookOp holds it
                     BOURSE_ASSIGN_OR_RETURN(LiveOrder * o, OwnedLiveOrder(c, id, q.caller_text));
                     json body = {{"market", ms->info.id}, {"order", id}};
                     c.touched.insert(id);
                     c.book_touched = true;
                     BOURSE_RETURN_IF_ERROR(apply(q, c, o, &body));
                     if (!entry.empty())
                       BOURSE_RETURN_IF_ERROR(c.txn->Append(entry, body).status());
                     return core::Status::Ok();
                   },
                   &ctx));
               return JsonResponse(200, OpResponse(ctx, id));
             }});
      };
  change_route("DELETE", "", "Cancel a resting order; its escrow is released exactly", nullptr, "",
               [](const ApiRequest&, OpCtx& c, LiveOrder* o, json*) -> core::Status {
                 c.ms->mu.AssertHeld();  // RunBookOp holds it
                 return c.ms->book->Cancel(static_cast<uint64_t>(o->id));
               });
  change_route("POST", "/reduce",
               "Take qty off a resting order (keeps its place; all of it cancels)",
               SObj({{"qty", SInt()}}, {"qty"}), "order_reduced",
               [](const ApiRequest& q, OpCtx& c, LiveOrder* o, json* body) -> core::Status {
                 c.ms->mu.AssertHeld();  // RunBookOp holds it
                 BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(q.json, "", {"qty"}));
                 BOURSE_ASSIGN_OR_RETURN(int64_t n, IntMember(q.json, "qty", 1, kMaxQty));
                 (*body)["qty"] = n;
                 return c.ms->book->Reduce(static_cast<uint64_t>(o->id), n);
               });
  change_route("POST", "/move",
               "Move a resting order to a new price (back of that level; trades if it crosses)",
               SObj({{"price", SMoney()}}, {"price"}), "order_moved",
               [](const ApiRequest& q, OpCtx& c, LiveOrder* o, json* body) -> core::Status {
                 c.ms->mu.AssertHeld();  // RunBookOp holds it
                 BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(q.json, "", {"price"}));
                 BOURSE_ASSIGN_OR_RETURN(core::Money p, MoneyMember(q.json, "price"));
                 auto nanos = auction::OrderBook::PriceToNanos(p);
                 if (!nanos.ok())
                   return core::InvalidArgument("price: must be > 0 and < 2^63 nano-credits");
                 (*body)["price"] = MoneyText(*nanos);
                 return c.ms->book->Move(static_cast<uint64_t>(o->id), p);
               });

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/orders/{order}",
              .summary = "One order (any state)",
              .tag = "markets",
              .response_schema = SObj({{"order", order_schema}}),
              .handler = [this](const ApiRequest& q) -> core::Result<ApiResponse> {
                BOURSE_ASSIGN_OR_RETURN(int64_t id, OrderIdParam(q));
                json out;
                BOURSE_RETURN_IF_ERROR(
                    broker_->store().Read([&](storage::Connection* db) -> core::Status {
                      BOURSE_ASSIGN_OR_RETURN(LiveOrder o, internal::LoadOrder(db, id));
                      if (o.market != q.Param("market")) {
                        return core::NotFound("order " + std::to_string(id) + " is not in market " +
                                              q.Param("market"));
                      }
                      out = {{"order", o.ToJson()}};
                      return core::Status::Ok();
                    }));
                return JsonResponse(200, out);
              }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/orders",
              .summary = "Resting orders of a market in priority order (bids then asks)",
              .tag = "markets",
              .response_schema = SObj({{"bids", SArr(order_schema)}, {"asks", SArr(order_schema)}}),
              .handler = [this](const ApiRequest& q) -> core::Result<ApiResponse> {
                BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(q.Param("market")));
                BOURSE_RETURN_IF_ERROR(Refresh(this, ms));
                core::MutexLock l(&ms->mu);
                json out = {{"bids", json::array()}, {"asks", json::array()}};
                for (auction::Side side : {auction::Side::kBuy, auction::Side::kSell}) {
                  for (const auction::RestingOrder& r : ms->book->Orders(side)) {
                    auto it = ms->orders.find(static_cast<int64_t>(r.id));
                    if (it == ms->orders.end()) continue;
                    out[side == auction::Side::kBuy ? "bids" : "asks"].push_back(
                        it->second.ToJson());
                  }
                }
                return JsonResponse(200, out);
              }});

  router.Add(
      {.method = "GET",
       .pattern = "/v1/markets/{market}/depth",
       .summary = "Depth by price level, best first",
       .tag = "markets",
       .query_params = {{"levels", "integer", false,
                         "at most this many levels a side (default 50)"}},
       .response_schema =
           SObj({{"market", SStr()},
                 {"bids", SArr(SObj({{"price", SMoney()}, {"qty", SInt()}, {"orders", SInt()}}))},
                 {"asks", SArr(SObj({{"price", SMoney()}, {"qty", SInt()}, {"orders", SInt()}}))}}),
       .handler = [this](const ApiRequest& q) -> core::Result<ApiResponse> {
         BOURSE_ASSIGN_OR_RETURN(int64_t levels, q.QueryInt("levels", 1, 10000, 50));
         BOURSE_ASSIGN_OR_RETURN(MarketState * ms, Find(q.Param("market")));
         BOURSE_RETURN_IF_ERROR(Refresh(this, ms));
         core::MutexLock l(&ms->mu);
         json out = {{"market", ms->info.id}};
         for (auction::Side side : {auction::Side::kBuy, auction::Side::kSell}) {
           json arr = json::array();
           for (const auction::DepthLevel& d : ms->book->Depth(side, static_cast<size_t>(levels))) {
             arr.push_back(
                 {{"price", MoneyText(d.price_nanos)}, {"qty", d.qty}, {"orders", d.orders}});
           }
           out[side == auction::Side::kBuy ? "bids" : "asks"] = arr;
         }
         return JsonResponse(200, out);
       }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/trades",
              .summary = "Trades in execution order",
              .tag = "markets",
              .query_params = {{"after", "integer", false, "only trades with id > after"},
                               {"limit", "integer", false, "at most (default 100, max 1000)"}},
              .response_schema = SObj({{"trades", SArr(TradeSchema())}}),
              .handler = [this](const ApiRequest& q) -> core::Result<ApiResponse> {
                BOURSE_ASSIGN_OR_RETURN(int64_t after,
                                        q.QueryInt("after", 0, core::kMaxSafeInteger, 0));
                BOURSE_ASSIGN_OR_RETURN(int64_t limit, q.QueryInt("limit", 1, 1000, 100));
                BOURSE_RETURN_IF_ERROR(Find(q.Param("market")).status());
                json list;
                BOURSE_RETURN_IF_ERROR(broker_->store().Read([&](storage::Connection* db)
                                                                 -> core::Status {
                  BOURSE_ASSIGN_OR_RETURN(
                      list, QueryArray(
                                db,
                                "SELECT id,market,buy,sell,buyer,seller,qty,price_nanos,rcap,"
                                "ts_ms FROM m_trades WHERE market=? AND id>? ORDER BY id LIMIT ?",
                                [&](Stmt& s) {
                                  s.Bind(1, q.Param("market"));
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
                return JsonResponse(200, {{"trades", list}});
              }});

  router.Add(
      {.method = "GET",
       .pattern = "/v1/markets/{market}/candles",
       .summary = "OHLC candles of the trades, by bucket of `interval` seconds",
       .tag = "markets",
       .query_params = {{"interval", "integer", false, "bucket seconds (default 60)"},
                        {"from", "integer", false, "unix s, inclusive"},
                        {"to", "integer", false, "unix s, exclusive"}},
       .response_schema = SObj({{"market", SStr()},
                                {"interval", SInt()},
                                {"candles", SArr(SObj({{"t", SInt("bucket start, unix s")},
                                                       {"open", SMoney()},
                                                       {"high", SMoney()},
                                                       {"low", SMoney()},
                                                       {"close", SMoney()},
                                                       {"volume", SInt()},
                                                       {"trades", SInt()}}))}}),
       .handler = [this](const ApiRequest& q) -> core::Result<ApiResponse> {
         BOURSE_ASSIGN_OR_RETURN(int64_t interval, q.QueryInt("interval", 1, 86400 * 31, 60));
         BOURSE_ASSIGN_OR_RETURN(int64_t from,
                                 q.QueryInt("from", 0, core::kMaxSafeInteger / 1000, 0));
         BOURSE_ASSIGN_OR_RETURN(int64_t to, q.QueryInt("to", 0, core::kMaxSafeInteger / 1000,
                                                        core::kMaxSafeInteger / 1000));
         BOURSE_RETURN_IF_ERROR(Find(q.Param("market")).status());
         json candles = json::array();
         BOURSE_RETURN_IF_ERROR(broker_->store().Read([&](storage::Connection* db) -> core::Status {
           BOURSE_ASSIGN_OR_RETURN(
               Stmt s, db->Prepare("SELECT ts_ms,price_nanos,qty FROM m_trades WHERE market=? "
                                   "AND ts_ms>=? AND ts_ms<? ORDER BY id LIMIT 1000000"));
           s.Bind(1, q.Param("market"));
           s.Bind(2, from * 1000);
           s.Bind(3, to * 1000);
           int64_t bucket = -1, o = 0, h = 0, lo = 0, c = 0, vol = 0, n = 0;
           auto flush = [&] {
             if (bucket < 0) return;
             candles.push_back({{"t", bucket},
                                {"open", MoneyText(o)},
                                {"high", MoneyText(h)},
                                {"low", MoneyText(lo)},
                                {"close", MoneyText(c)},
                                {"volume", vol},
                                {"trades", n}});
           };
           while (true) {
             BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
             if (!row) break;
             int64_t t = s.Int(0) / 1000 / interval * interval;
             int64_t p = s.Int(1);
             if (t != bucket) {
               flush();
               bucket = t;
               o = h = lo = p;
               vol = n = 0;
             }
             h = std::max(h, p);
             lo = std::min(lo, p);
             c = p;
             vol += s.Int(2);
             ++n;
           }
           flush();
           return core::Status::Ok();
         }));
         return JsonResponse(
             200, {{"market", q.Param("market")}, {"interval", interval}, {"candles", candles}});
       }});
}

}  // namespace bourse::broker
