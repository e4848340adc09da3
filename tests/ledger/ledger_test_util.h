// Helpers shared by the ledger tests: temp directories removed even on
// failure, deterministic keys.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/keys.h"

namespace bourse::ledger::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "bourse-ledger-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline core::PrivateKey KeyFromByte(uint8_t b) {
  std::array<uint8_t, 32> seed{};
  seed.fill(b);
  return *core::PrivateKey::FromSeed(seed);
}

}  // namespace bourse::ledger::testing
