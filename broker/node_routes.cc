// The node guard's endpoints (/tmp/bourse-node-api.md, docs/broker.md):
// bindings of one node, redemption reports and usage reports, each signed by
// the node's own key.
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/internal/sliver_settings.h"
#include "broker/internal/sql.h"
#include "broker/internal/util.h"
#include "core/json_codec.h"
#include "ledger/accounts.h"

namespace bourse::broker {

using internal::Stmt;
using nlohmann::json;

namespace {

constexpr size_t kMaxReports = 1000;

constexpr int64_t kDefaultUsageSlivers = 100;
constexpr int64_t kMaxUsageSlivers = 1000;

// TOTAL() of SQLite is a double: exact for sums below 2^53, which is where
// every real figure lives (2^53 us of CPU is 285 years); larger sums are
// the nearest double, and saturate at INT64_MAX.
int64_t SumToInt(double d) {
  if (!(d > 0)) return 0;
  if (d >= 9223372036854775807.0) return INT64_MAX;
  return static_cast<int64_t>(d);
}

// The usage reports of slivers (slice, node) seen from one side: by slice
// (`key` a slice, the slivers keyed by node) or by node (`key` a node, the
// slivers keyed by slice). One page of at most `limit` slivers after
// `after` in key order, each with its running totals and its latest report,
// and the totals over all the slivers (not only the page).
core::Result<json> UsageView(storage::Connection* db, bool by_slice, const std::string& key,
                             const std::string& after, int64_t limit) {
  const std::string self = by_slice ? "slice" : "node";
  const std::string other = by_slice ? "node" : "slice";
  using internal::Stmt;
  BOURSE_ASSIGN_OR_RETURN(Stmt g, db->Prepare("SELECT " + other +
                                              ",COUNT(*),MIN(from_s),MAX(to_s),TOTAL(cpu_usec),"
                                              "TOTAL(net_tx_bytes) FROM b_usage WHERE " +
                                              self + "=? AND " + other + ">? GROUP BY " + other +
                                              " ORDER BY " + other + " LIMIT ?"));
  g.Bind(1, key);
  g.Bind(2, after);
  g.Bind(3, limit + 1);
  json slivers = json::array();
  json next = nullptr;
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, g.Step());
    if (!row) break;
    if (static_cast<int64_t>(slivers.size()) == limit) {
      next = slivers.back()[other];
      break;
    }
    json sv = {{"slice", by_slice ? key : g.Text(0)},
               {"node", by_slice ? g.Text(0) : key},
               {"reports", g.Int(1)},
               {"from", g.Int(2)},
               {"to", g.Int(3)},
               {"cpu_usec", SumToInt(g.Double(4))},
               {"net_tx_bytes", SumToInt(g.Double(5))}};
    slivers.push_back(std::move(sv));
  }
  BOURSE_ASSIGN_OR_RETURN(Stmt l, db->Prepare("SELECT id,rcap,from_s,to_s,cpu_usec,net_tx_bytes,"
                                              "disk_used_mib,seq FROM b_usage WHERE slice=? AND "
                                              "node=? ORDER BY to_s DESC, seq DESC LIMIT 1"));
  for (json& sv : slivers) {
    l.Reset();
    l.Bind(1, sv["slice"].get<std::string>());
    l.Bind(2, sv["node"].get<std::string>());
    BOURSE_ASSIGN_OR_RETURN(bool row, l.Step());
    if (!row) return core::Internal("usage: sliver without reports");
    sv["disk_used_mib"] = l.Int(6);
    sv["latest"] = {{"id", l.Text(0)},           {"rcap", l.Text(1)},
                    {"from", l.Int(2)},          {"to", l.Int(3)},
                    {"cpu_usec", l.Int(4)},      {"net_tx_bytes", l.Int(5)},
                    {"disk_used_mib", l.Int(6)}, {"seq", l.Int(7)}};
  }
  BOURSE_ASSIGN_OR_RETURN(Stmt t,
                          db->Prepare("SELECT COUNT(DISTINCT " + other +
                                      "),COUNT(*),TOTAL(cpu_usec),TOTAL(net_tx_bytes) FROM b_usage "
                                      "WHERE " +
                                      self + "=?"));
  t.Bind(1, key);
  BOURSE_ASSIGN_OR_RETURN(bool trow, t.Step());
  (void)trow;  // an aggregate always has one row
  // Disk use is a level, not a flow: the total is over each sliver's latest.
  BOURSE_ASSIGN_OR_RETURN(
      Stmt d, db->Prepare("SELECT TOTAL(u.disk_used_mib) FROM b_usage u WHERE u." + self +
                          "=? AND u.seq=(SELECT v.seq FROM b_usage v WHERE "
                          "v.slice=u.slice AND v.node=u.node ORDER BY v.to_s DESC, "
                          "v.seq DESC LIMIT 1)"));
  d.Bind(1, key);
  BOURSE_ASSIGN_OR_RETURN(bool drow, d.Step());
  (void)drow;
  json totals = {{"slivers", t.Int(0)},
                 {"reports", t.Int(1)},
                 {"cpu_usec", SumToInt(t.Double(2))},
                 {"net_tx_bytes", SumToInt(t.Double(3))},
                 {"disk_used_mib", SumToInt(d.Double(0))}};
  return json{{self, key}, {"slivers", slivers}, {"totals", totals}, {"next", next}};
}

json UsageSchema(const std::string& self) {
  using namespace internal;
  json latest = SObj({{"id", SStr()},
                      {"rcap", SStr()},
                      {"from", SInt()},
                      {"to", SInt()},
                      {"cpu_usec", SInt()},
                      {"net_tx_bytes", SInt()},
                      {"disk_used_mib", SInt()},
                      {"seq", SInt("ledger seq of the report")}});
  json sliver = SObj({{"slice", SStr()},
                      {"node", SStr()},
                      {"reports", SInt()},
                      {"from", SInt("unix s, start of the first report")},
                      {"to", SInt("unix s, end of the last report")},
                      {"cpu_usec", SInt("sum over the reports")},
                      {"net_tx_bytes", SInt("sum over the reports")},
                      {"disk_used_mib", SInt("as of the latest report")},
                      {"latest", latest}});
  json totals = SObj({{"slivers", SInt()},
                      {"reports", SInt()},
                      {"cpu_usec", SInt()},
                      {"net_tx_bytes", SInt()},
                      {"disk_used_mib", SInt("sum of each sliver's latest")}});
  return SObj({{self, SStr()},
               {"slivers", SArr(sliver)},
               {"totals", totals},
               {"next",
                {{"type", json::array({"string", "null"})},
                 {"description", "pass as ?after= for the next page; null: last page"}}}});
}

json NodeBindingsSchema() {
  using namespace internal;
  return SObj({{"node", SStr()},
               {"ts", SInt("unix ms")},
               {"bindings", SArr(SObj({{"slice", SStr()},
                                       {"chain", SArr(SRcap())},
                                       {"boot_script", SStr()},
                                       {"owners", SArr(SKey())},
                                       {"state", SStr("bound")}}))},
               {"slices", SArr(SObj({{"slice", SStr()},
                                     {"expires", SInt("unix s")},
                                     {"boot_script", SStr()},
                                     {"share", SInt()},
                                     {"disk_mib", SInt()},
                                     {"mem_mib", SInt()}}))}});
}

json RedemptionsRequestSchema() {
  using namespace internal;
  return SObj({{"redemptions", SArr(SObj({{"rcap", SStr()},
                                          {"slice", SStr()},
                                          {"state", SStr("active|scheduled|refused")},
                                          {"reason", {{"type", json::array({"string", "null"})}}},
                                          {"detail", SStr()},
                                          {"ts", SInt()}},
                                         {"rcap", "slice", "state", "ts"}))}},
              {"redemptions"});
}

json UsageReportsSchema() {
  using namespace internal;
  return SObj({{"reports", SArr(SObj({{"id", SStr()},
                                      {"slice", SStr()},
                                      {"rcap", SStr()},
                                      {"from", SInt()},
                                      {"to", SInt()},
                                      {"cpu_usec", SInt()},
                                      {"net_tx_bytes", SInt()},
                                      {"disk_used_mib", SInt()}},
                                     {"id", "slice", "rcap", "from", "to", "cpu_usec",
                                      "net_tx_bytes", "disk_used_mib"}))}},
              {"reports"});
}

// The live chains bound to `node`, with each slice's boot script and owners.
core::Result<json> LiveBindingsOf(storage::Connection* db, const std::string& node, int64_t now_s) {
  return internal::QueryArray(
      db,
      "SELECT b.slice,b.chain,s.boot_script,s.owners FROM b_bindings b "
      "JOIN b_slices s ON s.name=b.slice WHERE b.node=? AND "
      "b.not_after>? AND s.expires>? ORDER BY b.created_ms, b.leaf",
      [&](Stmt& s) {
        s.Bind(1, node);
        s.Bind(2, now_s);
        s.Bind(3, now_s);
      },
      [](Stmt& s) {
        return json{{"slice", s.Text(0)},
                    {"chain", internal::ParseStored(s.Text(1))},
                    {"boot_script", s.Text(2)},
                    {"owners", internal::ParseStored(s.Text(3))},
                    {"state", "bound"}};
      });
}

// ---- redemptions ----

struct Redemption {
  std::string rcap, slice, state, reason, detail;
  int64_t ts;
};

// Decodes redemptions[i] (field `f`).
core::Result<Redemption> ParseRedemption(const json& r, const std::string& f) {
  BOURSE_RETURN_IF_ERROR(
      core::CheckObjectFields(r, f, {"rcap", "slice", "state", "reason", "detail", "ts"}));
  Redemption it;
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(r, f, "rcap"));
  BOURSE_ASSIGN_OR_RETURN(it.rcap, core::StringFromJson(*v, f + ".rcap", 128));
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(r, f, "slice"));
  BOURSE_ASSIGN_OR_RETURN(it.slice, core::StringFromJson(*v, f + ".slice", 64));
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(r, f, "state"));
  BOURSE_ASSIGN_OR_RETURN(it.state, core::StringFromJson(*v, f + ".state", 16));
  if (it.state != "active" && it.state != "scheduled" && it.state != "refused") {
    return core::InvalidArgument(f + ".state: must be active, scheduled or refused");
  }
  if (r.contains("reason") && !r["reason"].is_null()) {
    BOURSE_ASSIGN_OR_RETURN(it.reason, core::StringFromJson(r["reason"], f + ".reason", 64));
    if (!ledger::RefusalReasonFromName(it.reason)) {
      return core::InvalidArgument(f + ".reason: not a DESIGN §7 refusal reason");
    }
  }
  if (it.state == "refused" && it.reason.empty()) {
    return core::InvalidArgument(f + ".reason: required when state is refused");
  }
  if (r.contains("detail")) {
    BOURSE_ASSIGN_OR_RETURN(it.detail, core::StringFromJson(r["detail"], f + ".detail", 1024));
  }
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(r, f, "ts"));
  BOURSE_ASSIGN_OR_RETURN(it.ts, core::IntFromJson(*v, f + ".ts", 0, core::kMaxSafeInteger));
  return it;
}

core::Result<std::vector<Redemption>> ParseRedemptions(const json& body) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"redemptions"}));
  BOURSE_ASSIGN_OR_RETURN(const json* rj, core::RequireMember(body, "", "redemptions"));
  if (!rj->is_array()) return core::InvalidArgument("redemptions: must be an array");
  if (rj->size() > kMaxReports) return core::InvalidArgument("redemptions: at most 1000");
  std::vector<Redemption> items;
  for (size_t i = 0; i < rj->size(); ++i) {
    BOURSE_ASSIGN_OR_RETURN(Redemption it,
                            ParseRedemption((*rj)[i], "redemptions[" + std::to_string(i) + "]"));
    items.push_back(std::move(it));
  }
  return items;
}

// The ledger side of one new report: a refusal, the rcap's first redemption
// (the capacity log's), or a later change of its redemption state.
core::Status NoteRedemption(ledger::Txn& txn, const Redemption& it, const ledger::Rcap& rc,
                            const std::string& node) {
  if (it.state == "refused") {
    return txn
        .Append("rcap_refused", {{"rcap", it.rcap},
                                 {"node", node},
                                 {"slice", it.slice},
                                 {"reason", it.reason},
                                 {"detail", it.detail},
                                 {"ts", it.ts}})
        .status();
  }
  BOURSE_ASSIGN_OR_RETURN(Stmt a, txn.db()->Prepare("SELECT 1 FROM b_redemptions WHERE rcap=? AND "
                                                    "state IN ('active','scheduled')"));
  a.Bind(1, it.rcap);
  BOURSE_ASSIGN_OR_RETURN(bool redeemed, a.Step());
  if (!redeemed) return ledger::CapacityLog::RecordRedeemed(txn, rc, node);
  return txn
      .Append("rcap_redemption_state", {{"rcap", it.rcap},
                                        {"node", node},
                                        {"slice", it.slice},
                                        {"state", it.state},
                                        {"ts", it.ts}})
      .status();
}

// Records one report of node `node` (idempotent on (rcap, state)).
core::Status RecordRedemption(ledger::Txn& txn, const Redemption& it, const std::string& f,
                              const std::string& node) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt d, txn.db()->Prepare("SELECT 1 FROM b_redemptions WHERE rcap=? AND state=?"));
  d.Bind(1, it.rcap);
  d.Bind(2, it.state);
  BOURSE_ASSIGN_OR_RETURN(bool dup, d.Step());
  if (dup) return core::Status::Ok();  // idempotent: already recorded
  auto rc = ledger::CapacityLog::Get(txn.db(), it.rcap);
  if (!rc.ok()) return rc.status().WithContext(f + ".rcap");
  if (rc->node != node) {
    return core::PermissionDenied(f + ".rcap: is for node " + rc->node + ", not " + node);
  }
  BOURSE_RETURN_IF_ERROR(NoteRedemption(txn, it, *rc, node));
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, txn.db()->Prepare("INSERT INTO b_redemptions(rcap,state,node,slice,reason,"
                                "detail,ts,seq) VALUES(?,?,?,?,?,?,?,?)"));
  s.Bind(1, it.rcap);
  s.Bind(2, it.state);
  s.Bind(3, node);
  s.Bind(4, it.slice);
  s.Bind(5, it.reason);
  s.Bind(6, it.detail);
  s.Bind(7, it.ts);
  s.Bind(8, static_cast<int64_t>(txn.next_seq()) - 1);
  return s.Run();
}

// The node's own key reports redemptions; returns how many are recorded
// (including those recorded before).
core::Result<int64_t> RecordRedemptions(ledger::Txn& txn, const std::vector<Redemption>& items,
                                        const std::string& node, const std::string& caller) {
  BOURSE_RETURN_IF_ERROR(internal::RequireNodeCaller(txn.db(), node, caller));
  int64_t recorded = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    BOURSE_RETURN_IF_ERROR(
        RecordRedemption(txn, items[i], "redemptions[" + std::to_string(i) + "]", node));
    ++recorded;
  }
  return recorded;
}

// ---- usage reports ----

struct UsageReport {
  std::string id, slice, rcap;
  int64_t from, to, cpu, net, disk;
};

// Decodes reports[i] (field `f`).
core::Result<UsageReport> ParseUsageReport(const json& r, const std::string& f) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(
      r, f, {"id", "slice", "rcap", "from", "to", "cpu_usec", "net_tx_bytes", "disk_used_mib"}));
  UsageReport p;
  BOURSE_ASSIGN_OR_RETURN(const json* v, core::RequireMember(r, f, "id"));
  BOURSE_ASSIGN_OR_RETURN(p.id, core::StringFromJson(*v, f + ".id", 128));
  if (p.id.empty()) return core::InvalidArgument(f + ".id: empty");
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(r, f, "slice"));
  BOURSE_ASSIGN_OR_RETURN(p.slice, core::StringFromJson(*v, f + ".slice", 64));
  BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(r, f, "rcap"));
  BOURSE_ASSIGN_OR_RETURN(p.rcap, core::StringFromJson(*v, f + ".rcap", 128));
  struct N {
    const char* name;
    int64_t* out;
  } nums[] = {{"from", &p.from},
              {"to", &p.to},
              {"cpu_usec", &p.cpu},
              {"net_tx_bytes", &p.net},
              {"disk_used_mib", &p.disk}};
  for (const N& n : nums) {
    BOURSE_ASSIGN_OR_RETURN(v, core::RequireMember(r, f, n.name));
    BOURSE_ASSIGN_OR_RETURN(*n.out,
                            core::IntFromJson(*v, f + "." + n.name, 0, core::kMaxSafeInteger));
  }
  if (p.to < p.from) return core::InvalidArgument(f + ".to: before from");
  return p;
}

core::Result<std::vector<UsageReport>> ParseUsageReports(const json& body) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"reports"}));
  BOURSE_ASSIGN_OR_RETURN(const json* rj, core::RequireMember(body, "", "reports"));
  if (!rj->is_array()) return core::InvalidArgument("reports: must be an array");
  if (rj->size() > kMaxReports) return core::InvalidArgument("reports: at most 1000");
  std::vector<UsageReport> reps;
  for (size_t i = 0; i < rj->size(); ++i) {
    BOURSE_ASSIGN_OR_RETURN(UsageReport p,
                            ParseUsageReport((*rj)[i], "reports[" + std::to_string(i) + "]"));
    reps.push_back(std::move(p));
  }
  return reps;
}

// Records one usage report of `node` unless its id is recorded already.
core::Status RecordUsageReport(ledger::Txn& txn, const UsageReport& p, const std::string& node) {
  BOURSE_ASSIGN_OR_RETURN(Stmt d, txn.db()->Prepare("SELECT 1 FROM b_usage WHERE node=? AND id=?"));
  d.Bind(1, node);
  d.Bind(2, p.id);
  BOURSE_ASSIGN_OR_RETURN(bool dup, d.Step());
  if (dup) return core::Status::Ok();
  BOURSE_RETURN_IF_ERROR(txn.Append("usage_reported", {{"node", node},
                                                       {"id", p.id},
                                                       {"slice", p.slice},
                                                       {"rcap", p.rcap},
                                                       {"from", p.from},
                                                       {"to", p.to},
                                                       {"cpu_usec", p.cpu},
                                                       {"net_tx_bytes", p.net},
                                                       {"disk_used_mib", p.disk}})
                             .status());
  BOURSE_ASSIGN_OR_RETURN(Stmt s, txn.db()->Prepare("INSERT INTO b_usage(node,id,slice,rcap,from_s,"
                                                    "to_s,cpu_usec,net_tx_bytes,disk_used_mib,seq) "
                                                    "VALUES(?,?,?,?,?,?,?,?,?,?)"));
  s.Bind(1, node);
  s.Bind(2, p.id);
  s.Bind(3, p.slice);
  s.Bind(4, p.rcap);
  s.Bind(5, p.from);
  s.Bind(6, p.to);
  s.Bind(7, p.cpu);
  s.Bind(8, p.net);
  s.Bind(9, p.disk);
  s.Bind(10, static_cast<int64_t>(txn.next_seq()) - 1);
  return s.Run();
}

// The node's own key reports usage; returns the ids acknowledged (every
// report's, new or recorded before).
core::Result<json> RecordUsageReports(ledger::Txn& txn, const std::vector<UsageReport>& reps,
                                      const std::string& node, const std::string& caller) {
  BOURSE_RETURN_IF_ERROR(internal::RequireNodeCaller(txn.db(), node, caller));
  json acked = json::array();
  for (const UsageReport& p : reps) {
    BOURSE_RETURN_IF_ERROR(RecordUsageReport(txn, p, node));
    acked.push_back(p.id);
  }
  return acked;
}

}  // namespace

// ---- the routes ----

core::Result<ApiResponse> Broker::ListNodeBindings(const ApiRequest& q) {
  const std::string node = q.Param("node");
  int64_t now_s = q.now_ms / 1000;
  json list, slices;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_RETURN_IF_ERROR(internal::RequireNodeCaller(db, node, q.caller_text));
    BOURSE_ASSIGN_OR_RETURN(list, LiveBindingsOf(db, node, now_s));
    BOURSE_ASSIGN_OR_RETURN(slices, internal::InstantiatedSlicesOf(db, node, now_s));
    return core::Status::Ok();
  }));
  return JsonResponse(200,
                      {{"node", node}, {"ts", q.now_ms}, {"bindings", list}, {"slices", slices}});
}

core::Result<ApiResponse> Broker::AddRedemptions(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(std::vector<Redemption> items, ParseRedemptions(q.json));
  const std::string node = q.Param("node");
  int64_t recorded = 0;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               recorded, RecordRedemptions(txn, items, node, q.caller_text));
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(200, {{"recorded", recorded}});
}

core::Result<ApiResponse> Broker::GetSliceUsage(const ApiRequest& q) {
  const std::string slice = q.Param("slice");
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> after, q.Query("after"));
  BOURSE_ASSIGN_OR_RETURN(int64_t limit,
                          q.QueryInt("limit", 1, kMaxUsageSlivers, kDefaultUsageSlivers));
  json out;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(out, UsageView(db, true, slice, after.value_or(""), limit));
    if (out["totals"]["reports"] == 0) {
      // No reports: 404 unless the slice exists (a deleted slice's
      // usage stays readable).
      BOURSE_RETURN_IF_ERROR(
          internal::GetOneOrNotFound(db, "SELECT 1 FROM b_slices WHERE name=?", slice, "slice")
              .status());
    }
    return core::Status::Ok();
  }));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Broker::GetNodeUsage(const ApiRequest& q) {
  const std::string node = q.Param("node");
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> after, q.Query("after"));
  BOURSE_ASSIGN_OR_RETURN(int64_t limit,
                          q.QueryInt("limit", 1, kMaxUsageSlivers, kDefaultUsageSlivers));
  json out;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_RETURN_IF_ERROR(
        internal::GetOneOrNotFound(db, "SELECT 1 FROM b_nodes WHERE id=?", node, "node").status());
    BOURSE_ASSIGN_OR_RETURN(out, UsageView(db, false, node, after.value_or(""), limit));
    return core::Status::Ok();
  }));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Broker::AddUsageReports(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(std::vector<UsageReport> reps, ParseUsageReports(q.json));
  const std::string node = q.Param("node");
  json acked;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               acked, RecordUsageReports(txn, reps, node, q.caller_text));
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(200, {{"acked", acked}});
}

// ---- the route table ----

void Broker::RegisterNodeRoutes() {
  using namespace internal;
  router_.Add({.method = "GET",
               .pattern = "/v1/nodes/{node}/bindings",
               .auth = Auth::kSigned,
               .summary = "For the node guard (signed by the node key): the live "
                          "chains bound to this "
                          "node with each slice's boot script and owners, and the live slices "
                          "instantiated on it with their best-effort settings",
               .tag = "nodeguard",
               .response_schema = NodeBindingsSchema(),
               .handler = [this](const ApiRequest& q) { return ListNodeBindings(q); }});
  router_.Add({.method = "POST",
               .pattern = "/v1/nodes/{node}/redemptions",
               .auth = Auth::kSigned,
               .summary = "For the node guard: report redemptions and refusals "
                          "(idempotent on (rcap, "
                          "state)); each is written to the ledger",
               .tag = "nodeguard",
               .request_schema = RedemptionsRequestSchema(),
               .response_schema = SObj({{"recorded", SInt()}}),
               .handler = [this](const ApiRequest& q) { return AddRedemptions(q); }});

  const std::vector<QueryParam> usage_params = {
      {"after", "string", false, "page after this key (the previous page's `next`)"},
      {"limit", "integer", false, "slivers per page, 1..1000 (default 100)"}};
  router_.Add({.method = "GET",
               .pattern = "/v1/slices/{slice}/usage",
               .summary = "Usage the node guards reported for the slice: per sliver "
                          "(node) the sums, "
                          "the latest report, and totals over all its slivers",
               .tag = "slices",
               .query_params = usage_params,
               .response_schema = UsageSchema("slice"),
               .handler = [this](const ApiRequest& q) { return GetSliceUsage(q); },
               .run = Run::kWorker});
  router_.Add({.method = "GET",
               .pattern = "/v1/nodes/{node}/usage",
               .summary = "Usage the node's guard reported: per sliver (slice) the "
                          "sums, the latest "
                          "report, and totals over all its slivers",
               .tag = "nodes",
               .query_params = usage_params,
               .response_schema = UsageSchema("node"),
               .handler = [this](const ApiRequest& q) { return GetNodeUsage(q); },
               .run = Run::kWorker});
  router_.Add({.method = "POST",
               .pattern = "/v1/nodes/{node}/usage",
               .auth = Auth::kSigned,
               .summary = "For the node guard: usage reports (idempotent on report id "
                          "per node)",
               .tag = "nodeguard",
               .request_schema = UsageReportsSchema(),
               .response_schema = SObj({{"acked", SArr(SStr())}}),
               .handler = [this](const ApiRequest& q) { return AddUsageReports(q); }});
}

}  // namespace bourse::broker
