#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/mutex.h"
#include "http/parser.h"

namespace bourse::http {

namespace asio = boost::asio;
using Socket = asio::generic::stream_protocol::socket;
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
using Endpoint = asio::generic::stream_protocol::endpoint;
using Tls = asio::ssl::stream<Socket&>;
using SteadyClock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;

namespace {

constexpr auto kSweepPeriod = std::chrono::milliseconds(100);
constexpr auto kLinger = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 64u << 20;
constexpr size_t kReadChunk = 8 * 1024;  // per connection, while a read is pending

// The numeric address of a peer (no port); an IPv4-mapped IPv6 address as
// IPv4, so one client has one address whichever way it connected.
std::string PeerAddress(const Endpoint& ep) {
  char buf[INET6_ADDRSTRLEN] = {0};
  const sockaddr* sa = ep.data();
  if (sa->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      ::inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof buf);
    } else {
      ::inet_ntop(AF_INET6, &a, buf, sizeof buf);
    }
  } else if (sa->sa_family == AF_UNIX) {
    return "local";
  }
  return buf;
}

// A response's head. `stream`: the body ends with the connection (no
// Content-Length, Connection: close).
void AppendHead(std::string* out, const Response& r, bool keep_alive, int minor_version,
                bool stream = false) {
  char line[64];
  std::snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", r.status, ReasonPhrase(r.status));
  out->append(line);
  out->append("Content-Type: ");
  out->append(r.content_type);
  out->append("\r\n");
  if (!stream && r.status != 304) {  // a 304 has no body, and its length is not 0 (RFC 9110 §8.6)
    out->append("Content-Length: ");
    out->append(std::to_string(r.body.size()));
    out->append("\r\n");
  }
  for (const auto& [k, v] : r.headers) {
    out->append(k);
    out->append(": ");
    out->append(v);
    out->append("\r\n");
  }
  if (stream || !keep_alive) {
    out->append("Connection: close\r\n");
  } else if (minor_version == 0) {
    out->append("Connection: keep-alive\r\n");
  }
  out->append("\r\n");
}

class Session;
class Loop;

// Lets any thread hand work to a loop for as long as the loop exists.
struct Gate {
  core::Mutex mu;
  asio::io_context* ctx GUARDED_BY(mu) = nullptr;  // null once the loop is gone
};

// The loop whose handlers run on this thread, if any.
thread_local Loop* current_loop = nullptr;

}  // namespace

// Shared by a request's Responder copies.
struct Responder::State {
  std::weak_ptr<Session> session;
  Loop* loop = nullptr;  // valid while the gate is open
  std::shared_ptr<Gate> gate;
  std::shared_ptr<std::atomic<int>> inflight;
  std::atomic<bool> answered{false};
  ~State();
};

// Shared by a Stream and its connection.
struct Stream::State {
  core::Mutex mu;
  std::deque<std::shared_ptr<const std::string>> queue GUARDED_BY(mu);
  size_t queued GUARDED_BY(mu) = 0;  // in `queue` and in the write in flight
  bool ended GUARDED_BY(mu) = false;
  bool flush_posted GUARDED_BY(mu) = false;
  size_t max_queued = 0;
  std::weak_ptr<Session> session;
  std::shared_ptr<Gate> gate;
};

namespace {

// An answer on its way to its connection: a response, one to build on the
// loop, or none (the request was dropped); with `stream`, the response is
// the head of a stream.
struct Answer {
  std::optional<Response> response;
  std::function<Response()> make;
  std::shared_ptr<Stream::State> stream = nullptr;
};

void Deliver(Responder::State* s, Answer a);

}  // namespace

// What the loops share (Server::Impl is this).
struct ServerCore {
  Service* service;
  Server::Options options;
  std::vector<std::unique_ptr<Loop>> loops;
  std::optional<asio::ssl::context> tls;
  std::atomic<bool> stopping{false};
  std::atomic<int> connections{0};
  std::atomic<size_t> next_loop{0};
  std::shared_ptr<std::atomic<int>> inflight = std::make_shared<std::atomic<int>>(0);
  core::Mutex stop_mu;
  SteadyClock::time_point stop_deadline GUARDED_BY(stop_mu);
  int port = -1;
  bool bound = false;
  std::string unix_path;  // removed on destruction

  ServerCore(Service* s, Server::Options o) : service(s), options(std::move(o)) {}
  SteadyClock::time_point StopDeadline() EXCLUDES(stop_mu) {
    core::MutexLock l(&stop_mu);
    return stop_deadline;
  }
  ~ServerCore();
};

namespace {

class Loop {
 public:
  Loop(ServerCore* server, size_t index)
      : server_(server), index_(index), gate_(std::make_shared<Gate>()), sweep_(ctx_) {
    gate_->ctx = &ctx_;
  }
  ~Loop() { CloseGate(); }

  asio::io_context& ctx() { return ctx_; }
  ServerCore* server() { return server_; }
  const std::shared_ptr<Gate>& gate() { return gate_; }
  bool stopping() const { return server_->stopping.load(); }
  SteadyClock::time_point now() const { return now_; }
  void Touch() { now_ = SteadyClock::now(); }

  // Loop 0 owns the listening socket.
  ErrorCode Listen(const Endpoint& ep, bool unix_socket);
  int LocalPort() const {
    ErrorCode ec;
    Endpoint ep = acceptor_->local_endpoint(ec);
    if (ec) return -1;
    const sockaddr* sa = ep.data();
    if (sa->sa_family == AF_INET6)
      return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
    if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
    return 0;
  }
  void Run();
  void Adopt(Socket s);
  void Remove(uint64_t id);
  // After the loops' threads have ended: closes every connection, runs what
  // their cancelled operations left, and closes the gate.
  void Teardown();
  void CloseGate() {
    core::MutexLock l(&gate_->mu);
    gate_->ctx = nullptr;
  }
  // Runs on this loop: stop accepting, close what is idle.
  void OnStop();

 private:
  void Accept();
  void ScheduleSweep();
  void Sweep();

  ServerCore* server_;
  size_t index_;
  asio::io_context ctx_{1};
  std::shared_ptr<Gate> gate_;
  asio::steady_timer sweep_;
  std::optional<Acceptor> acceptor_;
  bool accepting_ = false;
  SteadyClock::time_point now_ = SteadyClock::now();
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::shared_ptr<Session>> sessions_;
};

// One connection, owned by its loop; every handler runs on that loop.
class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class Phase { kHandshake, kIdle, kReading, kBusy, kWriting, kStreaming, kLinger, kClosed };

  Session(Loop* loop, uint64_t id, Socket s, std::string peer)
      : loop_(loop),
        id_(id),
        sock_(std::move(s)),
        peer_(std::move(peer)),
        parser_(loop->server()->options.limits) {}

  uint64_t id() const { return id_; }
  Phase phase() const { return phase_; }

  void Start() {
    since_ = loop_->now();
    if (loop_->server()->tls) {
      tls_.emplace(sock_, *loop_->server()->tls);
      phase_ = Phase::kHandshake;
      tls_->async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](const ErrorCode& ec) {
                              self->Guarded([&] {
                                if (ec) return self->Close();
                                self->Idle();
                              });
                            });
      return;
    }
    Idle();
  }

  // The answer to the request in progress (nullopt: it was dropped); with
  // `stream`, the head of a streamed answer.
  void OnAnswer(std::optional<Response> r, std::shared_ptr<Stream::State> stream) {
    if (phase_ != Phase::kBusy) {  // closed meanwhile
      if (stream) EndStream(stream.get());
      return;
    }
    if (serving_) {
      early_ = std::move(r);
      early_stream_ = std::move(stream);
      answered_early_ = true;
      return;
    }
    Guarded([&] {
      ServerCore* s = loop_->server();
      Response resp =
          r ? std::move(*r) : s->service->Refusal(500, "the request was dropped without an answer");
      if (stream) return StartStream(resp, std::move(stream));
      const bool keep = keep_alive_ && !loop_->stopping();
      out_.clear();
      AppendHead(&out_, resp, keep, minor_version_);
      if (!head_only_) out_ += resp.body;
      close_after_write_ = !keep;
      Write();
    });
  }

  // Deadlines, at each sweep of the loop.
  void Sweep(SteadyClock::time_point now) {
    const Server::Options& o = loop_->server()->options;
    auto secs = [](int s) { return std::chrono::seconds(std::max(1, s)); };
    switch (phase_) {
      case Phase::kHandshake:
        if (now - since_ >= secs(o.read_timeout_s)) Close();
        break;
      case Phase::kIdle:
        if (loop_->stopping() || now - since_ >= secs(o.keep_alive_timeout_s)) Close();
        break;
      case Phase::kReading:
        if (loop_->stopping()) {
          Close();
        } else if (now - since_ >= secs(o.read_timeout_s)) {
          Refuse(408, "request not received within " + std::to_string(o.read_timeout_s) + " s");
        }
        break;
      case Phase::kWriting:
        if (now - since_ >= secs(o.write_timeout_s)) Close();
        break;
      case Phase::kLinger:
        if (loop_->stopping() || now - since_ >= kLinger) Close();
        break;
      case Phase::kStreaming:
        if (loop_->stopping() || (writing_ && now - since_ >= secs(o.write_timeout_s))) Close();
        break;
      case Phase::kBusy:
      case Phase::kClosed:
        break;
    }
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    if (stream_) EndStream(stream_.get());
    ErrorCode ignored;
    sock_.close(ignored);
    loop_->Remove(id_);  // may free *this once no operation holds it
  }

  // Writes what the stream has queued, unless a write is in flight (its
  // completion comes back here).
  void FlushStream() {
    if (phase_ != Phase::kStreaming || writing_) return;
    std::vector<std::shared_ptr<const std::string>> batch;
    size_t bytes = 0;
    {
      core::MutexLock l(&stream_->mu);
      stream_->flush_posted = false;
      batch.assign(std::make_move_iterator(stream_->queue.begin()),
                   std::make_move_iterator(stream_->queue.end()));
      stream_->queue.clear();
    }
    for (const auto& b : batch) bytes += b->size();
    if (batch.empty()) return;
    WriteStream(std::move(batch), bytes);
  }

  static void EndStream(Stream::State* st) {
    core::MutexLock l(&st->mu);
    st->ended = true;
    st->queue.clear();
    st->queued = 0;
  }

 private:
  void StartStream(const Response& head, std::shared_ptr<Stream::State> st) {
    auto text = std::make_shared<std::string>();
    AppendHead(text.get(), head, false, 1, /*stream=*/true);
    stream_ = std::move(st);
    in_.clear();
    in_off_ = 0;
    if (head_only_) {
      EndStream(stream_.get());
      out_ = std::move(*text);
      close_after_write_ = true;
      return Write();
    }
    phase_ = Phase::kStreaming;
    since_ = loop_->now();
    // The kernel's buffer for a stream holds no more than its queue may: a client
    // that stops reading makes the broker hold at most about twice max_queued
    // (Linux doubles the value), not the megabytes TCP autotuning would allow.
    int sndbuf = static_cast<int>(std::min<size_t>(stream_->max_queued, 1 << 30));
    ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    WriteStream({std::move(text)}, 0);
    Read();  // to notice the client's close
  }

  void WriteStream(std::vector<std::shared_ptr<const std::string>> batch, size_t counted) {
    sending_ = std::move(batch);
    sending_counted_ = counted;
    std::vector<asio::const_buffer> bufs;
    bufs.reserve(sending_.size());
    for (const auto& b : sending_) bufs.emplace_back(asio::buffer(*b));
    writing_ = true;
    since_ = loop_->now();
    WithStream([&](auto& stream) {
      asio::async_write(stream, bufs, [self = shared_from_this()](const ErrorCode& ec, size_t) {
        self->Guarded([&] { self->OnStreamWritten(ec); });
      });
    });
  }

  void OnStreamWritten(const ErrorCode& ec) {
    writing_ = false;
    sending_.clear();
    {
      core::MutexLock l(&stream_->mu);
      stream_->queued -= std::min(stream_->queued, sending_counted_);
    }
    sending_counted_ = 0;
    if (phase_ != Phase::kStreaming) return;
    if (ec) return Close();
    loop_->Touch();
    FlushStream();
  }

  // Runs fn; an exception (an allocation failure above all) costs this
  // connection, never the loop.
  template <class F>
  void Guarded(F&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "http: connection %llu from %s closed: %s\n",
                   static_cast<unsigned long long>(id_), peer_.c_str(), e.what());
      Close();
    }
  }

  template <class F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(sock_);
    }
  }

  void Idle() {
    phase_ = Phase::kIdle;
    since_ = loop_->now();
    out_.clear();
    if (in_off_ < in_.size()) {
      Process();
    } else {
      Read();
    }
  }

  void Read() {
    if (reading_) return;
    reading_ = true;
    WithStream([&](auto& stream) {
      stream.async_read_some(asio::buffer(rbuf_),
                             [self = shared_from_this()](const ErrorCode& ec, size_t n) {
                               self->reading_ = false;
                               self->Guarded([&] { self->OnRead(ec, n); });
                             });
    });
  }

  void OnRead(const ErrorCode& ec, size_t n) {
    switch (phase_) {
      case Phase::kClosed:
        return;
      case Phase::kLinger:
        lingered_ += n;
        if (ec || lingered_ >= kLingerBytes) return Close();
        return Read();
      case Phase::kIdle:
      case Phase::kReading:
        break;
      case Phase::kStreaming:
        // Only the client's close matters; what it sends is dropped.
        if (ec) return Close();
        return Read();
      default:
        return;  // a refusal is being written: what came is dropped
    }
    if (ec) return Close();  // the client hung up (or an error) between requests
    loop_->Touch();
    in_.append(rbuf_.data(), n);
    Process();
  }

  // Parses what has arrived: starts a complete request, refuses a bad one,
  // or reads more.
  void Process() {
    size_t used = parser_.Feed(std::string_view(in_).substr(in_off_));
    in_off_ += used;
    if (in_off_ == in_.size()) {
      in_.clear();
      in_off_ = 0;
    } else if (in_off_ > kReadChunk) {
      in_.erase(0, in_off_);
      in_off_ = 0;
    }
    switch (parser_.state()) {
      case RequestParser::State::kError:
        return Refuse(parser_.error_status(), parser_.error_message());
      case RequestParser::State::kDone:
        return StartRequest();
      case RequestParser::State::kIncomplete:
        break;
    }
    if (parser_.started() && phase_ == Phase::kIdle) {
      phase_ = Phase::kReading;
      since_ = loop_->now();
    }
    if (parser_.wants_continue() && !continue_sent_) {
      continue_sent_ = true;
      out_ = "HTTP/1.1 100 Continue\r\n\r\n";
      writing_continue_ = true;
      Phase was = phase_;
      Write();
      phase_ = was;  // still reading the request: its deadline goes on
      return;
    }
    Read();
  }

  void StartRequest() {
    ServerCore* s = loop_->server();
    Request q = parser_.Take();
    parser_.Reset();
    continue_sent_ = false;
    keep_alive_ = q.keep_alive;
    minor_version_ = q.minor_version;
    head_only_ = q.method == "HEAD";
    q.peer = peer_;
    phase_ = Phase::kBusy;
    since_ = loop_->now();
    auto state = std::make_shared<Responder::State>();
    state->session = weak_from_this();
    state->loop = loop_;
    state->gate = loop_->gate();
    state->inflight = s->inflight;
    s->inflight->fetch_add(1);
    serving_ = true;
    {
      Responder respond(std::move(state));
      try {
        s->service->Serve(std::move(q), respond);
      } catch (const std::exception& e) {
        respond(s->service->Refusal(500, std::string("unexpected error: ") + e.what()));
      }
    }
    serving_ = false;
    if (answered_early_) {
      answered_early_ = false;
      OnAnswer(std::move(early_), std::move(early_stream_));
      early_.reset();
      early_stream_.reset();
    }
  }

  void Refuse(int status, const std::string& message) {
    if (writing_continue_) return Close();  // a write is in flight: no second one
    Response r = loop_->server()->service->Refusal(status, message);
    out_.clear();
    AppendHead(&out_, r, false, 1);
    out_ += r.body;
    close_after_write_ = true;
    refused_ = true;
    in_.clear();
    in_off_ = 0;
    Write();
  }

  void Write() {
    phase_ = Phase::kWriting;
    since_ = loop_->now();
    WithStream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(out_),
                        [self = shared_from_this()](const ErrorCode& ec, size_t) {
                          self->Guarded([&] { self->OnWritten(ec); });
                        });
    });
  }

  void OnWritten(const ErrorCode& ec) {
    if (phase_ == Phase::kClosed) return;
    if (ec) return Close();
    loop_->Touch();
    if (writing_continue_) {
      writing_continue_ = false;
      out_.clear();
      if (phase_ == Phase::kWriting) phase_ = Phase::kReading;
      return Read();
    }
    if (!close_after_write_) return Idle();
    if (!refused_ || tls_) return Close();
    // Lingering close: the client may still be sending (an oversize body);
    // closing with unread data would reset the connection before it reads
    // the refusal, so read and drop what comes for a little while first.
    phase_ = Phase::kLinger;
    since_ = loop_->now();
    ErrorCode ignored;
    sock_.shutdown(asio::socket_base::shutdown_send, ignored);
    Read();
  }

  Loop* loop_;
  uint64_t id_;
  Socket sock_;
  std::optional<Tls> tls_;
  std::string peer_;
  RequestParser parser_;
  Phase phase_ = Phase::kIdle;
  SteadyClock::time_point since_;  // when the current phase's deadline started
  std::array<char, kReadChunk> rbuf_;
  std::string in_;  // read, from in_off_ not yet parsed
  size_t in_off_ = 0;
  std::string out_;
  bool reading_ = false;  // a read is pending
  bool continue_sent_ = false;
  bool writing_continue_ = false;
  bool keep_alive_ = true;
  bool head_only_ = false;
  int minor_version_ = 1;
  bool close_after_write_ = false;
  bool refused_ = false;
  bool serving_ = false;  // inside Service::Serve: an answer now waits for it to return
  bool answered_early_ = false;
  std::optional<Response> early_;
  std::shared_ptr<Stream::State> early_stream_;
  size_t lingered_ = 0;
  std::shared_ptr<Stream::State> stream_;                    // set in kStreaming
  bool writing_ = false;                                     // a stream write is in flight
  std::vector<std::shared_ptr<const std::string>> sending_;  // what it writes
  size_t sending_counted_ = 0;                               // of which counted in stream_->queued
};

ErrorCode Loop::Listen(const Endpoint& ep, bool unix_socket) {
  ErrorCode ec;
  acceptor_.emplace(ctx_);
  acceptor_->open(ep.protocol(), ec);
  if (ec) return ec;
  if (!unix_socket) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  acceptor_->bind(ep, ec);
  if (ec) return ec;
  acceptor_->listen(1024, ec);
  return ec;
}

void Loop::Run() {
  current_loop = this;
  ScheduleSweep();
  if (acceptor_) Accept();
  for (;;) {
    try {
      ctx_.run();
      break;
    } catch (const std::exception& e) {
      // Every handler is guarded; this is the last line.
      std::fprintf(stderr, "http: loop %zu: %s\n", index_, e.what());
    }
  }
  current_loop = nullptr;
}

void Loop::Accept() {
  if (accepting_ || !acceptor_ || stopping()) return;
  if (server_->connections.load() >= server_->options.max_connections) return;  // resumed by Remove
  accepting_ = true;
  Loop* to = server_->loops[server_->next_loop.fetch_add(1) % server_->loops.size()].get();
  acceptor_->async_accept(to->ctx(), [this, to](const ErrorCode& ec, Socket s) {
    accepting_ = false;
    if (ec == asio::error::operation_aborted || !acceptor_ || !acceptor_->is_open()) return;
    if (ec) {
      // Out of descriptors or memory: stop accepting for a moment.
      auto t = std::make_shared<asio::steady_timer>(ctx_, std::chrono::milliseconds(100));
      t->async_wait([this, t](const ErrorCode&) { Accept(); });
      return;
    }
    server_->connections.fetch_add(1);
    if (to == this) {
      Adopt(std::move(s));
    } else {
      auto sock = std::make_shared<Socket>(std::move(s));
      asio::post(to->ctx(), [to, sock] { to->Adopt(std::move(*sock)); });
    }
    Accept();
  });
}

void Loop::Adopt(Socket s) {
  try {
    if (stopping()) {
      server_->connections.fetch_sub(1);
      return;
    }
    ErrorCode ec;
    Endpoint peer = s.remote_endpoint(ec);
    if (peer.data()->sa_family == AF_INET || peer.data()->sa_family == AF_INET6) {
      int one = 1;
      ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    Touch();
    auto session =
        std::make_shared<Session>(this, next_id_++, std::move(s), ec ? "" : PeerAddress(peer));
    sessions_.emplace(session->id(), session);
    session->Start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http: connection dropped: %s\n", e.what());
    server_->connections.fetch_sub(1);
  }
}

void Loop::Remove(uint64_t id) {
  if (sessions_.erase(id) == 0) return;
  server_->connections.fetch_sub(1);
  Loop* first = server_->loops[0].get();
  if (first == this) {
    Accept();
  } else if (!stopping()) {
    asio::post(first->ctx(), [first] { first->Accept(); });
  }
}

void Loop::ScheduleSweep() {
  sweep_.expires_after(kSweepPeriod);
  sweep_.async_wait([this](const ErrorCode& ec) {
    if (ec) return;
    Sweep();
  });
}

void Loop::OnStop() {
  if (acceptor_) {
    ErrorCode ignored;
    acceptor_->close(ignored);
  }
  Sweep();
}

// Deadlines of every connection; during a stop, whether this loop is done.
void Loop::Sweep() {
  Touch();
  std::vector<std::shared_ptr<Session>> all;
  all.reserve(sessions_.size());
  for (auto& [id, s] : sessions_) all.push_back(s);
  for (auto& s : all) s->Sweep(now_);
  if (stopping()) {
    const bool late = now_ >= server_->StopDeadline();
    if (late) {
      for (auto& s : all) s->Close();
    }
    if (sessions_.empty() && (server_->inflight->load() == 0 || late)) {
      ErrorCode ignored;
      if (acceptor_) acceptor_->close(ignored);
      return;  // no new sweep: run() returns when the last operation ends
    }
  }
  ScheduleSweep();
}

void Loop::Teardown() {
  std::vector<std::shared_ptr<Session>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  for (auto& s : all) s->Close();
  all.clear();
  sweep_.cancel();
  if (acceptor_) {
    ErrorCode ignored;
    acceptor_->close(ignored);
  }
  // Cancelled operations complete here and release their sessions.
  ctx_.restart();
  current_loop = this;
  while (ctx_.poll() > 0) {
  }
  current_loop = nullptr;
  sessions_.clear();
  CloseGate();
}

// Builds a deferred answer (on the loop).
std::optional<Response> Resolve(Answer a) {
  if (!a.make) return std::move(a.response);
  try {
    return a.make();
  } catch (const std::exception& e) {
    Response r;
    r.status = 500;
    r.content_type = "text/plain";
    r.body = std::string("unexpected error: ") + e.what();
    return r;
  }
}

void Deliver(Responder::State* s, Answer a) {
  if (current_loop == s->loop) {
    // On the session's own loop (an answer given inside Serve, or by a
    // handler that ran inline): no hop.
    s->inflight->fetch_sub(1);
    std::shared_ptr<Stream::State> stream = std::move(a.stream);
    std::optional<Response> r = Resolve(std::move(a));
    if (auto session = s->session.lock()) {
      session->OnAnswer(std::move(r), std::move(stream));
    } else if (stream) {
      Session::EndStream(stream.get());
    }
    return;
  }
  core::MutexLock l(&s->gate->mu);
  if (s->gate->ctx == nullptr) {
    s->inflight->fetch_sub(1);
    if (a.stream) Session::EndStream(a.stream.get());
    return;  // the server has gone: the answer is dropped
  }
  auto answer = std::make_shared<Answer>(std::move(a));
  asio::post(*s->gate->ctx, [session = s->session, inflight = s->inflight, answer] {
    inflight->fetch_sub(1);
    std::shared_ptr<Stream::State> stream = std::move(answer->stream);
    std::optional<Response> r = Resolve(std::move(*answer));
    if (auto sp = session.lock()) {
      sp->OnAnswer(std::move(r), std::move(stream));
    } else if (stream) {
      Session::EndStream(stream.get());
    }
  });
}

}  // namespace

Responder::State::~State() {
  if (!answered.exchange(true)) Deliver(this, Answer{});
}

void Responder::operator()(Response r) const {
  if (s_->answered.exchange(true)) return;  // exactly once
  Deliver(s_.get(), Answer{std::move(r), {}});
}

void Responder::Later(std::function<Response()> make) const {
  if (s_->answered.exchange(true)) return;
  Deliver(s_.get(), Answer{std::nullopt, std::move(make)});
}

std::shared_ptr<Stream> Responder::OpenStream(Response head, size_t max_queued_bytes) const {
  auto st = std::make_shared<Stream::State>();
  st->max_queued = max_queued_bytes;
  st->session = s_->session;
  st->gate = s_->gate;
  if (s_->answered.exchange(true)) {
    Session::EndStream(st.get());
  } else {
    Deliver(s_.get(), Answer{std::move(head), {}, st});
  }
  return std::make_shared<Stream>(std::move(st));
}

namespace {

// Runs session->*fn on the stream's loop, if both still exist; else the
// stream has ended.
void PostToSession(const std::shared_ptr<Stream::State>& st, void (Session::*fn)()) {
  core::MutexLock l(&st->gate->mu);
  if (st->gate->ctx == nullptr) {
    Session::EndStream(st.get());
    return;
  }
  asio::post(*st->gate->ctx, [st, fn] {
    if (auto s = st->session.lock()) {
      (s.get()->*fn)();
    } else {
      Session::EndStream(st.get());
    }
  });
}

}  // namespace

Stream::~Stream() { Close(); }

bool Stream::Send(std::shared_ptr<const std::string> data) {
  bool post = false;
  bool overflow = false;
  {
    core::MutexLock l(&s_->mu);
    if (s_->ended) return false;
    if (s_->queued + data->size() > s_->max_queued) {
      s_->ended = true;
      s_->queue.clear();
      overflow = true;
    } else {
      s_->queued += data->size();
      s_->queue.push_back(std::move(data));
      post = !s_->flush_posted;
      s_->flush_posted = true;
    }
  }
  if (overflow) {
    PostToSession(s_, &Session::Close);
    return false;
  }
  if (post) PostToSession(s_, &Session::FlushStream);
  return true;
}

void Stream::Close() {
  {
    core::MutexLock l(&s_->mu);
    if (s_->ended) return;
    s_->ended = true;
    s_->queue.clear();
  }
  PostToSession(s_, &Session::Close);
}

bool Stream::open() const {
  core::MutexLock l(&s_->mu);
  return !s_->ended;
}

size_t Stream::queued_bytes() const {
  core::MutexLock l(&s_->mu);
  return s_->queued;
}

ServerCore::~ServerCore() {
  for (auto& l : loops) l->CloseGate();
  loops.clear();
  if (!unix_path.empty()) ::unlink(unix_path.c_str());
}

struct Server::Impl : ServerCore {
  using ServerCore::ServerCore;
};

Server::Server(Service* service, Options options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {}

Server::~Server() = default;

core::Status Server::Bind() {
  Impl& m = *impl_;
  const Options& o = m.options;
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    if (o.tls_cert.empty() || o.tls_key.empty()) {
      return core::InvalidArgument("--tls-cert and --tls-key must be given together");
    }
    m.tls.emplace(asio::ssl::context::tls_server);
    ErrorCode ec;
    SSL_CTX_set_min_proto_version(m.tls->native_handle(), TLS1_2_VERSION);
    m.tls->use_certificate_chain_file(o.tls_cert, ec);
    if (!ec) m.tls->use_private_key_file(o.tls_key, asio::ssl::context::pem, ec);
    if (ec || SSL_CTX_check_private_key(m.tls->native_handle()) != 1) {
      m.tls.reset();
      return core::InvalidArgument("cannot load TLS certificate " + o.tls_cert + " / key " +
                                   o.tls_key);
    }
  }
  int n = o.io_threads > 0 ? o.io_threads : static_cast<int>(std::thread::hardware_concurrency());
  if (!o.unix_path.empty()) n = 1;
  n = std::clamp(n, 1, 256);
  for (int i = 0; i < n; ++i) m.loops.push_back(std::make_unique<Loop>(&m, i));
  ErrorCode ec;
  if (!o.unix_path.empty()) {
    if (o.unix_path.size() >= sizeof(sockaddr_un::sun_path)) {
      return core::InvalidArgument("unix socket path longer than " +
                                   std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
    }
    ::unlink(o.unix_path.c_str());
    ec = m.loops[0]->Listen(Endpoint(asio::local::stream_protocol::endpoint(o.unix_path)), true);
    if (ec) return core::Unavailable("cannot listen on " + o.unix_path + ": " + ec.message());
    ::chmod(o.unix_path.c_str(), static_cast<mode_t>(o.unix_mode));
    m.unix_path = o.unix_path;
    m.port = 0;
    m.bound = true;
    return core::Status::Ok();
  }
  const std::string where = o.host + ":" + std::to_string(o.port);
  asio::ip::tcp::resolver resolver(m.loops[0]->ctx());
  auto results = resolver.resolve(
      o.host, std::to_string(o.port),
      asio::ip::resolver_base::passive | asio::ip::resolver_base::numeric_service, ec);
  if (ec) return core::Unavailable("cannot listen on " + where + ": " + ec.message());
  std::string why = "no address";
  for (const auto& entry : results) {
    ErrorCode lec = m.loops[0]->Listen(Endpoint(entry.endpoint()), false);
    if (lec) {
      why = lec.message();
      continue;
    }
    m.bound = true;
    break;
  }
  if (!m.bound) return core::Unavailable("cannot listen on " + where + ": " + why);
  m.port = m.loops[0]->LocalPort();
  return core::Status::Ok();
}

int Server::port() const { return impl_->port; }

int Server::connections() const { return impl_->connections.load(); }

SteadyClock::time_point Server::stop_deadline() const { return impl_->StopDeadline(); }

void Server::Run() {
  Impl& m = *impl_;
  if (!m.bound || m.loops.empty()) return;
  std::vector<std::thread> threads;
  for (size_t i = 1; i < m.loops.size(); ++i) {
    Loop* l = m.loops[i].get();
    threads.emplace_back([l] { l->Run(); });
    pthread_setname_np(threads.back().native_handle(), "bourse-loop");
  }
  m.loops[0]->Run();
  for (auto& t : threads) t.join();
  for (auto& l : m.loops) l->Teardown();
}

void Server::Stop() {
  Impl& m = *impl_;
  {
    core::MutexLock l(&m.stop_mu);
    if (m.stopping.load()) return;
    m.stop_deadline =
        SteadyClock::now() + std::chrono::seconds(std::max(0, m.options.stop_timeout_s));
    m.stopping.store(true);
  }
  for (auto& l : m.loops) {
    Loop* loop = l.get();
    asio::post(loop->ctx(), [loop] { loop->OnStop(); });
  }
}

}  // namespace bourse::http
