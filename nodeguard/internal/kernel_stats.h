// Parsers of what the kernel and its tools say about a sliver's limits: the
// size an ext4 superblock records, and the per-class counters of
// `tc -s class show` (bytes sent, packets dropped).
//
//   char sb[1024];  // pread at offset 1024 of the image or its loop device
//   std::optional<int64_t> bytes = Ext4SizeBytes({sb, sizeof sb});
//   std::map<uint32_t, HtbClassStats> c = ParseHtbClassStats(tc_output);
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace bourse::nodeguard::internal {

// Bytes of an ext4 superblock, read at offset 1024 of its device.
inline constexpr size_t kExt4SuperblockBytes = 1024;

// The size of the filesystem an ext4 superblock describes (block count ×
// block size, the 64-bit count when the 64bit feature is on); nullopt when
// `sb` is shorter than kExt4SuperblockBytes, lacks ext4's magic, or holds an
// impossible block size.
std::optional<int64_t> Ext4SizeBytes(std::string_view sb);

// The counters of one HTB class since it was made.
struct HtbClassStats {
  int64_t sent_bytes = 0;  // "Sent N bytes"
  int64_t dropped = 0;     // "(dropped N, ...": packets its queue refused
  friend bool operator==(const HtbClassStats&, const HtbClassStats&) = default;
};

// The counters of each class of HTB qdisc 1: in `tc -s class show` output,
// by class minor. Classes of other qdiscs and lines it does not know are
// skipped.
std::map<uint32_t, HtbClassStats> ParseHtbClassStats(const std::string& text);

}  // namespace bourse::nodeguard::internal
