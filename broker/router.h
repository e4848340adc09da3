// The broker's route registry: every REST endpoint is one Route, registered
// once, from which the HTTP dispatch, the auth check, the metrics label and
// the OpenAPI document (GET /openapi.json) are all derived, so the served API
// and the documented API cannot drift apart.
//
//   Router r;
//   r.Add({.method = "GET", .pattern = "/v1/slices/{name}", .auth = Auth::kNone,
//          .summary = "Get a slice", .response_schema = SliceSchema(),
//          .handler = [&](const ApiRequest& q) -> core::Result<ApiResponse> {
//            return JsonResponse(200, {{"name", q.Param("name")}});
//          }});
//   const Route* route = r.Match("GET", "/v1/slices/a_b", &params);
//
// Patterns are '/'-separated literal segments and `{name}` segments, which
// match exactly one non-empty segment. Literal segments win over `{...}` when
// two patterns could match. Markets (issue #6) add their routes the same way.
//
// Thread safety: Add() only before the server starts; Match() and routes()
// are then safe from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/keys.h"
#include "core/status.h"
#include "http/server.h"

namespace bourse::broker {

enum class Auth {
  kNone,    // anyone; no signature needed (public reads)
  kSigned,  // DESIGN §7 signature required; the caller's key is known
  // A read that may be signed: with Bourse-Key it is checked as kSigned
  // (caller set), without it the caller is anonymous (e.g. sealed prices
  // shown to their owners, GET /v1/rfqs).
  kOptional,
};

struct ApiRequest {
  std::string method;
  std::string path;    // decoded path, no query (for messages; routing uses the raw path)
  std::string target;  // path with query exactly as received (what is signed)
  std::map<std::string, std::string> params;      // from `{name}` segments
  std::multimap<std::string, std::string> query;  // query parameters
  std::string body;
  nlohmann::json json;                    // parsed body (routes with a request schema)
  std::optional<core::PublicKey> caller;  // set for Auth::kSigned (and signed kOptional) routes
  std::string caller_text;                // "ed25519:..." or ""
  // Signed routes: the request's Bourse-Nonce and Bourse-Timestamp (unix s).
  // The first commit of its handler records (caller_text, nonce) durably
  // (Broker::Mutate), so the request runs at most once, across restarts.
  std::string nonce;
  int64_t signed_ts = 0;
  std::string peer;  // the client's address ("127.0.0.1", "::1"), "" when unknown
  std::string request_id;
  int64_t now_ms = 0;
  // Stream routes only: the Last-Event-ID header, if sent.
  std::optional<std::string> last_event_id;

  const std::string& Param(const std::string& name) const;
  // The single value of a query parameter, or nullopt when absent.
  // Errors: invalid_argument when it is given more than once.
  core::Result<std::optional<std::string>> Query(const std::string& name) const;
  // An integer query parameter in [min, max], or `fallback` when absent.
  // Errors: invalid_argument naming the parameter.
  core::Result<int64_t> QueryInt(const std::string& name, int64_t min, int64_t max,
                                 std::optional<int64_t> fallback) const;
};

struct ApiResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  // Extra header fields (e.g. ETag, Cache-Control of the dashboard's files).
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// A response whose body is `doc` serialised compactly.
ApiResponse JsonResponse(int status, const nlohmann::json& doc);

using Handler = std::function<core::Result<ApiResponse>(const ApiRequest&)>;

// Asynchronous handlers, for the hot mutations: the handler starts the work
// (e.g. Broker::MutateAsync) and returns; the answer comes later through
// `respond`, called exactly once from any thread with a Completion that the
// server runs on its own event loop to build the response (so the thread
// that finished the work, e.g. the ledger store's syncer, only hands it over).
// The ApiRequest stays valid until the Completion has run.
using Completion = std::function<core::Result<ApiResponse>()>;
using Respond = std::function<void(Completion)>;
using AsyncHandler = std::function<void(const ApiRequest&, Respond)>;

// Streaming handlers (GET /v1/events): the handler checks the request and
// either returns an error, answered as any other, or calls `open` once,
// which answers 200 with `content_type` (no Content-Length) and returns the
// stream to send the body on (http::Stream; at most max_queued_bytes wait).
using OpenStream = std::function<std::shared_ptr<http::Stream>(const std::string& content_type,
                                                               size_t max_queued_bytes)>;
using StreamHandler = std::function<core::Status(const ApiRequest&, const OpenStream&)>;

// Where a synchronous handler runs. kInline: on the server's event loop,
// between other connections' requests, so it must not wait (no commit; a
// short lock is fine). kWorker: on a handler thread, where waiting is fine.
// kDefault: GET routes inline (reads), every other route on a worker.
enum class Run { kDefault, kInline, kWorker };

struct QueryParam {
  std::string name;
  std::string type = "integer";  // "integer" | "string"
  bool required = false;
  std::string description = {};
};

struct Route {
  std::string method;   // GET, POST, PUT, DELETE
  std::string pattern;  // "/v1/slices/{name}"
  Auth auth = Auth::kNone;
  // Signed routes: the kinds of principal that may call the route at all
  // (e.g. {"admin"}; empty: every principal). The server refuses any other
  // caller 403 before it looks at the body; rights that depend on the object
  // (a slice's owners, a site's PI) are the handler's.
  std::vector<std::string> signer_kinds = {};
  std::string summary = {};
  std::string tag = {};  // OpenAPI grouping: "plc", "ledger", "accounts", ...
  std::vector<QueryParam> query_params = {};
  nlohmann::json request_schema = nullptr;   // null: no body accepted
  nlohmann::json response_schema = nullptr;  // JSON Schema of the 2xx body
  int success_status = 200;
  Handler handler = {};  // exactly one of handler, async_handler, stream_handler
  AsyncHandler async_handler = {};
  StreamHandler stream_handler = {};  // runs inline, on the event loop
  Run run = Run::kDefault;  // for `handler`

  bool RunsInline() const {
    return run == Run::kInline || (run == Run::kDefault && method == "GET");
  }
};

// The check the server runs on every signed request once its signature has
// verified, before its rate limit, its nonce and its body: whether the key
// may sign at all (a registered principal) and whether the (key, nonce) has
// run before. Returns the principal's kind ("admin", "user", ...), which the
// server holds against Route::signer_kinds. Errors: unauthenticated, with
// the reason (answered 401).
struct SignedCaller {
  std::string_view key;  // "ed25519:..."
  std::string_view nonce;
  int64_t ts = 0;  // the signed Bourse-Timestamp, unix s
};
using CallerCheck = std::function<core::Result<std::string>(const SignedCaller&)>;

// The (key, nonce, ts) of the signed request whose handler runs on this
// thread, claimed by the first commit the handler starts (Broker::Mutate and
// MutateAsync record it in that commit). The server makes a request current
// around each handler call (ScopedCurrentRequest); commits outside handlers
// (ticks, tests) see none.
struct RequestOnce {
  std::string key;
  std::string nonce;
  int64_t ts = 0;
};
class ScopedCurrentRequest {
 public:
  explicit ScopedCurrentRequest(const ApiRequest& q);
  ~ScopedCurrentRequest();
  ScopedCurrentRequest(const ScopedCurrentRequest&) = delete;
  ScopedCurrentRequest& operator=(const ScopedCurrentRequest&) = delete;

 private:
  const ApiRequest* prev_;
  bool prev_claimed_;
};
// The current signed request's once-token, the first time it is asked for on
// this thread within its scope; nullopt after that, for unsigned requests and
// outside a handler.
std::optional<RequestOnce> ClaimCurrentRequest();
// Gives the token back (the commit that claimed it failed, so a later commit
// of the same handler records it).
void UnclaimCurrentRequest();

class Router {
 public:
  // Aborts on a duplicate (method, pattern), or a route without exactly one of
  // handler and async_handler: those are programming errors.
  void Add(Route route);
  // The route for (method, path), filling *params with the decoded `{name}`
  // segments; nullptr when none. `path` is the raw (percent-encoded) path:
  // it is split on '/' first, then each segment is decoded.
  // *path_known is set when some route has the path with another method (405).
  const Route* Match(std::string_view method, std::string_view path,
                     std::map<std::string, std::string>* params, bool* path_known) const;
  const std::vector<Route>& routes() const { return routes_; }
  // Set once, before the server starts (Broker sets it: principals and
  // durable nonces). Without one, any verified key may sign.
  void SetCallerCheck(CallerCheck check) { caller_check_ = std::move(check); }
  const CallerCheck& caller_check() const { return caller_check_; }

 private:
  struct Compiled {
    std::vector<std::string> segments;  // "{x}" kept as-is
    int literal_count = 0;
  };
  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;
  CallerCheck caller_check_;
};

}  // namespace bourse::broker
