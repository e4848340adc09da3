#include "broker/router.h"

#include <gtest/gtest.h>

#include "broker/broker.h"
#include "broker/http_status.h"
#include "broker/metrics.h"
#include "broker/rate_limiter.h"

namespace bourse::broker {
namespace {

Handler Echo(std::string tag) {
  return [tag](const ApiRequest&) -> core::Result<ApiResponse> { return JsonResponse(200, tag); };
}

TEST(RouterTest, MatchesLiteralsBeforeParameters) {
  Router r;
  r.Add({.method = "GET", .pattern = "/v1/slices/{slice}", .handler = Echo("get")});
  r.Add({.method = "GET", .pattern = "/v1/slices/{slice}/bindings", .handler = Echo("b")});
  r.Add({.method = "POST", .pattern = "/v1/accounts/mint", .handler = Echo("mint")});
  r.Add({.method = "GET", .pattern = "/v1/accounts/{key}", .handler = Echo("acct")});
  std::map<std::string, std::string> params;
  bool known = false;
  const Route* m = r.Match("GET", "/v1/slices/mit_a", &params, &known);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->pattern, "/v1/slices/{slice}");
  EXPECT_EQ(params["slice"], "mit_a");
  m = r.Match("GET", "/v1/slices/mit_a/bindings", &params, &known);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->pattern, "/v1/slices/{slice}/bindings");
  m = r.Match("GET", "/v1/accounts/mint", &params, &known);
  ASSERT_NE(m, nullptr);  // GET falls back to the parameter route
  EXPECT_EQ(m->pattern, "/v1/accounts/{key}");
  m = r.Match("DELETE", "/v1/accounts/mint", &params, &known);
  EXPECT_EQ(m, nullptr);
  EXPECT_TRUE(known);  // 405, not 404
  m = r.Match("GET", "/v1/slices//bindings", &params, &known);
  EXPECT_EQ(m, nullptr);
  EXPECT_FALSE(known);
  EXPECT_EQ(r.Match("GET", "/v1/slices", &params, &known), nullptr);
}

TEST(RouterTest, AColonInALiteralSegmentIsPartOfIt) {
  // POST /v1/orders:batch (batch orders) next to GET /v1/orders.
  Router r;
  r.Add({.method = "GET", .pattern = "/v1/orders", .handler = Echo("list")});
  r.Add({.method = "POST", .pattern = "/v1/orders:batch", .handler = Echo("batch")});
  r.Add({.method = "GET", .pattern = "/v1/markets/{market}/orders", .handler = Echo("book")});
  std::map<std::string, std::string> params;
  bool known = false;
  const Route* m = r.Match("POST", "/v1/orders:batch", &params, &known);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->pattern, "/v1/orders:batch");
  m = r.Match("POST", "/v1/orders%3Abatch", &params, &known);  // the same segment, encoded
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->pattern, "/v1/orders:batch");
  m = r.Match("GET", "/v1/orders", &params, &known);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->pattern, "/v1/orders");
  EXPECT_EQ(r.Match("GET", "/v1/orders:batch", &params, &known), nullptr);
  EXPECT_TRUE(known);  // 405
  EXPECT_EQ(r.Match("POST", "/v1/orders", &params, &known), nullptr);
  EXPECT_TRUE(known);  // 405
  EXPECT_EQ(r.Match("POST", "/v1/orders:batches", &params, &known), nullptr);
  EXPECT_FALSE(known);  // 404
  m = r.Match("GET", "/v1/markets/mk:1/orders", &params, &known);  // in a parameter too
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(params["market"], "mk:1");
}

TEST(RouterTest, QueryIntValidates) {
  ApiRequest q;
  q.query = {{"from", "12"}, {"bad", "1x"},  {"neg", "-1"},
             {"twice", "1"}, {"twice", "2"}, {"lead", "01"}};
  EXPECT_EQ(*q.QueryInt("from", 0, 100, {}), 12);
  EXPECT_FALSE(q.QueryInt("bad", 0, 100, {}).ok());
  EXPECT_FALSE(q.QueryInt("neg", 0, 100, {}).ok());
  EXPECT_FALSE(q.QueryInt("twice", 0, 100, {}).ok());
  EXPECT_FALSE(q.QueryInt("lead", 0, 100, {}).ok());
  EXPECT_FALSE(q.QueryInt("from", 0, 10, {}).ok());
  EXPECT_FALSE(q.QueryInt("missing", 0, 10, {}).ok());
  EXPECT_EQ(*q.QueryInt("missing", 0, 10, 7), 7);
}

TEST(HttpStatusTest, OneMappingForEveryCode) {
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kInsufficientFunds), 402);
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kFailedPrecondition), 409);
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(core::StatusCode::kInternal), 500);
  auto j = nlohmann::json::parse(ErrorBody(core::NotFound("slice x does not exist")));
  EXPECT_EQ(j, nlohmann::json::parse(
                   R"({"error":{"code":"not_found","message":"slice x does not exist"}})"));
}

TEST(RateLimiterTest, RefusesBeyondBurstAndRefills) {
  RateLimiter rl(10, 5);
  int ok = 0;
  for (int i = 0; i < 20; ++i) ok += rl.Allow("k", 1000);
  EXPECT_EQ(ok, 5);
  EXPECT_TRUE(rl.Allow("other", 1000));  // per key
  EXPECT_TRUE(rl.Allow("k", 1100));      // 0.1 s at 10/s refills one
  EXPECT_FALSE(rl.Allow("k", 1100));
  RateLimiter off(0, 0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(off.Allow("k", 0));
}

TEST(MetricsTest, RendersPrometheusText) {
  Metrics m;
  m.RecordRequest("GET /healthz", 200, 0.0003);
  m.RecordRequest("GET /healthz", 200, 0.02);
  m.RecordCommit(0.001);
  std::string t = m.Render({.size = 42, .batches = 3, .commit_calls = 7, .syncs = 2});
  EXPECT_NE(t.find("bourse_http_requests_total{route=\"GET /healthz\",status=\"200\"} 2"),
            std::string::npos);
  EXPECT_NE(
      t.find("bourse_http_request_duration_seconds_bucket{route=\"GET /healthz\",le=\"0.0005\"} 1"),
      std::string::npos);
  EXPECT_NE(t.find("bourse_http_request_duration_seconds_count{route=\"GET /healthz\"} 2"),
            std::string::npos);
  EXPECT_NE(t.find("bourse_ledger_size 42"), std::string::npos);
  EXPECT_NE(t.find("bourse_ledger_batches_total 3\n"), std::string::npos);
  EXPECT_NE(t.find("bourse_ledger_commit_calls_total 7\n"), std::string::npos);
  EXPECT_NE(t.find("bourse_ledger_syncs_total 2\n"), std::string::npos);
  EXPECT_NE(t.find("bourse_ledger_commit_duration_seconds_count 1"), std::string::npos);
}

TEST(OpenApiTest, DocumentsEveryRouteWithParametersAndSecurity) {
  Router r;
  r.Add({.method = "GET",
         .pattern = "/v1/slices/{slice}",
         .summary = "get",
         .response_schema = {{"type", "object"}},
         .handler = Echo("x")});
  r.Add({.method = "POST",
         .pattern = "/v1/slices",
         .auth = Auth::kSigned,
         .summary = "create",
         .request_schema = {{"type", "object"}},
         .response_schema = {{"type", "object"}},
         .success_status = 201,
         .handler = Echo("y")});
  nlohmann::json doc = BuildOpenApi(r, "t", "1");
  EXPECT_EQ(doc["openapi"], "3.1.0");
  EXPECT_EQ(doc["paths"]["/v1/slices/{slice}"]["get"]["parameters"][0]["name"], "slice");
  EXPECT_TRUE(doc["paths"]["/v1/slices"]["post"].contains("requestBody"));
  EXPECT_TRUE(doc["paths"]["/v1/slices"]["post"].contains("security"));
  EXPECT_TRUE(doc["paths"]["/v1/slices"]["post"]["responses"].contains("201"));
  EXPECT_FALSE(doc["paths"]["/v1/slices/{slice}"]["get"].contains("security"));
}

}  // namespace
}  // namespace bourse::broker
