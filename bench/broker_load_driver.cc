// broker_load: drives a running bourse-broker over HTTP keep-alive
// connections and reports throughput and latency.
//
//   broker_load --url URL --key FILE --connections N --seconds S [--mix reads|writes|orders]
//               [--slice NAME]
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
// One thread per connection, each with its own keep-alive connection. The
// last line of output is a JSON object with ops_per_s, p50_ms and p99_ms.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "clients/client.h"
#include "core/keys.h"

namespace {

using bourse::clients::Client;
using Clock = std::chrono::steady_clock;

int Usage() {
  std::fputs(
      "usage: broker_load --url URL --key FILE --connections N --seconds S "
      "[--mix reads|writes|orders] [--slice NAME]\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, key_path, mix = "reads", slice, order_path;
  int connections = 8;
  double seconds = 5;
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
    } else {
      return Usage();
    }
  }
  if (url.empty() || connections < 1 || connections > 1024 || seconds <= 0) return Usage();
  if (mix != "reads" && mix != "writes" && mix != "orders") return Usage();
  std::optional<bourse::core::PrivateKey> key;
  if (!key_path.empty()) {
    auto k = bourse::core::PrivateKey::LoadPem(key_path);
    if (!k.ok()) {
      std::fprintf(stderr, "broker_load: --key: %s\n", k.status().ToString().c_str());
      return 2;
    }
    key = *k;
  }
  if ((mix == "writes" || mix == "orders") && !key) {
    std::fputs("broker_load: --key is required for signed workloads\n", stderr);
    return 2;
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
  auto t0 = Clock::now();
  for (int c = 0; c < connections; ++c) {
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
  std::printf(
      "{\"mix\":\"%s\",\"connections\":%d,\"seconds\":%.2f,\"ops\":%zu,\"errors\":%lld,"
      "\"ops_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
      mix.c_str(), connections, elapsed, all.size(), static_cast<long long>(errs),
      all.size() / elapsed, pct(0.50), pct(0.99));
  return errs == 0 ? 0 : 1;
}
