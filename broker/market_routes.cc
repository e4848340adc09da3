// The markets' REST routes (docs/markets.md): each decodes a request, calls
// one service function of the engine (broker/markets/markets.h) and encodes
// its result. The rules are the engine's.
#include <functional>
#include <optional>
#include <string>

#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/markets/markets.h"
#include "broker/router.h"
#include "core/canonical_json.h"

namespace bourse::broker {

using nlohmann::json;

namespace {

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

// ---- adapters: decode, call one service of the engine, encode ----

core::Result<ApiResponse> CreateMarketRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.CreateMarket(q.json, q.caller_text, q.now_ms));
  return JsonResponse(201, out);
}

core::Result<ApiResponse> ListMarketsRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(auto node, q.Query("node"));
  BOURSE_ASSIGN_OR_RETURN(auto site, q.Query("site"));
  BOURSE_ASSIGN_OR_RETURN(auto state, q.Query("state"));
  return JsonResponse(200, {{"markets", m.ListMarkets(node, site, state)}});
}

core::Result<ApiResponse> GetMarketRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.MarketSummary(q.Param("market")));
  return JsonResponse(200, out);
}

// The engine's answer (a function building the body) as a `status` reply.
Markets::PlaceDone JsonDone(int status, Respond respond) {
  return [status, respond = std::move(respond)](std::function<core::Result<json>()> build) {
    respond([status, build = std::move(build)]() -> core::Result<ApiResponse> {
      BOURSE_ASSIGN_OR_RETURN(json out, build());
      return JsonResponse(status, out);
    });
  };
}

void PlaceOrderRoute(Markets& m, const ApiRequest& q, Respond respond) {
  m.PlaceOrder(q.Param("market"), q.json, q.caller_text, q.now_ms,
               JsonDone(201, std::move(respond)));
}

void BatchOrdersRoute(Markets& m, const ApiRequest& q, Respond respond) {
  m.Batch(q.json, q.caller_text, q.now_ms, JsonDone(200, std::move(respond)));
}

core::Result<ApiResponse> CancelOrderRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out,
                          m.CancelOrder(q.Param("market"), q.Param("order"), q.caller_text));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> ReduceOrderRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(
      json out, m.ReduceOrder(q.Param("market"), q.Param("order"), q.json, q.caller_text));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> MoveOrderRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out,
                          m.MoveOrder(q.Param("market"), q.Param("order"), q.json, q.caller_text));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> GetOrderRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.GetOrder(q.Param("market"), q.Param("order")));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> ListOrdersRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(auto owner, q.Query("owner"));
  BOURSE_ASSIGN_OR_RETURN(auto state, q.Query("state"));
  BOURSE_ASSIGN_OR_RETURN(auto market, q.Query("market"));
  BOURSE_ASSIGN_OR_RETURN(json out, m.ListOrders(owner, state, market));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> RestingOrdersRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.RestingOrders(q.Param("market")));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> DepthRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(int64_t levels, q.QueryInt("levels", 1, 10000, 50));
  BOURSE_ASSIGN_OR_RETURN(json out, m.Depth(q.Param("market"), levels));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> TradesRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(int64_t after, q.QueryInt("after", 0, core::kMaxSafeInteger, 0));
  BOURSE_ASSIGN_OR_RETURN(int64_t limit, q.QueryInt("limit", 1, 1000, 100));
  BOURSE_ASSIGN_OR_RETURN(json list, m.Trades(q.Param("market"), after, limit));
  return JsonResponse(200, {{"trades", list}});
}

core::Result<ApiResponse> CandlesRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(int64_t interval, q.QueryInt("interval", 1, 86400 * 31, 60));
  BOURSE_ASSIGN_OR_RETURN(int64_t from, q.QueryInt("from", 0, core::kMaxSafeInteger / 1000, 0));
  BOURSE_ASSIGN_OR_RETURN(
      int64_t to, q.QueryInt("to", 0, core::kMaxSafeInteger / 1000, core::kMaxSafeInteger / 1000));
  BOURSE_ASSIGN_OR_RETURN(json candles, m.Candles(q.Param("market"), interval, from, to));
  return JsonResponse(
      200, {{"market", q.Param("market")}, {"interval", interval}, {"candles", candles}});
}

core::Result<ApiResponse> AcquireRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.Acquire(q.json, q.caller_text, q.now_ms));
  return JsonResponse(201, out);
}

core::Result<ApiResponse> OpenRoundRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.OpenRound(q.json, q.caller_text, q.now_ms));
  return JsonResponse(201, out);
}

core::Result<ApiResponse> RoundBidRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out,
                          m.PlaceRoundBid(q.Param("round"), q.json, q.caller_text, q.now_ms));
  return JsonResponse(201, out);
}

core::Result<ApiResponse> ListRoundsRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> state, q.Query("state"));
  BOURSE_ASSIGN_OR_RETURN(json out, m.ListRounds(state));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> GetRoundRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.GetRound(q.Param("round"), q.caller_text));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> ClearRoundRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.ClearRound(q.Param("round"), q.caller_text, q.now_ms));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> PlaceShareBidRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out,
                          m.PlaceShareBid(q.Param("node"), q.json, q.caller_text, q.now_ms));
  return JsonResponse(201, out);
}

core::Result<ApiResponse> WithdrawShareBidRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.WithdrawShareBid(q.Param("id"), q.caller_text, q.now_ms));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> GetShareBidRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.GetShareBid(q.Param("id")));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> ListShareBidsRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(auto holder, q.Query("holder"));
  BOURSE_ASSIGN_OR_RETURN(auto node, q.Query("node"));
  BOURSE_ASSIGN_OR_RETURN(auto state, q.Query("state"));
  BOURSE_ASSIGN_OR_RETURN(json out, m.ListShareBids(holder, node, state));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> NodeSharesRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json doc, m.NodeShares(q.Param("node"), q.now_ms));
  return JsonResponse(200, doc);
}

// ---- the route tables, with their schemas (the OpenAPI document's) ----

void RegisterOrderRoutes(Router& router, Markets* m) {
  using namespace internal;
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
              .handler = [m](const ApiRequest& q) { return CreateMarketRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets",
              .summary = "List markets (optionally of one node or site, or only open ones)",
              .tag = "markets",
              .query_params = {{"node", "string", false, "only this node's (node) markets"},
                               {"site", "string", false, "only markets on this site's nodes"},
                               {"state", "string", false, "open|closed"}},
              .response_schema = SObj({{"markets", SArr(market_schema)}}),
              .handler = [m](const ApiRequest& q) { return ListMarketsRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}",
              .summary = "A market, with its best bid and ask",
              .tag = "markets",
              .response_schema = SObj({{"market", market_schema},
                                       {"best_bid", {{"type", json::array({"string", "null"})}}},
                                       {"best_ask", {{"type", json::array({"string", "null"})}}},
                                       {"resting_orders", SInt()}}),
              .handler = [m](const ApiRequest& q) { return GetMarketRoute(*m, q); }});

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
              .async_handler = [m](const ApiRequest& q, Respond respond) {
                PlaceOrderRoute(*m, q, std::move(respond));
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
               [m](const ApiRequest& q) { return CancelOrderRoute(*m, q); });
  change_route("POST", "/reduce",
               "Take qty off a resting order (keeps its place; all of it cancels)",
               SObj({{"qty", SInt()}}, {"qty"}),
               [m](const ApiRequest& q) { return ReduceOrderRoute(*m, q); });
  change_route("POST", "/move",
               "Move a resting order to a new price (back of that level; trades if it crosses)",
               SObj({{"price", SMoney()}}, {"price"}),
               [m](const ApiRequest& q) { return MoveOrderRoute(*m, q); });

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/orders/{order}",
              .summary = "One order (any state)",
              .tag = "markets",
              .response_schema = SObj({{"order", order_schema}}),
              .handler = [m](const ApiRequest& q) { return GetOrderRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/orders",
              .summary = "A principal's orders across markets, newest first, at most 500: the "
                         "resting ones (state=open, the default) or all of them (state=all), "
                         "optionally in one market",
              .tag = "markets",
              .query_params = {{"owner", "string", true, "the owner's key (ed25519:...)"},
                               {"state", "string", false, "open|all (default open)"},
                               {"market", "string", false, "only this market's orders"}},
              .response_schema = SObj({{"orders", SArr(order_schema)}}),
              .handler = [m](const ApiRequest& q) { return ListOrdersRoute(*m, q); }});

  // POST /v1/orders:batch: a literal segment "orders:batch", no clash with GET /v1/orders.
  router.Add(
      {.method = "POST",
       .pattern = "/v1/orders:batch",
       .auth = Auth::kSigned,
       .summary = "Place, cancel, move and reduce up to 100 orders, across markets, in one "
                  "signed request and one commit: ops run in order, each applied whole or not "
                  "at all (one that fails is rolled back alone and the later ones still run); each "
                  "result is the single route's reply with ok:true, or ok:false and the error "
                  "that route would have given. A malformed ops array is refused whole (400)",
       .tag = "markets",
       .request_schema = SObj(
           {{"ops",
             SArr(SObj({{"op", SStr("place|cancel|move|reduce")},
                        {"market", SStr()},
                        {"order", SStr("cancel, move, reduce: the order id")},
                        {"price", SMoney()},
                        {"qty", SInt()},
                        {"side", SStr("place: buy|sell, and the other fields of a placement")}},
                       {"op", "market"}, /*closed=*/false))}},
           {"ops"}),
       .response_schema = SObj({{"results", SArr(SObj({{"ok", SBool()},
                                                        {"order", order_schema},
                                                        {"trades", SArr(TradeSchema())},
                                                        {"error", SAny()}}))}}),
       .async_handler = [m](const ApiRequest& q, Respond respond) {
         BatchOrdersRoute(*m, q, std::move(respond));
       }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/orders",
              .summary = "Resting orders of a market in priority order (bids then asks)",
              .tag = "markets",
              .response_schema = SObj({{"bids", SArr(order_schema)}, {"asks", SArr(order_schema)}}),
              .handler = [m](const ApiRequest& q) { return RestingOrdersRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/depth",
              .summary = "Depth by price level, best first",
              .tag = "markets",
              .query_params = {{"levels", "integer", false,
                                "at most this many levels a side (default 50)"}},
              .response_schema = DepthSchema(),
              .handler = [m](const ApiRequest& q) { return DepthRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/trades",
              .summary = "Trades in execution order",
              .tag = "markets",
              .query_params = {{"after", "integer", false, "only trades with id > after"},
                               {"limit", "integer", false, "at most (default 100, max 1000)"}},
              .response_schema = SObj({{"trades", SArr(TradeSchema())}}),
              .handler = [m](const ApiRequest& q) { return TradesRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/markets/{market}/candles",
              .summary = "OHLC candles of the trades, by bucket of `interval` seconds",
              .tag = "markets",
              .query_params = {{"interval", "integer", false, "bucket seconds (default 60)"},
                               {"from", "integer", false, "unix s, inclusive"},
                               {"to", "integer", false, "unix s, exclusive"}},
              .response_schema = CandlesSchema(),
              .handler = [m](const ApiRequest& q) { return CandlesRoute(*m, q); }});
}

// ---- routes: decode, call the service, encode ----

void RegisterAcquireRoutes(Router& router, Markets* m) {
  using namespace internal;
  router.Add({.method = "POST",
              .pattern = "/v1/acquire",
              .auth = Auth::kSigned,
              .summary =
                  "acquire(rspec): buy `res` on `nodes` nodes in at least `min_sites` sites for "
                  "[not_before, not_after) through the order books (markets whose window covers "
                  "it, whole units: `rounded` and `note` say what was bought beyond the request), "
                  "paying at most max_price in total; all or nothing. Returns the rcap chains, "
                  "each ending in exactly `res` over the interval (bind them to a slice)",
              .tag = "markets",
              .request_schema = SObj({{"rspec", SObj({{"res", SResources()},
                                                      {"nodes", SInt()},
                                                      {"min_sites", SInt()},
                                                      {"not_before", SInt()},
                                                      {"not_after", SInt()}},
                                                     {"res", "not_before", "not_after"})},
                                      {"max_price", SMoney()},
                                      {"fallback", SStr()}},
                                     {"rspec", "max_price"}),
              .response_schema = SObj({{"chains", SArr(SArr(SRcap()))},
                                       {"nodes", SArr(SStr())},
                                       {"paid", SMoney()},
                                       {"trades", SArr(SObj({}, {}, false))},
                                       {"rounded", SArr(SObj({}, {}, false))},
                                       {"note", SStr()},
                                       {"rfq", SStr()},
                                       {"fallback", SBool()},
                                       {"refused", SStr()},
                                       {"opened", SObj({}, {}, false)}}),
              .success_status = 201,
              .handler = [m](const ApiRequest& q) { return AcquireRoute(*m, q); }});
}

void RegisterRoundRoutes(Router& router, Markets* m) {
  using namespace internal;
  const json round_schema = SObj({}, {}, false);

  router.Add({.method = "POST",
              .pattern = "/v1/rounds",
              .auth = Auth::kSigned,
              .signer_kinds = {"admin"},
              .summary = "Open a sealed-bid combinatorial round over broker-held capacity (admin)",
              .tag = "rounds",
              .request_schema = SObj({{"offers", SArr(SStr("a broker-held rcap id"))},
                                      {"not_before", SInt()},
                                      {"not_after", SInt()},
                                      {"close", SInt("unix s: bids accepted until then")}},
                                     {"offers", "not_before", "not_after", "close"}),
              .response_schema = round_schema,
              .success_status = 201,
              .handler = [m](const ApiRequest& q) { return OpenRoundRoute(*m, q); }});

  router.Add({.method = "POST",
              .pattern = "/v1/rounds/{round}/bids",
              .auth = Auth::kSigned,
              .summary = "Bid in an open round: a limit (escrowed until the round clears) and XOR "
                         "bundles (items, or count/from/min_sites/res)",
              .tag = "rounds",
              .request_schema = SObj({{"limit", SMoney()}, {"bundles", SArr(SObj({}, {}, false))}},
                                     {"limit", "bundles"}),
              .response_schema = SObj({{"bid", SObj({}, {}, false)}}),
              .success_status = 201,
              .handler = [m](const ApiRequest& q) { return RoundBidRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/rounds",
              .summary =
                  "Rounds, newest first, optionally by state (open, cleared or failed): at most "
                  "500",
              .tag = "rounds",
              .query_params = {{"state", "string", false, "open|cleared|failed"}},
              .response_schema = SObj({{"rounds", SArr(round_schema)}}),
              .handler = [m](const ApiRequest& q) { return ListRoundsRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/rounds/{round}",
              .auth = Auth::kOptional,
              .summary = "A round: its offers, the number of sealed bids, and once cleared the "
                         "results (winners, allocated nodes, payments, rcaps); signed, also the "
                         "caller's own bids (my_bids)",
              .tag = "rounds",
              .response_schema = SObj({{"round", round_schema},
                                       {"my_bids", SArr(SObj({}, {}, false))}},
                                      {"round"}),
              .handler = [m](const ApiRequest& q) { return GetRoundRoute(*m, q); }});

  router.Add({.method = "POST",
              .pattern = "/v1/rounds/{round}/clear",
              .auth = Auth::kSigned,
              .signer_kinds = {"admin"},
              .summary = "Clear a round whose close time has passed now (admin; the broker also "
                         "clears rounds on schedule)",
              .tag = "rounds",
              .response_schema = SObj({{"round", round_schema}}),
              .handler = [m](const ApiRequest& q) { return ClearRoundRoute(*m, q); }});
}

void RegisterShareRoutes(Router& router, Markets* m) {
  using namespace internal;
  const json bid_schema = SObj({{"id", SStr()},
                                {"node", SStr()},
                                {"slice", SStr()},
                                {"bidder", SKey()},
                                {"rate", SMoney()},
                                {"escrow", SStr()},
                                {"remaining", SMoney()},
                                {"charged", SMoney()},
                                {"charged_to_ms", SInt()},
                                {"state", SStr("active|exhausted|withdrawn")}});

  router.Add({.method = "POST",
              .pattern = "/v1/nodes/{node}/share_bids",
              .auth = Auth::kSigned,
              .summary =
                  "Proportional share: bid a spending rate (credits/s) on a node for a slice "
                  "the caller owns; `budget` is escrowed and charged continuously",
              .tag = "shares",
              .request_schema = SObj({{"slice", SStr()}, {"rate", SMoney()}, {"budget", SMoney()}},
                                     {"slice", "rate", "budget"}),
              .response_schema = SObj({{"bid", bid_schema}}),
              .success_status = 201,
              .handler = [m](const ApiRequest& q) { return PlaceShareBidRoute(*m, q); }});

  router.Add(
      {.method = "DELETE",
       .pattern = "/v1/share_bids/{id}",
       .auth = Auth::kSigned,
       .summary = "Withdraw a share bid: it pays up to now, the rest of its budget is released",
       .tag = "shares",
       .response_schema = SObj({{"bid", bid_schema}}),
       .handler = [m](const ApiRequest& q) { return WithdrawShareBidRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/share_bids/{id}",
              .summary = "A share bid, with what is left of its budget",
              .tag = "shares",
              .response_schema = SObj({{"bid", bid_schema}}),
              .handler = [m](const ApiRequest& q) { return GetShareBidRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/share_bids",
              .summary = "Share bids by bidder and/or node (at least one), newest first, at most "
                         "500: the active ones (the default) or those in `state`",
              .tag = "shares",
              .query_params = {{"holder", "string", false, "the bidder's key (ed25519:...)"},
                               {"node", "string", false, "only bids on this node"},
                               {"state", "string", false,
                                "active|exhausted|withdrawn|all (default active)"}},
              .response_schema = SObj({{"bids", SArr(bid_schema)}}),
              .handler = [m](const ApiRequest& q) { return ListShareBidsRoute(*m, q); }});

  router.Add(
      {.method = "GET",
       .pattern = "/v1/nodes/{node}/shares",
       .summary = "The node's current proportional-share table, signed by the broker's ledger "
                  "key over the canonical JSON without sig (for node guards)",
       .tag = "shares",
       .response_schema =
           SObj({{"node", SStr()},
                 {"ts", SInt("unix ms")},
                 {"shares",
                  SArr(SObj({{"slice", SStr()}, {"cpu_weight", SInt()}, {"net_kbps", SInt()}}))},
                 {"sig", SStr()}}),
       .handler = [m](const ApiRequest& q) { return NodeSharesRoute(*m, q); }});
}

}  // namespace

void RegisterRfqRoutes(Router& router, Markets* m);  // rfq_routes.cc

void Broker::RegisterMarketRoutes() {
  Markets* m = markets_.get();
  RegisterOrderRoutes(router_, m);
  RegisterAcquireRoutes(router_, m);
  RegisterRoundRoutes(router_, m);
  RegisterShareRoutes(router_, m);
  RegisterRfqRoutes(router_, m);
}

}  // namespace bourse::broker
