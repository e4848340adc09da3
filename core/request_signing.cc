#include "core/request_signing.h"

#include <charconv>

#include "core/encoding.h"
#include "core/random.h"
#include "core/sha256.h"

namespace bourse::core {
namespace {

bool ValidNonce(std::string_view n) {
  if (n.size() < 16 || n.size() > 64) return false;
  for (char c : n) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string RequestSigningString(std::string_view method, std::string_view path_with_query,
                                 std::string_view timestamp, std::string_view nonce,
                                 std::string_view body) {
  std::string s;
  s.reserve(method.size() + path_with_query.size() + timestamp.size() + nonce.size() + 68);
  s.append(method).append("\n").append(path_with_query).append("\n").append(timestamp);
  s.append("\n").append(nonce).append("\n").append(HexEncode(Sha256(body)));
  return s;
}

SignedHeaders SignRequest(const PrivateKey& key, std::string_view method,
                          std::string_view path_with_query, std::string_view body,
                          int64_t now_seconds) {
  SignedHeaders h;
  h.key = key.public_key().ToText();
  h.timestamp = std::to_string(now_seconds);
  h.nonce = NewId();
  h.signature = SignatureToText(
      key.Sign(RequestSigningString(method, path_with_query, h.timestamp, h.nonce, body)));
  return h;
}

bool NonceCache::CheckAndInsert(std::string_view key, std::string_view nonce,
                                int64_t now_seconds) {
  std::string id(key);
  id += ' ';
  id += nonce;
  MutexLock lock(&mu_);
  while (!order_.empty() && order_.front().first < now_seconds - window_) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  if (!seen_.insert(id).second) return false;
  order_.emplace_back(now_seconds, std::move(id));
  return true;
}

Result<PublicKey> VerifyRequest(const SignedHeaders& h, std::string_view method,
                                std::string_view path_with_query, std::string_view body,
                                int64_t now_seconds, NonceCache* replay_cache,
                                PublicKeyCache* key_cache) {
  if (h.key.empty()) return Unauthenticated("missing Bourse-Key header");
  if (h.timestamp.empty()) return Unauthenticated("missing Bourse-Timestamp header");
  if (h.nonce.empty()) return Unauthenticated("missing Bourse-Nonce header");
  if (h.signature.empty()) return Unauthenticated("missing Bourse-Signature header");
  auto key = key_cache != nullptr ? key_cache->FromText(h.key) : PublicKey::FromText(h.key);
  if (!key.ok()) return Unauthenticated("malformed Bourse-Key: " + key.status().message());
  int64_t ts = 0;
  auto [p, ec] = std::from_chars(h.timestamp.data(), h.timestamp.data() + h.timestamp.size(), ts);
  if (ec != std::errc() || p != h.timestamp.data() + h.timestamp.size() || ts < 0 ||
      h.timestamp.size() > 12) {
    return Unauthenticated("malformed Bourse-Timestamp: must be decimal Unix seconds");
  }
  if (!ValidNonce(h.nonce)) {
    return Unauthenticated("malformed Bourse-Nonce: must be 16 to 64 chars of [A-Za-z0-9_-]");
  }
  int64_t skew = ts > now_seconds ? ts - now_seconds : now_seconds - ts;
  if (skew > kMaxClockSkewSeconds) {
    return Unauthenticated("stale request: timestamp is " + std::to_string(skew) +
                           " s off (limit " + std::to_string(kMaxClockSkewSeconds) + " s)");
  }
  auto sig = SignatureFromText(h.signature);
  if (!sig.ok()) return Unauthenticated("bad signature: malformed Bourse-Signature");
  std::string msg = RequestSigningString(method, path_with_query, h.timestamp, h.nonce, body);
  if (!key->Verify(AsBytes(msg), *sig).ok()) return Unauthenticated("bad signature");
  if (replay_cache != nullptr && !replay_cache->CheckAndInsert(h.key, h.nonce, now_seconds)) {
    return Unauthenticated("replayed request: nonce already used");
  }
  return key;
}

}  // namespace bourse::core
