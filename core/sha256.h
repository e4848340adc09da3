// SHA-256 through OpenSSL 3 EVP, with the digest implementation fetched once
// per process and reused (OpenSSL 3's implicit fetch on each one-shot call
// costs several times the hash of a short message).
//
//   Digest d = Sha256(AsBytes("abc"));
//   Sha256Hasher h; h.Update(prefix); h.Update(body); Digest d2 = h.Finish();
//
// Thread safety: Sha256() is safe from any thread. A Sha256Hasher is not
// shared between threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace bourse::core {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(std::span<const uint8_t> data);
Digest Sha256(std::string_view data);

class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::span<const uint8_t> data);
  void Update(std::string_view data);
  void UpdateByte(uint8_t b) { Update(std::span<const uint8_t>(&b, 1)); }
  // Returns the digest and resets the hasher for reuse.
  Digest Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bourse::core
