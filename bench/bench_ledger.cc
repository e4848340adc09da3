// bench_ledger: the ledger's hot paths.
//
//   BM_LedgerAppend/B        B entries per commit (one transaction, one signed
//                            tree head, WAL synced before the answer) on a file-backed store
//   BM_InclusionProof        RFC 9162 inclusion path on a 1,000,000-entry store
//   BM_ConsistencyProof      RFC 9162 consistency path on the same store
//   BM_ChainVerify           VerifyChain of a 3-link chain (3 Ed25519 verifies)
//   BM_Ed25519Verify         one Ed25519 verify, for comparison
//   BM_RedeemRestore1000     RedemptionBook::Restore of 1,000 chains
//
// The 1,000,000-entry store is built once and cached at
// $BOURSE_BENCH_DIR (default /tmp)/bourse-bench-ledger-1m.db; delete it to rebuild.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/encoding.h"
#include "core/random.h"
#include "ledger/merkle.h"
#include "ledger/rcap.h"
#include "ledger/redemption_book.h"
#include "ledger/store.h"

namespace {

using bourse::core::PrivateKey;
namespace ledger = bourse::ledger;

PrivateKey Key(uint8_t b) {
  std::array<uint8_t, 32> seed{};
  seed.fill(b);
  return *PrivateKey::FromSeed(seed);
}

std::string BenchDir() {
  const char* d = std::getenv("BOURSE_BENCH_DIR");
  return d ? d : "/tmp";
}

nlohmann::json TransferBody(int64_t i) {
  return {{"amount", "12.500000000"},
          {"from", "user" + std::to_string(i % 1000)},
          {"to", "user" + std::to_string((i * 7) % 1000)}};
}

void BM_LedgerAppend(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  std::string path = BenchDir() + "/bourse-bench-append-" + std::to_string(::getpid()) + ".db";
  std::filesystem::remove(path);
  ledger::StoreOptions o;
  o.signing_key = Key(1);
  auto store = std::move(*ledger::Store::Open(path, o));
  int64_t i = 0;
  for (auto _ : state) {
    std::vector<ledger::EntryInput> entries;
    entries.reserve(batch);
    for (int k = 0; k < batch; ++k) entries.push_back({"transfer", TransferBody(i++)});
    auto r = store->AppendBatch(std::move(entries));
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  store.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}
BENCHMARK(BM_LedgerAppend)->Arg(1)->Arg(100)->Arg(1000)->UseRealTime();

constexpr uint64_t kBig = 1'000'000;

ledger::Store& BigStore() {
  static std::unique_ptr<ledger::Store> store = [] {
    std::string path = BenchDir() + "/bourse-bench-ledger-1m.db";
    ledger::StoreOptions o;
    o.signing_key = Key(2);
    auto s = ledger::Store::Open(path, o);
    if (!s.ok()) {
      std::fprintf(stderr, "bench: %s\n", s.status().ToString().c_str());
      std::abort();
    }
    uint64_t have = (*s)->Head().size;
    if (have < kBig)
      std::fprintf(stderr, "bench: building %s (%llu entries)...\n", path.c_str(),
                   static_cast<unsigned long long>(kBig));
    while (have < kBig) {
      std::vector<ledger::EntryInput> entries;
      for (int k = 0; k < 10000 && have + k < kBig; ++k) {
        entries.push_back({"transfer", TransferBody(static_cast<int64_t>(have) + k)});
      }
      auto r = (*s)->AppendBatch(std::move(entries));
      if (!r.ok()) std::abort();
      have = r->head.size;
    }
    return std::move(*s);
  }();
  return *store;
}

void BM_InclusionProof(benchmark::State& state) {
  ledger::Store& store = BigStore();
  uint64_t size = store.Head().size;
  bourse::core::DeterministicRandom rng(7);
  for (auto _ : state) {
    uint64_t seq = rng.Uniform(size);
    auto p = store.InclusionProof(seq, size);
    if (!p.ok()) state.SkipWithError(p.status().ToString().c_str());
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_InclusionProof);

void BM_ConsistencyProof(benchmark::State& state) {
  ledger::Store& store = BigStore();
  uint64_t size = store.Head().size;
  bourse::core::DeterministicRandom rng(8);
  for (auto _ : state) {
    uint64_t first = 1 + rng.Uniform(size - 1);
    auto p = store.ConsistencyProof(first, size);
    if (!p.ok()) state.SkipWithError(p.status().ToString().c_str());
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_ConsistencyProof);

struct ChainFixture {
  PrivateKey site = Key(10), broker = Key(11), agent = Key(12), user = Key(13);
  std::vector<ledger::Rcap> chain;
  std::vector<bourse::core::PublicKey> trusted{site.public_key()};
  ChainFixture() {
    bourse::core::ResourceVector res{.cpu_mcores = 4000,
                                     .mem_mib = 8192,
                                     .disk_mib = 10000,
                                     .net_min_kbps = 1000,
                                     .net_max_kbps = 10000};
    auto root = *ledger::IssueRoot(site, {.id = "root",
                                          .holder = broker.public_key(),
                                          .node = "n1",
                                          .res = res,
                                          .interval = {1'700'000'000, 1'800'000'000}});
    auto mid = *ledger::Delegate(
        root, broker,
        {.id = "mid", .holder = agent.public_key(), .res = res, .interval = root.interval});
    auto leaf = *ledger::Delegate(
        mid, agent,
        {.id = "leaf", .holder = user.public_key(), .res = res, .interval = root.interval});
    chain = {root, mid, leaf};
  }
};

void BM_ChainVerify(benchmark::State& state) {
  ChainFixture f;
  for (auto _ : state) {
    auto v = ledger::VerifyChain(f.chain, f.trusted, "n1", 1'750'000'000);
    if (!v.ok()) state.SkipWithError(v.refusal().detail.c_str());
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_ChainVerify);

void BM_Ed25519Verify(benchmark::State& state) {
  ChainFixture f;
  std::string bytes = f.chain[2].SigningBytes();
  for (auto _ : state) {
    bool ok = f.agent.public_key().IsValidSignature(bourse::core::AsBytes(bytes), f.chain[2].sig);
    if (!ok) state.SkipWithError("bad signature");
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_Ed25519Verify);

void BM_RedeemRestore1000(benchmark::State& state) {
  PrivateKey site = Key(20), broker = Key(21), user = Key(22);
  std::vector<std::vector<ledger::Rcap>> chains;
  for (int r = 0; r < 10; ++r) {
    auto root = *ledger::IssueRoot(site, {.id = "r" + std::to_string(r),
                                          .holder = broker.public_key(),
                                          .node = "n1",
                                          .res = {.cpu_mcores = 100000, .mem_mib = 100000},
                                          .interval = {0, 1'000'000}});
    for (int i = 0; i < 100; ++i) {
      chains.push_back({root, *ledger::Delegate(root, broker,
                                                {.id = "s" + std::to_string(r * 100 + i),
                                                 .holder = user.public_key(),
                                                 .res = {.cpu_mcores = 1000, .mem_mib = 1000},
                                                 .interval = {i * 1000, i * 1000 + 5000}})});
    }
  }
  for (auto _ : state) {
    ledger::RedemptionBook book;
    auto n = book.Restore(chains);
    if (!n.ok()) state.SkipWithError(n.refusal().detail.c_str());
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_RedeemRestore1000);

}  // namespace

BENCHMARK_MAIN();
