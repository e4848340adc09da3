// Signed HTTP requests (DESIGN §7): how every mutating request to the broker
// (and every node guard read of its own bindings) proves who sent it.
//
//   // client side
//   SignedHeaders h = SignRequest(key, "POST", "/v1/slices", body, clock.NowSeconds());
//   // send h.key, h.timestamp, h.nonce, h.signature as Bourse-Key,
//   // Bourse-Timestamp, Bourse-Nonce, Bourse-Signature
//
//   // server side
//   BOURSE_ASSIGN_OR_RETURN(PublicKey who,
//       VerifyRequest(headers, "POST", "/v1/slices?x=1", body, now_s, &replay_cache));
//
// The signed string is
//   METHOD "\n" PATH_WITH_QUERY "\n" TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body))
// TIMESTAMP is decimal Unix seconds; NONCE is 16 to 64 chars of [A-Za-z0-9_-].
//
// Thread safety: the functions are pure; NonceCache is internally locked.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/keys.h"
#include "core/mutex.h"
#include "core/status.h"

namespace bourse::core {

inline constexpr int64_t kMaxClockSkewSeconds = 300;

struct SignedHeaders {
  std::string key;        // Bourse-Key: ed25519:<b64url>
  std::string timestamp;  // Bourse-Timestamp
  std::string nonce;      // Bourse-Nonce
  std::string signature;  // Bourse-Signature: b64url
};

// The exact bytes that are signed.
std::string RequestSigningString(std::string_view method, std::string_view path_with_query,
                                 std::string_view timestamp, std::string_view nonce,
                                 std::string_view body);

// Signs with a fresh random nonce (22 base64url chars).
SignedHeaders SignRequest(const PrivateKey& key, std::string_view method,
                          std::string_view path_with_query, std::string_view body,
                          int64_t now_seconds);

// Remembers (key, nonce) pairs for the skew window so a replay is refused.
class NonceCache {
 public:
  explicit NonceCache(int64_t window_seconds = 2 * kMaxClockSkewSeconds + 60)
      : window_(window_seconds) {}
  // False when (key, nonce) was already seen within the window; else records it.
  bool CheckAndInsert(std::string_view key, std::string_view nonce, int64_t now_seconds)
      EXCLUDES(mu_);

 private:
  int64_t window_;
  Mutex mu_;
  std::unordered_set<std::string> seen_ GUARDED_BY(mu_);
  std::deque<std::pair<int64_t, std::string>> order_ GUARDED_BY(mu_);
};

// Verifies the four headers (values as received; empty string = absent).
// Errors: unauthenticated with the reason: "missing Bourse-Key header" (and
// likewise for the others), "malformed Bourse-Key", "malformed
// Bourse-Timestamp", "malformed Bourse-Nonce", "stale request: timestamp is
// N s off (limit 300 s)", "bad signature", "replayed request: nonce already
// used". The replay check runs last, so a bad request never burns a nonce.
// key_cache: when given, the key is parsed through it (servers).
Result<PublicKey> VerifyRequest(const SignedHeaders& headers, std::string_view method,
                                std::string_view path_with_query, std::string_view body,
                                int64_t now_seconds, NonceCache* replay_cache,
                                PublicKeyCache* key_cache = nullptr);

}  // namespace bourse::core
