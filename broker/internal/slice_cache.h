// A read-through cache of serialized slices for GET /v1/slices/{name}, the
// hottest read. Coherence: a writer calls Invalidate(name) after its commit;
// it bumps a generation under the lock and drops the entry, and a reader only
// inserts what it read if the generation did not move while it read, so a
// stale row can never be cached after the commit that changed it.
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/mutex.h"

namespace bourse::broker::internal {

class SliceCache {
 public:
  struct Entry {
    int64_t expires = 0;
    std::string live;     // body while now < expires ("expired":false)
    std::string expired;  // body afterwards ("expired":true)
  };
  uint64_t Generation() EXCLUDES(mu_) {
    core::MutexLock l(&mu_);
    return gen_;
  }
  std::optional<std::string> Get(const std::string& name, int64_t now_s) EXCLUDES(mu_) {
    core::MutexLock l(&mu_);
    auto it = map_.find(name);
    if (it == map_.end()) return std::nullopt;
    return now_s < it->second.expires ? it->second.live : it->second.expired;
  }
  void Put(const std::string& name, Entry e, uint64_t gen_before_read) EXCLUDES(mu_) {
    core::MutexLock l(&mu_);
    if (gen_ != gen_before_read) return;
    if (map_.size() > 100000) map_.clear();
    map_[name] = std::move(e);
  }
  void Invalidate(const std::string& name) EXCLUDES(mu_) {
    core::MutexLock l(&mu_);
    ++gen_;
    map_.erase(name);
  }

 private:
  core::Mutex mu_;
  uint64_t gen_ GUARDED_BY(mu_) = 0;
  std::unordered_map<std::string, Entry> map_ GUARDED_BY(mu_);
};

}  // namespace bourse::broker::internal
