// broker_load: drives a running bourse-broker over HTTP keep-alive
// connections and reports throughput and latency.
//
//   broker_load --url URL --key FILE --connections N --seconds S
//               [--mix reads|writes|orders|batch] [--batch N] [--slice NAME] [--presign N]
//               [--streams N [--stream-topics T]]
//
// Workloads (--mix):
//   reads   unsigned GET /v1/slices/{slice} and GET /v1/ledger/head,
//           alternating (the slice: --slice, else the first listed, else only
//           the head).
//   writes  signed POST /v1/accounts/mint of 1 nano-credit to the key's own
//           account (the key must be an admin): one Ed25519 verify, one
//           ledger entry, one group-committed SQLite transaction each.
//   orders  signed POST /v1/markets/{first open market}/orders: GTC limit
//           buys of 1 unit at prices that rest (the key, an admin, first mints
//           itself the credits they escrow): one Ed25519 verify, an
//           escrow_hold and an order_placed ledger entry, one group commit each.
//   batch   signed POST /v1/orders:batch of --batch N ops (default 100): each
//           connection first places N resting GTC buys of 1 unit, spread over
//           every open market, then reprices its own book with every batch:
//           80 % moves to new prices, 10 % cancels and 10 % new placements
//           (fewer than 10 ops: moves only), so it keeps N orders resting. One
//           verify and one commit per batch. The summary's ops_per_s counts
//           ops (N per batch), batches_per_s the requests; p50/p99 are per
//           batch; op_errors counts ops whose result is not ok.
// --presign N: the first N signed requests are signed before the clock starts
// (on every core), so that the generator's own Ed25519 signing, about a third
// of a verify, does not compete with the broker it measures; the rest are
// signed as they are sent. The broker verifies every one as usual.
// Each connection is a keep-alive connection with one request in flight. For
// http:// URLs a few event-loop threads (one per core) drive all of them over
// plain sockets with HTTP/1.1 formatted here (one send per request), so that
// the generator, which shares the machine with the broker, costs as little
// CPU and scheduling as it can; https:// URLs use one thread per connection
// through the regular client. The last line of output is a JSON object with
// ops_per_s, p50_ms and p99_ms (latency from send to the last response byte).
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench/batch_load.h"
#include "clients/client.h"
#include "core/keys.h"
#include "core/request_signing.h"

namespace {

using bourse::clients::Client;
using Clock = std::chrono::steady_clock;

// Splits an http://host:port URL; false for anything else (https://).
bool ParseHttpUrl(const std::string& url, std::string* host, std::string* port) {
  const std::string pre = "http://";
  if (url.rfind(pre, 0) != 0) return false;
  std::string hp = url.substr(pre.size());
  if (!hp.empty() && hp.back() == '/') hp.pop_back();
  size_t c = hp.rfind(':');
  if (c == std::string::npos || hp.find('/') != std::string::npos) return false;
  *host = hp.substr(0, c);
  *port = hp.substr(c + 1);
  return true;
}

// One HTTP/1.1 request, signed (DESIGN §7) when key is given.
std::string FormatRequest(const std::string& method, const std::string& path,
                          const std::string& body, const bourse::core::PrivateKey* key,
                          const std::string& host) {
  std::string req;
  req.reserve(512 + body.size());
  req += method;
  req += ' ';
  req += path;
  req += " HTTP/1.1\r\nHost: ";
  req += host;
  req += "\r\n";
  if (key != nullptr) {
    bourse::core::SignedHeaders h =
        bourse::core::SignRequest(*key, method, path, body,
                                  std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    req += "Bourse-Key: " + h.key + "\r\nBourse-Timestamp: " + h.timestamp +
           "\r\nBourse-Nonce: " + h.nonce + "\r\nBourse-Signature: " + h.signature + "\r\n";
  }
  if (!body.empty()) req += "Content-Type: application/json\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  req += body;
  return req;
}

// Connects to host:port; -1 on failure.
int ConnectTo(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return -1;
  int out = -1;
  for (addrinfo* a = res; a != nullptr && out < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      out = fd;
    } else {
      ::close(fd);
    }
  }
  freeaddrinfo(res);
  return out;
}

// --streams N: N event streams (GET /v1/events?topics=T) opened before the
// clock starts and read by one thread for the whole run: what the broker's
// fan-out costs while it serves the workload. Reports how many were still
// open at the end and how many events they got in all.
struct StreamLoad {
  std::vector<int> fds;
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int> closed{0};
  std::thread reader;

  bool Open(const std::string& host, const std::string& port, int n, const std::string& topics) {
    const std::string req = "GET /v1/events?topics=" + topics + " HTTP/1.1\r\nHost: " + host +
                            "\r\nAccept: text/event-stream\r\n\r\n";
    for (int i = 0; i < n; ++i) {
      int fd = ConnectTo(host, port);
      if (fd < 0 || ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) {
        std::fprintf(stderr, "broker_load: event stream %d: cannot connect\n", i);
        return false;
      }
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      fds.push_back(fd);
    }
    return true;
  }
  void Start(const std::atomic<bool>& stop) {
    reader = std::thread([this, &stop] { Read(stop); });
  }
  void Read(const std::atomic<bool>& stop) {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<std::string> carry(fds.size());
    for (size_t i = 0; i < fds.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    std::vector<epoll_event> ready(256);
    std::vector<char> buf(1 << 16);
    while (!stop.load(std::memory_order_relaxed)) {
      int n = ::epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), 50);
      for (int k = 0; k < n; ++k) {
        size_t i = ready[k].data.u64;
        for (;;) {
          ssize_t got = ::recv(fds[i], buf.data(), buf.size(), 0);
          if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            ::epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], nullptr);
            closed.fetch_add(1);
            break;
          }
          if (got < 0) break;
          bytes.fetch_add(got, std::memory_order_relaxed);
          // Count "\nevent: " lines, across reads.
          std::string& c = carry[i];
          c.append(buf.data(), static_cast<size_t>(got));
          size_t pos = 0, hits = 0;
          while ((pos = c.find("\nevent: ", pos)) != std::string::npos) {
            ++hits;
            pos += 8;
          }
          events.fetch_add(static_cast<int64_t>(hits), std::memory_order_relaxed);
          c.erase(0, c.size() > 8 ? c.size() - 8 : 0);
        }
      }
    }
    ::close(ep);
  }
  void Finish() {
    if (reader.joinable()) reader.join();
    for (int fd : fds) ::close(fd);
  }
};

// The connections c with c % nthreads == t, driven by one epoll loop: each
// has one request in flight; when its response is complete the latency is
// recorded and the next request sent. Stops issuing when `stop` is set.
// `on_body` (if set) gets each complete response's status and body.
template <typename RequestFor>
void EventLoad(const std::string& host, const std::string& port, int t, int nthreads,
               int connections, RequestFor& request_for, std::atomic<bool>& stop,
               std::vector<std::vector<float>>* lat, std::vector<int64_t>* errors,
               const std::function<void(int, int, std::string_view)>& on_body = {}) {
  struct C {
    int id = 0;
    int fd = -1;
    uint64_t i = 0;
    int want = 0;
    std::string in;
    Clock::time_point sent;
    bool busy = false;
  };
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<C> conns;
  for (int c = t; c < connections; c += nthreads) {
    conns.emplace_back();
    conns.back().id = c;
  }
  auto send_next = [&](C& k) -> bool {
    if (k.fd < 0) {
      k.fd = ConnectTo(host, port);
      if (k.fd < 0) return false;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = &k;
      epoll_ctl(ep, EPOLL_CTL_ADD, k.fd, &ev);
      k.in.clear();
    }
    std::string req = request_for(k.id, k.i++, &k.want);
    k.sent = Clock::now();
    size_t off = 0;
    while (off < req.size()) {
      ssize_t n = ::send(k.fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    k.busy = true;
    return true;
  };
  auto drop = [&](C& k) {
    if (k.fd >= 0) {
      epoll_ctl(ep, EPOLL_CTL_DEL, k.fd, nullptr);
      ::close(k.fd);
    }
    k.fd = -1;
    k.busy = false;
  };
  for (C& k : conns) {
    if (!send_next(k)) {
      ++(*errors)[k.id];
      drop(k);
    }
  }
  std::vector<epoll_event> evs(64);
  char buf[16384];
  while (!stop.load(std::memory_order_relaxed)) {
    int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 50);
    for (int e = 0; e < n; ++e) {
      C& k = *static_cast<C*>(evs[e].data.ptr);
      ssize_t r = ::recv(k.fd, buf, sizeof buf, 0);
      if (r <= 0) {
        ++(*errors)[k.id];
        drop(k);
        if (!stop.load() && !send_next(k)) drop(k);
        continue;
      }
      k.in.append(buf, static_cast<size_t>(r));
      size_t head_end = k.in.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      size_t clen = 0;
      bool close_after = false;
      for (size_t p = k.in.find("\r\n") + 2; p < head_end;) {
        size_t q = k.in.find("\r\n", p);
        std::string line = k.in.substr(p, q - p);
        for (size_t i = 0; i < line.size() && line[i] != ':'; ++i)
          line[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i])));
        if (line.rfind("content-length:", 0) == 0)
          clen = std::strtoull(line.c_str() + 15, nullptr, 10);
        if (line.rfind("connection:", 0) == 0 && line.find("close") != std::string::npos)
          close_after = true;
        p = q + 2;
      }
      if (k.in.size() < head_end + 4 + clen) continue;
      int status = k.in.size() > 12 ? std::atoi(k.in.c_str() + 9) : 0;
      (*lat)[k.id].push_back(
          std::chrono::duration<float, std::milli>(Clock::now() - k.sent).count());
      if (status != k.want) {
        if ((*errors)[k.id] < 3) {
          std::fprintf(stderr, "broker_load: request failed: %d %s\n", status,
                       k.in.substr(head_end + 4, 300).c_str());
        }
        ++(*errors)[k.id];
      }
      if (on_body) on_body(k.id, status, std::string_view(k.in).substr(head_end + 4, clen));
      k.in.erase(0, head_end + 4 + clen);
      k.busy = false;
      if (close_after) drop(k);
      if (!stop.load() && !send_next(k)) {
        ++(*errors)[k.id];
        drop(k);
      }
    }
  }
  for (C& k : conns) drop(k);
  ::close(ep);
}

int Usage() {
  std::fputs(
      "usage: broker_load --url URL --key FILE --connections N --seconds S "
      "[--mix reads|writes|orders|batch] [--batch N] [--slice NAME] [--presign N] "
      "[--streams N [--stream-topics T]]\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, key_path, mix = "reads", slice, order_path;
  std::string ev_host_for_batch, ev_port_for_batch;
  BatchLoad batch_load;
  int connections = 8;
  double seconds = 5;
  long long presign = 0;
  int streams = 0;
  int batch_ops = 100;
  std::string stream_topics = "trades,book,ledger";  // a market page
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage();
    std::string v = argv[++i];
    if (a == "--url") {
      url = v;
    } else if (a == "--key") {
      key_path = v;
    } else if (a == "--connections") {
      connections = std::atoi(v.c_str());
    } else if (a == "--seconds") {
      seconds = std::atof(v.c_str());
    } else if (a == "--mix") {
      mix = v;
    } else if (a == "--slice") {
      slice = v;
    } else if (a == "--presign") {
      presign = std::atoll(v.c_str());
    } else if (a == "--streams") {
      streams = std::atoi(v.c_str());
    } else if (a == "--stream-topics") {
      stream_topics = v;
    } else if (a == "--batch") {
      batch_ops = std::atoi(v.c_str());
    } else {
      return Usage();
    }
  }
  if (url.empty() || connections < 1 || connections > 1024 || seconds <= 0 || presign < 0 ||
      presign > 10'000'000 || streams < 0 || streams > 100'000 || batch_ops < 1 ||
      batch_ops > 100) {
    return Usage();
  }
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;  // --streams needs a descriptor each
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  if (mix != "reads" && mix != "writes" && mix != "orders" && mix != "batch") return Usage();
  std::optional<bourse::core::PrivateKey> key;
  if (!key_path.empty()) {
    auto k = bourse::core::PrivateKey::LoadPem(key_path);
    if (!k.ok()) {
      std::fprintf(stderr, "broker_load: --key: %s\n", k.status().ToString().c_str());
      return 2;
    }
    key = *k;
  }
  if (mix != "reads" && !key) {
    std::fputs("broker_load: --key is required for signed workloads\n", stderr);
    return 2;
  }
  if (mix == "batch") {
    if (!ParseHttpUrl(url, &ev_host_for_batch, &ev_port_for_batch)) {
      std::fputs("broker_load: --mix batch needs an http:// URL\n", stderr);
      return 2;
    }
    if (presign > 0) {
      std::fputs("broker_load: --presign does not apply to --mix batch (one signature per batch)\n",
                 stderr);
      return 2;
    }
    Client probe(url, key);
    auto setup = batch_load.Setup(probe, connections, batch_ops);
    if (!setup.ok()) {
      std::fprintf(stderr, "broker_load: --mix batch: %s\n", setup.ToString().c_str());
      return 2;
    }
  }
  if (mix == "orders") {
    Client probe(url, key);
    auto r = probe.Send("GET", "/v1/markets", "", false);
    if (!r.ok() || r->status == 404) {
      std::fputs("broker_load: --mix orders needs the markets API (issue #6), not served here\n",
                 stderr);
      return 2;
    }
    // The first open market; the key (an admin) mints itself the credits its
    // resting buys escrow.
    auto ms = probe.Call("GET", "/v1/markets?state=open");
    if (!ms.ok() || (*ms)["markets"].empty()) {
      std::fputs("broker_load: --mix orders needs an open market (POST /v1/markets)\n", stderr);
      return 2;
    }
    order_path = "/v1/markets/" + (*ms)["markets"][0]["id"].get<std::string>() + "/orders";
    auto m = probe.Call("POST", "/v1/accounts/mint",
                        {{"to", key->public_key().ToText()}, {"amount", "1000000"}});
    if (!m.ok()) {
      std::fprintf(stderr, "broker_load: minting credits for the buys: %s\n",
                   m.status().ToString().c_str());
      return 2;
    }
  }
  if (mix == "reads" && slice.empty()) {
    Client probe(url);
    auto r = probe.Call("GET", "/v1/slices");
    if (r.ok() && !(*r)["slices"].empty()) slice = (*r)["slices"][0]["name"];
  }
  std::string self = key ? key->public_key().ToText() : "";
  std::string write_body = "{\"amount\":\"0.000000001\",\"to\":\"" + self + "\"}";

  std::atomic<bool> stop{false};
  std::vector<std::vector<float>> lat(connections);
  std::vector<int64_t> errors(connections, 0);
  std::vector<std::thread> threads;
  Clock::time_point t0 = Clock::now();
  std::string ev_host, ev_port;
  const bool event_mode = ParseHttpUrl(url, &ev_host, &ev_port);
  std::function<std::string(int, uint64_t, int*)> request_for;  // outlives the threads
  std::vector<std::vector<std::string>> pre(connections);       // --presign's requests
  std::vector<std::vector<int>> pre_want(connections);
  StreamLoad stream_load;
  if (event_mode) {
    // http://: a few event-loop threads (one per core) drive all the
    // connections, each with one request in flight, so the generator does
    // not add a thread per connection to the scheduler's load.
    auto build = [&](int c, uint64_t i, int* want) {
      std::string method = "GET", path, body;
      const bourse::core::PrivateKey* signer = nullptr;
      if (mix == "reads") {
        path = (!slice.empty() && (i % 2 == 0)) ? "/v1/slices/" + slice : "/v1/ledger/head";
        *want = 200;
      } else if (mix == "batch") {
        method = "POST";
        path = "/v1/orders:batch";
        body = batch_load.Next(c, i);
        signer = &*key;
        *want = 200;
      } else if (mix == "orders") {
        method = "POST";
        path = order_path;
        body = "{\"price\":\"0.000" + std::to_string(1001 + (i * 7 + c) % 100).substr(1) +
               "\",\"qty\":1,\"side\":\"buy\"}";
        signer = &*key;
        *want = 201;
      } else {
        method = "POST";
        path = "/v1/accounts/mint";
        body = write_body;
        signer = &*key;
        *want = 201;
      }
      return FormatRequest(method, path, body, signer, ev_host);
    };
    // --presign N: the first N signed requests (N / connections per
    // connection) are formatted and signed before the clock starts, on every
    // core, so that the generator's own Ed25519 signing (about as costly as
    // the broker's verify) does not compete with the broker while it is
    // measured; requests beyond them are signed as they are sent.
    if (presign > 0 && mix != "reads") {
      const uint64_t per = static_cast<uint64_t>(presign) / connections + 1;
      std::vector<std::thread> signers;
      const int nsign = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      for (int t = 0; t < nsign; ++t) {
        signers.emplace_back([&, t] {
          for (int c = t; c < connections; c += nsign) {
            pre[c].reserve(per);
            pre_want[c].reserve(per);
            for (uint64_t i = 0; i < per; ++i) {
              int w = 0;
              pre[c].push_back(build(c, i, &w));
              pre_want[c].push_back(w);
            }
          }
        });
      }
      for (auto& th : signers) th.join();
      t0 = Clock::now();
    }
    request_for = [&, build](int c, uint64_t i, int* want) {
      if (i < pre[c].size()) {
        *want = pre_want[c][i];
        return std::move(pre[c][i]);
      }
      return build(c, i, want);
    };
    if (streams > 0) {
      if (!stream_load.Open(ev_host, ev_port, streams, stream_topics)) return 2;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // all subscribed
      t0 = Clock::now();
      stream_load.Start(stop);
    }
    int nthreads = static_cast<int>(std::min<unsigned>(
        static_cast<unsigned>(connections), std::max(1u, std::thread::hardware_concurrency())));
    for (int t = 0; t < nthreads; ++t) {
      threads.emplace_back([&, t] {
        std::function<void(int, int, std::string_view)> on_body;
        if (mix == "batch") {
          on_body = [&](int c, int status, std::string_view b) { batch_load.Done(c, status, b); };
        }
        EventLoad(ev_host, ev_port, t, nthreads, connections, request_for, stop, &lat, &errors,
                  on_body);
      });
    }
  }
  for (int c = 0; c < connections && !event_mode; ++c) {
    threads.emplace_back([&, c] {
      Client client(url, key);
      std::vector<float>& my = lat[c];
      my.reserve(1 << 16);
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        auto s = Clock::now();
        bool ok;
        if (mix == "reads") {
          std::string path =
              (!slice.empty() && (i % 2 == 0)) ? "/v1/slices/" + slice : "/v1/ledger/head";
          auto r = client.Send("GET", path, "", false);
          ok = r.ok() && r->status == 200;
        } else if (mix == "orders") {
          // A GTC limit buy of 1 unit that rests (prices 0.000001..0.000100):
          // one verify, escrow_hold + order_placed entries, one commit.
          std::string body = "{\"price\":\"0.000" +
                             std::to_string(1001 + (i * 7 + c) % 100).substr(1) +
                             "\",\"qty\":1,\"side\":\"buy\"}";
          auto r = client.Send("POST", order_path, body, true);
          ok = r.ok() && r->status == 201;
          if (!ok && errors[c] < 3) {
            std::fprintf(stderr, "broker_load: order failed: %s\n",
                         r.ok() ? (std::to_string(r->status) + " " + r->body.substr(0, 300)).c_str()
                                : r.status().ToString().c_str());
          }
        } else {
          auto r = client.Send("POST", "/v1/accounts/mint", write_body, true);
          ok = r.ok() && r->status == 201;
        }
        if (!ok) ++errors[c];
        my.push_back(std::chrono::duration<float, std::milli>(Clock::now() - s).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  stream_load.Finish();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<float> all;
  int64_t errs = 0;
  for (int c = 0; c < connections; ++c) {
    all.insert(all.end(), lat[c].begin(), lat[c].end());
    errs += errors[c];
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> double {
    if (all.empty()) return 0;
    size_t i = std::min(all.size() - 1, static_cast<size_t>(p * all.size()));
    return all[i];
  };
  if (mix == "batch") {
    // Ops are the results the batches answered; latency is per batch.
    const double ops = static_cast<double>(batch_load.ops_done());
    std::printf(
        "{\"mix\":\"batch\",\"batch\":%d,\"connections\":%d,\"seconds\":%.2f,"
        "\"batches\":%zu,\"ops\":%.0f,\"errors\":%lld,\"op_errors\":%lld,"
        "\"ops_per_s\":%.1f,\"batches_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
        batch_ops, connections, elapsed, all.size(), ops, static_cast<long long>(errs),
        static_cast<long long>(batch_load.op_errors()), ops / elapsed, all.size() / elapsed,
        pct(0.50), pct(0.99));
    return errs == 0 && batch_load.op_errors() == 0 ? 0 : 1;
  }
  std::printf(
      "{\"mix\":\"%s\",\"connections\":%d,\"seconds\":%.2f,\"ops\":%zu,\"errors\":%lld,"
      "\"ops_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"streams\":%d,"
      "\"streams_open\":%d,\"stream_events\":%lld,\"stream_mb\":%.1f}\n",
      mix.c_str(), connections, elapsed, all.size(), static_cast<long long>(errs),
      all.size() / elapsed, pct(0.50), pct(0.99), streams, streams - stream_load.closed.load(),
      static_cast<long long>(stream_load.events.load()), stream_load.bytes.load() / 1e6);
  return errs == 0 ? 0 : 1;
}
