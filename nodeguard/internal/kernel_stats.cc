#include "nodeguard/internal/kernel_stats.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

namespace bourse::nodeguard::internal {
namespace {

uint64_t Le(std::string_view b, size_t off, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(b[off + i])) << (8 * i);
  return v;
}

}  // namespace

std::optional<int64_t> Ext4SizeBytes(std::string_view sb) {
  // Offsets of struct ext4_super_block (fs/ext4/ext4.h).
  constexpr size_t kBlocksLo = 0x04, kLogBlockSize = 0x18, kMagic = 0x38, kIncompat = 0x60,
                   kBlocksHi = 0x150;
  constexpr uint64_t kIncompat64Bit = 0x80;
  if (sb.size() < kExt4SuperblockBytes || Le(sb, kMagic, 2) != 0xEF53) return std::nullopt;
  uint64_t log = Le(sb, kLogBlockSize, 4);
  if (log > 6) return std::nullopt;  // 1 KiB << 6 = 64 KiB, ext4's largest block
  uint64_t blocks = Le(sb, kBlocksLo, 4);
  if (Le(sb, kIncompat, 4) & kIncompat64Bit) blocks |= Le(sb, kBlocksHi, 4) << 32;
  uint64_t bytes = blocks << (10 + log);
  if (blocks == 0 || (bytes >> (10 + log)) != blocks || bytes > static_cast<uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  return static_cast<int64_t>(bytes);
}

std::map<uint32_t, HtbClassStats> ParseHtbClassStats(const std::string& text) {
  std::map<uint32_t, HtbClassStats> out;
  std::istringstream in(text);
  std::string line;
  HtbClassStats* cur = nullptr;
  while (std::getline(in, line)) {
    if (line.rfind("class ", 0) == 0) {
      cur = nullptr;
      if (line.rfind("class htb 1:", 0) != 0) continue;
      char* end = nullptr;
      unsigned long minor = std::strtoul(line.c_str() + 12, &end, 16);
      if (end == line.c_str() + 12) continue;
      cur = &out[static_cast<uint32_t>(minor)];
      continue;
    }
    if (cur == nullptr) continue;
    size_t p = line.find("Sent ");
    if (p == std::string::npos) continue;
    cur->sent_bytes = std::strtoll(line.c_str() + p + 5, nullptr, 10);
    size_t d = line.find("(dropped ", p);
    if (d != std::string::npos) cur->dropped = std::strtoll(line.c_str() + d + 9, nullptr, 10);
  }
  return out;
}

}  // namespace bourse::nodeguard::internal
