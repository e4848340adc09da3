#include "broker/rate_limiter.h"

#include <algorithm>
#include <functional>

namespace bourse::broker {

bool RateLimiter::Allow(const std::string& key, int64_t now_ms) {
  if (rate_ <= 0) return true;
  Shard& s = shards_[std::hash<std::string>()(key) % shards_.size()];
  core::MutexLock l(&s.mu);
  if (now_ms - s.last_sweep_ms > 60'000) {
    for (auto it = s.buckets.begin(); it != s.buckets.end();) {
      it = now_ms - it->second.last_ms > 60'000 ? s.buckets.erase(it) : std::next(it);
    }
    s.last_sweep_ms = now_ms;
  }
  auto [it, fresh] = s.buckets.try_emplace(key);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = burst_;
    b.last_ms = now_ms;
  }
  double elapsed = std::max<int64_t>(0, now_ms - b.last_ms) / 1000.0;
  b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
  b.last_ms = now_ms;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

bool RateLimiter::HasToken(const std::string& key, int64_t now_ms) {
  if (rate_ <= 0) return true;
  Shard& s = shards_[std::hash<std::string>()(key) % shards_.size()];
  core::MutexLock l(&s.mu);
  auto it = s.buckets.find(key);
  if (it == s.buckets.end()) return true;  // a fresh bucket is full
  const Bucket& b = it->second;
  double elapsed = std::max<int64_t>(0, now_ms - b.last_ms) / 1000.0;
  return std::min(burst_, b.tokens + elapsed * rate_) >= 1.0;
}

}  // namespace bourse::broker
