// Best-effort slivers at the broker (issue #20): a site's limits on what its
// slices may ask with set_resources (GET/PUT /v1/sites/{site}/sliver_limits),
// the rule's inputs gathered from the tables, and the slices a node's guard
// keeps a sliver for. The rule itself is ledger/sliver_settings.h.
#include <map>

#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/internal/sliver_settings.h"
#include "broker/internal/sql.h"
#include "broker/internal/util.h"
#include "core/json_codec.h"

namespace bourse::broker {

using internal::Stmt;
using nlohmann::json;

namespace internal {

core::Result<ledger::SliverLimits> SiteSliverLimits(storage::Connection* db,
                                                    const std::string& site) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT limits FROM b_sliver_limits WHERE site=?"));
  s.Bind(1, site);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return ledger::kDefaultSliverLimits;
  return ledger::SliverLimits::FromStored(ParseStored(s.Text(0)));
}

core::Status CheckSliceSliverSettings(storage::Connection* db, const std::string& slice,
                                      const std::string& site, const json& nodes,
                                      const ledger::SliverSettings& settings, int64_t now_s) {
  BOURSE_ASSIGN_OR_RETURN(ledger::SliverLimits limits, SiteSliverLimits(db, site));
  std::map<std::string, ledger::NodeLoad> loads;
  for (const json& n : nodes) {
    std::string id = n.get<std::string>();
    BOURSE_ASSIGN_OR_RETURN(
        Stmt s, GetOneOrNotFound(db,
                                 "SELECT json_extract(capacity,'$.disk_mib') FROM b_nodes "
                                 "WHERE id=?",
                                 id, "node", "nodes"));
    loads[id] = {id, s.IsNull(0) ? 0 : s.Int(0), 0};
  }
  // The site's other live slices on these nodes.
  BOURSE_ASSIGN_OR_RETURN(Stmt o, db->Prepare("SELECT instantiated,resources FROM b_slices WHERE "
                                              "site=? AND name<>? AND expires>?"));
  o.Bind(1, site);
  o.Bind(2, slice);
  o.Bind(3, now_s);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, o.Step());
    if (!row) break;
    int64_t share = ledger::SliverSettings::FromStored(ParseStored(o.Text(1))).share;
    json on = ParseStored(o.Text(0));
    if (!on.is_array()) continue;
    for (const json& n : on) {
      if (!n.is_string()) continue;
      auto it = loads.find(n.get<std::string>());
      if (it != loads.end()) it->second.site_share_others += share;
    }
  }
  std::vector<ledger::NodeLoad> v;
  for (auto& [id, l] : loads) v.push_back(l);
  return ledger::CheckSliceSettings(settings, limits, v);
}

core::Result<json> InstantiatedSlicesOf(storage::Connection* db, const std::string& node,
                                        int64_t now_s) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare("SELECT s.name,s.expires,s.boot_script,s.resources,l.limits FROM "
                          "b_slices s LEFT JOIN b_sliver_limits l ON l.site=s.site WHERE "
                          "s.expires>? AND EXISTS (SELECT 1 FROM json_each(s.instantiated) WHERE "
                          "value=?) ORDER BY s.name"));
  s.Bind(1, now_s);
  s.Bind(2, node);
  json out = json::array();
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ledger::SliverLimits limits = s.IsNull(4)
                                      ? ledger::kDefaultSliverLimits
                                      : ledger::SliverLimits::FromStored(ParseStored(s.Text(4)));
    ledger::SliverSettings set =
        limits.Clamp(ledger::SliverSettings::FromStored(ParseStored(s.Text(3))));
    out.push_back({{"slice", s.Text(0)},
                   {"expires", s.Int(1)},
                   {"boot_script", s.Text(2)},
                   {"share", set.share},
                   {"disk_mib", set.disk_mib},
                   {"mem_mib", set.mem_mib}});
  }
  return out;
}

}  // namespace internal

namespace {

json LimitsSchema() {
  using namespace internal;
  return SObj({{"max_share", SInt("one slice's best-effort share")},
               {"max_disk_mib", SInt("one sliver's best-effort disk")},
               {"max_mem_mib", SInt("one sliver's best-effort memory limit")},
               {"max_site_share", SInt("the site's live slices' shares on one node, summed")}},
              {"max_share", "max_disk_mib", "max_mem_mib", "max_site_share"});
}

}  // namespace

core::Result<ApiResponse> Broker::GetSiteSliverLimits(const ApiRequest& q) {
  const std::string site = q.Param("site");
  json out;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_RETURN_IF_ERROR(
        internal::GetOneOrNotFound(db, "SELECT 1 FROM b_sites WHERE name=?", site, "site")
            .status());
    BOURSE_ASSIGN_OR_RETURN(ledger::SliverLimits l, internal::SiteSliverLimits(db, site));
    out = l.ToJson();
    return core::Status::Ok();
  }));
  out["site"] = site;
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Broker::SetSiteSliverLimits(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(ledger::SliverLimits limits,
                          ledger::SliverLimits::FromJson(q.json, "sliver_limits"));
  const std::string site = q.Param("site");
  BOURSE_RETURN_IF_ERROR(
      Mutate([&](ledger::Txn& txn) -> core::Status {
        BOURSE_ASSIGN_OR_RETURN(Principal caller, LookupPrincipal(txn, q.caller_text));
        BOURSE_RETURN_IF_ERROR(
            internal::GetOneOrNotFound(txn.db(), "SELECT 1 FROM b_sites WHERE name=?", site, "site")
                .status());
        bool admin = caller.kind == PrincipalKind::kAdmin;
        if (!admin && !(caller.kind == PrincipalKind::kSite && caller.site == site)) {
          return core::PermissionDenied("sliver limits of site " + site +
                                        ": only its PI or an admin sets them");
        }
        BOURSE_RETURN_IF_ERROR(ledger::CheckLimitsChange(limits, admin));
        BOURSE_ASSIGN_OR_RETURN(
            Stmt s, txn.db()->Prepare("INSERT OR REPLACE INTO b_sliver_limits(site,limits,seq) "
                                      "VALUES(?,?,?)"));
        s.Bind(1, site);
        s.Bind(2, internal::Dump(limits.ToJson()));
        s.Bind(3, static_cast<int64_t>(txn.next_seq()));
        BOURSE_RETURN_IF_ERROR(s.Run());
        return txn
            .Append(ledger::kEntrySiteSliverLimitsSet,
                    {{"site", site}, {"by", q.caller_text}, {"limits", limits.ToJson()}})
            .status();
      }).status());
  json out = limits.ToJson();
  out["site"] = site;
  return JsonResponse(200, out);
}

void Broker::RegisterSliverLimitRoutes() {
  using namespace internal;
  json response = LimitsSchema();
  response["properties"]["site"] = SStr();
  router_.Add({.method = "GET",
               .pattern = "/v1/sites/{site}/sliver_limits",
               .summary = "What the site's slices may ask with set_resources (the defaults until "
                          "its PI or an admin sets them)",
               .tag = "sites",
               .response_schema = response,
               .handler = [this](const ApiRequest& q) { return GetSiteSliverLimits(q); }});
  router_.Add({.method = "PUT",
               .pattern = "/v1/sites/{site}/sliver_limits",
               .auth = Auth::kSigned,
               .signer_kinds = {"admin", "site"},
               .summary = "Set the site's best-effort sliver limits: its PI at or under the "
                          "defaults, an admin up to the hard bounds (site_sliver_limits_set)",
               .tag = "sites",
               .request_schema = LimitsSchema(),
               .response_schema = response,
               .handler = [this](const ApiRequest& q) { return SetSiteSliverLimits(q); }});
}

}  // namespace bourse::broker
