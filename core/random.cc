#include "core/random.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "core/encoding.h"

namespace bourse::core {

uint64_t RandomSource::NextU64() {
  uint8_t b[8];
  Fill(b);
  uint64_t v = 0;
  for (uint8_t x : b) v = (v << 8) | x;
  return v;
}

uint64_t RandomSource::Uniform(uint64_t bound) {
  if (bound <= 1) return 0;
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  for (;;) {
    uint64_t v = NextU64();
    if (v < limit) return v % bound;
  }
}

void SystemRandom::Fill(std::span<uint8_t> out) {
  if (out.empty()) return;
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) std::abort();
}

void DeterministicRandom::Fill(std::span<uint8_t> out) {
  size_t i = 0;
  while (i < out.size()) {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int k = 0; k < 8 && i < out.size(); ++k, ++i) out[i] = static_cast<uint8_t>(z >> (8 * k));
  }
}

std::string NewId(std::string_view prefix, RandomSource* rng) {
  uint8_t b[16];
  if (rng != nullptr) {
    rng->Fill(b);
  } else {
    SystemRandom().Fill(b);
  }
  std::string id(prefix);
  if (!id.empty()) id += '_';
  id += Base64UrlEncode(b);
  return id;
}

}  // namespace bourse::core
