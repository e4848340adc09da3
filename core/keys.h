// Ed25519 keys and signatures: RFC 8032 signing and verification through
// libsodium, key files (PKCS#8 PEM) and key generation through OpenSSL 3.
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
// Why libsodium for the curve: OpenSSL 3.0's Ed25519 uses 32-bit field
// arithmetic; libsodium's 64-bit code verifies in about half the time and
// signs in about a third (docs/PERFORMANCE.md), and every mutating request
// costs the broker one verify. Ed25519 signatures are deterministic, so a
// signature here is bit for bit what OpenSSL (or any RFC 8032 signer) makes,
// and each verifies the other's (tests/core/keys_test.cc). Verification is
// the strict kind: it refuses a non-canonical S, a public key or R of small
// order and a non-canonical public key, which no honest signer produces and
// OpenSSL lets through (with a small-order key, anyone could "sign").
//
// Thread safety: PublicKey and PrivateKey are safe to use from many threads at
// once. Copies of a PrivateKey share its secret.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/mutex.h"
#include "core/status.h"

namespace bourse::core {

using Signature = std::array<uint8_t, 64>;
using RawPublicKey = std::array<uint8_t, 32>;

std::string SignatureToText(const Signature& sig);
// Errors: invalid_argument unless base64url of exactly 64 bytes.
Result<Signature> SignatureFromText(std::string_view text);

class PublicKey {
 public:
  // Errors: invalid_argument unless exactly 32 bytes. (Whether they encode a
  // usable point is decided by Verify, which refuses keys that do not.)
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

 private:
  friend class PrivateKey;
  PublicKey() = default;
  RawPublicKey raw_{};
  bool set_ = false;
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
// again and again: each is decoded once. Keys that fail to parse are not
// kept. Bounded: when `capacity` keys are held the cache is emptied and
// refilled.
// Thread safety: safe for concurrent use.
class PublicKeyCache {
 public:
  explicit PublicKeyCache(size_t capacity = 4096) : capacity_(capacity) {}
  // As PublicKey::FromText.
  Result<PublicKey> FromText(std::string_view text) EXCLUDES(mu_);

 private:
  struct Hash {  // looks up by string_view without building a string
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  size_t capacity_;
  Mutex mu_;
  std::unordered_map<std::string, PublicKey, Hash, std::equal_to<>> keys_ GUARDED_BY(mu_);
};

}  // namespace bourse::core
