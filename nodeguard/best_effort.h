// Best-effort slivers (issue #20, PlanetLab's node manager): every live slice
// instantiated on this node gets a sliver, with or without an rcap, sharing
// the CPU and link that no redeemed rcap guarantees. The broker lists them in
// its answer to the guard's signed GET /v1/nodes/{node}/bindings as
//   "slices":[{"slice","expires","boot_script","share","disk_mib","mem_mib"}]
// (the settings already clamped to the slice's site limits, ledger/
// sliver_settings.h); the guard keeps the last list in its database so a
// rebooted node with the broker down restores them, and drops each entry at
// its `expires` by its own clock.
//
//   BestEffortParse p = ParseBestEffort(answer["slices"]);   // bad entries skipped, named
//   ... slivers of slices without rcaps created with zero resources ...
//   auto grants = ApplyBestEffort(p.slices, pools, now_s, &desired);
//
// Mapping (docs/nodeguard.md "Best-effort slivers"), after the rcaps and the
// broker-signed share table have been added:
//   spare cpu  = max(0, cpu_mcores − Σ desired cpu_mcores)
//   spare link = max(0, link_kbps − default_min_kbps − Σ desired net_min_kbps)
//   S          = Σ share of the live best-effort slivers in `desired`
//   a best-effort sliver with share k:
//     cpu_mcores   += floor(spare cpu × k / S)
//     net_min_kbps += floor(spare link × k / S)
//     net_max_kbps  = max(net_max_kbps, link_kbps)      (0 = no link enforced)
//     disk_mib     += its disk_mib;  mem_mib += its mem_mib
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nodeguard/enforcement.h"

namespace bourse::nodeguard {

struct BestEffortSlice {
  std::string slice;
  int64_t expires = 0;  // unix s; the sliver is torn down from then on
  std::string boot_script;
  int64_t share = 1;
  int64_t disk_mib = 0;
  int64_t mem_mib = 0;
  friend bool operator==(const BestEffortSlice&, const BestEffortSlice&) = default;
};

struct BestEffortParse {
  std::vector<BestEffortSlice> slices;  // the well-formed entries, by slice
  std::vector<std::string> errors;      // "slices[3].share: ..." for each one skipped
};

// The broker's "slices" member (or the guard's stored copy). A missing or
// null member is an empty list; an entry with a bad slice name, a share
// outside [1, 10000], a disk or memory outside [0, 2^40) MiB or a missing
// member is skipped and named in `errors`; a slice listed twice keeps the first.
BestEffortParse ParseBestEffort(const nlohmann::json& slices);
nlohmann::json BestEffortToJson(const std::vector<BestEffortSlice>& slices);

struct BestEffortPools {
  int64_t cpu_mcores = 0;        // the node's CPU
  int64_t link_kbps = 0;         // HTB root class rate (0: no link enforced)
  int64_t default_min_kbps = 0;  // the default class's guaranteed rate
};

// What one sliver got beyond its rcaps and share-table grant.
struct BestEffortGrant {
  int64_t share = 0;
  int64_t cpu_mcores = 0;
  int64_t net_rate_kbps = 0;
  int64_t disk_mib = 0;
  int64_t mem_mib = 0;
};

// Adds the best-effort part (file comment) to each sliver of `desired` whose
// slice is in `slices` and live at `now_s`. Slivers for slices without rcaps
// must already be in `desired` (with zero resources). Returns the grants by slice.
std::map<std::string, BestEffortGrant> ApplyBestEffort(const std::vector<BestEffortSlice>& slices,
                                                       const BestEffortPools& pools, int64_t now_s,
                                                       std::vector<SliverSpec>* desired);

}  // namespace bourse::nodeguard
