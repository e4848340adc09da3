// libFuzzer target: the rcap / chain parser and chain verification on
// untrusted bytes. Nothing may crash, hang or leak; whatever parses must
// re-serialize to a canonical form that parses back to the same rcap, and
// verification must return a verdict (never abort).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/keys.h"
#include "ledger/rcap.h"
#include "ledger/redemption_book.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const std::vector<bourse::core::PublicKey> trusted = [] {
    std::array<uint8_t, 32> seed{};
    seed.fill(0x11);
    return std::vector<bourse::core::PublicKey>{
        bourse::core::PrivateKey::FromSeed(seed)->public_key()};
  }();

  auto one = bourse::ledger::Rcap::Parse(text);
  if (one.ok()) {
    auto again = bourse::ledger::Rcap::Parse(one->Canonical());
    if (!again.ok() || !(*again == *one)) __builtin_trap();
    (void)one->CheckSignature();
  }
  auto chain = bourse::ledger::ParseChain(text);
  if (chain.ok()) {
    auto back = bourse::ledger::ParseChain(bourse::ledger::ChainToJson(*chain).dump());
    if (!back.ok() || back->size() != chain->size()) __builtin_trap();
    auto v = bourse::ledger::VerifyChain(*chain, trusted, "n1", 1'750'000'000);
    if (!v.ok() && bourse::ledger::RefusalReasonName(v.refusal().reason).empty()) __builtin_trap();
    bourse::ledger::RedemptionBook book;
    (void)book.Redeem(*chain);
    (void)book.Redeem(*chain);
  }
  (void)bourse::ledger::VerifyChainJson(text, trusted, "n1", 1'750'000'000);
  (void)bourse::ledger::ParseTrustText(text);
  return 0;
}
