#include "broker/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>

#include "broker/http_status.h"
#include "broker/rate_limiter.h"
#include "core/canonical_json.h"
#include "core/random.h"
#include "core/request_signing.h"

namespace bourse::broker {

struct HttpServer::Impl {
  const Router* router;
  Options options;
  Metrics* metrics;
  std::function<int64_t()> ledger_size;
  std::unique_ptr<httplib::Server> server;
  core::NonceCache nonces;
  RateLimiter limiter;
  const core::Clock* clock;
  int port = -1;
  std::atomic<uint64_t> next_id{0};
  std::string id_prefix;
  std::mutex log_mu;

  Impl(const Router* r, Options o, Metrics* m, std::function<int64_t()> ls)
      : router(r),
        options(std::move(o)),
        metrics(m),
        ledger_size(std::move(ls)),
        limiter(options.rate_limit_per_s, options.rate_limit_burst),
        clock(options.clock != nullptr ? options.clock : &core::SystemClock::Get()) {
    id_prefix = core::NewId("").substr(0, 8);
  }

  void Handle(const httplib::Request& req, httplib::Response& res);
  core::Result<ApiResponse> Serve(const httplib::Request& req, ApiRequest* q,
                                  std::string* route_label);
  void Log(const ApiRequest& q, const std::string& route, int status, double secs);
};

namespace {

void SetError(httplib::Response& res, int status, std::string_view code, std::string_view msg) {
  res.status = status;
  res.set_content(ErrorBody(code, msg), "application/json");
}

}  // namespace

core::Result<ApiResponse> HttpServer::Impl::Serve(const httplib::Request& req, ApiRequest* q,
                                                  std::string* route_label) {
  bool path_known = false;
  const Route* route = router->Match(req.method, req.path, &q->params, &path_known);
  if (route == nullptr) {
    if (path_known) {
      *route_label = "method_not_allowed";
      ApiResponse r = JsonResponse(
          405, nlohmann::json::parse(ErrorBody(
                   "method_not_allowed", "method " + req.method + " not allowed on " + req.path)));
      return r;
    }
    *route_label = "not_found";
    return core::NotFound("no such endpoint: " + req.method + " " + req.path);
  }
  *route_label = route->method + " " + route->pattern;
  for (const auto& [k, v] : req.params) q->query.emplace(k, v);
  if (route->auth == Auth::kSigned) {
    core::SignedHeaders h{
        req.get_header_value("Bourse-Key"), req.get_header_value("Bourse-Timestamp"),
        req.get_header_value("Bourse-Nonce"), req.get_header_value("Bourse-Signature")};
    BOURSE_ASSIGN_OR_RETURN(
        core::PublicKey who,
        core::VerifyRequest(h, req.method, req.target, req.body, q->now_ms / 1000, &nonces));
    q->caller_text = who.ToText();
    q->caller = std::move(who);
    if (!limiter.Allow(q->caller_text, q->now_ms)) {
      metrics->RecordRateLimited();
      return core::ResourceExhausted("rate limit exceeded for key " + q->caller_text);
    }
  }
  if (route->request_schema.is_null()) {
    if (!req.body.empty()) {
      return core::InvalidArgument("body: this endpoint takes no request body");
    }
  } else {
    if (req.body.empty()) return core::InvalidArgument("body: missing (a JSON object is required)");
    auto parsed = core::ParseJson(req.body);
    if (!parsed.ok()) return core::InvalidArgument("body: " + parsed.status().message());
    if (!parsed->is_object()) return core::InvalidArgument("body: must be a JSON object");
    q->json = std::move(parsed).value();
  }
  q->body = req.body;
  return route->handler(*q);
}

void HttpServer::Impl::Handle(const httplib::Request& req, httplib::Response& res) {
  auto t0 = std::chrono::steady_clock::now();
  ApiRequest q;
  q.method = req.method;
  q.path = req.path;
  q.target = req.target;
  q.now_ms = clock->NowMillis();
  char idbuf[48];
  std::snprintf(idbuf, sizeof idbuf, "%s-%llu", id_prefix.c_str(),
                static_cast<unsigned long long>(next_id.fetch_add(1) + 1));
  q.request_id = idbuf;
  std::string route_label;
  core::Result<ApiResponse> r = [&]() -> core::Result<ApiResponse> {
    try {
      return Serve(req, &q, &route_label);
    } catch (const std::exception& e) {
      return core::Internal(std::string("unexpected error: ") + e.what());
    }
  }();
  if (r.ok()) {
    res.status = r->status;
    res.set_content(std::move(r->body), r->content_type);
  } else {
    const core::Status& st = r.status();
    res.status = HttpStatusFor(st.code());
    res.set_content(ErrorBody(st), "application/json");
  }
  res.set_header("X-Request-Id", q.request_id);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics->RecordRequest(route_label, res.status, secs);
  Log(q, route_label, res.status, secs);
}

void HttpServer::Impl::Log(const ApiRequest& q, const std::string& route, int status, double secs) {
  if (options.access_log == nullptr) return;
  nlohmann::json line = {{"ts", q.now_ms},      {"id", q.request_id},  {"method", q.method},
                         {"path", q.path},      {"route", route},      {"status", status},
                         {"ms", secs * 1000.0}, {"key", q.caller_text}};
  std::string s = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  s.push_back('\n');
  std::lock_guard<std::mutex> l(log_mu);
  std::fwrite(s.data(), 1, s.size(), options.access_log);
  std::fflush(options.access_log);
}

HttpServer::HttpServer(const Router* router, Options options, Metrics* metrics,
                       std::function<int64_t()> ledger_size)
    : impl_(std::make_unique<Impl>(router, std::move(options), metrics, std::move(ledger_size))) {}

HttpServer::~HttpServer() = default;

core::Status HttpServer::Bind() {
  Impl& m = *impl_;
  if (!m.options.tls_cert.empty() || !m.options.tls_key.empty()) {
    if (m.options.tls_cert.empty() || m.options.tls_key.empty()) {
      return core::InvalidArgument("--tls-cert and --tls-key must be given together");
    }
    auto s =
        std::make_unique<httplib::SSLServer>(m.options.tls_cert.c_str(), m.options.tls_key.c_str());
    if (!s->is_valid()) {
      return core::InvalidArgument("cannot load TLS certificate " + m.options.tls_cert + " / key " +
                                   m.options.tls_key);
    }
    m.server = std::move(s);
  } else {
    m.server = std::make_unique<httplib::Server>();
  }
  httplib::Server& s = *m.server;
  size_t threads = static_cast<size_t>(std::max(2, m.options.threads));
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_keep_alive_max_count(1'000'000);
  s.set_keep_alive_timeout(m.options.keep_alive_timeout_s);
  s.set_read_timeout(m.options.read_timeout_s, 0);
  s.set_write_timeout(m.options.write_timeout_s, 0);
  s.set_payload_max_length(m.options.max_body_bytes);
  s.set_tcp_nodelay(true);
  auto h = [&m](const httplib::Request& req, httplib::Response& res) { m.Handle(req, res); };
  s.Get(".*", h);
  s.Post(".*", h);
  s.Put(".*", h);
  s.Delete(".*", h);
  s.Patch(".*", h);
  s.Options(".*", h);
  size_t max_body = m.options.max_body_bytes;
  Metrics* metrics = m.metrics;
  httplib::Server::HandlerWithResponse on_error = [max_body, metrics](const httplib::Request& req,
                                                                      httplib::Response& res) {
    // Only HTTP-level failures reach here with an empty body (our handlers
    // always write one): oversize bodies, unparsable requests.
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 413) {
      SetError(res, 413, "payload_too_large",
               "body: larger than the limit of " + std::to_string(max_body) + " bytes");
    } else {
      SetError(res, res.status, "bad_request", "malformed HTTP request");
    }
    metrics->RecordRequest("http_error", res.status, 0);
    (void)req;
    return httplib::Server::HandlerResponse::Handled;
  };
  s.set_error_handler(std::move(on_error));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SetError(res, 500, "internal", "unexpected error");
  });
  if (m.options.port == 0) {
    m.port = s.bind_to_any_port(m.options.host);
  } else {
    m.port = s.bind_to_port(m.options.host, m.options.port) ? m.options.port : -1;
  }
  if (m.port < 0) {
    return core::Unavailable("cannot listen on " + m.options.host + ":" +
                             std::to_string(m.options.port));
  }
  return core::Status::Ok();
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Run() {
  if (impl_->server) impl_->server->listen_after_bind();
}

void HttpServer::Stop() {
  if (impl_->server) impl_->server->stop();
}

}  // namespace bourse::broker
