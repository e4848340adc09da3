// Ed25519 keys and signatures through OpenSSL 3 EVP.
//
//   BOURSE_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::Generate());
//   BOURSE_RETURN_IF_ERROR(key.SavePem("/var/lib/bourse/admin.pem"));   // 0600
//   Signature sig = key.Sign(AsBytes(message));
//   std::string who = key.public_key().ToText();       // "ed25519:<b64url>"
//   BOURSE_ASSIGN_OR_RETURN(PublicKey pub, PublicKey::FromText(who));
//   BOURSE_RETURN_IF_ERROR(pub.Verify(AsBytes(message), sig));
//
// The text form of a public key is "ed25519:" + base64url (no padding) of its
// 32 raw bytes; of a signature, base64url of its 64 bytes.
//
// Speed: each key keeps its OpenSSL key object and a small pool of initialised
// signing/verifying contexts, so a call costs what the curve arithmetic costs
// (openssl speed's loop) rather than a fresh fetch and init per call.
//
// Thread safety: PublicKey and PrivateKey are safe to use from many threads at
// once (the context pool is locked). Copies share the underlying key.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

namespace bourse::core {

using Signature = std::array<uint8_t, 64>;
using RawPublicKey = std::array<uint8_t, 32>;

std::string SignatureToText(const Signature& sig);
// Errors: invalid_argument unless base64url of exactly 64 bytes.
Result<Signature> SignatureFromText(std::string_view text);

class PublicKey {
 public:
  // Errors: invalid_argument unless exactly 32 bytes forming a valid key.
  static Result<PublicKey> FromRaw(std::span<const uint8_t> raw);
  // Errors: invalid_argument unless "ed25519:" + base64url of 32 bytes.
  static Result<PublicKey> FromText(std::string_view text);

  std::string ToText() const;
  const RawPublicKey& raw() const { return raw_; }

  // OK iff `sig` is a valid Ed25519 signature of `message` by this key.
  // Errors: unauthenticated ("signature does not verify").
  Status Verify(std::span<const uint8_t> message, std::span<const uint8_t> sig) const;
  bool IsValidSignature(std::span<const uint8_t> message, std::span<const uint8_t> sig) const {
    return Verify(message, sig).ok();
  }

  friend bool operator==(const PublicKey& a, const PublicKey& b) { return a.raw_ == b.raw_; }
  friend bool operator<(const PublicKey& a, const PublicKey& b) { return a.raw_ < b.raw_; }

  struct Impl;

 private:
  friend class PrivateKey;
  PublicKey() = default;
  RawPublicKey raw_{};
  std::shared_ptr<Impl> impl_;
};

class PrivateKey {
 public:
  // A new key from the system RNG. Errors: internal when OpenSSL fails.
  static Result<PrivateKey> Generate();
  // The RFC 8032 private key (32-byte seed). Errors: invalid_argument.
  static Result<PrivateKey> FromSeed(std::span<const uint8_t> seed);
  // PKCS#8 PEM text. Errors: invalid_argument when not an Ed25519 private key.
  static Result<PrivateKey> FromPem(std::string_view pem);
  // Reads a PEM file. Errors: not_found; permission_denied when the file is
  // readable or writable by group or others (it must be 0600 or stricter);
  // invalid_argument when it holds no Ed25519 private key.
  static Result<PrivateKey> LoadPem(const std::string& path);

  // PKCS#8 PEM text of the private key.
  std::string ToPem() const;
  // Writes the PEM to `path` with mode 0600 (atomically: temp file + rename).
  // Errors: unavailable when the file cannot be written.
  Status SavePem(const std::string& path) const;

  const PublicKey& public_key() const { return public_; }
  Signature Sign(std::span<const uint8_t> message) const;
  Signature Sign(std::string_view message) const;

  struct Impl;

 private:
  PrivateKey() = default;
  PublicKey public_;
  std::shared_ptr<Impl> impl_;
};

// Parsed public keys by their text form, for servers that see the same keys
// again and again: each is parsed once, and its pooled verifier contexts are
// reused across requests (parsing a key and setting up a verifier cost about
// a quarter of a verify). Keys that fail to parse are not kept. Bounded: when
// `capacity` keys are held the cache is emptied and refilled.
// Thread safety: safe for concurrent use.
class PublicKeyCache {
 public:
  explicit PublicKeyCache(size_t capacity = 4096) : capacity_(capacity) {}
  // As PublicKey::FromText.
  Result<PublicKey> FromText(std::string_view text);

 private:
  size_t capacity_;
  std::mutex mu_;
  std::unordered_map<std::string, PublicKey> keys_;
};

}  // namespace bourse::core
