// HttpServer: serves a Router over HTTP/1.1 (or HTTPS through OpenSSL).
//
//   Router router;  ... router.Add(...) ...
//   HttpServer::Options o;  o.host = "127.0.0.1";  o.port = 0;
//   HttpServer server(&router, o, &metrics, ledger_size_fn);
//   BOURSE_RETURN_IF_ERROR(server.Bind());     // port() is now known
//   server.Run();                               // blocks until Stop()
//   // from another thread or a signal thread:
//   server.Stop();                              // stops accepting, drains in-flight requests
//
// The transport is http::Server (http/server.h: Boost.Asio loops, Beast's
// parser, one request at a time per connection, bounded buffers, deadlines,
// a bounded stop); this class is the broker's dispatcher over it. Handlers
// run where the route says (router.h): reads inline on the loop, async
// handlers start their work on the loop and answer when it is done (no
// thread waits for a commit; the answer is encoded back on the loop), other
// handlers on a pool of handler threads.
//
// For every request it: assigns a request id (X-Request-Id), matches the
// route on the raw path, each segment decoded after the split (404/405
// otherwise), checks for Auth::kSigned routes, in this order and before the body is looked at:
// the per-peer limit on failed authentication (429), the DESIGN §7 signature
// (401 with the reason), the router's caller check (a registered principal,
// a nonce not run before; 401), the per-key rate limit (429), the in-memory
// replay cache (401); then parses the JSON body strictly for routes that
// take one (400), runs the handler (its request current on that thread, so
// its first commit records the nonce: router.h RequestOnce), maps any error Status through
// http_status.h, records metrics and writes one JSON access-log line.
// GET /openapi.json, /healthz and /metrics are served by the owner of the
// router (Broker), registered as ordinary routes. A GET or HEAD outside /v1
// that no route has is answered from Options::static_files (the dashboard).
//
// Thread safety: Bind/Run/Stop from the owning thread (Stop from any thread);
// handlers run concurrently on the loops and the handler threads.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "broker/metrics.h"
#include "broker/router.h"
#include "broker/static_files.h"
#include "core/clock.h"
#include "core/status.h"

namespace bourse::broker {

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 8080;       // 0: any free port
    std::string tls_cert;  // both set: HTTPS
    std::string tls_key;
    // Event loops serving the connections (0: one per online CPU).
    int io_threads = 0;
    // Handler threads for routes that may wait (Run::kWorker), started on
    // demand and kept 30 s after their last request; requests beyond them
    // queue in arrival order.
    int threads = 64;
    // Connections open at once; further ones wait in the listen backlog.
    int max_connections = 16384;
    size_t max_body_bytes = 1 << 20;
    double rate_limit_per_s = 1000;  // per key; 0 disables
    double rate_limit_burst = 2000;
    // Per peer address, for requests to signed routes that fail
    // authentication (unsigned, malformed, bad signature, stale, replayed,
    // unregistered key): each failure takes a token; a peer without one is
    // refused 429 before its signature is checked. 0 disables.
    double peer_failure_rate_per_s = 100;
    double peer_failure_burst = 200;
    int read_timeout_s = 10;
    int write_timeout_s = 10;
    int keep_alive_timeout_s = 5;
    // Run() returns at most this long after Stop(), answered or not.
    int stop_timeout_s = 10;
    FILE* access_log = stderr;           // nullptr: no access log
    const core::Clock* clock = nullptr;  // nullptr: SystemClock
    // The dashboard's files, for GET/HEAD outside /v1 that no route has
    // (broker/static_files.h); nullptr: GET / answers 404 "not installed".
    const StaticFiles* static_files = nullptr;
  };

  HttpServer(const Router* router, Options options, Metrics* metrics,
             std::function<int64_t()> ledger_size);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket. Errors: unavailable when the address cannot
  // be bound; invalid_argument when the TLS files cannot be loaded.
  core::Status Bind();
  int port() const;
  // Serves until Stop(); returns after in-flight requests have finished, or
  // stop_timeout_s after Stop().
  void Run();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bourse::broker
