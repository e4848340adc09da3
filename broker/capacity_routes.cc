// Capacity: root grants from sites, the broker's pools, holdings, split and
// delegate, and reading recorded rcaps.
#include <algorithm>
#include <map>

#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/internal/sql.h"
#include "broker/internal/util.h"
#include "broker/markets/markets.h"
#include "core/json_codec.h"
#include "ledger/accounts.h"

namespace bourse::broker {

using internal::Stmt;
using nlohmann::json;

namespace {

constexpr size_t kMaxChildren = 256;

// A grant's rcap: a root that verifies and has not ended. Errors as the
// route answers them.
core::Result<ledger::Rcap> ParseGrant(const json& body, int64_t now_s) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"rcap"}));
  BOURSE_ASSIGN_OR_RETURN(const json* rj, core::RequireMember(body, "", "rcap"));
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap root, ledger::Rcap::FromJson(*rj, "rcap"));
  if (root.parent) return core::InvalidArgument("rcap.parent: a grant is a root (parent null)");
  if (!root.CheckSignature().ok()) {
    return core::PermissionDenied("rcap.sig: bad_signature: does not verify under the issuer");
  }
  if (root.interval.not_after <= now_s) {
    return core::FailedPrecondition("rcap.not_after: expired: the grant has already ended");
  }
  return root;
}

// Only the PI of the node's site grants, with a root its own key signed, to
// a registered holder; the capacity book refuses a root that would take the
// node's roots above its capacity (DESIGN 4.1).
core::Status RecordGrant(Broker& broker, ledger::Txn& txn, const ledger::Rcap& root,
                         const std::string& caller_text) {
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, caller_text));
  BOURSE_ASSIGN_OR_RETURN(Stmt n,
                          internal::GetOneOrNotFound(txn.db(),
                                                     "SELECT n.site,s.pi FROM b_nodes n "
                                                     "JOIN b_sites s ON s.name=n.site WHERE n.id=?",
                                                     root.node, "node", "rcap.node"));
  std::string site = n.Text(0);
  std::string pi = n.Text(1);
  if (!(caller.kind == PrincipalKind::kSite && caller.site == site)) {
    return core::PermissionDenied("only site " + site + "'s PI grants its nodes' capacity");
  }
  if (root.issuer.ToText() != pi) {
    return core::PermissionDenied("rcap.issuer: untrusted_root: not site " + site + "'s key");
  }
  BOURSE_RETURN_IF_ERROR(internal::RequirePrincipal(txn.db(), root.holder.ToText(), "rcap.holder"));
  // The node's capacity over time: the capacity book (DESIGN 4.1)
  // refuses a root that would take the node's roots above it.
  return broker.RecordRcapIfNew(txn, root).WithContext("rcap");
}

// A split's children: all rcaps signed by the parent's holder, or all
// specs for the broker to sign.
struct SplitRequest {
  bool signed_children = false;
  std::vector<ledger::Rcap> given;
  std::vector<ledger::ChildSpec> specs;
};

// Decodes children[i] (field `f`) as a spec.
core::Result<ledger::ChildSpec> ParseChildSpec(const json& c, const std::string& f) {
  BOURSE_RETURN_IF_ERROR(
      core::CheckObjectFields(c, f, {"id", "holder", "res", "not_before", "not_after"}));
  std::string cid;
  if (c.contains("id")) {
    BOURSE_ASSIGN_OR_RETURN(cid, core::StringFromJson(c["id"], f + ".id", 128));
  }
  BOURSE_ASSIGN_OR_RETURN(const json* h, core::RequireMember(c, f, "holder"));
  BOURSE_ASSIGN_OR_RETURN(std::string ht, core::StringFromJson(*h, f + ".holder", 200));
  auto hk = core::PublicKey::FromText(ht);
  if (!hk.ok()) return core::InvalidArgument(f + ".holder: " + hk.status().message());
  ledger::ChildSpec s{.id = cid, .holder = *hk, .res = {}, .interval = {}};
  BOURSE_ASSIGN_OR_RETURN(const json* res, core::RequireMember(c, f, "res"));
  BOURSE_ASSIGN_OR_RETURN(s.res, core::ResourceVectorFromJson(*res, f + ".res"));
  BOURSE_ASSIGN_OR_RETURN(const json* nb, core::RequireMember(c, f, "not_before"));
  BOURSE_ASSIGN_OR_RETURN(s.interval.not_before,
                          core::IntFromJson(*nb, f + ".not_before", 0, core::kMaxSafeInteger));
  BOURSE_ASSIGN_OR_RETURN(const json* na, core::RequireMember(c, f, "not_after"));
  BOURSE_ASSIGN_OR_RETURN(s.interval.not_after,
                          core::IntFromJson(*na, f + ".not_after", 0, core::kMaxSafeInteger));
  if (s.interval.not_after <= s.interval.not_before) {
    return core::InvalidArgument(f + ".not_after: must be after not_before");
  }
  return s;
}

core::Result<SplitRequest> ParseSplit(const json& body, const std::string& parent_id) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"children"}));
  BOURSE_ASSIGN_OR_RETURN(const json* cj, core::RequireMember(body, "", "children"));
  if (!cj->is_array() || cj->empty()) {
    return core::InvalidArgument("children: must be a non-empty array");
  }
  if (cj->size() > kMaxChildren) return core::InvalidArgument("children: at most 256");
  SplitRequest out;
  out.signed_children = (*cj)[0].is_object() && (*cj)[0].contains("sig");
  for (size_t i = 0; i < cj->size(); ++i) {
    std::string f = "children[" + std::to_string(i) + "]";
    const json& c = (*cj)[i];
    if (!c.is_object()) return core::InvalidArgument(f + ": must be an object");
    if (c.contains("sig") != out.signed_children) {
      return core::InvalidArgument(f + ": mix of signed rcaps and unsigned specs");
    }
    if (out.signed_children) {
      BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(c, f));
      if (!r.parent || *r.parent != parent_id) {
        return core::InvalidArgument(f + ".parent: must be " + parent_id);
      }
      out.given.push_back(std::move(r));
    } else {
      BOURSE_ASSIGN_OR_RETURN(ledger::ChildSpec s, ParseChildSpec(c, f));
      out.specs.push_back(std::move(s));
    }
  }
  return out;
}

// Splits rcap `id`: its holder (DESIGN 4.1) records children it signed; an
// admin has the broker sign children of an uncommitted rcap the broker
// holds. Returns the children, each recorded and its holder indexed.
core::Result<std::vector<ledger::Rcap>> SplitRecorded(Broker& broker, ledger::Txn& txn,
                                                      const std::string& id,
                                                      const SplitRequest& req,
                                                      const std::string& caller_text) {
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, caller_text));
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap parent, ledger::CapacityLog::Get(txn.db(), id));
  std::vector<ledger::Rcap> kids;
  if (req.signed_children) {
    BOURSE_RETURN_IF_ERROR(RequireHolder(parent, caller_text, "children"));
    for (const ledger::Rcap& k : req.given) {
      BOURSE_RETURN_IF_ERROR(
          internal::RequirePrincipal(txn.db(), k.holder.ToText(), "children.holder"));
    }
    BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordSplit(txn, id, req.given));
    kids = req.given;
  } else {
    if (!(parent.holder == broker.broker_key())) {
      return core::InvalidArgument("children: rcap " + id +
                                   " is not held by the broker: submit children "
                                   "signed by its holder");
    }
    if (caller.kind != PrincipalKind::kAdmin) {
      return core::PermissionDenied("only an admin splits the broker's pool directly");
    }
    BOURSE_RETURN_IF_ERROR(Markets::RequireUncommitted(txn, id, "rcap"));
    for (const ledger::ChildSpec& s : req.specs) {
      BOURSE_RETURN_IF_ERROR(
          internal::RequirePrincipal(txn.db(), s.holder.ToText(), "children.holder"));
    }
    BOURSE_ASSIGN_OR_RETURN(kids, broker.SplitHeld(txn, id, req.specs));
  }
  for (const ledger::Rcap& k : kids) {
    BOURSE_RETURN_IF_ERROR(broker.RecordRcapIfNew(txn, k));  // indexes the holder
  }
  return kids;
}

json SplitRequestSchema() {
  using namespace internal;
  return SObj(
      {{"children", SArr({{"oneOf", json::array({SRcap(), SObj({{"id", SStr()},
                                                                {"holder", SKey()},
                                                                {"res", SResources()},
                                                                {"not_before", SInt()},
                                                                {"not_after", SInt()}},
                                                               {"holder", "res", "not_before",
                                                                "not_after"})})}})}},
      {"children"});
}

}  // namespace

// ---- the routes ----

core::Result<ApiResponse> Broker::AddGrant(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap root, ParseGrant(q.json, q.now_ms / 1000));
  json out;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_RETURN_IF_ERROR(RecordGrant(*this, txn, root, q.caller_text));
                           out = {{"rcap", root.ToJson()}, {"pooled", root.holder == broker_key()}};
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(201, out);
}

core::Result<ApiResponse> Broker::ListPools(const ApiRequest& q) {
  std::map<std::string, json> by_node;
  std::map<std::string, std::string> site_of;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(Stmt s,
                            db->Prepare("SELECT r.node,n.site,r.body FROM b_rcaps r JOIN b_nodes n "
                                        "ON n.id=r.node WHERE r.holder=? AND r.not_after>? "
                                        "ORDER BY r.node, r.not_before, r.id"));
    s.Bind(1, broker_key().ToText());
    s.Bind(2, q.now_ms / 1000);
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      by_node[s.Text(0)].push_back(internal::ParseStored(s.Text(2)));
      site_of[s.Text(0)] = s.Text(1);
    }
    return core::Status::Ok();
  }));
  json pools = json::array();
  for (auto& [node, rcaps] : by_node) {
    pools.push_back({{"node", node}, {"site", site_of[node]}, {"rcaps", rcaps}});
  }
  return JsonResponse(200, {{"pools", pools}});
}

core::Result<ApiResponse> Broker::ListHoldings(const ApiRequest& q) {
  json list;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(list, internal::QueryArray(
                                      db,
                                      "SELECT body FROM b_rcaps WHERE holder=? AND not_after>? "
                                      "ORDER BY node, not_before, id",
                                      [&](Stmt& s) {
                                        s.Bind(1, q.Param("key"));
                                        s.Bind(2, q.now_ms / 1000);
                                      },
                                      [](Stmt& s) { return internal::ParseStored(s.Text(0)); }));
    return core::Status::Ok();
  }));
  return JsonResponse(200, {{"rcaps", list}});
}

core::Result<ApiResponse> Broker::GetRcap(const ApiRequest& q) {
  json out;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::CapacityLog::Get(db, q.Param("id")));
    BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::Rcap> chain,
                            ledger::CapacityLog::ChainOf(db, q.Param("id")));
    BOURSE_ASSIGN_OR_RETURN(json kids, internal::QueryArray(
                                           db, "SELECT id FROM b_rcaps WHERE parent=? ORDER BY id",
                                           [&](Stmt& s) { s.Bind(1, q.Param("id")); },
                                           [](Stmt& s) { return json(s.Text(0)); }));
    BOURSE_ASSIGN_OR_RETURN(bool released, ledger::CapacityLog::IsReleased(db, r.id));
    out = {{"rcap", r.ToJson()},
           {"chain", ledger::ChainToJson(chain)},
           {"children", kids},
           {"released", released}};
    return core::Status::Ok();
  }));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Broker::SplitRcap(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(SplitRequest req, ParseSplit(q.json, q.Param("id")));
  const std::string id = q.Param("id");
  json out = json::array();
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               std::vector<ledger::Rcap> kids,
                               SplitRecorded(*this, txn, id, req, q.caller_text));
                           for (const ledger::Rcap& k : kids) out.push_back(k.ToJson());
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(201, {{"rcaps", out}});
}

// ---- the route table ----

void Broker::RegisterCapacityRoutes() {
  using namespace internal;
  const json rcap_list = SObj({{"rcaps", SArr(SRcap())}});
  router_.Add({.method = "POST",
               .pattern = "/v1/grants",
               .auth = Auth::kSigned,
               .summary = "A site grants capacity: a root rcap it signed, held by the "
                          "broker (a pool) or "
                          "another principal (e.g. a pooling agent)",
               .tag = "capacity",
               .request_schema = SObj({{"rcap", SRcap()}}, {"rcap"}),
               .response_schema = SObj({{"rcap", SRcap()}, {"pooled", SBool()}}),
               .success_status = 201,
               .handler = [this](const ApiRequest& q) { return AddGrant(q); }});
  router_.Add(
      {.method = "GET",
       .pattern = "/v1/pools",
       .summary = "The broker's holdings, pooled by node: unexpired rcaps the "
                  "broker holds",
       .tag = "capacity",
       .response_schema = SObj(
           {{"pools", SArr(SObj({{"node", SStr()}, {"site", SStr()}, {"rcaps", SArr(SRcap())}}))}}),
       .handler = [this](const ApiRequest& q) { return ListPools(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/holdings/{key}",
               .summary = "Unexpired rcaps held by a principal",
               .tag = "capacity",
               .response_schema = rcap_list,
               .handler = [this](const ApiRequest& q) { return ListHoldings(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/rcaps/{id}",
               .summary = "A recorded rcap, its chain (root first), its recorded children "
                          "(released ones left out) and whether it was released",
               .tag = "capacity",
               .response_schema = SObj({{"rcap", SRcap()},
                                        {"chain", SArr(SRcap())},
                                        {"children", SArr(SStr())},
                                        {"released", SBool()}}),
               .handler = [this](const ApiRequest& q) { return GetRcap(q); }});
  router_.Add({.method = "POST",
               .pattern = "/v1/rcaps/{id}/split",
               .auth = Auth::kSigned,
               .summary = "Split / delegate an rcap. The holder submits children it "
                          "signed; for an rcap "
                          "the broker holds, an admin submits child specs and the "
                          "broker signs them",
               .tag = "capacity",
               .request_schema = SplitRequestSchema(),
               .response_schema = rcap_list,
               .success_status = 201,
               .handler = [this](const ApiRequest& q) { return SplitRcap(q); }});
}

}  // namespace bourse::broker
