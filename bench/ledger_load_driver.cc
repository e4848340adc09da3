// ledger_load: writes a realistic mixed ledger into a store, for timing
// appends and `bourse ledger verify` on big ledgers.
//
//   ledger_load --db PATH --entries N --batch B [--seed S] [--key-out FILE]
//
// Workload (per entry, drawn from a seeded generator; every operation goes
// through Accounts / CapacityLog inside Store::Commit, B entries per commit):
//   transfer between users                       ~40%
//   escrow hold (an order resting)               ~22%
//   escrow settle / release (fill or cancel)     ~22%
//   mint by the admin (top-ups)                  ~14%
//   rcap issued by a site (a node's root) ~0.5%, split by the broker into two
//   time slots of the root ~1.5% (each child signed; capacity never over-issued)
// 1,000 users, 20 sites, 200 nodes. The ledger key is derived from the seed;
// --key-out writes its public key text (for `bourse ledger verify --key`).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/json_codec.h"
#include "core/money.h"
#include "core/random.h"
#include "ledger/accounts.h"
#include "ledger/rcap.h"
#include "ledger/store.h"

using bourse::core::Money;
using bourse::core::PrivateKey;
using bourse::core::Status;
namespace ledger = bourse::ledger;

namespace {

PrivateKey KeyFrom(uint64_t seed, uint64_t n) {
  bourse::core::DeterministicRandom rng(seed * 1000003 + n);
  std::array<uint8_t, 32> s;
  rng.Fill(s);
  return *PrivateKey::FromSeed(s);
}

[[noreturn]] void Usage() {
  std::fputs("usage: ledger_load --db PATH --entries N --batch B [--seed S] [--key-out FILE]\n",
             stderr);
  std::exit(2);
}

struct Root {
  ledger::Rcap rcap;
  int next_slot = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string db, key_out;
  long long entries = -1, batch = -1;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage();
    if (a == "--db")
      db = argv[++i];
    else if (a == "--entries")
      entries = std::atoll(argv[++i]);
    else if (a == "--batch")
      batch = std::atoll(argv[++i]);
    else if (a == "--seed")
      seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--key-out")
      key_out = argv[++i];
    else
      Usage();
  }
  if (db.empty() || entries < 0 || batch <= 0) Usage();

  PrivateKey ledger_key = KeyFrom(seed, 0), admin = KeyFrom(seed, 1), broker = KeyFrom(seed, 2);
  std::vector<PrivateKey> sites;
  for (int i = 0; i < 20; ++i) sites.push_back(KeyFrom(seed, 100 + i));
  if (!key_out.empty()) std::ofstream(key_out) << ledger_key.public_key().ToText() << "\n";

  ledger::StoreOptions opts;
  opts.signing_key = ledger_key;
  auto opened = ledger::Store::Open(db, opts);
  if (!opened.ok()) {
    std::fprintf(stderr, "ledger_load: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  ledger::Store& store = **opened;
  if (store.Head().size != 0) {
    std::fprintf(stderr, "ledger_load: %s is not empty; use a new file\n", db.c_str());
    return 1;
  }

  bourse::core::DeterministicRandom rng(seed);
  constexpr int kUsers = 1000, kNodes = 200;
  std::vector<Money> balance(kUsers);
  struct Escrow {
    std::string id;
    int user;
    Money remaining;
  };
  std::vector<Escrow> open;
  std::vector<Root> roots;
  long long escrow_seq = 0, rcap_seq = 0;
  const int64_t t0 = 1'767'225'600;  // 2026-01-01

  auto user = [](int u) { return "user" + std::to_string(u); };
  auto t_start = std::chrono::steady_clock::now();
  long long written = 0;
  {
    // The admin, then every node with room for all the roots it may get (a
    // root needs a registered node: DESIGN 4.1).
    auto r = store.Commit([&](ledger::Txn& t) -> Status {
      BOURSE_RETURN_IF_ERROR(ledger::Accounts::AddAdmin(t, admin.public_key(), nullptr));
      for (int n = 0; n < kNodes; ++n) {
        const std::string id = "node" + std::to_string(n);
        const bourse::core::ResourceVector cap{.cpu_mcores = int64_t{8000} << 20,
                                               .mem_mib = int64_t{32768} << 20,
                                               .disk_mib = int64_t{500000} << 20,
                                               .net_min_kbps = int64_t{100000} << 20,
                                               .net_max_kbps = 1000000};
        BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordNode(
            t, id, cap, {{"node", id}, {"capacity", bourse::core::ResourceVectorToJson(cap)}}));
      }
      return Status::Ok();
    });
    if (!r.ok()) {
      std::fprintf(stderr, "ledger_load: %s\n", r.status().ToString().c_str());
      return 1;
    }
    written = 1 + kNodes;
  }
  while (written < entries) {
    long long want = std::min<long long>(batch, entries - written);
    // Work out the batch's operations first (with the local mirror of balances)
    // so that the commit fn cannot fail.
    auto r = store.Commit([&](ledger::Txn& t) -> Status {
      long long start = t.next_seq();
      while (static_cast<long long>(t.next_seq()) - start < want) {
        uint64_t dice = rng.Uniform(1000);
        int u = static_cast<int>(rng.Uniform(kUsers));
        if (dice < 5 || (dice < 20 && roots.empty())) {
          const PrivateKey& site = sites[rng.Uniform(sites.size())];
          int node = static_cast<int>(rng.Uniform(kNodes));
          auto root = ledger::IssueRoot(site, {.id = "root" + std::to_string(rcap_seq++),
                                               .holder = broker.public_key(),
                                               .node = "node" + std::to_string(node),
                                               .res = {.cpu_mcores = 8000,
                                                       .mem_mib = 32768,
                                                       .disk_mib = 500000,
                                                       .net_min_kbps = 100000,
                                                       .net_max_kbps = 1000000},
                                               .interval = {t0, t0 + 365 * 86400}});
          if (!root.ok()) return root.status();
          BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordIssued(t, *root));
          roots.push_back({*root, 0});
        } else if (dice < 20) {
          Root& root = roots[rng.Uniform(roots.size())];
          if (root.next_slot >= 365 * 24) continue;
          int64_t slot = t0 + static_cast<int64_t>(root.next_slot++) * 3600;
          auto half = root.rcap.res;
          half.cpu_mcores /= 2;
          half.mem_mib /= 2;
          half.disk_mib /= 2;
          half.net_min_kbps /= 2;
          std::vector<ledger::ChildSpec> kids = {{.id = "rc" + std::to_string(rcap_seq++),
                                                  .holder = KeyFrom(seed, 10).public_key(),
                                                  .res = half,
                                                  .interval = {slot, slot + 3600}},
                                                 {.id = "rc" + std::to_string(rcap_seq++),
                                                  .holder = KeyFrom(seed, 11).public_key(),
                                                  .res = half,
                                                  .interval = {slot, slot + 3600}}};
          auto split = ledger::Split(root.rcap, broker, kids);
          if (!split.ok()) return split.status();
          BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordSplit(t, root.rcap.id, *split));
        } else if (dice < 160 || balance[u].is_zero()) {
          Money amt = Money::FromNanos(static_cast<int64_t>(1 + rng.Uniform(1000)) * 1'000'000'000);
          BOURSE_RETURN_IF_ERROR(ledger::Accounts::Mint(t, admin.public_key(), user(u), amt));
          balance[u] = *balance[u].Add(amt);
        } else if (dice < 560) {
          int v = static_cast<int>(rng.Uniform(kUsers));
          if (v == u) continue;
          Money amt = *balance[u].DivInt(static_cast<int64_t>(2 + rng.Uniform(8)),
                                         bourse::core::Rounding::kFloor);
          if (!amt.is_positive()) continue;
          BOURSE_RETURN_IF_ERROR(ledger::Accounts::Transfer(t, user(u), user(v), amt));
          balance[u] = *balance[u].Sub(amt);
          balance[v] = *balance[v].Add(amt);
        } else if (dice < 780 || open.empty()) {
          Money amt = *balance[u].DivInt(static_cast<int64_t>(2 + rng.Uniform(4)),
                                         bourse::core::Rounding::kFloor);
          if (!amt.is_positive()) continue;
          std::string id = "esc" + std::to_string(escrow_seq++);
          BOURSE_RETURN_IF_ERROR(ledger::Accounts::EscrowHold(t, id, user(u), amt));
          balance[u] = *balance[u].Sub(amt);
          open.push_back({id, u, amt});
        } else {
          size_t k = rng.Uniform(open.size());
          Escrow& e = open[k];
          Money part =
              rng.Uniform(2) ? e.remaining : *e.remaining.DivInt(2, bourse::core::Rounding::kFloor);
          if (!part.is_positive()) part = e.remaining;
          if (rng.Uniform(4) == 0) {
            BOURSE_RETURN_IF_ERROR(ledger::Accounts::EscrowRelease(t, e.id, part));
            balance[e.user] = *balance[e.user].Add(part);
          } else {
            int seller = static_cast<int>(rng.Uniform(kUsers));
            BOURSE_RETURN_IF_ERROR(ledger::Accounts::EscrowSettle(t, e.id, user(seller), part));
            balance[seller] = *balance[seller].Add(part);
          }
          e.remaining = *e.remaining.Sub(part);
          if (e.remaining.is_zero()) {
            open[k] = std::move(open.back());
            open.pop_back();
          }
        }
      }
      return Status::Ok();
    });
    if (!r.ok()) {
      std::fprintf(stderr, "ledger_load: commit failed: %s\n", r.status().ToString().c_str());
      return 1;
    }
    written = static_cast<long long>(r->head.size);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  auto head = store.Head();
  std::printf("ledger_load: %llu entries in %.2f s (%.0f entries/s), batch %lld, %zu roots\n",
              static_cast<unsigned long long>(head.size), secs, head.size / secs, batch,
              roots.size());
  std::printf("ledger key %s\n", ledger_key.public_key().ToText().c_str());
  return 0;
}
