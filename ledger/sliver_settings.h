// Best-effort slivers (issue #20): what a slice asks for on every node it is
// instantiated on (set_resources), the limits a site or the admin puts on
// that, and the rule that keeps the one within the other. Written once and
// applied both by the broker (over its tables, inside the Mutate that appends
// the entry) and by the ledger auditor (in memory, on replay), so what the
// broker accepts and what `bourse ledger verify` accepts cannot drift apart.
//
//   BOURSE_ASSIGN_OR_RETURN(SliverSettings s,
//                           SliverSettings::FromJson(body["resources"], "resources"));
//   std::vector<NodeLoad> loads = ...;  // per node: its disk, the site's other shares
//   BOURSE_RETURN_IF_ERROR(CheckSliceSettings(s, limits, loads));
//
// Entry types and bodies:
//   slice_resources_set    {"by","resources":{"disk_mib","mem_mib","share"},"slice"}
//   slice_instantiated     {"by","nodes":[every node of the slice],"slice"}
//   slice_nodes_removed    {"by","nodes":[the nodes left],"removed":[..],"slice"}
//   site_sliver_limits_set {"by","limits":{"max_disk_mib","max_mem_mib","max_share",
//                           "max_site_share"},"site"}
// The rule:
//   - settings: share in [1, max_share], disk_mib in [0, max_disk_mib],
//     mem_mib in [1, max_mem_mib] (a best-effort sliver always has a memory
//     limit), with the limits of the slice's site;
//   - on every node of the slice: disk_mib ≤ the node's registered disk, and
//     the shares of the live slices of the slice's site on the node, this one
//     included, sum to at most max_site_share (so a site cannot starve the
//     others by creating many slices);
//   - limits: every member within [1, the hard bound]; a site's PI may only
//     set limits at or under kDefaultSliverLimits (it can tighten what its
//     slices may ask, not widen it); the admin may set any within the bounds.
// An older broker stored set_resources as a ResourceVector; such entries
// carry no "share" and are replayed as the default settings, unchecked.
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

namespace bourse::ledger {

inline constexpr std::string_view kEntrySliceResourcesSet = "slice_resources_set";
inline constexpr std::string_view kEntrySliceInstantiated = "slice_instantiated";
inline constexpr std::string_view kEntrySliceNodesRemoved = "slice_nodes_removed";
inline constexpr std::string_view kEntrySiteSliverLimitsSet = "site_sliver_limits_set";

// What a slice's sliver gets on each node it is instantiated on, beyond its
// rcaps (docs/nodeguard.md "Best-effort slivers").
struct SliverSettings {
  int64_t share = 1;      // weight in the CPU and link no rcap guarantees (PlanetLab's share)
  int64_t disk_mib = 64;  // its disk, added to what its rcaps bought
  int64_t mem_mib = 256;  // its memory limit, added to what its rcaps bought

  // Strict: an object with only these members, integers (missing ones keep
  // the defaults); a member outside [0, 2^53) or another member is
  // invalid_argument naming `field`.member. The limits are not checked here.
  static core::Result<SliverSettings> FromJson(const nlohmann::json& j, const std::string& field);
  // Lenient, for what a database holds: anything not of this shape (null,
  // an older broker's ResourceVector) is the defaults.
  static SliverSettings FromStored(const nlohmann::json& j);
  nlohmann::json ToJson() const;
  friend bool operator==(const SliverSettings&, const SliverSettings&) = default;
};

struct SliverLimits {
  int64_t max_share = 10;       // one slice's share
  int64_t max_disk_mib = 1024;  // one sliver's best-effort disk
  int64_t max_mem_mib = 2048;   // one sliver's best-effort memory limit
  int64_t max_site_share = 20;  // Σ shares of one site's live slices on one node

  // Strict as SliverSettings::FromJson; every member required, each in
  // [1, its hard bound] (invalid_argument naming it).
  static core::Result<SliverLimits> FromJson(const nlohmann::json& j, const std::string& field);
  static SliverLimits FromStored(const nlohmann::json& j);  // "" / null: the defaults
  nlohmann::json ToJson() const;
  // The settings a node is handed: each clamped to these limits, so a limit
  // lowered after the settings were accepted applies on the next pass.
  SliverSettings Clamp(const SliverSettings& s) const;
  friend bool operator==(const SliverLimits&, const SliverLimits&) = default;
};

inline constexpr SliverLimits kDefaultSliverLimits{};
// Hard bounds of the admin's limits: a share of 10000 against the default 1
// already starves a node's best-effort slivers; 16 TiB of disk, 1 TiB memory.
inline constexpr SliverLimits kHardSliverLimits{.max_share = 10000,
                                                .max_disk_mib = int64_t{1} << 24,
                                                .max_mem_mib = int64_t{1} << 20,
                                                .max_site_share = 1000000};

// Limits set by a caller: the admin within kHardSliverLimits, a site's PI at
// or under kDefaultSliverLimits. Errors: permission_denied naming the member.
core::Status CheckLimitsChange(const SliverLimits& limits, bool by_admin);

// One node of the slice, as the rule needs it.
struct NodeLoad {
  std::string node;
  int64_t disk_mib = 0;           // the node's registered disk capacity
  int64_t site_share_others = 0;  // Σ shares of the site's other live slices on the node
};

// The rule on a slice's settings over its nodes (file comment). Errors:
// invalid_argument naming the member out of its limit ("resources.share: 50
// is above the site's limit of 10"); failed_precondition (409) naming the node for
// a disk larger than the node or a site share over max_site_share.
core::Status CheckSliceSettings(const SliverSettings& s, const SliverLimits& limits,
                                std::span<const NodeLoad> nodes);

// The replay of the entries above by the auditor, over its own memory:
// slices (site, expiry, nodes, settings), site limits, node disks.
class SliverSettingsBook {
 public:
  // Bookkeeping of entries the rule depends on but does not check:
  // slice_created {slice,site,expires}, slice_renewed {expires},
  // slice_deleted {slice}, node_added {node,capacity.disk_mib}.
  void Note(std::string_view type, const nlohmann::json& body);
  // Replays one of the four entry types above at `ts_ms` (the entry's ts),
  // `by_admin` telling whether its `by` is an admin key. Errors: as the rule,
  // or invalid_argument for a body that is not the entry's shape. Other
  // types: Ok, nothing done.
  core::Status Apply(std::string_view type, const nlohmann::json& body, int64_t ts_ms,
                     bool by_admin);

 private:
  struct Slice {
    std::string site;
    int64_t expires = 0;
    std::set<std::string> nodes;
    SliverSettings settings;
  };
  core::Status CheckSlice(const std::string& name, const Slice& s, int64_t now_s) const;
  std::map<std::string, Slice> slices_;
  std::unordered_map<std::string, SliverLimits> site_limits_;
  std::unordered_map<std::string, int64_t> node_disk_;
};

}  // namespace bourse::ledger
