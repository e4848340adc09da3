#include "clients/agent/action_log.h"

#include <ctime>
#include <filesystem>

namespace bourse::agent {

ActionLog::ActionLog(std::string path, int64_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {
  if (path_.empty()) return;
  core::MutexLock l(&mu_);
  file_ = std::fopen(path_.c_str(), "ae");  // O_CLOEXEC: not inherited by policy commands
  if (file_ != nullptr) size_ = std::ftell(file_);
}

ActionLog::~ActionLog() {
  core::MutexLock l(&mu_);
  if (file_ != nullptr) std::fclose(file_);
}

void ActionLog::Rotate() {
  std::fclose(file_);
  std::error_code ec;
  std::filesystem::rename(path_, path_ + ".1", ec);
  file_ = std::fopen(path_.c_str(), "we");
  size_ = 0;
}

void ActionLog::Line(std::string_view text) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line = std::string(stamp) + " " + std::string(text) + "\n";
  core::MutexLock l(&mu_);
  std::fputs(line.c_str(), stderr);
  if (file_ == nullptr) return;
  if (size_ + static_cast<int64_t>(line.size()) > max_bytes_) Rotate();
  if (file_ == nullptr) return;
  std::fputs(line.c_str(), file_);
  std::fflush(file_);
  size_ += static_cast<int64_t>(line.size());
}

}  // namespace bourse::agent
