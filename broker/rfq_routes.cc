// Requests for quote: REST routes (DESIGN §10, docs/markets.md "Requests
// for quote"). Thin adapters over the markets engine's RFQ services
// (broker/markets/rfqs.cc): each decodes, calls one service and encodes.
#include <optional>
#include <string>

#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/markets/markets.h"
#include "broker/router.h"

namespace bourse::broker {

using nlohmann::json;

namespace {

json QuoteSchema() {
  using namespace internal;
  return SObj({{"id", SStr()},
               {"rfq", SStr()},
               {"seller", SKey()},
               {"price",
                {{"type", json::array({"string", "null"})},
                 {"description",
                  "null while sealed (open, before the close) but to "
                  "the buyer and the quote's seller"}}},
               {"nodes", SArr(SStr())},
               {"sites", SArr(SStr())},
               {"escrows", SArr(SStr("the escrow rcap the broker holds for each node"))},
               {"state", SStr("open|withdrawn|won|lost")},
               {"returned", SArr(SStr("rcaps given back to the seller: an unused escrow's "
                                      "parent (released), else a child of the escrow"))},
               {"created_ms", SInt()}});
}

json RfqSchema() {
  using namespace internal;
  json nullable_str = {{"type", json::array({"string", "null"})}};
  return SObj({{"id", SStr()},
               {"buyer", SKey()},
               {"res", SResources()},
               {"nodes", SInt()},
               {"min_sites", SInt()},
               {"not_before", SInt()},
               {"not_after", SInt()},
               {"max_price", SMoney()},
               {"close", SInt("unix s: quotes accepted until then")},
               {"award", SStr("auto|manual")},
               {"state", SStr("open|awarded|failed|cancelled")},
               {"escrow", SStr("the buyer's credit escrow of max_price")},
               {"winner", nullable_str},
               {"quote", nullable_str},
               {"price", nullable_str},
               {"rcaps", SArr(SStr("the buyer's rcap per node once awarded"))},
               {"reason", nullable_str},
               {"created_ms", SInt()},
               {"quotes", SArr(QuoteSchema())}});
}

// The key of a signed GET, "" when unsigned.
const std::string& Viewer(const ApiRequest& q) { return q.caller_text; }

core::Result<ApiResponse> OpenRfqRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.OpenRfq(q.json, q.caller_text, q.now_ms));
  return JsonResponse(201, out);
}

core::Result<ApiResponse> QuoteRfqRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.QuoteRfq(q.Param("rfq"), q.json, q.caller_text, q.now_ms));
  return JsonResponse(201, out);
}

core::Result<ApiResponse> WithdrawQuoteRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(
      json out, m.WithdrawQuote(q.Param("rfq"), q.Param("quote"), q.caller_text, q.now_ms));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> AcceptQuoteRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.AcceptQuote(q.Param("rfq"), q.json, q.caller_text, q.now_ms));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> CancelRfqRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.CancelRfq(q.Param("rfq"), q.caller_text, q.now_ms));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> ListRfqsRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(auto state, q.Query("state"));
  BOURSE_ASSIGN_OR_RETURN(auto buyer, q.Query("buyer"));
  BOURSE_ASSIGN_OR_RETURN(json out, m.ListRfqs(state, buyer, Viewer(q), q.now_ms));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> GetRfqRoute(Markets& m, const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json out, m.GetRfq(q.Param("rfq"), Viewer(q), q.now_ms));
  return JsonResponse(200, out);
}

}  // namespace

void RegisterRfqRoutes(Router& router, Markets* m) {
  using namespace internal;
  const json rfq = RfqSchema();
  const json quote = QuoteSchema();

  router.Add({.method = "POST",
              .pattern = "/v1/rfqs",
              .auth = Auth::kSigned,
              .summary = "Open a request for quote: `res` on `nodes` nodes in at least "
                         "`min_sites` sites for [not_before, not_after); max_price is escrowed "
                         "until the award; quotes until `close` (default not_before)",
              .tag = "rfqs",
              .request_schema = SObj({{"res", SResources()},
                                      {"nodes", SInt()},
                                      {"min_sites", SInt("default 1")},
                                      {"not_before", SInt()},
                                      {"not_after", SInt()},
                                      {"max_price", SMoney()},
                                      {"close", SInt("unix s, default not_before")},
                                      {"award", SStr("auto (default)|manual")}},
                                     {"res", "nodes", "not_before", "not_after", "max_price"}),
              .response_schema = SObj({{"rfq", rfq}}),
              .success_status = 201,
              .handler = [m](const ApiRequest& q) { return OpenRfqRoute(*m, q); }});

  json piece = SObj({{"rcap",
                      {{"oneOf", json::array({SRcap(), SStr("a broker pool rcap id "
                                                            "(admin)")})}}},
                     {"node", SStr()}},
                    {"rcap", "node"});
  router.Add(
      {.method = "POST",
       .pattern = "/v1/rfqs/{rfq}/quotes",
       .auth = Auth::kSigned,
       .summary = "Quote on an open RFQ: a price and, per node, capacity escrowed to the "
                  "broker (a child the seller signs, or an admin's pool rcap id); the "
                  "quote must be complete",
       .tag = "rfqs",
       .request_schema = SObj({{"price", SMoney()}, {"rcaps", SArr(piece)}}, {"price", "rcaps"}),
       .response_schema = SObj({{"quote", quote}}),
       .success_status = 201,
       .handler = [m](const ApiRequest& q) { return QuoteRfqRoute(*m, q); }});

  router.Add({.method = "DELETE",
              .pattern = "/v1/rfqs/{rfq}/quotes/{quote}",
              .auth = Auth::kSigned,
              .summary = "Withdraw one's open quote; its escrows go back to the seller",
              .tag = "rfqs",
              .response_schema = SObj({{"quote", quote}}),
              .handler = [m](const ApiRequest& q) { return WithdrawQuoteRoute(*m, q); }});

  router.Add({.method = "POST",
              .pattern = "/v1/rfqs/{rfq}/accept",
              .auth = Auth::kSigned,
              .summary = "The buyer awards the RFQ to one open quote now; returns a chain per "
                         "node",
              .tag = "rfqs",
              .request_schema = SObj({{"quote", SStr()}}, {"quote"}),
              .response_schema = SObj({{"rfq", rfq}, {"chains", SArr(SArr(SRcap()))}}),
              .handler = [m](const ApiRequest& q) { return AcceptQuoteRoute(*m, q); }});

  router.Add({.method = "DELETE",
              .pattern = "/v1/rfqs/{rfq}",
              .auth = Auth::kSigned,
              .summary = "The buyer cancels an open RFQ; every escrow is released",
              .tag = "rfqs",
              .response_schema = SObj({{"rfq", rfq}}),
              .handler = [m](const ApiRequest& q) { return CancelRfqRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/rfqs",
              .auth = Auth::kOptional,
              .summary = "RFQs, newest first, at most 500, by state and/or buyer; quote prices "
                         "are sealed until the close but to a signed buyer or seller",
              .tag = "rfqs",
              .query_params = {{"state", "string", false, "open|awarded|failed|cancelled"},
                               {"buyer", "string", false, "the buyer's key (ed25519:...)"}},
              .response_schema = SObj({{"rfqs", SArr(rfq)}}),
              .handler = [m](const ApiRequest& q) { return ListRfqsRoute(*m, q); }});

  router.Add({.method = "GET",
              .pattern = "/v1/rfqs/{rfq}",
              .auth = Auth::kOptional,
              .summary = "One RFQ with its quotes (prices sealed as in the list)",
              .tag = "rfqs",
              .response_schema = SObj({{"rfq", rfq}}),
              .handler = [m](const ApiRequest& q) { return GetRfqRoute(*m, q); }});
}

}  // namespace bourse::broker
