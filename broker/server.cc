#include "broker/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "broker/http1.h"
#include "broker/http_status.h"
#include "broker/rate_limiter.h"
#include "core/canonical_json.h"
#include "core/random.h"
#include "core/request_signing.h"

namespace bourse::broker {

namespace {
const std::string kGet = "GET";
}  // namespace

struct HttpServer::Impl {
  const Router* router;
  Options options;
  Metrics* metrics;
  std::function<int64_t()> ledger_size;
  core::NonceCache nonces;
  core::PublicKeyCache keys;
  RateLimiter limiter;
  const core::Clock* clock;
  int port = -1;
  std::atomic<uint64_t> next_id{0};
  std::string id_prefix;
  std::mutex log_mu;

  // Transport.
  int listen_fd = -1;
  SSL_CTX* ssl_ctx = nullptr;
  std::atomic<bool> stopping{false};
  std::mutex conn_mu;
  std::condition_variable work_cv;  // workers wait here for accepted sockets
  std::condition_variable done_cv;  // Run waits here for workers to finish
  std::deque<int> pending;          // accepted, not yet taken by a worker
  std::set<int> serving;            // taken by a worker (Stop shuts their reads)
  int workers = 0;                  // live worker threads
  int idle_workers = 0;             // of them, waiting for a socket

  Impl(const Router* r, Options o, Metrics* m, std::function<int64_t()> ls)
      : router(r),
        options(std::move(o)),
        metrics(m),
        ledger_size(std::move(ls)),
        limiter(options.rate_limit_per_s, options.rate_limit_burst),
        clock(options.clock != nullptr ? options.clock : &core::SystemClock::Get()) {
    id_prefix = core::NewId("").substr(0, 8);
  }
  ~Impl() {
    if (listen_fd >= 0) ::close(listen_fd);
    if (ssl_ctx != nullptr) SSL_CTX_free(ssl_ctx);
  }

  struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::string request_id;
  };
  void Handle(const http1::Request& req, std::string body, Reply* out);
  core::Result<ApiResponse> Serve(const http1::Request& req, std::string body, ApiRequest* q,
                                  std::string* route_label);
  void Log(const ApiRequest& q, const std::string& route, int status, double secs);

  void WorkerLoop();
  void ServeConnection(int fd);
};

namespace {

// One accepted connection, plain or TLS, on a blocking socket whose
// SO_RCVTIMEO/SO_SNDTIMEO bound every read and write.
class Conn {
 public:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  // Appends what arrives to *buf: >0 bytes read, 0 the peer closed, -1 the
  // read timed out, -2 an error.
  ssize_t Read(std::string* buf) {
    char tmp[16384];
    if (ssl_ != nullptr) {
      int n = SSL_read(ssl_, tmp, sizeof tmp);
      if (n > 0) {
        buf->append(tmp, static_cast<size_t>(n));
        return n;
      }
      int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_ZERO_RETURN) return 0;
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
      if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
      broken_ = true;
      return -2;
    }
    for (;;) {
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n > 0) {
        buf->append(tmp, static_cast<size_t>(n));
        return n;
      }
      if (n == 0) return 0;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
      broken_ = true;
      return -2;
    }
  }
  bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      if (ssl_ != nullptr) {
        int n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
        if (n <= 0) {
          broken_ = true;
          return false;
        }
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        broken_ = true;
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool broken() const { return broken_; }

 private:
  int fd_;
  SSL* ssl_;
  bool broken_ = false;
};

void SetTimeout(int fd, int opt, double seconds) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

const char* ErrorCodeFor(int status) {
  switch (status) {
    case 408: return "request_timeout";
    case 413: return "payload_too_large";
    case 417: return "expectation_failed";
    case 431: return "header_too_large";
    case 501: return "not_implemented";
    case 505: return "http_version_not_supported";
    default: return "bad_request";
  }
}

void AppendResponseHead(std::string* out, int status, std::string_view content_type,
                        size_t content_length, std::string_view request_id, bool keep_alive,
                        int minor_version) {
  char line[64];
  std::snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, http1::ReasonPhrase(status));
  out->append(line);
  out->append("Content-Type: ");
  out->append(content_type);
  out->append("\r\nContent-Length: ");
  out->append(std::to_string(content_length));
  out->append("\r\n");
  if (!request_id.empty()) {
    out->append("X-Request-Id: ");
    out->append(request_id);
    out->append("\r\n");
  }
  if (!keep_alive) {
    out->append("Connection: close\r\n");
  } else if (minor_version == 0) {
    out->append("Connection: keep-alive\r\n");
  }
  out->append("\r\n");
}

}  // namespace

core::Result<ApiResponse> HttpServer::Impl::Serve(const http1::Request& req, std::string body,
                                                  ApiRequest* q, std::string* route_label) {
  bool path_known = false;
  // HEAD is GET without the body (the transport drops it).
  const std::string& method = req.method == "HEAD" ? kGet : req.method;
  const Route* route = router->Match(method, req.path, &q->params, &path_known);
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
  for (const auto& [k, v] : req.query) q->query.emplace(k, v);
  if (route->auth == Auth::kSigned) {
    auto header = [&](std::string_view name) {
      const std::string* v = req.Header(name);
      return v != nullptr ? *v : std::string();
    };
    core::SignedHeaders h{header("Bourse-Key"), header("Bourse-Timestamp"),
                          header("Bourse-Nonce"), header("Bourse-Signature")};
    BOURSE_ASSIGN_OR_RETURN(
        core::PublicKey who,
        core::VerifyRequest(h, req.method, req.target, body, q->now_ms / 1000, &nonces, &keys));
    q->caller_text = who.ToText();
    q->caller = std::move(who);
    if (!limiter.Allow(q->caller_text, q->now_ms)) {
      metrics->RecordRateLimited();
      return core::ResourceExhausted("rate limit exceeded for key " + q->caller_text);
    }
  }
  if (route->request_schema.is_null()) {
    if (!body.empty()) {
      return core::InvalidArgument("body: this endpoint takes no request body");
    }
  } else {
    if (body.empty()) return core::InvalidArgument("body: missing (a JSON object is required)");
    auto parsed = core::ParseJson(body);
    if (!parsed.ok()) return core::InvalidArgument("body: " + parsed.status().message());
    if (!parsed->is_object()) return core::InvalidArgument("body: must be a JSON object");
    q->json = std::move(parsed).value();
  }
  q->body = std::move(body);
  return route->handler(*q);
}

void HttpServer::Impl::Handle(const http1::Request& req, std::string body, Reply* out) {
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
      return Serve(req, std::move(body), &q, &route_label);
    } catch (const std::exception& e) {
      return core::Internal(std::string("unexpected error: ") + e.what());
    }
  }();
  if (r.ok()) {
    out->status = r->status;
    out->body = std::move(r->body);
    out->content_type = std::move(r->content_type);
  } else {
    const core::Status& st = r.status();
    out->status = HttpStatusFor(st.code());
    out->body = ErrorBody(st);
    out->content_type = "application/json";
  }
  out->request_id = q.request_id;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics->RecordRequest(route_label, out->status, secs);
  Log(q, route_label, out->status, secs);
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

void HttpServer::Impl::Log(const ApiRequest& q, const std::string& route, int status, double secs) {
  if (options.access_log == nullptr) return;
  // {"ts","id","method","path","route","status","ms","key"}, one line,
  // formatted by hand: this runs for every request.
  std::string s;
  s.reserve(160 + q.path.size() + q.caller_text.size());
  s.append("{\"ts\":");
  s.append(std::to_string(q.now_ms));
  s.append(",\"id\":");
  AppendJsonString(&s, q.request_id);
  s.append(",\"method\":");
  AppendJsonString(&s, q.method);
  s.append(",\"path\":");
  AppendJsonString(&s, q.path);
  s.append(",\"route\":");
  AppendJsonString(&s, route);
  s.append(",\"status\":");
  s.append(std::to_string(status));
  char ms[32];
  std::snprintf(ms, sizeof ms, ",\"ms\":%.3f", secs * 1000.0);
  s.append(ms);
  s.append(",\"key\":");
  AppendJsonString(&s, q.caller_text);
  s.append("}\n");
  std::lock_guard<std::mutex> l(log_mu);
  std::fwrite(s.data(), 1, s.size(), options.access_log);
  std::fflush(options.access_log);
}

// Serves one connection until the peer closes it, it idles past the
// keep-alive timeout, a request is malformed or too slow, or Stop().
void HttpServer::Impl::ServeConnection(int fd) {
  using SteadyClock = std::chrono::steady_clock;
  const double keep_alive_s = std::max(1, options.keep_alive_timeout_s);
  const double read_s = std::max(1, options.read_timeout_s);
  // Reads wake at least this often to check the deadlines below.
  SetTimeout(fd, SO_RCVTIMEO, std::min(keep_alive_s, read_s));
  SetTimeout(fd, SO_SNDTIMEO, std::max(1, options.write_timeout_s));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL* ssl = nullptr;
  if (ssl_ctx != nullptr) {
    ssl = SSL_new(ssl_ctx);
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1) {
      if (ssl != nullptr) SSL_free(ssl);
      ERR_clear_error();
      return;
    }
  }
  Conn c(fd, ssl);
  http1::Limits limits;
  limits.max_body_bytes = options.max_body_bytes;
  std::string buf;
  std::string out;
  auto elapsed = [](SteadyClock::time_point since) {
    return std::chrono::duration<double>(SteadyClock::now() - since).count();
  };
  // Reads more of a request that has begun: false when the connection is
  // done (closed, broken, or too slow: then a 408 has been sent).
  auto read_more = [&](SteadyClock::time_point since) -> bool {
    for (;;) {
      ssize_t n = c.Read(&buf);
      if (n > 0) return true;
      if (n == 0 || n == -2) return false;
      if (stopping.load()) return false;
      if (elapsed(since) >= read_s) {
        out.clear();
        std::string eb = ErrorBody("request_timeout", "request not received within " +
                                                          std::to_string(options.read_timeout_s) +
                                                          " s");
        AppendResponseHead(&out, 408, "application/json", eb.size(), "", false, 1);
        out += eb;
        c.WriteAll(out);
        metrics->RecordRequest("http_error", 408, 0);
        return false;
      }
    }
  };
  auto refuse = [&](const http1::Error& err) {
    out.clear();
    std::string eb = ErrorBody(ErrorCodeFor(err.status), err.message);
    AppendResponseHead(&out, err.status, "application/json", eb.size(), "", false, 1);
    out += eb;
    c.WriteAll(out);
    metrics->RecordRequest("http_error", err.status, 0);
    // Lingering close: the client may still be sending (an oversize body);
    // closing with unread data would reset the connection before it reads
    // the refusal, so read and drop what comes for a little while first.
    if (ssl == nullptr) ::shutdown(fd, SHUT_WR);
    SetTimeout(fd, SO_RCVTIMEO, 0.5);
    SteadyClock::time_point t = SteadyClock::now();
    size_t dropped = 0;
    while (elapsed(t) < 2.0 && dropped < (64u << 20)) {
      buf.clear();
      ssize_t n = c.Read(&buf);
      if (n == 0 || n == -2) break;
      if (n > 0) dropped += static_cast<size_t>(n);
    }
  };
  while (!stopping.load()) {
    // The head: wait up to the keep-alive timeout for its first byte, then
    // up to the read timeout for the rest.
    http1::Request req;
    http1::Error err;
    size_t head_len = 0;
    SteadyClock::time_point since = SteadyClock::now();
    http1::Parse p = http1::Parse::kIncomplete;
    if (!buf.empty()) p = http1::ParseHead(buf, limits, &req, &head_len, &err);
    bool open = true;
    while (p == http1::Parse::kIncomplete) {
      if (buf.empty()) {
        ssize_t n = c.Read(&buf);
        if (n == 0 || n == -2) {
          open = false;
          break;
        }
        if (n < 0) {
          if (stopping.load() || elapsed(since) >= keep_alive_s) {
            open = false;
            break;
          }
          continue;
        }
        since = SteadyClock::now();
      } else if (!read_more(since)) {
        open = false;
        break;
      }
      p = http1::ParseHead(buf, limits, &req, &head_len, &err);
    }
    if (!open) break;
    if (p == http1::Parse::kError) {
      refuse(err);
      break;
    }
    // The body.
    std::string body;
    size_t consumed = 0;
    if (req.chunked) {
      if (req.expect_continue && buf.size() == head_len) {
        if (!c.WriteAll("HTTP/1.1 100 Continue\r\n\r\n")) break;
      }
      size_t used = 0;
      for (;;) {
        p = http1::DecodeChunked(std::string_view(buf).substr(head_len), limits.max_body_bytes,
                                 &body, &used, &err);
        if (p != http1::Parse::kIncomplete) break;
        if (!read_more(since)) {
          open = false;
          break;
        }
      }
      if (!open) break;
      if (p == http1::Parse::kError) {
        refuse(err);
        break;
      }
      consumed = head_len + used;
    } else {
      consumed = head_len + req.content_length;
      if (req.expect_continue && buf.size() < consumed) {
        if (!c.WriteAll("HTTP/1.1 100 Continue\r\n\r\n")) break;
      }
      while (buf.size() < consumed) {
        if (!read_more(since)) {
          open = false;
          break;
        }
      }
      if (!open) break;
      body.assign(buf, head_len, req.content_length);
    }
    buf.erase(0, consumed);

    Reply reply;
    Handle(req, std::move(body), &reply);
    const bool keep = req.keep_alive && !stopping.load();
    out.clear();
    AppendResponseHead(&out, reply.status, reply.content_type, reply.body.size(),
                       reply.request_id, keep, req.minor_version);
    if (req.method != "HEAD") out += reply.body;
    if (!c.WriteAll(out) || !keep) break;
  }
  if (ssl != nullptr) {
    if (!c.broken()) SSL_shutdown(ssl);
    SSL_free(ssl);
    ERR_clear_error();
  }
}

void HttpServer::Impl::WorkerLoop() {
  std::unique_lock<std::mutex> lk(conn_mu);
  for (;;) {
    if (pending.empty() && !stopping.load()) {
      ++idle_workers;
      // An idle worker lingers a while for the next connection, then exits.
      work_cv.wait_for(lk, std::chrono::seconds(30),
                       [&] { return !pending.empty() || stopping.load(); });
      --idle_workers;
    }
    if (pending.empty() || stopping.load()) break;
    int fd = pending.front();
    pending.pop_front();
    serving.insert(fd);
    lk.unlock();
    ServeConnection(fd);
    lk.lock();
    // Closed under the lock: Stop() never shuts down a reused descriptor.
    serving.erase(fd);
    ::close(fd);
  }
  --workers;
  done_cv.notify_all();
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
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) return core::Internal("TLS: cannot create a context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, m.options.tls_cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, m.options.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      SSL_CTX_free(ctx);
      ERR_clear_error();
      return core::InvalidArgument("cannot load TLS certificate " + m.options.tls_cert + " / key " +
                                   m.options.tls_key);
    }
    m.ssl_ctx = ctx;
  }
  const std::string where = m.options.host + ":" + std::to_string(m.options.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(m.options.port);
  int gai = ::getaddrinfo(m.options.host.empty() ? nullptr : m.options.host.c_str(),
                          port_text.c_str(), &hints, &res);
  if (gai != 0) {
    return core::Unavailable("cannot listen on " + where + ": " + ::gai_strerror(gai));
  }
  std::string why = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    m.port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    m.listen_fd = fd;
    break;
  }
  ::freeaddrinfo(res);
  if (m.listen_fd < 0) {
    m.port = -1;
    return core::Unavailable("cannot listen on " + where + ": " + why);
  }
  return core::Status::Ok();
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Run() {
  Impl& m = *impl_;
  if (m.listen_fd < 0) return;
  const int max_workers = std::max(2, m.options.threads);
  while (!m.stopping.load()) {
    int fd = ::accept4(m.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (m.stopping.load()) break;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: let connections finish, then retry.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      continue;
    }
    std::lock_guard<std::mutex> lk(m.conn_mu);
    if (m.stopping.load()) {
      ::close(fd);
      break;
    }
    m.pending.push_back(fd);
    // Every waiting socket should have a worker on its way: start one unless
    // enough idle ones are about to take them (or the cap is reached: the
    // socket then waits for a worker to finish a connection).
    if (m.pending.size() > static_cast<size_t>(m.idle_workers) && m.workers < max_workers) {
      ++m.workers;
      std::thread(&Impl::WorkerLoop, &m).detach();
    } else {
      m.work_cv.notify_one();
    }
  }
  // Drain: sockets nobody took are closed unread; workers finish their
  // request in flight and exit.
  std::unique_lock<std::mutex> lk(m.conn_mu);
  for (int fd : m.pending) ::close(fd);
  m.pending.clear();
  m.work_cv.notify_all();
  m.done_cv.wait(lk, [&] { return m.workers == 0; });
}

void HttpServer::Stop() {
  Impl& m = *impl_;
  if (m.stopping.exchange(true)) return;
  // Wakes the accept(); reads of idle connections return end-of-file.
  if (m.listen_fd >= 0) ::shutdown(m.listen_fd, SHUT_RDWR);
  std::lock_guard<std::mutex> lk(m.conn_mu);
  for (int fd : m.serving) ::shutdown(fd, SHUT_RD);
  m.work_cv.notify_all();
}

}  // namespace bourse::broker
