// The node guard's ssh keys (docs/broker.md "ssh keys", docs/nodeguard.md
// "ssh into a sliver"): for each slice on a node, the ssh keys of the slice's
// current owners, asked for by the node's own key each pass.
#include <set>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/internal/sliver_settings.h"
#include "broker/internal/sql.h"
#include "broker/internal/ssh_keys.h"
#include "broker/internal/util.h"

namespace bourse::broker {

using internal::Stmt;
using nlohmann::json;

namespace {

// The slices that have a sliver on `node` at `now_s`: those with a live
// binding there (the same rows as GET /v1/nodes/{node}/bindings) and those
// instantiated there, with or without an rcap (the best-effort slivers, the
// bindings answer's `slices`). This is the one place that says which slices
// a node gets keys for.
core::Result<std::vector<std::string>> SlicesOnNode(storage::Connection* db,
                                                    const std::string& node, int64_t now_s) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare("SELECT DISTINCT b.slice FROM b_bindings b JOIN b_slices s ON "
                          "s.name=b.slice WHERE b.node=? AND b.not_after>? AND s.expires>?"));
  s.Bind(1, node);
  s.Bind(2, now_s);
  s.Bind(3, now_s);
  std::set<std::string> on;
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    on.insert(s.Text(0));
  }
  BOURSE_ASSIGN_OR_RETURN(json instantiated, internal::InstantiatedSlicesOf(db, node, now_s));
  for (const json& i : instantiated) on.insert(i["slice"].get<std::string>());
  return std::vector<std::string>(on.begin(), on.end());
}

// {"slice","keys":[{"owner","key"}]} for each of `slices`.
core::Result<json> SliceKeys(storage::Connection* db, const std::vector<std::string>& slices) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT owners,ssh_keys FROM b_slices WHERE name=?"));
  json out = json::array();
  for (const std::string& slice : slices) {
    s.Reset();
    s.Bind(1, slice);
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) continue;
    out.push_back({{"slice", slice},
                   {"keys", internal::OwnersSshKeys(internal::ParseStored(s.Text(0)),
                                                    internal::ParseStored(s.Text(1)))}});
  }
  return out;
}

json NodeSshKeysSchema() {
  using namespace internal;
  json key = SObj({{"owner", SKey()}, {"key", SStr("one OpenSSH public key line")}});
  return SObj({{"node", SStr()},
               {"ts", SInt("unix ms")},
               {"slices", SArr(SObj({{"slice", SStr()}, {"keys", SArr(key)}}))}});
}

}  // namespace

core::Result<ApiResponse> Broker::ListNodeSshKeys(const ApiRequest& q) {
  const std::string node = q.Param("node");
  json slices;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_RETURN_IF_ERROR(internal::RequireNodeCaller(db, node, q.caller_text));
    BOURSE_ASSIGN_OR_RETURN(std::vector<std::string> on, SlicesOnNode(db, node, q.now_ms / 1000));
    BOURSE_ASSIGN_OR_RETURN(slices, SliceKeys(db, on));
    return core::Status::Ok();
  }));
  return JsonResponse(200, {{"node", node}, {"ts", q.now_ms}, {"slices", slices}});
}

void Broker::RegisterSshRoutes() {
  router_.Add({.method = "GET",
               .pattern = "/v1/nodes/{node}/ssh_keys",
               .auth = Auth::kSigned,
               .summary = "For the node guard (signed by the node key): per slice with a sliver "
                          "on the node, the ssh keys of its current owners",
               .tag = "nodeguard",
               .response_schema = NodeSshKeysSchema(),
               .handler = [this](const ApiRequest& q) { return ListNodeSshKeys(q); }});
}

}  // namespace bourse::broker
