// Sliver reports (docs/broker.md "Slivers"): each node guard sends its
// node's whole current set of slivers (state, what was bought, what is
// enforced, and what the kernel holds, read back) when it changes; the broker
// keeps the last one per node, writes each change to the ledger
// (slivers_reported) and serves it per node and per slice.
#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/internal/sql.h"
#include "broker/internal/util.h"
#include "core/encoding.h"
#include "core/json_codec.h"
#include "core/sha256.h"

namespace bourse::broker {

using internal::Stmt;
using nlohmann::json;

namespace {

// Bounds of one report: slivers, its body, and the kernel's lists.
constexpr size_t kMaxSlivers = 500;
constexpr size_t kMaxReportBytes = 512 * 1024;
constexpr size_t kMaxNotes = 16;
constexpr size_t kMaxNoteBytes = 512;
constexpr size_t kMaxErrorBytes = 1024;

// A slice name as a node guard holds it (the guard's own rule: spool-fed
// slices need not be the broker's).
const std::regex kSliverName("^[A-Za-z0-9_.-]{1,64}$");

// The kernel's figures a report may carry: integers >= 0 or null.
constexpr const char* kKernelInts[] = {"cpu_mcores",   "cpu_cap_mcores", "mem_mib",
                                       "net_min_kbps", "net_max_kbps",   "disk_mib",
                                       "disk_fs_mib"};

core::Result<json> ParseNotes(const json& k, const std::string& f, const char* name) {
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(k, f, name));
  std::string field = f + "." + name;
  if (!v->is_array()) return core::InvalidArgument(field + ": must be an array");
  if (v->size() > kMaxNotes) {
    return core::InvalidArgument(field + ": at most " + std::to_string(kMaxNotes));
  }
  json out = json::array();
  for (size_t i = 0; i < v->size(); ++i) {
    BOURSE_ASSIGN_OR_RETURN(
        std::string s,
        core::StringFromJson((*v)[i], field + "[" + std::to_string(i) + "]", kMaxNoteBytes));
    out.push_back(std::move(s));
  }
  return out;
}

// Decodes a sliver's "kernel" (field `f`): the read-back, normalised.
core::Result<json> ParseKernel(const json& k, const std::string& f) {
  if (k.is_null()) return json(nullptr);
  if (!k.is_object()) return core::InvalidArgument(f + ": must be an object or null");
  BOURSE_RETURN_IF_ERROR(
      core::CheckObjectFields(k, f,
                              {"read_ms", "cpu_mcores", "cpu_cap_mcores", "mem_mib", "net_min_kbps",
                               "net_max_kbps", "disk_mib", "disk_fs_mib", "cpu_shares",
                               "cpu_weight", "net_classified", "problems", "differences"}));
  json out = json::object();
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(k, f, "read_ms"));
  BOURSE_ASSIGN_OR_RETURN(int64_t read_ms,
                          core::IntFromJson(*v, f + ".read_ms", 0, core::kMaxSafeInteger));
  out["read_ms"] = read_ms;
  for (const char* name : kKernelInts) {
    const json* x = core::OptionalMember(k, name);
    if (x == nullptr || x->is_null()) {
      out[name] = nullptr;
      continue;
    }
    BOURSE_ASSIGN_OR_RETURN(out[name],
                            core::IntFromJson(*x, f + "." + name, 0, core::kMaxSafeInteger));
  }
  for (const char* name : {"cpu_shares", "cpu_weight"}) {
    const json* x = core::OptionalMember(k, name);
    if (x == nullptr) continue;
    BOURSE_ASSIGN_OR_RETURN(out[name],
                            core::IntFromJson(*x, f + "." + name, 0, core::kMaxSafeInteger));
  }
  const json* c = core::OptionalMember(k, "net_classified");
  if (c != nullptr && !c->is_null() && !c->is_boolean()) {
    return core::InvalidArgument(f + ".net_classified: must be a boolean or null");
  }
  out["net_classified"] = c == nullptr ? json(nullptr) : *c;
  BOURSE_ASSIGN_OR_RETURN(out["problems"], ParseNotes(k, f, "problems"));
  BOURSE_ASSIGN_OR_RETURN(out["differences"], ParseNotes(k, f, "differences"));
  return out;
}

// Decodes slivers[i] (field `f`) into its stored form.
core::Result<json> ParseSliver(const json& s, const std::string& f) {
  BOURSE_RETURN_IF_ERROR(
      core::CheckObjectFields(s, f, {"slice", "state", "bought", "enforced", "kernel", "error"}));
  json out = json::object();
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(s, f, "slice"));
  BOURSE_ASSIGN_OR_RETURN(std::string slice, core::StringFromJson(*v, f + ".slice", 64));
  if (!internal::Matches(kSliverName, slice)) {
    return core::InvalidArgument(f + ".slice: \"" + slice +
                                 "\" is not 1..64 chars of [A-Za-z0-9_.-]");
  }
  out["slice"] = slice;
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(s, f, "state"));
  BOURSE_ASSIGN_OR_RETURN(std::string state, core::StringFromJson(*v, f + ".state", 16));
  if (state != "active" && state != "error" && state != "scheduled") {
    return core::InvalidArgument(f + ".state: must be active, error or scheduled");
  }
  out["state"] = state;
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(s, f, "bought"));
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector bought,
                          core::ResourceVectorFromJson(*v, f + ".bought"));
  out["bought"] = core::ResourceVectorToJson(bought);
  out["enforced"] = nullptr;
  if (const json* e = core::OptionalMember(s, "enforced"); e != nullptr && !e->is_null()) {
    BOURSE_ASSIGN_OR_RETURN(core::ResourceVector enforced,
                            core::ResourceVectorFromJson(*e, f + ".enforced"));
    out["enforced"] = core::ResourceVectorToJson(enforced);
  }
  const json* k = core::OptionalMember(s, "kernel");
  BOURSE_ASSIGN_OR_RETURN(out["kernel"], ParseKernel(k ? *k : json(nullptr), f + ".kernel"));
  if (const json* e = core::OptionalMember(s, "error"); e != nullptr && !e->is_null()) {
    BOURSE_ASSIGN_OR_RETURN(std::string err,
                            core::StringFromJson(*e, f + ".error", kMaxErrorBytes));
    out["error"] = err;
  }
  return out;
}

// The report's slivers, normalised (every member present, in slice order).
core::Result<json> ParseSliverReport(const ApiRequest& q) {
  if (q.body.size() > kMaxReportBytes) {
    return core::InvalidArgument("body: " + std::to_string(q.body.size()) +
                                 " bytes; a sliver report is at most " +
                                 std::to_string(kMaxReportBytes));
  }
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(q.json, "", {"slivers"}));
  BOURSE_ASSIGN_OR_RETURN(const json* sj, core::RequireMember(q.json, "", "slivers"));
  if (!sj->is_array()) return core::InvalidArgument("slivers: must be an array");
  if (sj->size() > kMaxSlivers) {
    return core::InvalidArgument("slivers: " + std::to_string(sj->size()) + " slivers; at most " +
                                 std::to_string(kMaxSlivers));
  }
  std::map<std::string, json> by_slice;
  for (size_t i = 0; i < sj->size(); ++i) {
    std::string f = "slivers[" + std::to_string(i) + "]";
    BOURSE_ASSIGN_OR_RETURN(json s, ParseSliver((*sj)[i], f));
    std::string slice = s["slice"];
    if (!by_slice.emplace(slice, std::move(s)).second) {
      return core::InvalidArgument(f + ".slice: " + slice + " is reported twice");
    }
  }
  json out = json::array();
  for (auto& [slice, s] : by_slice) out.push_back(std::move(s));
  return out;
}

// Stores node `node`'s report unless it equals the stored one; the change
// and its ledger entry (slivers_reported) commit together. Returns the
// reply: whether it changed, and the time of the report now stored.
core::Result<json> RecordSliverReport(ledger::Txn& txn, const std::string& node,
                                      const std::string& caller, const json& slivers,
                                      int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(internal::RequireNodeCaller(txn.db(), node, caller));
  const std::string digest = core::HexEncode(core::Sha256(slivers.dump()));
  BOURSE_ASSIGN_OR_RETURN(
      Stmt old,
      txn.db()->Prepare("SELECT digest,reported_ms,seq FROM b_sliver_reports WHERE node=?"));
  old.Bind(1, node);
  BOURSE_ASSIGN_OR_RETURN(bool had, old.Step());
  if (had && old.Text(0) == digest) {
    return json{{"changed", false}, {"reported_ms", old.Int(1)}, {"seq", old.Int(2)}};
  }
  BOURSE_RETURN_IF_ERROR(
      txn.Append("slivers_reported", {{"node", node}, {"slivers", slivers}}).status());
  int64_t seq = static_cast<int64_t>(txn.next_seq()) - 1;
  BOURSE_ASSIGN_OR_RETURN(
      Stmt up, txn.db()->Prepare("INSERT OR REPLACE INTO b_sliver_reports(node,reported_ms,"
                                 "digest,seq,slivers) VALUES(?,?,?,?,?)"));
  up.Bind(1, node);
  up.Bind(2, now_ms);
  up.Bind(3, digest);
  up.Bind(4, seq);
  up.Bind(5, static_cast<int64_t>(slivers.size()));
  BOURSE_RETURN_IF_ERROR(up.Run());
  BOURSE_ASSIGN_OR_RETURN(Stmt del, txn.db()->Prepare("DELETE FROM b_slivers WHERE node=?"));
  del.Bind(1, node);
  BOURSE_RETURN_IF_ERROR(del.Run());
  BOURSE_ASSIGN_OR_RETURN(
      Stmt ins, txn.db()->Prepare("INSERT INTO b_slivers(node,slice,state,body) VALUES(?,?,?,?)"));
  for (const json& s : slivers) {
    ins.Reset();
    ins.Bind(1, node);
    ins.Bind(2, s["slice"].get<std::string>());
    ins.Bind(3, s["state"].get<std::string>());
    ins.Bind(4, internal::Dump(s));
    BOURSE_RETURN_IF_ERROR(ins.Run());
  }
  return json{{"changed", true}, {"reported_ms", now_ms}, {"seq", seq}};
}

// One stored sliver with the report's node and time.
json StoredSliver(Stmt& s) {
  json j = internal::ParseStored(s.Text(0));
  j["node"] = s.Text(1);
  j["reported_ms"] = s.Int(2);
  return j;
}

json KernelSchema() {
  using namespace internal;
  json n = {{"type", json::array({"integer", "null"})}};
  std::vector<std::pair<std::string, json>> props = {
      {"read_ms", SInt("unix ms (the node's clock) when the kernel was read")},
      {"cpu_shares", SInt("cgroup v1 cpu.shares as read")},
      {"cpu_weight", SInt("cgroup v2 cpu.weight as read")},
      {"net_classified", {{"type", json::array({"boolean", "null"})}}},
      {"problems", SArr(SStr())},
      {"differences", SArr(SStr("where the kernel differs from what was enforced"))}};
  for (const char* k : kKernelInts) props.emplace_back(k, n);
  json k = SObj(props, {"read_ms", "problems", "differences"});
  return {{"oneOf", json::array({k, {{"type", "null"}}})},
          {"description",
           "what the kernel holds, read back and converted to resource units "
           "(docs/nodeguard.md \"Read-back\"); null: nothing enforced (scheduled)"}};
}

json SliverProps(bool stored) {
  using namespace internal;
  json res_or_null = {{"oneOf", json::array({SResources(), {{"type", "null"}}})}};
  std::vector<std::pair<std::string, json>> props = {
      {"slice", SStr()},          {"state", SStr("active | error | scheduled")},
      {"bought", SResources()},   {"enforced", res_or_null},
      {"kernel", KernelSchema()}, {"error", SStr("the failing step and its error (state error)")}};
  std::vector<std::string> required = {"slice", "state", "bought"};
  if (stored) {
    props.emplace_back("node", SStr());
    props.emplace_back("reported_ms", SInt("unix ms (the broker's clock) of the report"));
    required = {"slice", "state", "bought", "enforced", "kernel", "node", "reported_ms"};
  }
  return SObj(props, required);
}

}  // namespace

// ---- the routes ----

core::Result<ApiResponse> Broker::ReportSlivers(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json slivers, ParseSliverReport(q));
  const std::string node = q.Param("node");
  json reply;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               reply,
                               RecordSliverReport(txn, node, q.caller_text, slivers, q.now_ms));
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(200, reply);
}

core::Result<ApiResponse> Broker::GetNodeSlivers(const ApiRequest& q) {
  const std::string node = q.Param("node");
  json out = {{"node", node}, {"reported_ms", nullptr}, {"seq", nullptr}};
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_RETURN_IF_ERROR(
        internal::GetOneOrNotFound(db, "SELECT 1 FROM b_nodes WHERE id=?", node, "node").status());
    BOURSE_ASSIGN_OR_RETURN(
        Stmt r, db->Prepare("SELECT reported_ms,seq FROM b_sliver_reports WHERE node=?"));
    r.Bind(1, node);
    BOURSE_ASSIGN_OR_RETURN(bool had, r.Step());
    if (had) {
      out["reported_ms"] = r.Int(0);
      out["seq"] = r.Int(1);
    }
    BOURSE_ASSIGN_OR_RETURN(
        out["slivers"],
        internal::QueryArray(
            db,
            "SELECT s.body,s.node,r.reported_ms FROM b_slivers s JOIN b_sliver_reports r ON "
            "r.node=s.node WHERE s.node=? ORDER BY s.slice",
            [&](Stmt& s) { s.Bind(1, node); }, StoredSliver));
    return core::Status::Ok();
  }));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Broker::GetSliceSlivers(const ApiRequest& q) {
  const std::string slice = q.Param("slice");
  json slivers;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(
        slivers, internal::QueryArray(
                     db,
                     "SELECT s.body,s.node,r.reported_ms FROM b_slivers s JOIN "
                     "b_sliver_reports r ON r.node=s.node WHERE s.slice=? ORDER BY s.node",
                     [&](Stmt& s) { s.Bind(1, slice); }, StoredSliver));
    if (slivers.empty()) {
      // Nothing reported: 404 unless the slice exists.
      BOURSE_RETURN_IF_ERROR(
          internal::GetOneOrNotFound(db, "SELECT 1 FROM b_slices WHERE name=?", slice, "slice")
              .status());
    }
    return core::Status::Ok();
  }));
  return JsonResponse(200, {{"slice", slice}, {"slivers", slivers}});
}

void Broker::RegisterSliverRoutes() {
  using namespace internal;
  json nullable_int = {{"type", json::array({"integer", "null"})}};
  router_.Add({.method = "POST",
               .pattern = "/v1/nodes/{node}/slivers",
               .auth = Auth::kSigned,
               .summary = "For the node guard (signed by the node key): the node's whole current "
                          "set of slivers with what the kernel holds; replaces the last one and, "
                          "when it differs, is written to the ledger (slivers_reported). At most "
                          "500 slivers and 512 KiB",
               .tag = "nodeguard",
               .request_schema = SObj({{"slivers", SArr(SliverProps(false))}}, {"slivers"}),
               .response_schema = SObj({{"changed", SBool()},
                                        {"reported_ms", SInt("unix ms of the stored report")},
                                        {"seq", SInt("ledger seq of its slivers_reported")}}),
               .handler = [this](const ApiRequest& q) { return ReportSlivers(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/nodes/{node}/slivers",
               .summary = "The node's slivers as its guard last reported them: state, bought, "
                          "enforced and the kernel's read-back",
               .tag = "nodes",
               .response_schema = SObj({{"node", SStr()},
                                        {"reported_ms", nullable_int},
                                        {"seq", nullable_int},
                                        {"slivers", SArr(SliverProps(true))}}),
               .handler = [this](const ApiRequest& q) { return GetNodeSlivers(q); },
               .run = Run::kWorker});
  router_.Add({.method = "GET",
               .pattern = "/v1/slices/{slice}/slivers",
               .summary = "The slice's slivers on every node whose guard reported one: state, "
                          "bought, enforced and the kernel's read-back",
               .tag = "slices",
               .response_schema = SObj({{"slice", SStr()}, {"slivers", SArr(SliverProps(true))}}),
               .handler = [this](const ApiRequest& q) { return GetSliceSlivers(q); },
               .run = Run::kWorker});
}

}  // namespace bourse::broker
