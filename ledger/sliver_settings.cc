#include "ledger/sliver_settings.h"

#include <algorithm>

#include "core/json_codec.h"

namespace bourse::ledger {

using core::Result;
using core::Status;
using nlohmann::json;

namespace {

constexpr int64_t kMaxSafe = (int64_t{1} << 53) - 1;

Status RejectUnknown(const json& j, const std::string& field,
                     std::initializer_list<std::string_view> allowed, const char* hint) {
  if (!j.is_object()) return core::InvalidArgument(field + ": must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (std::string_view a : allowed) known = known || it.key() == a;
    if (!known) {
      return core::InvalidArgument(field + "." + it.key() + ": unknown member (" + hint + ")");
    }
  }
  return Status::Ok();
}

// j[key] as an integer in [min, max], or `*out` unchanged when absent and
// not required.
Status IntMember(const json& j, const std::string& field, const char* key, int64_t min, int64_t max,
                 bool required, int64_t* out) {
  if (!j.contains(key)) {
    if (required) return core::InvalidArgument(field + "." + key + ": missing");
    return Status::Ok();
  }
  BOURSE_ASSIGN_OR_RETURN(*out, core::IntFromJson(j[key], field + "." + key, min, max));
  return Status::Ok();
}

Status Above(const std::string& what, int64_t v, int64_t limit, const char* whose) {
  return core::InvalidArgument(what + ": " + std::to_string(v) + " is above " + whose +
                               " limit of " + std::to_string(limit));
}

}  // namespace

Result<SliverSettings> SliverSettings::FromJson(const json& j, const std::string& field) {
  BOURSE_RETURN_IF_ERROR(RejectUnknown(
      j, field, {"share", "disk_mib", "mem_mib"},
      "set_resources takes share, disk_mib and mem_mib; guaranteed CPU, memory, disk and link "
      "are bought as rcaps and bound"));
  SliverSettings s;
  BOURSE_RETURN_IF_ERROR(IntMember(j, field, "share", 0, kMaxSafe, false, &s.share));
  BOURSE_RETURN_IF_ERROR(IntMember(j, field, "disk_mib", 0, kMaxSafe, false, &s.disk_mib));
  BOURSE_RETURN_IF_ERROR(IntMember(j, field, "mem_mib", 0, kMaxSafe, false, &s.mem_mib));
  return s;
}

SliverSettings SliverSettings::FromStored(const json& j) {
  if (!j.is_object() || !j.contains("share")) return SliverSettings{};
  auto s = FromJson(j, "resources");
  return s.ok() ? *s : SliverSettings{};
}

json SliverSettings::ToJson() const {
  return {{"share", share}, {"disk_mib", disk_mib}, {"mem_mib", mem_mib}};
}

Result<SliverLimits> SliverLimits::FromJson(const json& j, const std::string& field) {
  BOURSE_RETURN_IF_ERROR(
      RejectUnknown(j, field, {"max_share", "max_disk_mib", "max_mem_mib", "max_site_share"},
                    "max_share, max_disk_mib, max_mem_mib, max_site_share"));
  SliverLimits l;
  const SliverLimits& h = kHardSliverLimits;
  BOURSE_RETURN_IF_ERROR(IntMember(j, field, "max_share", 1, h.max_share, true, &l.max_share));
  BOURSE_RETURN_IF_ERROR(
      IntMember(j, field, "max_disk_mib", 1, h.max_disk_mib, true, &l.max_disk_mib));
  BOURSE_RETURN_IF_ERROR(
      IntMember(j, field, "max_mem_mib", 1, h.max_mem_mib, true, &l.max_mem_mib));
  BOURSE_RETURN_IF_ERROR(
      IntMember(j, field, "max_site_share", 1, h.max_site_share, true, &l.max_site_share));
  return l;
}

SliverLimits SliverLimits::FromStored(const json& j) {
  if (!j.is_object()) return SliverLimits{};
  auto l = FromJson(j, "limits");
  return l.ok() ? *l : SliverLimits{};
}

json SliverLimits::ToJson() const {
  return {{"max_share", max_share},
          {"max_disk_mib", max_disk_mib},
          {"max_mem_mib", max_mem_mib},
          {"max_site_share", max_site_share}};
}

SliverSettings SliverLimits::Clamp(const SliverSettings& s) const {
  SliverSettings c = s;
  c.share = std::clamp<int64_t>(s.share, 1, max_share);
  c.disk_mib = std::clamp<int64_t>(s.disk_mib, 0, max_disk_mib);
  c.mem_mib = std::clamp<int64_t>(s.mem_mib, 1, max_mem_mib);
  return c;
}

Status CheckLimitsChange(const SliverLimits& l, bool by_admin) {
  if (by_admin) return Status::Ok();  // FromJson held them to the hard bounds
  const SliverLimits& d = kDefaultSliverLimits;
  auto over = [](const char* m, int64_t v, int64_t cap) {
    return core::PermissionDenied(std::string("limits.") + m + ": " + std::to_string(v) +
                                  " is above the default " + std::to_string(cap) +
                                  "; a site's PI may only tighten its limits, the admin raises "
                                  "them");
  };
  if (l.max_share > d.max_share) return over("max_share", l.max_share, d.max_share);
  if (l.max_disk_mib > d.max_disk_mib) return over("max_disk_mib", l.max_disk_mib, d.max_disk_mib);
  if (l.max_mem_mib > d.max_mem_mib) return over("max_mem_mib", l.max_mem_mib, d.max_mem_mib);
  if (l.max_site_share > d.max_site_share) {
    return over("max_site_share", l.max_site_share, d.max_site_share);
  }
  return Status::Ok();
}

Status CheckSliceSettings(const SliverSettings& s, const SliverLimits& l,
                          std::span<const NodeLoad> nodes) {
  if (s.share < 1) return core::InvalidArgument("resources.share: must be at least 1");
  if (s.share > l.max_share) return Above("resources.share", s.share, l.max_share, "the site's");
  if (s.disk_mib > l.max_disk_mib) {
    return Above("resources.disk_mib", s.disk_mib, l.max_disk_mib, "the site's");
  }
  if (s.mem_mib < 1) {
    return core::InvalidArgument(
        "resources.mem_mib: must be at least 1 (a best-effort sliver "
        "always has a memory limit)");
  }
  if (s.mem_mib > l.max_mem_mib) {
    return Above("resources.mem_mib", s.mem_mib, l.max_mem_mib, "the site's");
  }
  for (const NodeLoad& n : nodes) {
    if (s.disk_mib > n.disk_mib) {
      return core::FailedPrecondition("resources.disk_mib: " + std::to_string(s.disk_mib) +
                                      " MiB is larger than node " + n.node + "'s disk of " +
                                      std::to_string(n.disk_mib) + " MiB");
    }
    if (n.site_share_others + s.share > l.max_site_share) {
      return core::FailedPrecondition(
          "resources.share: the site's live slices on node " + n.node + " would hold shares of " +
          std::to_string(n.site_share_others + s.share) + ", above its limit of " +
          std::to_string(l.max_site_share) + " (max_site_share)");
    }
  }
  return Status::Ok();
}

// ---- replay ----

namespace {

std::string Text(const json& b, const char* m) {
  return b.is_object() && b.contains(m) && b[m].is_string() ? b[m].get<std::string>() : "";
}

Result<std::set<std::string>> NodeList(const json& b, const char* m) {
  if (!b.is_object() || !b.contains(m) || !b[m].is_array()) {
    return core::InvalidArgument(std::string(m) + ": must be an array of node ids");
  }
  std::set<std::string> out;
  for (const json& n : b[m]) {
    if (!n.is_string()) return core::InvalidArgument(std::string(m) + ": must hold strings");
    out.insert(n.get<std::string>());
  }
  return out;
}

}  // namespace

void SliverSettingsBook::Note(std::string_view type, const json& body) {
  if (type == "slice_created") {
    Slice s;
    s.site = Text(body, "site");
    if (body.is_object() && body.contains("expires") && body["expires"].is_number_integer()) {
      s.expires = body["expires"].get<int64_t>();
    }
    slices_[Text(body, "slice")] = std::move(s);
  } else if (type == "slice_renewed") {
    auto it = slices_.find(Text(body, "slice"));
    if (it != slices_.end() && body.contains("expires") && body["expires"].is_number_integer()) {
      it->second.expires = body["expires"].get<int64_t>();
    }
  } else if (type == "slice_deleted") {
    slices_.erase(Text(body, "slice"));
  } else if (type == "node_added") {
    if (body.is_object() && body.contains("capacity") && body["capacity"].is_object() &&
        body["capacity"].contains("disk_mib") && body["capacity"]["disk_mib"].is_number_integer()) {
      node_disk_[Text(body, "node")] = body["capacity"]["disk_mib"].get<int64_t>();
    }
  }
}

Status SliverSettingsBook::CheckSlice(const std::string& name, const Slice& s,
                                      int64_t now_s) const {
  auto lit = site_limits_.find(s.site);
  const SliverLimits& limits = lit == site_limits_.end() ? kDefaultSliverLimits : lit->second;
  std::map<std::string, NodeLoad> loads;
  for (const std::string& n : s.nodes) {
    auto d = node_disk_.find(n);
    loads[n] = {n, d == node_disk_.end() ? 0 : d->second, 0};
  }
  for (const auto& [other_name, o] : slices_) {
    if (other_name == name || o.site != s.site || o.expires <= now_s) continue;
    for (const std::string& n : o.nodes) {
      auto it = loads.find(n);
      if (it != loads.end()) it->second.site_share_others += o.settings.share;
    }
  }
  std::vector<NodeLoad> v;
  for (auto& [n, l] : loads) v.push_back(l);
  return CheckSliceSettings(s.settings, limits, v);
}

Status SliverSettingsBook::Apply(std::string_view type, const json& body, int64_t ts_ms,
                                 bool by_admin) {
  int64_t now_s = ts_ms / 1000;
  if (type == kEntrySiteSliverLimitsSet) {
    if (!body.is_object() || !body.contains("limits")) {
      return core::InvalidArgument("limits: missing");
    }
    BOURSE_ASSIGN_OR_RETURN(SliverLimits l, SliverLimits::FromJson(body["limits"], "limits"));
    BOURSE_RETURN_IF_ERROR(CheckLimitsChange(l, by_admin));
    site_limits_[Text(body, "site")] = l;
    return Status::Ok();
  }
  if (type != kEntrySliceResourcesSet && type != kEntrySliceInstantiated &&
      type != kEntrySliceNodesRemoved) {
    return Status::Ok();
  }
  std::string name = Text(body, "slice");
  auto it = slices_.find(name);
  if (it == slices_.end()) return core::NotFound("slice " + name + " was not created");
  Slice next = it->second;
  if (type == kEntrySliceResourcesSet) {
    if (!body.is_object() || !body.contains("resources")) {
      return core::InvalidArgument("resources: missing");
    }
    const json& r = body["resources"];
    if (!r.is_object() || !r.contains("share")) {
      // An older broker's ResourceVector: recorded, never enforced.
      return Status::Ok();
    }
    BOURSE_ASSIGN_OR_RETURN(next.settings, SliverSettings::FromJson(r, "resources"));
  } else {
    BOURSE_ASSIGN_OR_RETURN(next.nodes, NodeList(body, "nodes"));
  }
  // Removing nodes only lowers what the slice holds: recorded, not checked.
  if (type != kEntrySliceNodesRemoved) BOURSE_RETURN_IF_ERROR(CheckSlice(name, next, now_s));
  it->second = std::move(next);
  return Status::Ok();
}

}  // namespace bourse::ledger
