// The agent's log: one line per action ("2026-12-06T20:15:12Z place m1 ..."),
// to stderr and to <state_dir>/agent.log. The file is bounded: past
// `max_bytes` it is renamed agent.log.1 (replacing the previous one) and a
// new agent.log begins, so at most twice `max_bytes` are kept.
//
// Thread safety: Line() may be called from any thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/mutex.h"

namespace bourse::agent {

class ActionLog {
 public:
  // path "" logs to stderr only.
  explicit ActionLog(std::string path, int64_t max_bytes = 1 << 20);
  ~ActionLog();
  ActionLog(const ActionLog&) = delete;
  ActionLog& operator=(const ActionLog&) = delete;

  void Line(std::string_view text) EXCLUDES(mu_);

 private:
  void Rotate() REQUIRES(mu_);
  core::Mutex mu_;
  const std::string path_;
  const int64_t max_bytes_;
  std::FILE* file_ GUARDED_BY(mu_) = nullptr;
  int64_t size_ GUARDED_BY(mu_) = 0;
};

}  // namespace bourse::agent
