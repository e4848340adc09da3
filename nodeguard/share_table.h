// The proportional-share table of a node (DESIGN §5, issue #7): the broker
// serves GET /v1/nodes/{node}/shares as
//   {"node":"n1","ts":<unix ms>,"shares":[{"slice","cpu_weight","net_kbps"}],"sig":"<b64url>"}
// with `sig` an Ed25519 signature by the broker's ledger key over the
// canonical JSON of the object without `sig`. The guard checks a table here
// before it believes it, and turns the shares into CPU weights and link rates
// of the slivers it already enforces:
//
//   ShareCheck c = CheckShareTable(body, broker_key, "n1", last_ts_ms);
//   if (!c.ok()) log(c.reason, c.detail);                  // keep the last good table
//   std::map<std::string, ShareGrant> g = ApplyShares(*c.table, pools, &desired);
//
// Mapping (docs/nodeguard.md): the shares divide what the node's active rcaps
// leave unguaranteed, so no rcap guarantee is diluted.
//   cpu pool  = max(0, cpu_mcores - Σ desired cpu_mcores)
//   link pool = max(0, link_kbps - default_min_kbps - Σ desired net_min_kbps)
//   a sliver whose slice has an entry gets
//     + floor(cpu pool × cpu_weight / 10000) mcores   (so cpu.shares / cpu.weight
//       grow linearly; the guard sets a cpu_cap = guaranteed quota afterwards,
//       so the quota grows with it)
//     + floor(link pool × net_kbps / Σ net_kbps of the table) kbps of HTB rate,
//       the ceil raised to at least the new rate.
// An entry whose slice has no sliver on the node gets nothing, and its part of
// the pool is not handed to the others (they pay for their own fraction).
//
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/keys.h"
#include "nodeguard/enforcement.h"

namespace bourse::nodeguard {

inline constexpr int64_t kShareCpuWeightTotal = 10000;

struct ShareEntry {
  std::string slice;
  int64_t cpu_weight = 0;  // out of 10000
  int64_t net_kbps = 0;    // out of the node's net_max_kbps at the broker
  friend bool operator==(const ShareEntry&, const ShareEntry&) = default;
};

struct ShareTable {
  std::string node;
  int64_t ts_ms = 0;
  std::vector<ShareEntry> shares;  // sorted by slice, one entry per slice
  std::string text;                // the signed document as received (what is persisted)
};

// The outcome of checking one table. reason is one of:
//   malformed      not JSON, or a field missing / of the wrong type / out of range
//   unsigned       no "sig" member
//   bad_signature  sig is not the broker key's signature of the canonical JSON
//   wrong_node     signed, but for another node
//   stale          signed for this node, but older than the table already held
struct ShareCheck {
  std::optional<ShareTable> table;
  std::string reason;
  std::string detail;
  bool ok() const { return table.has_value(); }
};

// Checks `body` (the broker's response) against the broker's ledger key, this
// node's id and the ts of the table already held (-1: none). A table with the
// same ts as the one held is accepted.
ShareCheck CheckShareTable(std::string_view body, const core::PublicKey& broker_key,
                           const std::string& node, int64_t held_ts_ms);

// What the node's rcaps leave for the share market to divide.
struct SharePools {
  int64_t cpu_mcores = 0;        // the node's CPU capacity
  int64_t link_kbps = 0;         // HTB root class rate (0: no link share)
  int64_t default_min_kbps = 0;  // the default class's guaranteed rate
};

// What one sliver got from the table.
struct ShareGrant {
  int64_t cpu_weight = 0;     // the table's entry
  int64_t net_kbps = 0;       // the table's entry
  int64_t cpu_mcores = 0;     // added to the sliver's guaranteed mcores
  int64_t net_rate_kbps = 0;  // added to the sliver's HTB rate
};

// Adds each share to the matching sliver of `desired` (by slice name) as the
// file comment says. Returns the grants by slice (only slivers with an entry).
std::map<std::string, ShareGrant> ApplyShares(const ShareTable& table, const SharePools& pools,
                                              std::vector<SliverSpec>* desired);

}  // namespace bourse::nodeguard
