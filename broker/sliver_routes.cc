// Sliver reports (docs/broker.md "Slivers"): each node guard sends its
// node's whole current set of slivers (state, what was bought, what is
// enforced, and what the kernel holds, read back) when it changes; the broker
// keeps the last one per node, writes each change to the ledger
// (slivers_reported) and serves it per node and per slice.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/internal/plc_tables.h"
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

// slivers[i].slice (`f` = "slivers[i]"), a slice name as a guard holds it.
core::Result<std::string> SliceField(const json& s, const std::string& f) {
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(s, f, "slice"));
  BOURSE_ASSIGN_OR_RETURN(std::string slice, core::StringFromJson(*v, f + ".slice", 64));
  if (!internal::Matches(kSliverName, slice)) {
    return core::InvalidArgument(f + ".slice: \"" + slice +
                                 "\" is not 1..64 chars of [A-Za-z0-9_.-]");
  }
  return slice;
}

// Decodes slivers[i] (field `f`) into its stored form.
core::Result<json> ParseSliver(const json& s, const std::string& f) {
  BOURSE_RETURN_IF_ERROR(
      core::CheckObjectFields(s, f, {"slice", "state", "bought", "enforced", "kernel", "error"}));
  json out = json::object();
  BOURSE_ASSIGN_OR_RETURN(out["slice"], SliceField(s, f));
  const json* v = nullptr;
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

// A report's slivers (the body's only member "slivers", each decoded by
// `one`), normalised: every slice once, in slice order. `what` names the
// report in the size error ("a sliver report").
core::Result<json> ParseReportSlivers(const ApiRequest& q, const std::string& what,
                                      core::Result<json> (*one)(const json&, const std::string&)) {
  if (q.body.size() > kMaxReportBytes) {
    return core::InvalidArgument("body: " + std::to_string(q.body.size()) + " bytes; " + what +
                                 " is at most " + std::to_string(kMaxReportBytes));
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
    BOURSE_ASSIGN_OR_RETURN(json s, one((*sj)[i], f));
    std::string slice = s["slice"];
    if (!by_slice.emplace(slice, std::move(s)).second) {
      return core::InvalidArgument(f + ".slice: " + slice + " is reported twice");
    }
  }
  json out = json::array();
  for (auto& [slice, s] : by_slice) out.push_back(std::move(s));
  return out;
}

// Replaces node `node`'s rows of `table` (node, slice, then `columns`) by
// one per sliver, the values of `columns` from `values`.
core::Status ReplaceNodeRows(ledger::Txn& txn, const std::string& table, const std::string& columns,
                             const std::string& node, const json& slivers,
                             const std::function<std::vector<std::string>(const json&)>& values) {
  BOURSE_ASSIGN_OR_RETURN(Stmt del, txn.db()->Prepare("DELETE FROM " + table + " WHERE node=?"));
  del.Bind(1, node);
  BOURSE_RETURN_IF_ERROR(del.Run());
  size_t n = 1 + static_cast<size_t>(std::count(columns.begin(), columns.end(), ','));
  std::string marks = "?,?";
  for (size_t i = 0; i < n; ++i) marks += ",?";
  BOURSE_ASSIGN_OR_RETURN(Stmt ins, txn.db()->Prepare("INSERT INTO " + table + "(node,slice," +
                                                      columns + ") VALUES(" + marks + ")"));
  for (const json& s : slivers) {
    ins.Reset();
    ins.Bind(1, node);
    ins.Bind(2, s["slice"].get<std::string>());
    std::vector<std::string> v = values(s);
    for (size_t i = 0; i < v.size(); ++i) ins.Bind(static_cast<int>(i + 3), v[i]);
    BOURSE_RETURN_IF_ERROR(ins.Run());
  }
  return core::Status::Ok();
}

// resource_exhausted for a node that reports `what` more often than
// kNodeReportRate allows.
core::Status TooOften(const std::string& node, const std::string& what) {
  return core::ResourceExhausted(
      "node " + node + "'s " + what + " more than " + std::to_string(kNodeReportBurst) +
      " times in a row and more often than once every " +
      std::to_string(static_cast<int>(1 / kNodeReportRate)) + " s; try again later");
}

// Stores node `node`'s report unless it equals the stored one; the change
// and its ledger entry (slivers_reported) commit together. Returns the
// reply: whether it changed, and the time of the report now stored.
core::Result<json> RecordSliverReport(ledger::Txn& txn, const std::string& node,
                                      const std::string& caller, const json& slivers,
                                      int64_t now_ms, RateLimiter& changes) {
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
  if (!changes.Allow(node, now_ms)) return TooOften(node, "sliver report changed");
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
  BOURSE_RETURN_IF_ERROR(ReplaceNodeRows(
      txn, "b_slivers", "state,body", node, slivers, [](const json& s) -> std::vector<std::string> {
        return {s["state"].get<std::string>(), internal::Dump(s)};
      }));
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

// ---- logs (docs/broker.md "Sliver logs"): events and boot-log tails ----

// Bounds of a logs report: slivers and the body as a sliver report, and per
// sliver its events and its log tail.
constexpr size_t kMaxLogEvents = 16;
constexpr size_t kMaxEventKind = 32;
constexpr size_t kMaxEventMessage = 512;
constexpr size_t kMaxLogTail = 4096;
const std::regex kEventKind("^[a-z_]{1,32}$");

core::Result<json> ParseEvent(const json& e, const std::string& f) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(e, f, {"ts_ms", "kind", "message", "count"}));
  json out = json::object();
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(e, f, "ts_ms"));
  BOURSE_ASSIGN_OR_RETURN(out["ts_ms"],
                          core::IntFromJson(*v, f + ".ts_ms", 0, core::kMaxSafeInteger));
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(e, f, "kind"));
  BOURSE_ASSIGN_OR_RETURN(std::string kind, core::StringFromJson(*v, f + ".kind", kMaxEventKind));
  if (!internal::Matches(kEventKind, kind)) {
    return core::InvalidArgument(f + ".kind: \"" + kind + "\" is not 1..32 chars of [a-z_]");
  }
  out["kind"] = kind;
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(e, f, "message"));
  BOURSE_ASSIGN_OR_RETURN(out["message"],
                          core::StringFromJson(*v, f + ".message", kMaxEventMessage));
  out["count"] = 1;
  if (const json* c = core::OptionalMember(e, "count"); c != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(out["count"],
                            core::IntFromJson(*c, f + ".count", 1, core::kMaxSafeInteger));
  }
  return out;
}

core::Result<json> ParseLog(const json& l, const std::string& f) {
  if (l.is_null()) return json(nullptr);
  if (!l.is_object()) return core::InvalidArgument(f + ": must be an object or null");
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(l, f, {"tail", "size", "max_bytes"}));
  json out = json::object();
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(l, f, "tail"));
  BOURSE_ASSIGN_OR_RETURN(out["tail"], core::StringFromJson(*v, f + ".tail", kMaxLogTail));
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(l, f, "size"));
  BOURSE_ASSIGN_OR_RETURN(out["size"],
                          core::IntFromJson(*v, f + ".size", 0, core::kMaxSafeInteger));
  out["max_bytes"] = nullptr;
  if (const json* m = core::OptionalMember(l, "max_bytes"); m != nullptr && !m->is_null()) {
    BOURSE_ASSIGN_OR_RETURN(out["max_bytes"],
                            core::IntFromJson(*m, f + ".max_bytes", 0, core::kMaxSafeInteger));
  }
  return out;
}

// Decodes slivers[i] of a logs report (field `f`).
core::Result<json> ParseSliverLog(const json& s, const std::string& f) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(s, f, {"slice", "events", "log"}));
  json out = json::object();
  BOURSE_ASSIGN_OR_RETURN(out["slice"], SliceField(s, f));
  const json* v = nullptr;
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(s, f, "events"));
  if (!v->is_array()) return core::InvalidArgument(f + ".events: must be an array");
  if (v->size() > kMaxLogEvents) {
    return core::InvalidArgument(f + ".events: " + std::to_string(v->size()) + " events; at most " +
                                 std::to_string(kMaxLogEvents));
  }
  out["events"] = json::array();
  for (size_t i = 0; i < v->size(); ++i) {
    BOURSE_ASSIGN_OR_RETURN(json e, ParseEvent((*v)[i], f + ".events[" + std::to_string(i) + "]"));
    out["events"].push_back(std::move(e));
  }
  const json* l = core::OptionalMember(s, "log");
  BOURSE_ASSIGN_OR_RETURN(out["log"], ParseLog(l ? *l : json(nullptr), f + ".log"));
  return out;
}

// Replaces node `node`'s stored logs with `slivers` unless they are the
// same; no ledger entry (docs/broker.md "Sliver logs" says why).
core::Result<json> RecordSliverLogs(ledger::Txn& txn, const std::string& node,
                                    const std::string& caller, const json& slivers, int64_t now_ms,
                                    RateLimiter& reports) {
  BOURSE_RETURN_IF_ERROR(internal::RequireNodeCaller(txn.db(), node, caller));
  const std::string digest = core::HexEncode(core::Sha256(slivers.dump()));
  BOURSE_ASSIGN_OR_RETURN(
      Stmt old,
      txn.db()->Prepare("SELECT digest,reported_ms FROM b_sliver_log_reports WHERE node=?"));
  old.Bind(1, node);
  BOURSE_ASSIGN_OR_RETURN(bool had, old.Step());
  if (had && old.Text(0) == digest) return json{{"changed", false}, {"reported_ms", old.Int(1)}};
  if (!reports.Allow(node, now_ms)) return TooOften(node, "logs report changed");
  BOURSE_ASSIGN_OR_RETURN(
      Stmt up, txn.db()->Prepare("INSERT OR REPLACE INTO b_sliver_log_reports(node,reported_ms,"
                                 "digest) VALUES(?,?,?)"));
  up.Bind(1, node);
  up.Bind(2, now_ms);
  up.Bind(3, digest);
  BOURSE_RETURN_IF_ERROR(up.Run());
  BOURSE_RETURN_IF_ERROR(ReplaceNodeRows(
      txn, "b_sliver_logs", "body", node, slivers, [](const json& s) -> std::vector<std::string> {
        return {internal::Dump(json{{"events", s["events"]}, {"log", s["log"]}})};
      }));
  return json{{"changed", true}, {"reported_ms", now_ms}};
}

// Adds the stored events and log of each of `slivers` (by node), and a
// "gone" sliver for each node that reports logs of the slice but no sliver
// (torn down), ordered by node.
core::Status AddSliverLogs(storage::Connection* db, const std::string& slice, json* slivers) {
  std::map<std::string, json> by_node;
  for (json& s : *slivers) {
    s["events"] = json::array();
    s["log"] = nullptr;
    s["logs_reported_ms"] = nullptr;
    std::string node = s["node"];
    by_node[node] = std::move(s);
  }
  BOURSE_ASSIGN_OR_RETURN(
      Stmt q, db->Prepare("SELECT l.node,l.body,r.reported_ms FROM b_sliver_logs l JOIN "
                          "b_sliver_log_reports r ON r.node=l.node WHERE l.slice=?"));
  q.Bind(1, slice);
  for (;;) {
    BOURSE_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    std::string node = q.Text(0);
    json body = internal::ParseStored(q.Text(1));
    auto [it, fresh] = by_node.try_emplace(node);
    json& s = it->second;
    if (fresh) {
      s = {{"slice", slice},    {"state", "gone"}, {"bought", nullptr},     {"enforced", nullptr},
           {"kernel", nullptr}, {"node", node},    {"reported_ms", nullptr}};
    }
    s["events"] = body.value("events", json::array());
    s["log"] = body.value("log", json(nullptr));
    s["logs_reported_ms"] = q.Int(2);
  }
  *slivers = json::array();
  for (auto& [node, s] : by_node) slivers->push_back(std::move(s));
  return core::Status::Ok();
}

json LogsSchema() {
  using namespace internal;
  json event =
      SObj({{"ts_ms", SInt("unix ms (the node's clock) of the event, or of its last repeat")},
            {"kind", SStr("started | boot | restarted | error | oom | cpu_throttled | "
                          "net_dropped | disk_full | disk_resized | disk_resize_held | "
                          "torn_down")},
            {"message", SStr()},
            {"count", SInt("how many times it happened in a row")}},
           {"ts_ms", "kind", "message"});
  json log = SObj({{"tail", SStr("the end of the boot script's output (at most 4 KiB)")},
                   {"size", SInt("bytes in the node's log file")},
                   {"max_bytes", {{"type", json::array({"integer", "null"})}}}},
                  {"tail", "size"});
  return SObj({{"slice", SStr()},
               {"events", SArr(event)},
               {"log", {{"oneOf", json::array({log, {{"type", "null"}}})}}}},
              {"slice", "events"});
}

}  // namespace

// ---- the routes ----

core::Result<ApiResponse> Broker::ReportSlivers(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json slivers, ParseReportSlivers(q, "a sliver report", ParseSliver));
  const std::string node = q.Param("node");
  json reply;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               reply, RecordSliverReport(txn, node, q.caller_text, slivers,
                                                         q.now_ms, sliver_report_limiter_));
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
    // Signed: the events and logs too, for those who manage the slice (an
    // admin also after the slice was deleted: its slivers' teardown).
    if (q.caller) {
      BOURSE_ASSIGN_OR_RETURN(Principal p, LookupPrincipal(db, q.caller_text));
      if (p.kind != PrincipalKind::kAdmin) {
        BOURSE_RETURN_IF_ERROR(internal::CheckSliceManager(db, slice, q.caller_text));
      }
    }
    BOURSE_ASSIGN_OR_RETURN(
        slivers, internal::QueryArray(
                     db,
                     "SELECT s.body,s.node,r.reported_ms FROM b_slivers s JOIN "
                     "b_sliver_reports r ON r.node=s.node WHERE s.slice=? ORDER BY s.node",
                     [&](Stmt& s) { s.Bind(1, slice); }, StoredSliver));
    if (q.caller) BOURSE_RETURN_IF_ERROR(AddSliverLogs(db, slice, &slivers));
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

core::Result<ApiResponse> Broker::ReportSliverLogs(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(json slivers, ParseReportSlivers(q, "a logs report", ParseSliverLog));
  const std::string node = q.Param("node");
  json reply;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               reply, RecordSliverLogs(txn, node, q.caller_text, slivers, q.now_ms,
                                                       sliver_log_limiter_));
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(200, reply);
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
  router_.Add({.method = "POST",
               .pattern = "/v1/nodes/{node}/logs",
               .auth = Auth::kSigned,
               .summary = "For the node guard (signed by the node key): each sliver's newest "
                          "events and the tail of its boot script's output, slivers torn down "
                          "included; replaces the last. Not in the ledger. At most 500 slivers "
                          "and 512 KiB; a change at most every 10 s on average (bursts of 12)",
               .tag = "nodeguard",
               .request_schema = SObj({{"slivers", SArr(LogsSchema())}}, {"slivers"}),
               .response_schema = SObj(
                   {{"changed", SBool()}, {"reported_ms", SInt("unix ms of the stored report")}}),
               .handler = [this](const ApiRequest& q) { return ReportSliverLogs(q); }});
  json with_logs = SliverProps(true);
  with_logs["properties"]["events"] = LogsSchema()["properties"]["events"];
  with_logs["properties"]["log"] = LogsSchema()["properties"]["log"];
  with_logs["properties"]["logs_reported_ms"] = nullable_int;
  with_logs["properties"]["state"] = SStr("active | error | scheduled | gone (torn down)");
  router_.Add({.method = "GET",
               .pattern = "/v1/slices/{slice}/slivers",
               .auth = Auth::kOptional,
               .summary = "The slice's slivers on every node whose guard reported one: state, "
                          "bought, enforced and the kernel's read-back; signed by an admin, the "
                          "slice's site PI or an owner, also each sliver's events and log tail "
                          "(and slivers torn down); signed by anyone else, 403",
               .tag = "slices",
               .response_schema = SObj({{"slice", SStr()}, {"slivers", SArr(with_logs)}}),
               .handler = [this](const ApiRequest& q) { return GetSliceSlivers(q); },
               .run = Run::kWorker});
}

}  // namespace bourse::broker
