#include "ledger/internal/capacity_rules.h"

#include <set>

#include "core/json_codec.h"
#include "ledger/internal/rcap_rules.h"

namespace bourse::ledger::internal {

using core::Status;

namespace {

std::string Window(const core::Interval& iv) {
  return "[" + std::to_string(iv.not_before) + ", " + std::to_string(iv.not_after) + ")";
}

Status CheckChild(CapacityView& view, const Rcap& parent, const Rcap& c, const Timeline& use,
                  const CapacityRuleOptions& o) {
  if (!c.parent || *c.parent != parent.id) {
    return core::FailedPrecondition("broken_link: rcap " + c.id + ": parent is not " + parent.id);
  }
  if (auto bad = CheckLinkRules(parent, c, o.check_signatures)) return bad->ToStatus();
  BOURSE_ASSIGN_OR_RETURN(auto existing, view.GetRcap(c.id));
  if (existing) return core::AlreadyExists("rcap " + c.id + " is already recorded");
  if (auto bad = use.CheckAdd(c.interval, c.res, parent.res)) {
    return core::FailedPrecondition("oversubscribed: children of rcap " + parent.id + " (node " +
                                    parent.node + "): adding " + c.id + " " + Window(c.interval) +
                                    ": " + *bad);
  }
  return Status::Ok();
}

// The number of links of the chain `r` ends (1 for a root), walking its
// recorded ancestors; it stops counting past kMaxChainLength.
core::Result<size_t> ChainLength(CapacityView& view, const Rcap& r) {
  size_t links = 1;
  std::optional<std::string> up = r.parent;
  while (up && links <= kMaxChainLength) {
    BOURSE_ASSIGN_OR_RETURN(auto p, view.GetRcap(*up));
    if (!p) return core::NotFound("rcap " + *up + " is not recorded");
    up = p->parent;
    ++links;
  }
  return links;
}

// failed_precondition "released: ..." when `id` was released.
Status RefuseReleased(CapacityView& view, const std::string& id, std::string_view what) {
  BOURSE_ASSIGN_OR_RETURN(bool released, view.IsReleased(id));
  if (!released) return Status::Ok();
  return core::FailedPrecondition("released: rcap " + id + " was released (rcap_released); " +
                                  std::string(what));
}

}  // namespace

core::Result<NodeEntry> ParseNodeEntry(const nlohmann::json& body) {
  if (!body.is_object()) return core::InvalidArgument("body: must be an object");
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* n, core::RequireMember(body, "body", "node"));
  BOURSE_ASSIGN_OR_RETURN(std::string node,
                          core::StringFromJson(*n, "body.node", kMaxRcapIdLength));
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* c, core::RequireMember(body, "body", "capacity"));
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector cap,
                          core::ResourceVectorFromJson(*c, "body.capacity"));
  return NodeEntry{std::move(node), cap};
}

Status ApplyNode(CapacityView& view, const std::string& node,
                 const core::ResourceVector& capacity) {
  if (node.empty() || node.size() > kMaxRcapIdLength) {
    return core::InvalidArgument("node: must be 1.." + std::to_string(kMaxRcapIdLength) + " bytes");
  }
  BOURSE_ASSIGN_OR_RETURN(auto known, view.NodeCapacity(node));
  if (known) return core::AlreadyExists("node " + node + " is already registered");
  return view.PutNode(node, capacity);
}

Status ApplyRoot(CapacityView& view, const Rcap& root, const CapacityRuleOptions& o) {
  if (root.parent) return core::InvalidArgument("rcap_issued: rcap " + root.id + " has a parent");
  if (o.check_signatures && !root.CheckSignature().ok()) {
    return core::PermissionDenied("bad_signature: rcap " + root.id + ": signature does not verify");
  }
  BOURSE_ASSIGN_OR_RETURN(auto existing, view.GetRcap(root.id));
  if (existing) return core::AlreadyExists("rcap " + root.id + " is already recorded");
  BOURSE_ASSIGN_OR_RETURN(auto cap, view.NodeCapacity(root.node));
  if (!cap) {
    return core::FailedPrecondition("unknown_node: root rcap " + root.id + " is for node " +
                                    root.node + ", which is not registered");
  }
  if (root.res.net_max_kbps > cap->net_max_kbps) {
    return core::FailedPrecondition(
        "exceeds_node: root rcap " + root.id + " on node " + root.node + " " +
        Window(root.interval) + ": net_max_kbps " + std::to_string(root.res.net_max_kbps) +
        " is above the node's ceiling " + std::to_string(cap->net_max_kbps));
  }
  BOURSE_ASSIGN_OR_RETURN(Timeline * roots, view.RootsUse(root.node));
  if (auto bad = roots->CheckAdd(root.interval, root.res, *cap)) {
    return core::FailedPrecondition("oversubscribed: root rcap " + root.id + " on node " +
                                    root.node + " " + Window(root.interval) +
                                    ": the node's roots would exceed its capacity " +
                                    cap->ToString() + ": " + *bad);
  }
  roots->Add(root.interval, root.res);
  return view.PutRcap(root);
}

Status ApplyChildren(CapacityView& view, std::string_view parent_id, std::span<const Rcap> children,
                     const CapacityRuleOptions& o) {
  if (children.empty()) return core::InvalidArgument("rcap_split: no children");
  const std::string pid(parent_id);
  BOURSE_ASSIGN_OR_RETURN(auto parent, view.GetRcap(pid));
  if (!parent) return core::NotFound("rcap " + pid + " is not recorded");
  BOURSE_RETURN_IF_ERROR(RefuseReleased(view, pid, "it has no children"));
  BOURSE_ASSIGN_OR_RETURN(auto bound, view.BoundTo(pid));
  if (bound) {
    return core::FailedPrecondition("bound: rcap " + pid + " is bound to slice " + *bound +
                                    ": all of its " + parent->res.ToString() + " is in use over " +
                                    Window(parent->interval) + "; a bound rcap has no children");
  }
  // A node refuses a chain of more links (DESIGN 3), so the broker never
  // records the child that would end one.
  BOURSE_ASSIGN_OR_RETURN(size_t links, ChainLength(view, *parent));
  if (links + 1 > kMaxChainLength) {
    return core::FailedPrecondition(
        "chain_too_long: a child of rcap " + pid + " (node " + parent->node + ") would be link " +
        std::to_string(links + 1) + " of its chain; a node accepts at most " +
        std::to_string(kMaxChainLength));
  }
  BOURSE_ASSIGN_OR_RETURN(Timeline * use, view.ChildrenUse(pid));
  std::set<std::string_view> ids;
  size_t added = 0;
  auto undo = [&] {
    for (size_t k = 0; k < added; ++k) use->Remove(children[k].interval, children[k].res);
  };
  Status st = Status::Ok();
  for (const Rcap& c : children) {
    st = CheckChild(view, *parent, c, *use, o);
    if (!st.ok()) break;
    use->Add(c.interval, c.res);
    ++added;
    if (!ids.insert(c.id).second) {
      st = core::AlreadyExists("rcap " + c.id + " appears twice");
      break;
    }
  }
  if (!st.ok()) {
    undo();
    return st;
  }
  for (const Rcap& c : children) BOURSE_RETURN_IF_ERROR(view.PutRcap(c));
  return Status::Ok();
}

Status ApplyBind(CapacityView& view, const Rcap& rcap, const std::string& slice) {
  BOURSE_ASSIGN_OR_RETURN(auto existing, view.GetRcap(rcap.id));
  if (!existing || !(*existing == rcap)) {
    return core::NotFound("rcap " + rcap.id + " is not recorded with this content");
  }
  BOURSE_RETURN_IF_ERROR(RefuseReleased(view, rcap.id, "it cannot be bound"));
  BOURSE_ASSIGN_OR_RETURN(auto bound, view.BoundTo(rcap.id));
  if (bound) {
    return core::FailedPrecondition("bound: rcap " + rcap.id + " is already bound to slice " +
                                    *bound + ": an rcap is bound at most once");
  }
  BOURSE_ASSIGN_OR_RETURN(bool has_children, view.HasChildren(rcap.id));
  if (has_children) {
    BOURSE_ASSIGN_OR_RETURN(Timeline * kids, view.ChildrenUse(rcap.id));
    core::ResourceVector peak = kids->Peak(rcap.interval);
    return core::FailedPrecondition(
        "has_children: rcap " + rcap.id + " (node " + rcap.node + ") has children using " +
        peak.ToString() + " within " + Window(rcap.interval) +
        ": binding uses the whole ticket, so an rcap with children cannot be bound");
  }
  return view.PutBound(rcap, slice);
}

Status ApplyRelease(CapacityView& view, const Rcap& rcap, const core::PublicKey& broker) {
  BOURSE_ASSIGN_OR_RETURN(auto existing, view.GetRcap(rcap.id));
  if (!existing || !(*existing == rcap)) {
    return core::NotFound("rcap " + rcap.id + " is not recorded with this content");
  }
  if (!rcap.parent) {
    return core::FailedPrecondition("root: rcap " + rcap.id +
                                    " is a root; only a child is released to its parent");
  }
  if (!(rcap.holder == broker)) {
    return core::FailedPrecondition(
        "not_broker_held: rcap " + rcap.id + " is held by " + rcap.holder.ToText() +
        ", not the broker; only an escrow the broker holds is released");
  }
  BOURSE_RETURN_IF_ERROR(RefuseReleased(view, rcap.id, "an rcap is released at most once"));
  BOURSE_ASSIGN_OR_RETURN(auto bound, view.BoundTo(rcap.id));
  if (bound) {
    return core::FailedPrecondition("bound: rcap " + rcap.id + " is bound to slice " + *bound +
                                    "; a bound rcap is in use and is not released");
  }
  BOURSE_ASSIGN_OR_RETURN(bool has_children, view.HasChildren(rcap.id));
  if (has_children) {
    return core::FailedPrecondition("has_children: rcap " + rcap.id +
                                    " has children; only an unused rcap is released (the rest of "
                                    "a partly sold escrow goes back as a child)");
  }
  BOURSE_ASSIGN_OR_RETURN(Timeline * use, view.ChildrenUse(*rcap.parent));
  use->Remove(rcap.interval, rcap.res);
  return view.PutReleased(rcap);
}

}  // namespace bourse::ledger::internal
