// The capacity rule of DESIGN §4.1, written once and applied both by
// CapacityLog (on SQLite tables, inside a store transaction) and by the ledger
// auditor (in memory, on replay), so what the broker records and what
// `bourse ledger verify` checks cannot drift apart. The per-ticket time-aware
// sum is Timeline, the same code the node guard's RedemptionBook uses.
//
// Uses of an rcap T: its recorded children (splits, escrow delegations,
// fills, awards: every child of every kind) and its binding to a slice.
//   - children of T valid at any instant sum to at most T (cpu_mcores,
//     mem_mib, disk_mib, net_min_kbps; net_max_kbps is a ceiling);
//   - a bound rcap has no child (a child lies inside its parent's interval,
//     so it always overlaps it) and an rcap with a child cannot be bound;
//     an rcap is bound at most once;
//   - a chain has at most kMaxChainLength links (a node refuses a longer
//     one), so no rcap is recorded as link kMaxChainLength + 1;
//   - the roots of a node valid at any instant sum to at most the node's
//     registered capacity, and none has a net_max_kbps ceiling above the
//     node's; a root names a registered node;
//   - an rcap held by the broker with no use at all (an unsold escrow) may be
//     released (rcap_released), once: it then no longer counts against its
//     parent (ChildrenUse and HasChildren leave it out), and it never gets a
//     child, a binding or a second release.
// Every check happens before the first write; a refusal changes nothing.
// Refusals: failed_precondition "<reason>: ..." naming the rcap, the quantity
// and the instant (reasons oversubscribed, exceeds_parent, outside_interval,
// broken_link, wrong_node, bound, has_children, unknown_node, exceeds_node,
// chain_too_long, released, not_broker_held, root),
// already_exists
// for a reused rcap id or a node registered twice, not_found for an
// unrecorded parent or rcap, permission_denied for a bad signature.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/resource_vector.h"
#include "core/status.h"
#include "ledger/internal/timeline.h"
#include "ledger/rcap.h"

namespace bourse::ledger::internal {

class CapacityView {
 public:
  virtual ~CapacityView() = default;
  virtual core::Result<std::optional<Rcap>> GetRcap(const std::string& id) = 0;
  // The recorded children of `id` as a use timeline (empty when none). The
  // view owns it (a live one, or scratch rebuilt per call); the rules add the
  // children they record to it themselves, so PutRcap must not.
  virtual core::Result<Timeline*> ChildrenUse(const std::string& id) = 0;
  // Whether `id` has any recorded child (a child of zero quantities counts).
  virtual core::Result<bool> HasChildren(const std::string& id) = 0;
  // The slice `id` is bound to, if any.
  virtual core::Result<std::optional<std::string>> BoundTo(const std::string& id) = 0;
  // Whether `id` was released (rcap_released).
  virtual core::Result<bool> IsReleased(const std::string& id) = 0;
  virtual core::Result<std::optional<core::ResourceVector>> NodeCapacity(
      const std::string& node) = 0;
  // The recorded roots of `node` as a use timeline (owned as ChildrenUse's).
  virtual core::Result<Timeline*> RootsUse(const std::string& node) = 0;
  // Records an rcap (a root also counts toward its node).
  virtual core::Status PutRcap(const Rcap& r) = 0;
  virtual core::Status PutBound(const Rcap& r, const std::string& slice) = 0;
  virtual core::Status PutNode(const std::string& node, const core::ResourceVector& cap) = 0;
  // Marks a recorded child released: from now on it is not among its
  // parent's children (ChildrenUse, HasChildren).
  virtual core::Status PutReleased(const Rcap& r) = 0;
};

struct CapacityRuleOptions {
  // The auditor checks signatures on worker threads, apart from the rule.
  bool check_signatures = true;
};

// The capacity-relevant members of a node_added entry (other members are the
// broker's). Errors: invalid_argument naming the member.
struct NodeEntry {
  std::string node;
  core::ResourceVector capacity;
};
core::Result<NodeEntry> ParseNodeEntry(const nlohmann::json& body);

// Registers a node's capacity. Errors: already_exists, invalid_argument.
core::Status ApplyNode(CapacityView& view, const std::string& node,
                       const core::ResourceVector& capacity);
// Records a root. Errors: invalid_argument (has a parent), permission_denied
// (signature), already_exists (id), failed_precondition unknown_node /
// oversubscribed (the node's roots would exceed its capacity).
core::Status ApplyRoot(CapacityView& view, const Rcap& root, const CapacityRuleOptions& o);
// Records children of recorded rcap `parent_id`. Errors: not_found (parent),
// already_exists (ids), failed_precondition bound (the parent is bound) /
// chain_too_long (the parent is link kMaxChainLength) / CheckLink's reasons /
// oversubscribed.
core::Status ApplyChildren(CapacityView& view, std::string_view parent_id,
                           std::span<const Rcap> children, const CapacityRuleOptions& o);
// Binds a recorded rcap to a slice. Errors: not_found (not recorded with this
// content), failed_precondition bound (already bound) / has_children.
core::Status ApplyBind(CapacityView& view, const Rcap& rcap, const std::string& slice);
// Releases a recorded, unused rcap the broker holds (an escrow that was not
// sold): its parent is free again wherever it covered. Errors: not_found (not
// recorded with this content), failed_precondition root (it has no parent) /
// not_broker_held (its holder is not `broker`) / released (already) / bound /
// has_children.
core::Status ApplyRelease(CapacityView& view, const Rcap& rcap, const core::PublicKey& broker);

}  // namespace bourse::ledger::internal
