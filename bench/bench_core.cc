// bench_core: the core vocabulary's hot paths.
//
// Workloads:
//   BM_Ed25519Sign     sign a 20-byte message (the size `openssl speed ed25519`
//                      signs), one pooled key, as the broker signs entries.
//   BM_Ed25519Verify   verify that signature (node guard, auditors).
//   BM_CanonicalJson   canonical JSON of an rcap without its "sig" (DESIGN §3):
//                      the bytes signed and hashed for every ticket.
//   BM_RcapSignBytes   the same object: canonical JSON + Ed25519 sign, end to end.
//   BM_MoneyParse      Money::Parse of a typical 9-decimal price string.
//   BM_MoneyFormat     Money::ToString (the canonical JSON form).
//   BM_MoneyMulRate    a fee: amount * rate, half-even.
//   BM_Sha256_64B      SHA-256 of 64 bytes (ledger leaf-sized).
//   BM_ParseJsonRcap   strict ParseJson of a signed rcap.
//
//   bench_core --benchmark_filter=Ed25519 --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "core/canonical_json.h"
#include "core/encoding.h"
#include "core/keys.h"
#include "core/money.h"
#include "core/sha256.h"

namespace {

using bourse::core::PrivateKey;

PrivateKey BenchKey(uint8_t fill) {
  std::array<uint8_t, 32> seed;
  seed.fill(fill);
  auto key = PrivateKey::FromSeed(seed);
  if (!key.ok()) std::abort();
  return *key;
}

// An rcap as DESIGN §3 defines it, without "sig".
nlohmann::json RcapObject() {
  PrivateKey issuer = BenchKey(1);
  PrivateKey holder = BenchKey(2);
  return nlohmann::json{
      {"v", 1},
      {"id", "rc_3q2-7wEvR1aYb8k0c9nZQw"},
      {"issuer", issuer.public_key().ToText()},
      {"holder", holder.public_key().ToText()},
      {"node", "planetlab1.cs.example.edu"},
      {"res",
       {{"cpu_mcores", 2000},
        {"mem_mib", 4096},
        {"disk_mib", 10240},
        {"net_min_kbps", 1000},
        {"net_max_kbps", 10000}}},
      {"not_before", 1764000000},
      {"not_after", 1764604800},
      {"parent", "rc_AAECAwQFBgcICQoLDA0ODw"},
  };
}

// 20 bytes, as `openssl speed ed25519` (OpenSSL 3.0 apps/speed.c) signs.
constexpr std::string_view kMessage20 = "01234567890123456789";

void BM_Ed25519Sign(benchmark::State& state) {
  PrivateKey key = BenchKey(7);
  for (auto _ : state) {
    auto sig = key.Sign(kMessage20);
    benchmark::DoNotOptimize(sig);
  }
  state.counters["sign/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Ed25519Sign);

void BM_Ed25519Verify(benchmark::State& state) {
  PrivateKey key = BenchKey(7);
  auto sig = key.Sign(kMessage20);
  const auto& pub = key.public_key();
  for (auto _ : state) {
    auto st = pub.Verify(bourse::core::AsBytes(kMessage20), sig);
    if (!st.ok()) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(st);
  }
  state.counters["verify/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Ed25519Verify);

void BM_CanonicalJson(benchmark::State& state) {
  nlohmann::json rcap = RcapObject();
  size_t bytes = 0;
  for (auto _ : state) {
    auto out = bourse::core::CanonicalJson(rcap);
    if (!out.ok()) state.SkipWithError("canonical json failed");
    bytes = out->size();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["doc_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_CanonicalJson);

void BM_RcapSignBytes(benchmark::State& state) {
  nlohmann::json rcap = RcapObject();
  PrivateKey key = BenchKey(1);
  for (auto _ : state) {
    auto bytes = bourse::core::CanonicalJson(rcap);
    auto sig = key.Sign(*bytes);
    benchmark::DoNotOptimize(sig);
  }
}
BENCHMARK(BM_RcapSignBytes);

void BM_ParseJsonRcap(benchmark::State& state) {
  nlohmann::json rcap = RcapObject();
  rcap["sig"] = bourse::core::SignatureToText(BenchKey(1).Sign(*bourse::core::CanonicalJson(rcap)));
  std::string text = *bourse::core::CanonicalJson(rcap);
  for (auto _ : state) {
    auto doc = bourse::core::ParseJson(text);
    if (!doc.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(doc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_ParseJsonRcap);

void BM_MoneyParse(benchmark::State& state) {
  for (auto _ : state) {
    auto m = bourse::core::Money::Parse("12345.678901234");
    if (!m.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_MoneyParse);

void BM_MoneyFormat(benchmark::State& state) {
  auto m = *bourse::core::Money::Parse("12345.678901234");
  for (auto _ : state) {
    std::string s = m.ToString();
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_MoneyFormat);

void BM_MoneyMulRate(benchmark::State& state) {
  auto m = *bourse::core::Money::Parse("12345.678901234");
  auto rate = *bourse::core::Money::Parse("0.05");
  for (auto _ : state) {
    auto fee = m.MulRate(rate, bourse::core::Rounding::kHalfEven);
    benchmark::DoNotOptimize(fee);
  }
}
BENCHMARK(BM_MoneyMulRate);

void BM_Sha256_64B(benchmark::State& state) {
  std::string msg(64, 'x');
  for (auto _ : state) {
    auto d = bourse::core::Sha256(msg);
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}
BENCHMARK(BM_Sha256_64B);

}  // namespace

BENCHMARK_MAIN();
