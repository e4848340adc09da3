// A per-key token bucket: each key may make `rate` requests per second on
// average with bursts of `burst`; beyond that the broker answers 429.
//
//   RateLimiter rl(/*rate=*/200, /*burst=*/400);
//   if (!rl.Allow(key_text, now_ms)) return ResourceExhausted("rate limit");
//
// The server keeps two: one per signing key (every verified request takes a
// token) and one per peer address for refused authentication (a peer whose
// bucket is empty is refused before its signature is checked; each refusal
// takes a token, see docs/broker.md).
//
// A rate of 0 disables the limit. Idle buckets are forgotten after a minute so
// the table stays small.
//
// Thread safety: Allow() is safe from any thread (sharded mutexes).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "core/mutex.h"

namespace bourse::broker {

class RateLimiter {
 public:
  RateLimiter(double rate_per_s, double burst) : rate_(rate_per_s), burst_(burst) {}
  // Takes a token from key's bucket; false (nothing taken) when it is empty.
  bool Allow(const std::string& key, int64_t now_ms);
  // Whether key's bucket holds a token, without taking one.
  bool HasToken(const std::string& key, int64_t now_ms);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_ms = 0;
  };
  struct Shard {
    core::Mutex mu;
    std::unordered_map<std::string, Bucket> buckets GUARDED_BY(mu);
    int64_t last_sweep_ms GUARDED_BY(mu) = 0;
  };
  double rate_;
  double burst_;
  std::array<Shard, 16> shards_;
};

}  // namespace bourse::broker
