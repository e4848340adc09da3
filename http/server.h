// http::Server: serves a Service over HTTP/1.1 on TCP (optionally TLS) or a
// Unix socket, on Boost.Asio event loops with http::RequestParser framing.
//
//   class Api : public http::Service {
//     void Serve(http::Request q, http::Responder respond) override {
//       respond({.status = 200, .body = "{\"ok\":true}"});   // now or later, any thread
//     }
//     http::Response Refusal(int status, std::string_view why) override { ... }
//   };
//   http::Server::Options o;  o.port = 0;
//   http::Server server(&api, o);
//   BOURSE_RETURN_IF_ERROR(server.Bind());   // port() is now known
//   server.Run();                            // blocks until Stop() and the drain
//   server.Stop();                           // from any thread
//
// One connection has at most one request in progress: the next request is
// parsed (from bytes already read) only after the answer to the previous one
// is written, and the connection is not read while a request is with the
// Service or its answer is unsent. So a client that pipelines and never reads
// holds one answer and a bounded input buffer, never more; each turn of a loop
// does one step of one connection, so no connection starves the others.
//
// Deadlines (checked by each loop every 100 ms): keep_alive_timeout_s for an
// idle connection, read_timeout_s from a request's first byte to its last
// (408), write_timeout_s for an answer the client does not read (closed),
// read_timeout_s for a TLS handshake. A refusal (a malformed request, 4xx/5xx
// from the parser) is answered with Connection: close, then the connection
// lingers up to 2 s reading and dropping what the client still sends, so it
// reads the refusal before the close.
//
// Stop(): stops accepting, closes idle connections, answers requests in
// progress with Connection: close; Run() returns when every connection is
// closed and every request handed to the Service has been answered, or at
// stop_timeout_s after Stop(), whichever is first (a late answer is then
// dropped). A Service that throws or runs out of memory costs that request
// (500) or that connection, never the loop.
//
// Streams (Responder::OpenStream): a connection whose answer is a stream is
// read only to notice the client closing it (what it sends is dropped);
// Stop() closes streams at once.
//
// Thread safety: Bind/Run from the owning thread, Stop from any thread;
// Service::Serve runs on the loops, concurrently for different connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "http/message.h"

namespace bourse::http {

// A response body sent piece by piece after its head (Server-Sent Events),
// from Responder::OpenStream. Send never blocks and never waits for the
// client: what it queues is written by the connection's loop. The stream
// ends when the client closes the connection, Close() is called, the server
// stops, a write is not accepted within write_timeout_s, or a Send would
// queue more than the stream's bound (a consumer that cannot keep up is
// dropped, never waited for). Thread safety: every method, any thread.
class Stream {
 public:
  struct State;
  explicit Stream(std::shared_ptr<State> s) : s_(std::move(s)) {}
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Queues `data`; false (nothing queued) once the stream has ended,
  // including because of this call (the bound).
  bool Send(std::shared_ptr<const std::string> data);
  bool Send(std::string data) { return Send(std::make_shared<const std::string>(std::move(data))); }
  // Ends the stream: the connection is closed once what is queued is written
  // or dropped (at once: the rest is dropped).
  void Close();
  bool open() const;
  // Bytes queued and not yet accepted by the kernel.
  size_t queued_bytes() const;

 private:
  std::shared_ptr<State> s_;
};

// Answers one request, exactly once, from any thread (later calls are
// ignored). Copyable; if every copy is destroyed without an answer, the
// request is answered 500 "no answer".
class Responder {
 public:
  struct State;
  explicit Responder(std::shared_ptr<State> s) : s_(std::move(s)) {}
  void operator()(Response r) const;
  // Answers with what `make` returns, run on the connection's own loop (so
  // the thread that finished the work, e.g. a commit's, only hands it over).
  // An exception from `make` is answered 500.
  void Later(std::function<Response()> make) const;
  // Answers with `head` (its body is ignored) followed by a body of whatever
  // is sent on the returned Stream: no Content-Length, Connection: close. At
  // most max_queued_bytes wait to be written at any time. For a HEAD request
  // only the head is written and the stream is closed at once.
  std::shared_ptr<Stream> OpenStream(Response head, size_t max_queued_bytes) const;

 private:
  std::shared_ptr<State> s_;
};

class Service {
 public:
  virtual ~Service() = default;
  // A complete request, on the loop that read it. Must not wait (hand slow
  // work to another thread and answer from there).
  virtual void Serve(Request request, Responder respond) = 0;
  // The answer for a request the transport refuses itself (status 400, 408,
  // 413, 417, 431, 500, 501, 505) and why.
  virtual Response Refusal(int status, std::string_view message) = 0;
};

class Server {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 8080;        // 0: any free port
    std::string unix_path;  // set: listen on this Unix socket (mode unix_mode) instead
    int unix_mode = 0600;
    std::string tls_cert;  // both set: HTTPS
    std::string tls_key;
    int io_threads = 0;           // event loops (0: one per online CPU)
    int max_connections = 16384;  // further ones wait in the listen backlog
    Limits limits;
    int read_timeout_s = 10;
    int write_timeout_s = 10;
    int keep_alive_timeout_s = 5;
    int stop_timeout_s = 10;
  };

  Server(Service* service, Options options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket. Errors: unavailable when the address cannot
  // be bound; invalid_argument when the TLS files cannot be loaded or the
  // Unix path is too long.
  core::Status Bind();
  int port() const;
  void Run();
  void Stop();
  // Connections open now (for metrics).
  int connections() const;
  // When Run() gives up waiting after Stop() (the time_point's epoch before
  // Stop()); for owners that drain work of their own after Run().
  std::chrono::steady_clock::time_point stop_deadline() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bourse::http
