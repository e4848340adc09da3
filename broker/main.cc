// bourse-broker: the broker service (broker/broker.h, docs/broker.md).
//
//   bourse-broker init --db PATH
//   bourse-broker [--db PATH] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE]
//                 [--ledger-key FILE] [--io-threads N] [--threads N] [--rate-limit PER_S]
//                 [--max-body BYTES] [--max-streams N] [--access-log FILE|-|off]
//                 [--batch-interval-us US] [--sync-interval-us US] [--stop-timeout S]
//                 [--web DIR|off] [--round-budget-ms MS]
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.h"
#include "broker/server.h"
#include "core/service_notify.h"

namespace {

using bourse::broker::Broker;
using bourse::broker::HttpServer;
using bourse::broker::StaticFiles;

void Usage() {
  std::fputs(
      "usage:\n"
      "  bourse-broker init --db PATH\n"
      "      create the database, the ledger key (PATH.ledger-key.pem) and the first\n"
      "      admin key (PATH.admin-key.pem), both mode 0600\n"
      "  bourse-broker [--db PATH] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE]\n"
      "                [--ledger-key FILE] [--io-threads N] [--threads N] [--rate-limit PER_S]\n"
      "                [--peer-rate-limit PER_S] [--max-body BYTES] [--max-streams N]\n"
      "                [--max-streams-per-peer N]\n"
      "                [--access-log FILE|-|off]\n"
      "                [--batch-interval-us US] [--sync-interval-us US] [--stop-timeout S]\n"
      "                [--web DIR|off] [--round-budget-ms MS]\n"
      "      serve (defaults: --db ./bourse.db, --listen 127.0.0.1:8080, port 0 = any;\n"
      "      --io-threads 0 = one event loop per CPU; --threads 64 handler threads;\n"
      "      group-commit pacing --batch-interval-us 1000 --sync-interval-us 2000;\n"
      "      on SIGTERM, requests in flight get --stop-timeout 10 seconds to finish;\n"
      "      --max-streams 10000 event streams (GET /v1/events) at once, at most\n"
      "      --max-streams-per-peer 1000 from one client address;\n"
      "      each sealed-bid round's solver gets --round-budget-ms 1000 (0 = greedy only);\n"
      "      the dashboard's files from --web DIR, by default <dir of bourse-broker>/web\n"
      "      or <dir of bourse-broker>/../share/bourse/web)\n",
      stderr);
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "bourse-broker: %s\n", msg.c_str());
  return 1;
}

int Init(const std::vector<std::string>& args) {
  std::string db = "bourse.db";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--db" && i + 1 < args.size()) {
      db = args[++i];
    } else {
      Usage();
      return 2;
    }
  }
  auto ledger_key = bourse::core::PrivateKey::Generate();
  auto admin_key = bourse::core::PrivateKey::Generate();
  if (!ledger_key.ok() || !admin_key.ok()) return Fail("cannot generate keys");
  std::string ledger_path = db + ".ledger-key.pem";
  std::string admin_path = db + ".admin-key.pem";
  if (access(db.c_str(), F_OK) == 0) return Fail("database " + db + " already exists");
  if (access(ledger_path.c_str(), F_OK) == 0 || access(admin_path.c_str(), F_OK) == 0) {
    return Fail("key file " + ledger_path + " or " + admin_path + " already exists");
  }
  if (auto st = ledger_key->SavePem(ledger_path); !st.ok()) return Fail(st.ToString());
  if (auto st = admin_key->SavePem(admin_path); !st.ok()) return Fail(st.ToString());
  auto st = Broker::Initialize(db, *ledger_key, admin_key->public_key());
  if (!st.ok()) {
    unlink(ledger_path.c_str());
    unlink(admin_path.c_str());
    return Fail(st.ToString());
  }
  std::printf("database:   %s\nledger key: %s (%s)\nadmin key:  %s (%s)\n", db.c_str(),
              ledger_path.c_str(), ledger_key->public_key().ToText().c_str(), admin_path.c_str(),
              admin_key->public_key().ToText().c_str());
  return 0;
}

bool ParseInt(const std::string& s, long long min, long long max, long long* out) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

// The dashboard's files: from --web DIR (which must hold them), none with
// --web off, else from the default place if there is one there.
bourse::core::Status LoadWeb(const std::string& dir, std::optional<StaticFiles>* out) {
  if (dir == "off") return bourse::core::Status::Ok();
  std::string from = dir.empty() ? StaticFiles::FindWebDir() : dir;
  if (from.empty()) {
    std::fprintf(stderr, "bourse-broker: no web directory found: the dashboard is not served\n");
    return bourse::core::Status::Ok();
  }
  auto files = StaticFiles::Load(from);
  if (!files.ok()) return files.status().WithContext("--web");
  *out = std::move(*files);
  return bourse::core::Status::Ok();
}

int Serve(const std::vector<std::string>& args) {
  std::string db = "bourse.db";
  std::string listen = "127.0.0.1:8080";
  std::string ledger_key_path;
  std::string access_log = "-";
  std::string web_dir;  // "": the default (StaticFiles::FindWebDir)
  // Group-commit pacing under load (docs/broker.md): at most ~1 ms more
  // latency per stage, for fewer tree heads, WAL pages and disk flushes per
  // request; a lone client is never held back.
  int batch_interval_us = 1000;
  int sync_interval_us = 2000;
  size_t max_streams = bourse::broker::EventHubOptions{}.max_streams;
  size_t max_streams_per_peer = bourse::broker::EventHubOptions{}.max_streams_per_peer;
  HttpServer::Options ho;
  long long round_budget_ms = 1000;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string v;
    long long n = 0;
    if (a == "--db" && next(&db)) continue;
    if (a == "--listen" && next(&listen)) continue;
    if (a == "--ledger-key" && next(&ledger_key_path)) continue;
    if (a == "--tls-cert" && next(&ho.tls_cert)) continue;
    if (a == "--tls-key" && next(&ho.tls_key)) continue;
    if (a == "--access-log" && next(&access_log)) continue;
    if (a == "--web" && next(&web_dir)) continue;
    if (a == "--threads" && next(&v) && ParseInt(v, 1, 4096, &n)) {
      ho.threads = static_cast<int>(n);
      continue;
    }
    if (a == "--io-threads" && next(&v) && ParseInt(v, 0, 256, &n)) {
      ho.io_threads = static_cast<int>(n);
      continue;
    }
    if (a == "--batch-interval-us" && next(&v) && ParseInt(v, 0, 1'000'000, &n)) {
      batch_interval_us = static_cast<int>(n);
      continue;
    }
    if (a == "--sync-interval-us" && next(&v) && ParseInt(v, 0, 1'000'000, &n)) {
      sync_interval_us = static_cast<int>(n);
      continue;
    }
    if (a == "--rate-limit" && next(&v) && ParseInt(v, 0, 100'000'000, &n)) {
      ho.rate_limit_per_s = static_cast<double>(n);
      ho.rate_limit_burst = static_cast<double>(2 * n);
      continue;
    }
    if (a == "--peer-rate-limit" && next(&v) && ParseInt(v, 0, 100'000'000, &n)) {
      ho.peer_failure_rate_per_s = static_cast<double>(n);
      ho.peer_failure_burst = static_cast<double>(2 * n);
      continue;
    }
    if (a == "--stop-timeout" && next(&v) && ParseInt(v, 0, 3600, &n)) {
      ho.stop_timeout_s = static_cast<int>(n);
      continue;
    }
    if (a == "--max-streams-per-peer" && next(&v) && ParseInt(v, 1, 1000000, &n)) {
      max_streams_per_peer = static_cast<size_t>(n);
      continue;
    }
    if (a == "--max-streams" && next(&v) && ParseInt(v, 0, 1000000, &n)) {
      max_streams = static_cast<size_t>(n);
      continue;
    }
    if (a == "--round-budget-ms" && next(&v) && ParseInt(v, 0, 600'000, &n)) {
      round_budget_ms = n;
      continue;
    }
    if (a == "--max-body" && next(&v) && ParseInt(v, 1024, 1LL << 30, &n)) {
      ho.max_body_bytes = static_cast<size_t>(n);
      continue;
    }
    if (a == "-h" || a == "--help") {
      Usage();
      return 0;
    }
    Usage();
    return Fail("bad argument: " + a);
  }
  size_t colon = listen.rfind(':');
  long long port = 0;
  if (colon == std::string::npos || !ParseInt(listen.substr(colon + 1), 0, 65535, &port)) {
    return Fail("--listen: expected HOST:PORT, got " + listen);
  }
  ho.host = listen.substr(0, colon);
  ho.port = static_cast<int>(port);
  if (ledger_key_path.empty()) ledger_key_path = db + ".ledger-key.pem";
  if (access_log == "off") {
    ho.access_log = nullptr;
  } else if (access_log != "-") {
    ho.access_log = std::fopen(access_log.c_str(), "a");
    if (ho.access_log == nullptr) return Fail("cannot open access log " + access_log);
  }

  // Each connection and event stream is a descriptor: take the hard limit.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto key = bourse::core::PrivateKey::LoadPem(ledger_key_path);
  if (!key.ok()) return Fail("ledger key: " + key.status().ToString());
  bourse::broker::BrokerOptions bo;
  bo.db_path = db;
  bo.ledger_key = *key;
  bo.batch_interval_us = batch_interval_us;
  bo.sync_interval_us = sync_interval_us;
  bo.markets.round_budget_s = static_cast<double>(round_budget_ms) / 1000.0;
  bo.events.max_streams = max_streams;
  bo.events.max_streams_per_peer = max_streams_per_peer;
  auto broker = Broker::Open(bo);
  if (!broker.ok()) return Fail(broker.status().ToString());
  Broker* b = broker->get();
  std::optional<StaticFiles> web;
  if (auto st = LoadWeb(web_dir, &web); !st.ok()) return Fail(st.ToString());
  if (web) ho.static_files = &*web;
  HttpServer server(&b->router(), ho, &b->metrics(), [b] { return b->LedgerSize(); });
  if (auto st = server.Bind(); !st.ok()) return Fail(st.ToString());
  std::printf("{\"listening\":\"%s://%s:%d\",\"db\":\"%s\",\"ledger_key\":\"%s\"}\n",
              ho.tls_cert.empty() ? "http" : "https", ho.host.c_str(), server.port(), db.c_str(),
              b->broker_key().ToText().c_str());
  std::fflush(stdout);
  // Bound: a Type=notify unit (packaging/) may send its clients now.
  if (auto st = bourse::core::NotifyServiceManager("READY=1\nSTATUS=listening on port " +
                                           std::to_string(server.port()));
      !st.ok()) {
    std::fprintf(stderr, "bourse-broker: %s\n", st.ToString().c_str());
  }
  std::atomic<bool> signalled{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    signalled = true;
    std::fprintf(stderr, "bourse-broker: signal %d: draining in-flight requests\n", sig);
    bourse::core::NotifyServiceManager("STOPPING=1").IgnoreError();
    server.Stop();
  });
  server.Run();  // returns once stopped and in-flight requests are done
  // If Run returned without a signal (listen failure), wake the waiter.
  if (!signalled) pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  broker->reset();  // closes the store after every commit has finished
  if (ho.access_log != nullptr && ho.access_log != stderr) std::fclose(ho.access_log);
  std::fprintf(stderr, "bourse-broker: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "init") {
    return Init(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  return Serve(args);
}
