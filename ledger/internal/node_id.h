// Small helpers of the ledger store: the node ids of ledger_nodes and a
// transparent string hash for its statement cache.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace bourse::ledger::internal {

// Transparent hash for string-keyed maps looked up by string_view or
// const char* without building a std::string (statement caches).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Node id of the complete subtree (level, index): its in-order position.
inline int64_t NodeId(int level, uint64_t index) {
  return static_cast<int64_t>((index << (level + 1)) + (uint64_t{1} << level) - 1);
}

}  // namespace bourse::ledger::internal
