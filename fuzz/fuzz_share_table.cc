// libFuzzer target: the node guard's check of the broker's share table
// (nodeguard/share_table.h), fed untrusted response bodies. The body is
// checked as received (nearly always refused before or at the signature);
// when it is a JSON object it is also re-signed with the fuzzer's broker key,
// so the parser of the signed part (node, ts, shares) is reached too, and an
// accepted table goes through ApplyShares. Nothing may crash or hang; an
// accepted table names this node and has shares sorted by slice.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/keys.h"
#include "nodeguard/share_table.h"

namespace {

const bourse::core::PrivateKey& Key() {
  static const bourse::core::PrivateKey k = [] {
    std::array<uint8_t, 32> seed{};
    seed.fill(7);
    return *bourse::core::PrivateKey::FromSeed(seed);
  }();
  return k;
}

void Check(std::string_view body) {
  auto c = bourse::nodeguard::CheckShareTable(body, Key().public_key(), "n1", 5);
  if (!c.ok()) return;
  if (c.table->node != "n1") __builtin_trap();
  for (size_t i = 1; i < c.table->shares.size(); ++i) {
    if (!(c.table->shares[i - 1].slice < c.table->shares[i].slice)) __builtin_trap();
  }
  std::vector<bourse::nodeguard::SliverSpec> desired(2);
  desired[0].name = c.table->shares.empty() ? "a" : c.table->shares[0].slice;
  desired[0].res.cpu_mcores = 500;
  desired[1].name = "other";
  (void)bourse::nodeguard::ApplyShares(
      *c.table, {.cpu_mcores = 4000, .link_kbps = 100000, .default_min_kbps = 1000}, &desired);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Check(text);
  auto j = bourse::core::ParseJson(text);
  if (!j.ok() || !j->is_object()) return 0;
  j->erase("sig");
  auto bytes = bourse::core::CanonicalJson(*j);
  if (!bytes.ok()) return 0;
  (*j)["sig"] = bourse::core::SignatureToText(Key().Sign(*bytes));
  Check(j->dump());
  return 0;
}
