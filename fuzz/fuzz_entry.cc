// libFuzzer target: the ledger entry decoder, tree head decoder, proof path
// decoder and the auditor fed untrusted entry text. Nothing may crash or
// hang; a decoded entry re-encodes canonically and decodes to the same entry.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/canonical_json.h"
#include "core/keys.h"
#include "ledger/audit.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto e = bourse::ledger::ParseEntry(text);
  if (e.ok()) {
    auto canon = bourse::ledger::CanonicalEntry(*e);
    if (canon.ok()) {
      auto back = bourse::ledger::ParseEntry(*canon);
      if (!back.ok() || back->seq != e->seq || back->ts != e->ts || back->type != e->type ||
          back->prev != e->prev || back->body != e->body) {
        __builtin_trap();
      }
    }
  }
  auto j = bourse::core::ParseJson(text);
  if (j.ok()) {
    (void)bourse::ledger::TreeHeadFromJson(*j);
    if (j->is_object() && j->contains("path"))
      (void)bourse::ledger::ProofPathFromJson((*j)["path"]);
  }
  // The auditor on a "ledger" of the input's lines.
  static const bourse::core::PublicKey key = [] {
    std::array<uint8_t, 32> seed{};
    seed.fill(0x42);
    return bourse::core::PrivateKey::FromSeed(seed)->public_key();
  }();
  bourse::ledger::AuditOptions opt;
  opt.signature_threads = 0;
  bourse::ledger::LedgerAuditor auditor(key, opt);
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? text.npos : nl - start);
    if (!auditor.AddEntryText(line)) break;
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  (void)auditor.Finish();
  return 0;
}
