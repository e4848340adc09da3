// Randomness: an injectable source, with OpenSSL's RAND as the real one and a
// seeded deterministic one for tests and replays.
//
//   std::string id = NewId("sl");      // "sl_" + 22 base64url chars (128 bits)
//   SystemRandom rng; rng.Fill(buf);
//   DeterministicRandom test_rng(42);  // same sequence for the same seed
//
// Thread safety: SystemRandom and NewId are safe from any thread;
// DeterministicRandom is not.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace bourse::core {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void Fill(std::span<uint8_t> out) = 0;
  uint64_t NextU64();
  // Uniform in [0, bound); bound > 0.
  uint64_t Uniform(uint64_t bound);
};

// OpenSSL RAND_bytes; aborts if the system RNG fails (nothing safe to do then).
class SystemRandom final : public RandomSource {
 public:
  void Fill(std::span<uint8_t> out) override;
};

// splitmix64-based; reproducible. Never for keys or nonces.
class DeterministicRandom final : public RandomSource {
 public:
  explicit DeterministicRandom(uint64_t seed) : state_(seed) {}
  void Fill(std::span<uint8_t> out) override;

 private:
  uint64_t state_;
};

// A fresh random id: prefix + "_" + base64url of 16 random bytes (or just the
// 22 characters when prefix is empty).
std::string NewId(std::string_view prefix = "", RandomSource* rng = nullptr);

}  // namespace bourse::core
