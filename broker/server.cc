#include "broker/server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "broker/http_status.h"
#include "broker/rate_limiter.h"
#include "core/canonical_json.h"
#include "core/mutex.h"
#include "core/random.h"
#include "core/request_signing.h"
#include "http/server.h"

namespace bourse::broker {

namespace {

using SteadyClock = std::chrono::steady_clock;

const std::string kGet = "GET";

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

// The error code of a refusal by the transport (no Status behind it).
const char* ErrorCodeFor(int status) {
  switch (status) {
    case 408:
      return "request_timeout";
    case 413:
      return "payload_too_large";
    case 417:
      return "expectation_failed";
    case 431:
      return "header_too_large";
    case 501:
      return "not_implemented";
    case 505:
      return "http_version_not_supported";
    default:
      return "bad_request";
  }
}

// Handler threads for routes that may wait (Run::kWorker): started on
// demand up to a cap, each kept 30 s after its last task; tasks beyond the
// cap queue in order. The threads share the queue by reference count, so a
// handler still stuck past Shutdown's deadline touches no freed memory of
// the pool.
class WorkerPool {
 public:
  explicit WorkerPool(int max_threads) : q_(std::make_shared<Queue>(std::max(1, max_threads))) {}
  ~WorkerPool() { Shutdown(std::chrono::steady_clock::now()); }

  void Submit(std::function<void()> task) {
    Queue& q = *q_;
    core::MutexLock l(&q.mu);
    q.tasks.push_back(std::move(task));
    if (q.tasks.size() > static_cast<size_t>(q.idle) && q.threads < q.max_threads) {
      ++q.threads;
      std::thread([q = q_] { Work(*q); }).detach();
    } else {
      q.cv.Signal();
    }
  }
  // Runs what is queued, then waits until every thread has exited or
  // `deadline` has passed. Returns the number of threads still busy.
  int Shutdown(std::chrono::steady_clock::time_point deadline) {
    Queue& q = *q_;
    core::MutexLock l(&q.mu);
    q.stop = true;
    q.cv.SignalAll();
    while (q.threads > 0) {
      if (q.done_cv.WaitUntil(&q.mu, deadline) == std::cv_status::timeout) break;
    }
    return q.threads;
  }

 private:
  struct Queue {
    explicit Queue(int max) : max_threads(max) {}
    const int max_threads;
    core::Mutex mu;
    core::CondVar cv, done_cv;
    std::deque<std::function<void()>> tasks GUARDED_BY(mu);
    int threads GUARDED_BY(mu) = 0;
    int idle GUARDED_BY(mu) = 0;
    bool stop GUARDED_BY(mu) = false;
  };

  static void Work(Queue& q) {
    core::MutexLock l(&q.mu);
    for (;;) {
      if (q.tasks.empty() && !q.stop) {
        ++q.idle;
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (q.tasks.empty() && !q.stop) {
          if (q.cv.WaitUntil(&q.mu, until) == std::cv_status::timeout) break;
        }
        --q.idle;
      }
      if (q.tasks.empty()) break;
      std::function<void()> task = std::move(q.tasks.front());
      q.tasks.pop_front();
      l.Unlock();
      task();
      l.Lock();
    }
    --q.threads;
    q.done_cv.SignalAll();
  }

  std::shared_ptr<Queue> q_;
};

// The access log: lines are gathered and written in batches (one write for
// many requests under load), at the latest kFlushPeriod after they were
// added, and all of them when the server stops.
class AccessLog {
 public:
  static constexpr auto kFlushPeriod = std::chrono::milliseconds(50);
  static constexpr size_t kFlushBytes = 32 * 1024;

  explicit AccessLog(FILE* out) : out_(out) {
    if (out_ != nullptr) flusher_ = std::thread([this] { FlushLoop(); });
  }
  ~AccessLog() {
    {
      core::MutexLock l(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    if (flusher_.joinable()) flusher_.join();
    Flush();
  }
  bool enabled() const { return out_ != nullptr; }
  void Add(const std::string& line) EXCLUDES(mu_) {
    core::MutexLock l(&mu_);
    pending_ += line;
    if (pending_.size() >= kFlushBytes) WriteLocked();
  }
  void Flush() EXCLUDES(mu_) {
    core::MutexLock l(&mu_);
    WriteLocked();
  }

 private:
  void WriteLocked() REQUIRES(mu_) {
    if (pending_.empty() || out_ == nullptr) return;
    std::fwrite(pending_.data(), 1, pending_.size(), out_);
    std::fflush(out_);
    pending_.clear();
  }
  void FlushLoop() EXCLUDES(mu_) {
    core::MutexLock l(&mu_);
    while (!stop_) {
      cv_.WaitFor(&mu_, kFlushPeriod);
      WriteLocked();
    }
  }

  FILE* const out_;
  core::Mutex mu_;
  core::CondVar cv_;
  std::string pending_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread flusher_;
};

core::Result<ApiResponse> CallHandler(const Route& route, const ApiRequest& q) {
  try {
    ScopedCurrentRequest current(q);
    return route.handler(q);
  } catch (const std::exception& e) {
    return core::Internal(std::string("unexpected error: ") + e.what());
  }
}

core::Result<ApiResponse> RunCompletion(const Completion& done) {
  try {
    return done();
  } catch (const std::exception& e) {
    return core::Internal(std::string("unexpected error: ") + e.what());
  }
}

}  // namespace

// The dispatcher: the broker's side of every request the transport reads.
struct HttpServer::Impl : public http::Service {
  const Router* router;
  Options options;
  Metrics* metrics;
  std::function<int64_t()> ledger_size;
  core::NonceCache nonces;
  core::PublicKeyCache keys;
  RateLimiter limiter;       // per key, verified requests
  RateLimiter peer_limiter;  // per peer address, failed authentication
  const core::Clock* clock;
  std::atomic<uint64_t> next_id{0};
  std::string id_prefix;
  AccessLog log;
  WorkerPool pool;
  http::Server transport;

  Impl(const Router* r, Options o, Metrics* m, std::function<int64_t()> ls)
      : router(r),
        options(std::move(o)),
        metrics(m),
        ledger_size(std::move(ls)),
        limiter(options.rate_limit_per_s, options.rate_limit_burst),
        peer_limiter(options.peer_failure_rate_per_s, options.peer_failure_burst),
        clock(options.clock != nullptr ? options.clock : &core::SystemClock::Get()),
        log(options.access_log),
        pool(options.threads),
        transport(this, TransportOptions(options)) {
    id_prefix = core::NewId("").substr(0, 8);
  }

  static http::Server::Options TransportOptions(const Options& o) {
    http::Server::Options t;
    t.host = o.host;
    t.port = o.port;
    t.tls_cert = o.tls_cert;
    t.tls_key = o.tls_key;
    t.io_threads = o.io_threads;
    t.max_connections = o.max_connections;
    t.limits.max_body_bytes = o.max_body_bytes;
    t.read_timeout_s = o.read_timeout_s;
    t.write_timeout_s = o.write_timeout_s;
    t.keep_alive_timeout_s = o.keep_alive_timeout_s;
    t.stop_timeout_s = o.stop_timeout_s;
    return t;
  }

  struct Exchange;
  void Serve(http::Request req, http::Responder respond) override;
  // A stream route: its handler either refuses (answered as usual) or opens
  // the stream, which is then logged as answered 200.
  void ServeStream(const std::shared_ptr<Exchange>& ex, const Route& route,
                   const http::Request& req);
  http::Response Refusal(int status, std::string_view message) override {
    metrics->RecordRequest("http_error", status, 0);
    http::Response r;
    r.status = status;
    r.body = ErrorBody(ErrorCodeFor(status), message);
    return r;
  }

  // Everything before the handler: the route (404/405), the signature and
  // rate limit of signed routes, the JSON body. Returns the route to run, or
  // nullptr with *answer set when the request is answered already.
  const Route* Prepare(const http::Request& req, std::string body, ApiRequest* q,
                       std::string* route_label, core::Result<ApiResponse>* answer);
  // A GET outside /v1 that no route has: the dashboard's file it names.
  core::Result<ApiResponse> ServeFile(const http::Request& req, const std::string& path,
                                      std::string* route_label) const;
  // One access-log line appended to *out.
  void FormatLog(const ApiRequest& q, const std::string& route, int status, double secs,
                 std::string* out) const;
};

// One request from the transport to its answer, shared by whatever thread
// runs its handler.
struct HttpServer::Impl::Exchange {
  Impl* server = nullptr;
  http::Responder respond;
  ApiRequest q;
  std::string route_label;
  SteadyClock::time_point t0;
  std::atomic<bool> answered{false};

  Exchange(Impl* s, http::Responder r) : server(s), respond(std::move(r)) {}

  // Encodes the handler's result and hands it to the transport.
  void Finish(core::Result<ApiResponse> r) { respond(Encode(std::move(r))); }

  // The handler's result as HTTP, recorded in the metrics and the access log.
  http::Response Encode(core::Result<ApiResponse> r) {
    http::Response out;
    if (r.ok()) {
      out.status = r->status;
      out.body = std::move(r->body);
      out.content_type = std::move(r->content_type);
      out.headers = std::move(r->headers);
    } else {
      const core::Status& st = r.status();
      out.status = HttpStatusFor(st.code());
      out.body = ErrorBody(st);
    }
    out.headers.emplace_back("X-Request-Id", q.request_id);
    double secs = Seconds(SteadyClock::now() - t0);
    server->metrics->RecordRequest(route_label, out.status, secs);
    if (server->log.enabled()) {
      std::string line;
      server->FormatLog(q, route_label, out.status, secs, &line);
      server->log.Add(line);
    }
    return out;
  }
};

void HttpServer::Impl::Serve(http::Request req, http::Responder respond) {
  auto ex = std::make_shared<Exchange>(this, std::move(respond));
  ex->t0 = SteadyClock::now();
  ApiRequest& q = ex->q;
  q.method = req.method;
  if (!http::PercentDecode(req.path, false, &q.path)) q.path = req.path;
  q.target = req.target;
  q.now_ms = clock->NowMillis();
  q.peer = req.peer;
  char idbuf[48];
  std::snprintf(idbuf, sizeof idbuf, "%s-%llu", id_prefix.c_str(),
                static_cast<unsigned long long>(next_id.fetch_add(1) + 1));
  q.request_id = idbuf;
  core::Result<ApiResponse> answer = core::Internal("no answer");
  const Route* route = nullptr;
  try {
    std::string body = std::move(req.body);
    route = Prepare(req, std::move(body), &q, &ex->route_label, &answer);
  } catch (const std::exception& e) {
    answer = core::Internal(std::string("unexpected error: ") + e.what());
  }
  if (route == nullptr) {
    ex->answered = true;
    ex->Finish(std::move(answer));
    return;
  }
  if (route->stream_handler) return ServeStream(ex, *route, req);
  if (route->async_handler) {
    Respond done = [ex](Completion completion) {
      if (ex->answered.exchange(true)) return;  // exactly once
      // The completion runs on the connection's loop: the thread that
      // finished the work (a commit's) only hands it over.
      ex->respond.Later([ex, completion = std::move(completion)] {
        return ex->Encode(RunCompletion(completion));
      });
    };
    try {
      ScopedCurrentRequest current(ex->q);
      route->async_handler(ex->q, done);
    } catch (const std::exception& e) {
      std::string what = e.what();
      done([what]() -> core::Result<ApiResponse> {
        return core::Internal("unexpected error: " + what);
      });
    }
    return;
  }
  ex->answered = true;
  if (route->RunsInline()) {
    ex->Finish(CallHandler(*route, ex->q));
    return;
  }
  pool.Submit([ex, route] { ex->Finish(CallHandler(*route, ex->q)); });
}

void HttpServer::Impl::ServeStream(const std::shared_ptr<Exchange>& ex, const Route& route,
                                   const http::Request& req) {
  if (const std::string* id = req.Header("last-event-id")) ex->q.last_event_id = *id;
  bool opened = false;
  OpenStream open = [&](const std::string& content_type, size_t max_queued) {
    opened = true;
    ex->answered = true;
    http::Response head;
    head.content_type = content_type;
    head.headers = {{"Cache-Control", "no-store"}, {"X-Request-Id", ex->q.request_id}};
    ApiResponse logged;  // the metrics and access log see a 200
    ex->Encode(logged);
    return ex->respond.OpenStream(std::move(head), max_queued);
  };
  core::Status st = core::Status::Ok();
  try {
    st = route.stream_handler(ex->q, open);
  } catch (const std::exception& e) {
    st = core::Internal(std::string("unexpected error: ") + e.what());
  }
  if (opened) return;
  ex->answered = true;
  ex->Finish(st.ok() ? core::Internal("the stream was not opened") : std::move(st));
}

const Route* HttpServer::Impl::Prepare(const http::Request& req, std::string body, ApiRequest* q,
                                       std::string* route_label,
                                       core::Result<ApiResponse>* answer) {
  bool path_known = false;
  // HEAD is GET without the body (the transport drops it).
  const std::string& method = req.method == "HEAD" ? kGet : req.method;
  const Route* route = router->Match(method, req.path, &q->params, &path_known);
  if (route == nullptr) {
    if (path_known) {
      *route_label = "method_not_allowed";
      ApiResponse r;
      r.status = 405;
      r.body =
          ErrorBody("method_not_allowed", "method " + req.method + " not allowed on " + q->path);
      *answer = std::move(r);
      return nullptr;
    }
    *route_label = "not_found";
    if (method == kGet && q->path != "/v1" && !q->path.starts_with("/v1/")) {
      *answer = ServeFile(req, q->path, route_label);
      return nullptr;
    }
    *answer = core::NotFound("no such endpoint: " + req.method + " " + q->path);
    return nullptr;
  }
  *route_label = route->method + " " + route->pattern;
  auto fail = [&](core::Status st) -> const Route* {
    *answer = std::move(st);
    return nullptr;
  };
  for (const auto& [k, v] : req.query) q->query.emplace(k, v);
  if (route->auth == Auth::kSigned ||
      (route->auth == Auth::kOptional && req.Header("Bourse-Key") != nullptr)) {
    // Nothing is stored for a request (a rate-limit token, a nonce) before
    // it has passed the checks that need no storage; its body is looked at
    // only once its signer is known to be a principal.
    auto refuse = [&](core::Status st) -> const Route* {
      peer_limiter.Allow(q->peer, q->now_ms);
      return fail(std::move(st));
    };
    if (!peer_limiter.HasToken(q->peer, q->now_ms)) {
      metrics->RecordRateLimited();
      return fail(core::ResourceExhausted("rate limit exceeded for peer " + q->peer +
                                          ": too many requests that failed authentication"));
    }
    auto header = [&](std::string_view name) {
      const std::string* v = req.Header(name);
      return v != nullptr ? *v : std::string();
    };
    core::SignedHeaders h{header("Bourse-Key"), header("Bourse-Timestamp"), header("Bourse-Nonce"),
                          header("Bourse-Signature")};
    auto who =
        core::VerifyRequest(h, req.method, req.target, body, q->now_ms / 1000, nullptr, &keys);
    if (!who.ok()) return refuse(who.status());
    q->caller_text = who->ToText();
    q->caller = std::move(*who);
    q->nonce = h.nonce;
    q->signed_ts = std::strtoll(h.timestamp.c_str(), nullptr, 10);  // verified decimal
    if (const CallerCheck& check = router->caller_check()) {
      core::Result<std::string> kind = check({q->caller_text, q->nonce, q->signed_ts});
      if (!kind.ok()) return refuse(kind.status());
      const std::vector<std::string>& kinds = route->signer_kinds;
      if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), *kind) == kinds.end()) {
        std::string list;
        for (const std::string& k : kinds) list += (list.empty() ? "" : ", ") + k;
        return fail(core::PermissionDenied(*route_label + " is for " + list +
                                           " principals only; key " + q->caller_text + " is " +
                                           (*kind == "admin" ? "an " : "a ") + *kind));
      }
    }
    if (!limiter.Allow(q->caller_text, q->now_ms)) {
      metrics->RecordRateLimited();
      return fail(core::ResourceExhausted("rate limit exceeded for key " + q->caller_text));
    }
    if (!nonces.CheckAndInsert(q->caller_text, q->nonce, q->now_ms / 1000)) {
      return refuse(core::Unauthenticated("replayed request: nonce already used"));
    }
  }
  if (route->request_schema.is_null()) {
    if (!body.empty()) {
      return fail(core::InvalidArgument("body: this endpoint takes no request body"));
    }
  } else {
    if (body.empty())
      return fail(core::InvalidArgument("body: missing (a JSON object is required)"));
    auto parsed = core::ParseJson(body);
    if (!parsed.ok()) return fail(core::InvalidArgument("body: " + parsed.status().message()));
    if (!parsed->is_object()) return fail(core::InvalidArgument("body: must be a JSON object"));
    q->json = std::move(parsed).value();
  }
  q->body = std::move(body);
  return route;
}

core::Result<ApiResponse> HttpServer::Impl::ServeFile(const http::Request& req,
                                                     const std::string& path,
                                                     std::string* route_label) const {
  if (options.static_files == nullptr) {
    if (path == "/" || path == "/index.html") {
      return core::NotFound(
          "the dashboard is not installed: no web directory next to bourse-broker "
          "(give one with --web DIR; docs/broker.md)");
    }
    return core::NotFound("no such endpoint: " + req.method + " " + path);
  }
  auto file = options.static_files->Lookup(path, req.Header("If-None-Match"));
  if (!file) return core::NotFound("no such endpoint or file: " + req.method + " " + path);
  *route_label = "GET /{file}";
  ApiResponse r;
  r.status = file->status;
  r.content_type = std::move(file->content_type);
  if (file->body != nullptr) r.body = *file->body;
  r.headers = std::move(file->headers);
  return r;
}

namespace {

// Appends `v` as a JSON string: printable ASCII without quotes or
// backslashes as is (ids, keys, routes and nearly every path), anything
// else through nlohmann (escapes; invalid UTF-8 becomes U+FFFD).
void AppendJsonString(std::string* out, std::string_view v) {
  bool plain = true;
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out->push_back('"');
    out->append(v);
    out->push_back('"');
    return;
  }
  out->append(nlohmann::json(std::string(v))
                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

void HttpServer::Impl::FormatLog(const ApiRequest& q, const std::string& route, int status,
                                 double secs, std::string* s) const {
  // {"ts","id","method","path","route","status","ms","key"}, one line,
  // formatted by hand: this runs for every request.
  s->append("{\"ts\":");
  s->append(std::to_string(q.now_ms));
  s->append(",\"id\":");
  AppendJsonString(s, q.request_id);
  s->append(",\"method\":");
  AppendJsonString(s, q.method);
  s->append(",\"path\":");
  AppendJsonString(s, q.path);
  s->append(",\"route\":");
  AppendJsonString(s, route);
  s->append(",\"status\":");
  s->append(std::to_string(status));
  char ms[32];
  std::snprintf(ms, sizeof ms, ",\"ms\":%.3f", secs * 1000.0);
  s->append(ms);
  s->append(",\"key\":");
  AppendJsonString(s, q.caller_text);
  s->append("}\n");
}

HttpServer::HttpServer(const Router* router, Options options, Metrics* metrics,
                       std::function<int64_t()> ledger_size)
    : impl_(std::make_unique<Impl>(router, std::move(options), metrics, std::move(ledger_size))) {}

HttpServer::~HttpServer() = default;

core::Status HttpServer::Bind() { return impl_->transport.Bind(); }

int HttpServer::port() const { return impl_->transport.port(); }

void HttpServer::Run() {
  impl_->transport.Run();
  // Every answer has been written, or the stop deadline has passed: handler
  // threads get what is left of it to finish what they hold.
  int stuck = impl_->pool.Shutdown(impl_->transport.stop_deadline());
  if (stuck > 0) {
    std::fprintf(stderr, "bourse-broker: %d handler thread(s) still busy at the stop deadline\n",
                 stuck);
  }
  impl_->log.Flush();
}

void HttpServer::Stop() { impl_->transport.Stop(); }

}  // namespace bourse::broker
