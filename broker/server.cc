#include "broker/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/http1.h"
#include "broker/http_status.h"
#include "broker/rate_limiter.h"
#include "core/canonical_json.h"
#include "core/random.h"
#include "core/request_signing.h"

namespace bourse::broker {

namespace {

using SteadyClock = std::chrono::steady_clock;

const std::string kGet = "GET";
// epoll data of the listening socket and of a loop's eventfd; connections
// are numbered from kFirstConnId.
constexpr uint64_t kListenTag = 0;
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kFirstConnId = 2;
// How often a loop checks its connections' deadlines.
constexpr int kSweepMs = 100;
// Bytes read from one connection per readiness event (fairness between
// connections on a loop).
constexpr size_t kMaxReadPerEvent = 256 * 1024;
// Requests a loop starts per iteration before it looks at the network again.
constexpr int kMaxReadyPerIteration = 256;
// Lingering close after a refusal: how long and how much is drained.
constexpr double kLingerSeconds = 2.0;
constexpr size_t kLingerBytes = 64u << 20;

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

// The numeric address of a peer (no port); an IPv4-mapped IPv6 address as
// IPv4, so one client has one bucket whichever way it connected.
std::string PeerAddress(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      ::inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof buf);
    } else {
      ::inet_ntop(AF_INET6, &a, buf, sizeof buf);
    }
  }
  return buf;
}

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

// Handler threads for routes that may wait (Run::kWorker): started on
// demand up to a cap, each kept 30 s after its last task; tasks beyond the
// cap queue in order.
class WorkerPool {
 public:
  explicit WorkerPool(int max_threads) : max_threads_(std::max(1, max_threads)) {}
  ~WorkerPool() { Shutdown(); }

  void Submit(std::function<void()> task) {
    std::lock_guard<std::mutex> l(mu_);
    tasks_.push_back(std::move(task));
    if (tasks_.size() > static_cast<size_t>(idle_) && threads_ < max_threads_) {
      ++threads_;
      std::thread([this] { Work(); }).detach();
    } else {
      cv_.notify_one();
    }
  }
  // Runs what is queued, then waits for every thread to exit.
  void Shutdown() {
    std::unique_lock<std::mutex> l(mu_);
    stop_ = true;
    cv_.notify_all();
    done_cv_.wait(l, [&] { return threads_ == 0; });
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      if (tasks_.empty() && !stop_) {
        ++idle_;
        cv_.wait_for(l, std::chrono::seconds(30), [&] { return !tasks_.empty() || stop_; });
        --idle_;
      }
      if (tasks_.empty()) break;
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      l.unlock();
      task();
      l.lock();
    }
    --threads_;
    done_cv_.notify_all();
  }

  const int max_threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  int threads_ = 0;                          // guarded by mu_
  int idle_ = 0;                             // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
};

}  // namespace

struct HttpServer::Impl {
  const Router* router;
  Options options;
  Metrics* metrics;
  std::function<int64_t()> ledger_size;
  core::NonceCache nonces;
  core::PublicKeyCache keys;
  RateLimiter limiter;       // per key, verified requests
  RateLimiter peer_limiter;  // per peer address, failed authentication
  const core::Clock* clock;
  int port = -1;
  std::atomic<uint64_t> next_id{0};
  std::string id_prefix;
  std::mutex log_mu;

  int listen_fd = -1;
  SSL_CTX* ssl_ctx = nullptr;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> next_conn_id{kFirstConnId};
  std::atomic<int> connections{0};
  std::atomic<size_t> next_loop{0};
  class Loop;
  struct Exchange;
  std::vector<std::unique_ptr<Loop>> loops;
  WorkerPool pool;

  Impl(const Router* r, Options o, Metrics* m, std::function<int64_t()> ls)
      : router(r),
        options(std::move(o)),
        metrics(m),
        ledger_size(std::move(ls)),
        limiter(options.rate_limit_per_s, options.rate_limit_burst),
        peer_limiter(options.peer_failure_rate_per_s, options.peer_failure_burst),
        clock(options.clock != nullptr ? options.clock : &core::SystemClock::Get()),
        pool(options.threads) {
    id_prefix = core::NewId("").substr(0, 8);
  }
  ~Impl();

  // Everything before the handler: the route (404/405), the signature and
  // rate limit of signed routes, the JSON body. Returns the route to run, or
  // nullptr with *answer set when the request is answered already.
  const Route* Prepare(const http1::Request& req, std::string body, ApiRequest* q,
                       std::string* route_label, core::Result<ApiResponse>* answer);
  // One access-log line appended to *out.
  void FormatLog(const ApiRequest& q, const std::string& route, int status, double secs,
                 std::string* out) const;
  void WriteLog(const std::string& lines);
};

// One request from parse to answer. Shared by the loop that read it and
// whatever thread runs its handler; the connection is named by id, so an
// answer for a connection closed meanwhile is dropped.
struct HttpServer::Impl::Exchange {
  Loop* loop = nullptr;
  uint64_t conn_id = 0;
  ApiRequest q;
  std::string route_label;
  bool head_only = false;
  bool keep_alive = true;
  int minor_version = 1;
  SteadyClock::time_point t0;
  std::atomic<bool> answered{false};
};

// One connection, owned by its loop.
struct Conn {
  uint64_t id = 0;
  int fd = -1;
  std::string peer;  // the client's address, for the per-peer limit
  SSL* ssl = nullptr;
  bool handshaking = false;  // TLS: SSL_accept not finished
  bool tls_read_wants_write = false;
  bool tls_write_wants_read = false;
  int tls_retry_len = 0;  // TLS: an SSL_write to repeat with this length
  std::string in;         // received, not yet consumed
  std::string out;        // to send, from out_off
  size_t out_off = 0;
  bool busy = false;      // a request is with its handler
  bool read_eof = false;  // the peer has finished sending
  bool broken = false;    // an I/O error: close without TLS shutdown
  bool dead = false;      // busy when the peer hung up: close on the answer
  bool close_after_write = false;
  bool refused = false;  // the answer was a refusal: linger before closing
  bool lingering = false;
  bool request_begun = false;  // bytes of a request not yet complete are in `in`
  bool continue_sent = false;
  bool in_ready = false;  // queued on the loop's ready list
  uint32_t events = 0;    // registered epoll interest
  size_t lingered = 0;
  SteadyClock::time_point idle_since, request_since, write_since, linger_until;
};

class HttpServer::Impl::Loop {
 public:
  explicit Loop(Impl* server) : s_(server) {}
  ~Loop() {
    for (auto& [id, c] : conns_) CloseFd(*c);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (ep_ >= 0) ::close(ep_);
  }

  core::Status Init() {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ < 0 || wake_fd_ < 0) {
      return core::Unavailable(std::string("http server: epoll/eventfd: ") + std::strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, wake_fd_, &ev);
    ListenOn();
    return core::Status::Ok();
  }

  // Runs `fn` on this loop's thread (from any thread, the loop's own too).
  void Post(std::function<void()> fn) {
    bool wake;
    {
      std::lock_guard<std::mutex> l(post_mu_);
      posted_.push_back(std::move(fn));
      wake = sleeping_;
      sleeping_ = false;
    }
    has_posted_.store(true, std::memory_order_release);
    if (wake) {
      uint64_t one = 1;
      ssize_t n = ::write(wake_fd_, &one, sizeof one);
      (void)n;
    }
  }
  void Wake() {
    Post([] {});
  }

  void Run();

  // The answer to `ex` (on this loop): access log, metrics, response bytes.
  void Complete(const std::shared_ptr<Exchange>& ex, core::Result<ApiResponse> r);

 private:
  void ListenOn() {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = kListenTag;
    listening_ = ::epoll_ctl(ep_, EPOLL_CTL_ADD, s_->listen_fd, &ev) == 0;
  }
  void ListenOff() {
    if (listening_) ::epoll_ctl(ep_, EPOLL_CTL_DEL, s_->listen_fd, nullptr);
    listening_ = false;
  }
  void Accept();
  void Adopt(int fd, std::string peer);  // a new connection, accepted by any loop
  void OnEvent(Conn& c, uint32_t events);
  void ReadInput(Conn& c);
  bool Flush(Conn& c);  // false when the connection was closed
  void Advance(Conn& c);
  void ProcessInput(Conn& c);
  void StartRequest(Conn& c, http1::Request req, std::string body);
  void Refuse(Conn& c, int status, const std::string& message);
  void Close(Conn& c);
  void CloseFd(Conn& c);
  void SetInterest(Conn& c);
  void MarkReady(Conn& c) {
    if (!c.in_ready) {
      c.in_ready = true;
      ready_.push_back(c.id);
    }
  }
  void Sweep();
  // Runs what was posted, then advances ready connections (answers to send,
  // pipelined requests to start) in rounds, not by recursion: a client may
  // pipeline thousands of requests.
  void DrainWork() {
    if (has_posted_.load(std::memory_order_acquire)) {
      has_posted_.store(false, std::memory_order_relaxed);
      std::vector<std::function<void()>> posted;
      {
        std::lock_guard<std::mutex> l(post_mu_);
        posted.swap(posted_);
      }
      for (auto& fn : posted) fn();
    }
    int budget = kMaxReadyPerIteration;
    while (!ready_.empty() && budget-- > 0) {
      std::vector<uint64_t> ids;
      ids.swap(ready_);
      for (uint64_t id : ids) {
        auto it = conns_.find(id);
        if (it == conns_.end()) continue;
        it->second->in_ready = false;
        Advance(*it->second);
      }
    }
  }
  void FlushLog() {
    if (log_.empty()) return;
    s_->WriteLog(log_);
    log_.clear();
  }

  Impl* s_;
  int ep_ = -1;
  int wake_fd_ = -1;
  bool listening_ = false;
  SteadyClock::time_point accept_resume_{};  // accepting paused (out of descriptors) until
  SteadyClock::time_point now_ = SteadyClock::now();
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  // Requests started and not yet completed here. The loop outlives them:
  // their answers are posted to it even when their connection has gone.
  int inflight_ = 0;
  std::vector<uint64_t> ready_;  // connections to advance (answers in, pipelined input)
  std::string log_;              // access-log lines of this iteration

  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by post_mu_
  bool sleeping_ = false;                      // guarded by post_mu_: in epoll_wait
  std::atomic<bool> has_posted_{false};        // posted_ may be non-empty
};

namespace {

ssize_t TlsRead(Conn& c, char* buf, size_t len) {
  c.tls_read_wants_write = false;
  int n = SSL_read(c.ssl, buf, static_cast<int>(len));
  if (n > 0) return n;
  int e = SSL_get_error(c.ssl, n);
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  if (e == SSL_ERROR_WANT_READ) {
    errno = EAGAIN;
    return -1;
  }
  if (e == SSL_ERROR_WANT_WRITE) {
    c.tls_read_wants_write = true;
    errno = EAGAIN;
    return -1;
  }
  if (e == SSL_ERROR_SYSCALL && n == 0) return 0;  // EOF without close_notify
  c.broken = true;
  errno = EIO;
  return -1;
}

ssize_t TlsWrite(Conn& c, const char* data, size_t len) {
  c.tls_write_wants_read = false;
  // A write that wanted to be repeated is repeated with the same length.
  int want =
      c.tls_retry_len > 0 ? c.tls_retry_len : static_cast<int>(std::min<size_t>(len, 1 << 20));
  int n = SSL_write(c.ssl, data, want);
  if (n > 0) {
    c.tls_retry_len = 0;
    return n;
  }
  int e = SSL_get_error(c.ssl, n);
  if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
    c.tls_retry_len = want;
    c.tls_write_wants_read = e == SSL_ERROR_WANT_READ;
    errno = EAGAIN;
    return -1;
  }
  c.broken = true;
  errno = EIO;
  return -1;
}

}  // namespace

void HttpServer::Impl::Loop::Run() {
  std::vector<epoll_event> events(256);
  SteadyClock::time_point next_sweep = SteadyClock::now();
  for (;;) {
    int timeout = kSweepMs;
    {
      std::lock_guard<std::mutex> l(post_mu_);
      if (posted_.empty() && ready_.empty()) {
        sleeping_ = true;
      } else {
        timeout = 0;
      }
    }
    int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), timeout);
    {
      std::lock_guard<std::mutex> l(post_mu_);
      sleeping_ = false;
    }
    now_ = SteadyClock::now();
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        Accept();
      } else if (tag == kWakeTag) {
        uint64_t v;
        while (::read(wake_fd_, &v, sizeof v) > 0) {
        }
      } else {
        auto it = conns_.find(tag);
        if (it != conns_.end()) OnEvent(*it->second, events[i].events);
        // Answers that came in meanwhile go out now, not after the rest of
        // this round of events (each may take a signature check): their
        // clients can send again sooner.
        now_ = SteadyClock::now();
        DrainWork();
      }
    }
    DrainWork();
    FlushLog();
    if (now_ >= next_sweep) {
      Sweep();
      next_sweep = now_ + std::chrono::milliseconds(kSweepMs);
    }
    if (s_->stopping.load()) {
      ListenOff();
      // Idle connections close; one with a request in progress gets its
      // answer (with Connection: close) first, then closes here too.
      std::vector<Conn*> idle;
      for (auto& [id, c] : conns_) {
        if (!c->busy && c->out_off == c->out.size()) idle.push_back(c.get());
      }
      for (Conn* c : idle) Close(*c);
      bool posted_left;
      {
        std::lock_guard<std::mutex> l(post_mu_);
        posted_left = !posted_.empty();
      }
      if (conns_.empty() && inflight_ == 0 && !posted_left && ready_.empty()) break;
    }
  }
  FlushLog();
}

void HttpServer::Impl::Loop::Accept() {
  for (int i = 0; i < 64; ++i) {
    if (s_->connections.load() >= s_->options.max_connections) {
      ListenOff();  // resumed by Sweep when connections close
      return;
    }
    sockaddr_storage ss{};
    socklen_t ss_len = sizeof ss;
    int fd = ::accept4(s_->listen_fd, reinterpret_cast<sockaddr*>(&ss), &ss_len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: stop accepting for a moment.
        ListenOff();
        accept_resume_ = now_ + std::chrono::milliseconds(100);
      }
      return;
    }
    s_->connections.fetch_add(1);
    // Connections are spread over the loops in turn (the loop that wakes
    // for the listener would otherwise take a burst of them all).
    Loop* to = s_->loops[s_->next_loop.fetch_add(1) % s_->loops.size()].get();
    std::string peer = PeerAddress(ss);
    if (to == this) {
      Adopt(fd, std::move(peer));
    } else {
      to->Post([to, fd, peer = std::move(peer)]() mutable { to->Adopt(fd, std::move(peer)); });
    }
  }
}

void HttpServer::Impl::Loop::Adopt(int fd, std::string peer) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto c = std::make_unique<Conn>();
  c->id = s_->next_conn_id.fetch_add(1);
  c->fd = fd;
  c->peer = std::move(peer);
  c->idle_since = SteadyClock::now();
  if (s_->ssl_ctx != nullptr) {
    c->ssl = SSL_new(s_->ssl_ctx);
    if (c->ssl == nullptr || SSL_set_fd(c->ssl, fd) != 1) {
      if (c->ssl != nullptr) SSL_free(c->ssl);
      ERR_clear_error();
      ::close(fd);
      s_->connections.fetch_sub(1);
      return;
    }
    SSL_set_accept_state(c->ssl);
    c->handshaking = true;
  }
  Conn& ref = *c;
  conns_.emplace(c->id, std::move(c));
  SetInterest(ref);
}

void HttpServer::Impl::Loop::SetInterest(Conn& c) {
  uint32_t want = 0;
  const bool out_pending = c.out_off < c.out.size();
  if (c.handshaking) {
    want = c.tls_read_wants_write ? EPOLLOUT : EPOLLIN;
  } else {
    // Reading goes on while a request is with its handler (a pipelined
    // request waits in `in`, up to a bound), so a connection keeps one
    // registration for its whole life instead of two epoll_ctl calls per
    // request.
    const size_t cap = s_->options.max_body_bytes + 64 * 1024;
    if (!c.read_eof && (c.lingering || (!c.close_after_write && c.in.size() < cap))) {
      want |= EPOLLIN;
    }
    if (out_pending) want |= c.tls_write_wants_read ? EPOLLIN : EPOLLOUT;
    if (c.tls_read_wants_write) want |= EPOLLOUT;
  }
  if (want == c.events && c.events != 0) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id;
  if (c.events == 0 && want != 0) {
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
  } else if (want == 0) {
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
  } else {
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }
  c.events = want;
}

void HttpServer::Impl::Loop::OnEvent(Conn& c, uint32_t events) {
  if (c.handshaking) {
    int r = SSL_do_handshake(c.ssl);
    if (r == 1) {
      c.handshaking = false;
      c.tls_read_wants_write = false;
      c.idle_since = now_;
    } else {
      int e = SSL_get_error(c.ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        c.broken = true;
        ERR_clear_error();
        Close(c);
        return;
      }
      c.tls_read_wants_write = e == SSL_ERROR_WANT_WRITE;
      SetInterest(c);
      return;
    }
  }
  if ((events & (EPOLLERR | EPOLLHUP)) != 0 && (events & EPOLLIN) == 0) {
    c.broken = true;
    if (c.busy) {
      c.dead = true;
      c.read_eof = true;
      SetInterest(c);
    } else {
      Close(c);
    }
    return;
  }
  if ((events & EPOLLIN) != 0 || (c.tls_read_wants_write && (events & EPOLLOUT) != 0)) {
    ReadInput(c);
    if (c.broken) {
      Close(c);
      return;
    }
  }
  if (c.out_off < c.out.size() && !Flush(c)) return;
  Advance(c);
}

void HttpServer::Impl::Loop::ReadInput(Conn& c) {
  char tmp[16384];
  size_t total = 0;
  while (total < kMaxReadPerEvent && !c.read_eof) {
    ssize_t n = c.ssl != nullptr ? TlsRead(c, tmp, sizeof tmp) : ::recv(c.fd, tmp, sizeof tmp, 0);
    if (n > 0) {
      total += static_cast<size_t>(n);
      if (c.lingering) {
        c.lingered += static_cast<size_t>(n);
      } else {
        c.in.append(tmp, static_cast<size_t>(n));
      }
      // A short plain read drained the socket: no second recv for EAGAIN
      // (level-triggered epoll reports whatever arrives later).
      if (c.ssl == nullptr && static_cast<size_t>(n) < sizeof tmp) break;
      continue;
    }
    if (n == 0) {
      c.read_eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) c.broken = true;
    break;
  }
}

bool HttpServer::Impl::Loop::Flush(Conn& c) {
  while (c.out_off < c.out.size()) {
    const char* p = c.out.data() + c.out_off;
    size_t len = c.out.size() - c.out_off;
    ssize_t n = c.ssl != nullptr ? TlsWrite(c, p, len) : ::send(c.fd, p, len, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !c.broken) {
      if (c.write_since == SteadyClock::time_point{}) c.write_since = now_;
      SetInterest(c);
      return true;
    }
    c.broken = true;
    Close(c);
    return false;
  }
  c.out.clear();
  c.out_off = 0;
  c.write_since = SteadyClock::time_point{};
  return true;
}

// Moves a connection on after I/O or an answer: starts the next request if
// one is complete, sends what is pending, closes or lingers when done.
void HttpServer::Impl::Loop::Advance(Conn& c) {
  if (c.lingering) {
    if (c.read_eof || c.lingered >= kLingerBytes) {
      Close(c);
    } else {
      SetInterest(c);
    }
    return;
  }
  if (!c.busy && !c.close_after_write) {
    const uint64_t id = c.id;
    ProcessInput(c);
    if (conns_.find(id) == conns_.end()) return;  // closed meanwhile (c is gone)
  }
  if (c.out_off < c.out.size() && !Flush(c)) return;
  if (c.out_off < c.out.size()) return;  // waits for EPOLLOUT
  if (c.close_after_write) {
    if (!c.refused) {
      Close(c);
      return;
    }
    // Lingering close: the client may still be sending (an oversize body);
    // closing with unread data would reset the connection before it reads
    // the refusal, so read and drop what comes for a little while first.
    c.lingering = true;
    c.linger_until = now_ + std::chrono::duration_cast<SteadyClock::duration>(
                                std::chrono::duration<double>(kLingerSeconds));
    if (c.ssl == nullptr) ::shutdown(c.fd, SHUT_WR);
    c.in.clear();
    if (c.read_eof) {
      Close(c);
      return;
    }
    SetInterest(c);
    return;
  }
  if (!c.busy && c.read_eof) {
    // The peer is done sending and no complete request is left.
    Close(c);
    return;
  }
  SetInterest(c);
}

void HttpServer::Impl::Loop::ProcessInput(Conn& c) {
  if (c.in.empty()) {
    c.request_begun = false;
    return;
  }
  if (!c.request_begun) {
    c.request_begun = true;
    c.request_since = now_;
    c.continue_sent = false;
  }
  http1::Limits limits;
  limits.max_body_bytes = s_->options.max_body_bytes;
  http1::Request req;
  http1::Error err;
  size_t head_len = 0;
  http1::Parse p = http1::ParseHead(c.in, limits, &req, &head_len, &err);
  if (p == http1::Parse::kIncomplete) return;
  if (p == http1::Parse::kError) {
    Refuse(c, err.status, err.message);
    return;
  }
  std::string body;
  size_t consumed = 0;
  auto want_continue = [&] {
    if (req.expect_continue && !c.continue_sent && c.in.size() == head_len) {
      c.continue_sent = true;
      c.out += "HTTP/1.1 100 Continue\r\n\r\n";
    }
  };
  if (req.chunked) {
    size_t used = 0;
    p = http1::DecodeChunked(std::string_view(c.in).substr(head_len), limits.max_body_bytes, &body,
                             &used, &err);
    if (p == http1::Parse::kIncomplete) {
      want_continue();
      return;
    }
    if (p == http1::Parse::kError) {
      Refuse(c, err.status, err.message);
      return;
    }
    consumed = head_len + used;
  } else {
    consumed = head_len + req.content_length;
    if (c.in.size() < consumed) {
      want_continue();
      return;
    }
    body.assign(c.in, head_len, req.content_length);
  }
  c.in.erase(0, consumed);
  c.request_begun = false;
  c.busy = true;
  StartRequest(c, std::move(req), std::move(body));
}

void HttpServer::Impl::Loop::Refuse(Conn& c, int status, const std::string& message) {
  std::string eb = ErrorBody(ErrorCodeFor(status), message);
  AppendResponseHead(&c.out, status, "application/json", eb.size(), "", false, 1);
  c.out += eb;
  c.close_after_write = true;
  c.refused = true;
  c.request_begun = false;
  s_->metrics->RecordRequest("http_error", status, 0);
}

namespace {

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

void HttpServer::Impl::Loop::StartRequest(Conn& c, http1::Request req, std::string body) {
  ++inflight_;
  auto ex = std::make_shared<Exchange>();
  ex->loop = this;
  ex->conn_id = c.id;
  ex->t0 = SteadyClock::now();
  ex->head_only = req.method == "HEAD";
  ex->keep_alive = req.keep_alive;
  ex->minor_version = req.minor_version;
  ApiRequest& q = ex->q;
  q.method = req.method;
  q.path = req.path;
  q.target = req.target;
  q.now_ms = s_->clock->NowMillis();
  q.peer = c.peer;
  char idbuf[48];
  std::snprintf(idbuf, sizeof idbuf, "%s-%llu", s_->id_prefix.c_str(),
                static_cast<unsigned long long>(s_->next_id.fetch_add(1) + 1));
  q.request_id = idbuf;
  core::Result<ApiResponse> answer = core::Internal("no answer");
  const Route* route = nullptr;
  try {
    route = s_->Prepare(req, std::move(body), &q, &ex->route_label, &answer);
  } catch (const std::exception& e) {
    answer = core::Internal(std::string("unexpected error: ") + e.what());
  }
  if (route == nullptr) {
    ex->answered = true;
    Complete(ex, std::move(answer));
    return;
  }
  if (route->async_handler) {
    Respond respond = [ex](Completion done) {
      if (ex->answered.exchange(true)) return;  // exactly once
      ex->loop->Post([ex, done = std::move(done)] { ex->loop->Complete(ex, RunCompletion(done)); });
    };
    try {
      ScopedCurrentRequest current(ex->q);
      route->async_handler(ex->q, respond);
    } catch (const std::exception& e) {
      std::string what = e.what();
      respond([what]() -> core::Result<ApiResponse> {
        return core::Internal("unexpected error: " + what);
      });
    }
    return;
  }
  ex->answered = true;
  if (route->RunsInline()) {
    Complete(ex, CallHandler(*route, ex->q));
    return;
  }
  s_->pool.Submit([ex, route] {
    auto r = std::make_shared<core::Result<ApiResponse>>(CallHandler(*route, ex->q));
    ex->loop->Post([ex, r] { ex->loop->Complete(ex, std::move(*r)); });
  });
}

void HttpServer::Impl::Loop::Complete(const std::shared_ptr<Exchange>& ex,
                                      core::Result<ApiResponse> r) {
  --inflight_;
  int status;
  std::string body, content_type;
  if (r.ok()) {
    status = r->status;
    body = std::move(r->body);
    content_type = std::move(r->content_type);
  } else {
    const core::Status& st = r.status();
    status = HttpStatusFor(st.code());
    body = ErrorBody(st);
    content_type = "application/json";
  }
  double secs = Seconds(SteadyClock::now() - ex->t0);
  s_->metrics->RecordRequest(ex->route_label, status, secs);
  if (s_->options.access_log != nullptr) s_->FormatLog(ex->q, ex->route_label, status, secs, &log_);
  auto it = conns_.find(ex->conn_id);
  if (it == conns_.end()) return;  // the connection went away meanwhile
  Conn& c = *it->second;
  c.busy = false;
  if (c.dead) {
    Close(c);
    return;
  }
  const bool keep = ex->keep_alive && !s_->stopping.load();
  AppendResponseHead(&c.out, status, content_type, body.size(), ex->q.request_id, keep,
                     ex->minor_version);
  if (!ex->head_only) c.out += body;
  if (!keep) c.close_after_write = true;
  c.idle_since = now_;
  MarkReady(c);
}

void HttpServer::Impl::Loop::Close(Conn& c) {
  CloseFd(c);
  s_->connections.fetch_sub(1);
  conns_.erase(c.id);  // frees c
}

void HttpServer::Impl::Loop::CloseFd(Conn& c) {
  if (c.events != 0) ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
  if (c.ssl != nullptr) {
    if (!c.broken && !c.handshaking) SSL_shutdown(c.ssl);  // best effort close_notify
    SSL_free(c.ssl);
    ERR_clear_error();
  }
  ::close(c.fd);
}

// Deadlines: the keep-alive timeout between requests, the read timeout for
// a request that has begun (408), the write timeout for pending output, the
// end of a lingering close. Also resumes accepting after a pause.
void HttpServer::Impl::Loop::Sweep() {
  const Options& o = s_->options;
  const auto keep_alive = std::chrono::seconds(std::max(1, o.keep_alive_timeout_s));
  const auto read_timeout = std::chrono::seconds(std::max(1, o.read_timeout_s));
  const auto write_timeout = std::chrono::seconds(std::max(1, o.write_timeout_s));
  std::vector<Conn*> close, slow;
  for (auto& [id, cp] : conns_) {
    Conn& c = *cp;
    if (c.lingering) {
      if (now_ >= c.linger_until) close.push_back(&c);
    } else if (c.out_off < c.out.size()) {
      if (c.write_since != SteadyClock::time_point{} && now_ - c.write_since >= write_timeout) {
        close.push_back(&c);
      }
    } else if (c.handshaking) {
      if (now_ - c.idle_since >= read_timeout) close.push_back(&c);
    } else if (!c.busy && !c.close_after_write) {
      if (c.request_begun) {
        if (now_ - c.request_since >= read_timeout) slow.push_back(&c);
      } else if (c.in.empty() && now_ - c.idle_since >= keep_alive) {
        close.push_back(&c);
      }
    }
  }
  for (Conn* c : close) Close(*c);
  for (Conn* c : slow) {
    Refuse(*c, 408, "request not received within " + std::to_string(o.read_timeout_s) + " s");
    MarkReady(*c);
  }
  if (!listening_ && !s_->stopping.load() && now_ >= accept_resume_ &&
      s_->connections.load() < s_->options.max_connections) {
    ListenOn();
  }
}

HttpServer::Impl::~Impl() {
  loops.clear();
  if (listen_fd >= 0) ::close(listen_fd);
  if (ssl_ctx != nullptr) SSL_CTX_free(ssl_ctx);
}

const Route* HttpServer::Impl::Prepare(const http1::Request& req, std::string body, ApiRequest* q,
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
          ErrorBody("method_not_allowed", "method " + req.method + " not allowed on " + req.path);
      *answer = std::move(r);
      return nullptr;
    }
    *route_label = "not_found";
    *answer = core::NotFound("no such endpoint: " + req.method + " " + req.path);
    return nullptr;
  }
  *route_label = route->method + " " + route->pattern;
  auto fail = [&](core::Status st) -> const Route* {
    *answer = std::move(st);
    return nullptr;
  };
  for (const auto& [k, v] : req.query) q->query.emplace(k, v);
  if (route->auth == Auth::kSigned) {
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

// A loop writes the lines of one iteration at once (one write for many
// requests under load), after their answers are queued and before it waits.
void HttpServer::Impl::WriteLog(const std::string& lines) {
  std::lock_guard<std::mutex> l(log_mu);
  std::fwrite(lines.data(), 1, lines.size(), options.access_log);
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
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) return core::Internal("TLS: cannot create a context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // The loops write from a buffer that grows (and may move) between tries.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
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
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
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
  // The loops exist from here on (Stop may come before Run).
  int n = m.options.io_threads > 0 ? m.options.io_threads
                                   : static_cast<int>(std::thread::hardware_concurrency());
  n = std::clamp(n, 1, 256);
  for (int i = 0; i < n; ++i) {
    auto loop = std::make_unique<Impl::Loop>(&m);
    BOURSE_RETURN_IF_ERROR(loop->Init());
    m.loops.push_back(std::move(loop));
  }
  return core::Status::Ok();
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Run() {
  Impl& m = *impl_;
  if (m.listen_fd < 0) return;
  if (m.loops.empty()) return;
  std::vector<std::thread> threads;
  for (size_t i = 1; i < m.loops.size(); ++i) {
    Impl::Loop* l = m.loops[i].get();
    threads.emplace_back([l] { l->Run(); });
    pthread_setname_np(threads.back().native_handle(), "bourse-loop");
  }
  m.loops[0]->Run();
  for (auto& t : threads) t.join();
  // Every answer has been written; handler threads have nothing left.
  m.pool.Shutdown();
}

void HttpServer::Stop() {
  Impl& m = *impl_;
  if (m.stopping.exchange(true)) return;
  for (auto& l : m.loops) l->Wake();
}

}  // namespace bourse::broker
