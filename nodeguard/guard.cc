#include "nodeguard/guard.h"

#include <dirent.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/canonical_json.h"
#include "core/json_codec.h"
#include "core/request_signing.h"
#include "core/service_notify.h"
#include "http/server.h"
#include "ledger/rcap.h"
#include "nodeguard/best_effort.h"
#include "nodeguard/internal/exec.h"
#include "nodeguard/logins.h"
#include "nodeguard/sliver_logs.h"

namespace bourse::nodeguard {

using core::Result;
using core::Status;

namespace {

// At most this many slivers go in one report (the broker refuses more).
constexpr size_t kMaxSliverReport = 500;

bool ValidSliceName(const std::string& n) {
  if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
  for (char c : n) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

std::string Stem(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string f = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = f.rfind('.');
  if (dot != std::string::npos && dot > 0) f = f.substr(0, dot);
  for (char& c : f) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) c = '_';
  }
  if (f.size() > 64) f.resize(64);
  return f;
}

// A spool file or the redeem command's input: a chain array, or
// {"slice":..,"chain":[..],"boot_script":..}.
struct ChainInput {
  std::string chain_json;
  std::string slice;
  std::string boot_script;
};
ChainInput ReadChainInput(const std::string& text, const std::string& default_slice) {
  ChainInput in{text, default_slice, ""};
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("chain")) {
    in.chain_json = j["chain"].dump();
    if (j.contains("slice") && j["slice"].is_string()) in.slice = j["slice"].get<std::string>();
    if (j.contains("boot_script") && j["boot_script"].is_string()) {
      in.boot_script = j["boot_script"].get<std::string>();
    }
  }
  return in;
}

}  // namespace

// Serves the status API (read-only: no request changes anything, so none is
// signed) with `answer(method, path)`.
class StatusService : public http::Service {
 public:
  using Answer = std::function<http::Response(std::string_view, std::string_view)>;
  explicit StatusService(Answer answer) : answer_(std::move(answer)) {}
  void Serve(http::Request q, http::Responder respond) override {
    respond(answer_(q.method, q.path));
  }
  http::Response Refusal(int status, std::string_view message) override {
    http::Response r;
    r.status = status;
    r.body = nlohmann::json{{"error", {{"code", "bad_request"}, {"message", std::string(message)}}}}
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
  }

 private:
  Answer answer_;
};

struct Guard::Impl {
  GuardConfig cfg;
  const core::Clock* clock = nullptr;
  std::vector<core::PublicKey> trusted;
  std::optional<core::PrivateKey> node_key;
  std::unique_ptr<StateStore> store;
  std::unique_ptr<Enforcer> enforcer;
  std::map<std::string, std::pair<int64_t, int64_t>> spool_seen;  // file -> (mtime, size)
  int64_t spool_dir_mtime = -1;
  std::map<std::string, SliverUsage> last_usage;
  int64_t broker_next_try_ms = 0;
  int broker_failures = 0;
  bool broker_ok = false;
  int64_t last_usage_s = 0;
  bool meter_every_pass = false;
  // The Enforcer's failures after the last pass, and the pass's error.
  std::map<std::string, SliverFailure> enforce_failures;
  std::string enforce_error;
  int64_t passes = 0;
  // Boot (docs/nodeguard.md "Boot"): ready once a pass has enforced what the
  // broker binds to this node, or, with the broker unreachable, what the
  // guard's own database holds from an earlier sync. "" until then.
  std::string ready_from;

  // Proportional share (share_table.h): the last good table, checked against
  // broker_key; refusals of later tables are kept for the status API.
  struct ShareRefusal {
    std::string reason, detail;
    int64_t ts_ms = 0;
  };
  std::optional<core::PublicKey> broker_key;
  std::optional<ShareTable> shares;
  std::deque<ShareRefusal> share_refusals;  // the last kMaxShareRefusals
  std::string share_error;                  // the last fetch failure, "" after a success
  static constexpr size_t kMaxShareRefusals = 20;

  // The kernel's read-back (Enforcer::ReadBack) of the enforced slivers, when
  // it was read, and the last sliver report the broker accepted (canonical,
  // read times left out: what "changed" compares).
  std::map<std::string, KernelReadback> kernel;
  int64_t kernel_read_ms = 0;
  std::set<std::string> kernel_names;  // the slivers `kernel` was read for
  std::string sliver_report_sent;
  // Events and boot-log tails of the slivers (sliver_logs.h), and the last
  // logs report the broker accepted.
  std::unique_ptr<SliverLogs> logs;
  std::string logs_report_sent;
  int64_t logs_next_try_ms = 0;  // after a 429, the broker's rate bound

  // Best-effort slivers (best_effort.h): the slices instantiated on this node
  // as the broker last listed them, kept in the database (meta "best_effort").
  std::vector<BestEffortSlice> best_effort;

  // ssh into slivers (logins.h; `ssh = true`): the accounts, login table
  // and keys file, the cgroups a login joins, and the keys the broker last
  // sent per slice (kept in the keys file over restarts).
  std::unique_ptr<Logins> logins;
  CgroupOptions login_cgroups;
  std::map<std::string, std::vector<OwnerKey>> ssh_keys;
  int64_t ssh_keys_ms = 0;  // when the broker last answered
  std::string ssh_error;    // the last fetch failure, "" after a success

  mutable core::Mutex snap_mu;

  // The status API on config.status_socket (http/server.h over a Unix socket).
  std::unique_ptr<StatusService> status_service;
  std::unique_ptr<http::Server> status_server;
  std::thread status_thread;

  // ------------------------------------------------------------ redemption
  void RedeemBatch(const std::vector<RedeemRequest>& reqs, PassStats* st) {
    if (reqs.empty()) return;
    auto r = store->RedeemMany(reqs, trusted, cfg.node_id, clock->NowSeconds());
    if (!r.ok()) {
      fprintf(stderr, "nodeguard: redeeming %zu chains failed: %s\n", reqs.size(),
              r.status().ToString().c_str());
      return;
    }
    for (const RedeemResult& x : *r) {
      if (x.already_redeemed) continue;
      if (x.verdict.ok()) {
        ++st->redeemed;
      } else {
        ++st->refused;
      }
    }
  }

  void ScanSpool(PassStats* st) {
    // Spool files are written whole and renamed into place, so a scan is
    // needed only when the directory itself changed.
    struct stat ds;
    if (stat(cfg.spool_dir.c_str(), &ds) != 0) return;
    int64_t dir_mtime = ds.st_mtim.tv_sec * 1000000000LL + ds.st_mtim.tv_nsec;
    if (dir_mtime == spool_dir_mtime) return;
    DIR* d = opendir(cfg.spool_dir.c_str());
    if (d == nullptr) return;
    spool_dir_mtime = dir_mtime;
    std::vector<std::string> files;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) files.push_back(n);
    }
    closedir(d);
    std::sort(files.begin(), files.end());
    std::vector<RedeemRequest> reqs;
    for (const std::string& f : files) {
      std::string path = cfg.spool_dir + "/" + f;
      struct stat sb;
      if (stat(path.c_str(), &sb) != 0) continue;
      std::pair<int64_t, int64_t> key{sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec,
                                      sb.st_size};
      auto it = spool_seen.find(f);
      if (it != spool_seen.end() && it->second == key) continue;
      spool_seen[f] = key;
      auto text = internal::ReadFileText(path);
      if (!text.ok()) continue;
      ChainInput in = ReadChainInput(*text, Stem(f));
      reqs.push_back({in.chain_json, in.slice, in.boot_script, "spool"});
    }
    RedeemBatch(reqs, st);
  }

  // ------------------------------------------------------------ broker
  std::unique_ptr<httplib::Client> Client() {
    auto c = std::make_unique<httplib::Client>(cfg.broker_url);
    c->set_connection_timeout(2, 0);
    c->set_read_timeout(5, 0);
    c->set_write_timeout(5, 0);
    return c;
  }
  httplib::Headers Signed(const std::string& method, const std::string& path,
                          const std::string& body) {
    core::SignedHeaders h = core::SignRequest(*node_key, method, path, body, clock->NowSeconds());
    return {{"Bourse-Key", h.key},
            {"Bourse-Timestamp", h.timestamp},
            {"Bourse-Nonce", h.nonce},
            {"Bourse-Signature", h.signature}};
  }
  void RefuseShares(const std::string& reason, const std::string& detail, PassStats* st) {
    fprintf(stderr, "nodeguard: share table refused (%s): %s\n", reason.c_str(), detail.c_str());
    share_refusals.push_back({reason, detail, clock->NowMillis()});
    while (share_refusals.size() > kMaxShareRefusals) share_refusals.pop_front();
    if (st) st->shares_refused = reason;
  }

  // The table kept by an earlier run, checked again (the key may have changed).
  void LoadShares() {
    if (!broker_key) return;
    auto text = store->GetMeta("share_table");
    if (!text.ok()) return;
    ShareCheck c = CheckShareTable(*text, *broker_key, cfg.node_id, -1);
    if (c.ok()) {
      shares = std::move(c.table);
    } else {
      RefuseShares(c.reason, "stored table: " + c.detail, nullptr);
    }
  }

  // GET /v1/nodes/{node}/shares (public; the broker's signature on the body is
  // what is trusted). A refused table changes nothing: the last good one stays.
  void SyncShares(PassStats* st) {
    if (!st->broker_ok || !broker_key) return;
    std::string path = "/v1/nodes/" + cfg.node_id + "/shares";
    httplib::Result res = Client()->Get(path.c_str());
    if (!res || res->status != 200) {
      share_error = !res ? "broker " + cfg.broker_url + ": " + httplib::to_string(res.error())
                         : "broker GET " + path + ": HTTP " + std::to_string(res->status) + " " +
                               res->body.substr(0, 300);
      fprintf(stderr, "nodeguard: %s\n", share_error.c_str());
      return;
    }
    share_error.clear();
    ShareCheck c =
        CheckShareTable(res->body, *broker_key, cfg.node_id, shares ? shares->ts_ms : int64_t{-1});
    if (!c.ok()) {
      RefuseShares(c.reason, c.detail, st);
      return;
    }
    Status put = store->PutMeta("share_table", c.table->text);
    if (!put.ok()) {
      fprintf(stderr, "nodeguard: keeping the share table: %s\n", put.ToString().c_str());
    }
    shares = std::move(c.table);
    st->shares_accepted = true;
  }

  // GET /v1/nodes/{node}/ssh_keys (signed): the keys of each slice's current
  // owners. A failed fetch keeps the last keys; removed owners' keys go with
  // the first answer after assign_owners.
  void SyncSshKeys(const PassStats& st) {
    if (!logins || !st.broker_ok) return;
    auto j = Call("GET", "/v1/nodes/" + cfg.node_id + "/ssh_keys", nullptr);
    using Keys = std::map<std::string, std::vector<OwnerKey>>;
    std::vector<std::string> dropped;
    Result<Keys> keys =
        j.ok() ? ParseNodeSshKeys(*j, cfg.node_id, &dropped) : Result<Keys>(j.status());
    if (!keys.ok()) {
      ssh_error = keys.status().ToString();
      fprintf(stderr, "nodeguard: ssh keys: %s\n", ssh_error.c_str());
      return;
    }
    for (const std::string& d : dropped)
      fprintf(stderr, "nodeguard: ssh key refused: %s\n", d.c_str());
    ssh_error.clear();
    ssh_keys = std::move(*keys);
    ssh_keys_ms = clock->NowMillis();
  }

  // Every sliver the guard enforces gets its login (whatever put it in
  // `desired`); slivers no longer there lose theirs before they are torn down.
  void SyncLogins(const std::vector<SliverSpec>& desired) {
    if (!logins) return;
    std::vector<SliverLogin> want;
    for (const SliverSpec& s : desired) {
      SliverLogin l;
      l.name = s.name;
      l.uid = s.uid;
      l.home = cfg.disk_root == "none" ? "/" : enforcer->SliverDir(s.name);
      if (!cfg.netns.empty()) l.netns = "/run/netns/" + cfg.netns;
      l.procs = CgroupProcsFiles(login_cgroups, s.name);
      auto k = ssh_keys.find(s.name);
      if (k != ssh_keys.end()) l.keys = k->second;
      want.push_back(std::move(l));
    }
    Status a = logins->Apply(want);
    if (!a.ok()) fprintf(stderr, "nodeguard: ssh logins: %s\n", a.ToString().c_str());
  }

  nlohmann::json SshStatus() const {
    if (!logins) return {{"enabled", false}};
    nlohmann::json accounts = nlohmann::json::array();
    auto stored = logins->StoredKeys();
    for (const auto& [name, uid] : logins->Accounts()) {
      accounts.push_back({{"user", name}, {"uid", uid}, {"keys", stored[name].size()}});
    }
    nlohmann::json failed = nlohmann::json::object();
    for (const auto& [name, why] : logins->Failures()) failed[name] = why;
    nlohmann::json j = {
        {"enabled", true},
        {"keys_ms", ssh_keys_ms == 0 ? nlohmann::json(nullptr) : nlohmann::json(ssh_keys_ms)},
        {"accounts", accounts},
        {"no_account", failed}};
    if (!ssh_error.empty()) j["last_error"] = ssh_error;
    return j;
  }

  Result<nlohmann::json> Call(const std::string& method, const std::string& path,
                              const nlohmann::json* body) {
    auto c = Client();
    std::string b = body ? body->dump() : "";
    httplib::Result res =
        method == "GET" ? c->Get(path.c_str(), Signed(method, path, b))
                        : c->Post(path.c_str(), Signed(method, path, b), b, "application/json");
    if (!res) {
      return core::Unavailable("broker " + cfg.broker_url + ": " + httplib::to_string(res.error()));
    }
    if (res->status != 200) {
      return core::Unavailable("broker " + method + " " + path + ": HTTP " +
                               std::to_string(res->status) + " " + res->body.substr(0, 300));
    }
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return core::Unavailable("broker " + path + ": response is not a JSON object");
    }
    return j;
  }

  void SyncBindings(PassStats* st) {
    if (cfg.broker_url.empty() || !node_key) return;
    int64_t now_ms = clock->NowMillis();
    if (now_ms < broker_next_try_ms) return;
    auto j = Call("GET", "/v1/nodes/" + cfg.node_id + "/bindings", nullptr);
    if (!j.ok() || !(*j).contains("bindings") || !(*j)["bindings"].is_array()) {
      ++broker_failures;
      broker_ok = false;
      int64_t backoff_s =
          std::min<int64_t>(int64_t{1} << std::min(broker_failures, 8), cfg.reconcile_period_s);
      broker_next_try_ms = now_ms + backoff_s * 1000;
      if (!j.ok()) {
        fprintf(stderr, "nodeguard: %s (retry in %lld s)\n", j.status().ToString().c_str(),
                static_cast<long long>(backoff_s));
      }
      return;
    }
    broker_failures = 0;
    broker_ok = true;
    st->broker_ok = true;
    store->PutMeta("last_broker_contact_ms", std::to_string(now_ms)).IgnoreError();
    std::set<std::string> bound;
    std::vector<RedeemRequest> reqs;
    for (const auto& b : (*j)["bindings"]) {
      if (!b.is_object() || !b.contains("chain")) continue;
      ChainInput in;
      in.chain_json = b["chain"].dump();
      in.slice = b.contains("slice") && b["slice"].is_string() ? b["slice"].get<std::string>() : "";
      in.boot_script = b.contains("boot_script") && b["boot_script"].is_string()
                           ? b["boot_script"].get<std::string>()
                           : "";
      if (b["chain"].is_array() && !b["chain"].empty() && b["chain"].back().is_object() &&
          b["chain"].back().contains("id") && b["chain"].back()["id"].is_string()) {
        bound.insert(b["chain"].back()["id"].get<std::string>());
      }
      reqs.push_back({in.chain_json, in.slice, in.boot_script, "broker"});
    }
    RedeemBatch(reqs, st);
    KeepBestEffort((*j).contains("slices") ? (*j)["slices"] : nlohmann::json());
    auto live = store->LiveLeaves();
    if (live.ok()) {
      for (const LeafRecord& l : *live) {
        if (l.source == "broker" && !bound.count(l.leaf_id)) {
          if (store->Revoke(l.leaf_id).ok()) ++st->revoked;
        }
      }
    }
  }

  // The broker's list of the slices instantiated here; kept (and stored)
  // when it changed. Malformed entries are skipped and named on stderr.
  void KeepBestEffort(const nlohmann::json& slices) {
    BestEffortParse p = ParseBestEffort(slices);
    for (const std::string& e : p.errors) {
      fprintf(stderr, "nodeguard: best-effort slice skipped: %s\n", e.c_str());
    }
    if (p.slices == best_effort) return;
    best_effort = std::move(p.slices);
    Status put = store->PutMeta("best_effort", BestEffortToJson(best_effort).dump());
    if (!put.ok()) {
      fprintf(stderr, "nodeguard: keeping the best-effort slices: %s\n", put.ToString().c_str());
    }
  }

  // The list an earlier run kept: a rebooted node restores its best-effort
  // slivers before (or without) the broker answering.
  void LoadBestEffort() {
    auto text = store->GetMeta("best_effort");
    if (!text.ok()) return;
    best_effort = ParseBestEffort(nlohmann::json::parse(*text, nullptr, false)).slices;
  }

  void Report() {
    if (!broker_ok) return;
    std::string path = "/v1/nodes/" + cfg.node_id + "/redemptions";
    nlohmann::json items = nlohmann::json::array();
    std::vector<std::pair<std::string, std::string>> leaves_sent;
    std::vector<std::pair<std::string, std::string>> refusals_sent;
    auto all = store->UnreportedLeaves();
    if (all.ok()) {
      for (const LeafRecord& l : *all) {
        // Not enforced (yet): the broker hears "active" only once it holds,
        // or the refusal when it never does.
        if (l.state == "active" && enforce_failures.count(l.slice)) continue;
        items.push_back({{"rcap", l.leaf_id},
                         {"slice", l.slice},
                         {"state", l.state},
                         {"reason", nullptr},
                         {"detail", ""},
                         {"ts", clock->NowSeconds()}});
        leaves_sent.emplace_back(l.leaf_id, l.state);
      }
    }
    auto refs = store->Refusals(true);
    if (refs.ok()) {
      for (const RefusalRecord& r : *refs) {
        items.push_back({{"rcap", r.leaf_id},
                         {"slice", r.slice},
                         {"state", "refused"},
                         {"reason", r.reason},
                         {"detail", r.detail},
                         {"ts", r.ts}});
        refusals_sent.emplace_back(r.chain_hash, r.reason);
      }
    }
    if (!items.empty()) {
      nlohmann::json body = {{"redemptions", items}};
      auto res = Call("POST", path, &body);
      if (res.ok()) {
        for (const auto& [id, state] : leaves_sent)
          store->MarkLeafReported(id, state).IgnoreError();
        for (const auto& [h, reason] : refusals_sent) {
          store->MarkRefusalReported(h, reason).IgnoreError();
        }
      } else {
        fprintf(stderr, "nodeguard: reporting redemptions: %s\n", res.status().ToString().c_str());
      }
    }
    auto pending = store->PendingUsage(500);
    if (pending.ok() && !pending->empty()) {
      nlohmann::json reports = nlohmann::json::array();
      for (const auto& u : *pending) reports.push_back(u.ToJson());
      nlohmann::json body = {{"reports", reports}};
      auto res = Call("POST", "/v1/nodes/" + cfg.node_id + "/usage", &body);
      if (res.ok() && (*res).contains("acked") && (*res)["acked"].is_array()) {
        std::vector<std::string> ids;
        for (const auto& a : (*res)["acked"]) {
          if (a.is_string()) ids.push_back(a.get<std::string>());
        }
        store->AckUsage(ids).IgnoreError();
      }
    }
  }

  // ------------------------------------------------------------ read-back
  // Reads back what the kernel holds for the enforced slivers: on the passes
  // that verify the kernel, after any change, when the set of slivers
  // changed and while some sliver fails; other passes keep the last reading
  // (and its time), as the cheap pass keeps the kernel unread.
  void ReadKernel(const std::vector<SliverSpec>& desired, const PassStats& st, bool verify) {
    std::set<std::string> names;
    for (const SliverSpec& s : desired) names.insert(s.name);
    const ReconcileStats& e = st.enforce;
    bool changed = e.created + e.updated + e.removed > 0 || e.link_changed;
    if (!verify && !changed && names == kernel_names && enforce_failures.empty() &&
        kernel_read_ms != 0) {
      return;
    }
    kernel = enforcer->ReadBack(desired);
    kernel_read_ms = clock->NowMillis();
    kernel_names = std::move(names);
  }

  // The "kernel" member of a sliver (status API and broker report): the
  // read-back, its time, and where it differs from what was enforced.
  static nlohmann::json KernelJson(const SliverSpec& s, const KernelReadback& k, int64_t read_ms) {
    nlohmann::json j = k.ToJson();
    j["read_ms"] = read_ms;
    j["differences"] = ReadbackDifferences(s, k);
    return j;
  }

  // POST /v1/nodes/{node}/slivers: the node's whole current set of slivers
  // (docs/nodeguard.md "Sliver reports"), sent when it differs from the last
  // one the broker accepted, read times aside.
  void ReportSlivers(const std::vector<SliverSpec>& desired,
                     const std::map<std::string, core::ResourceVector>& bought,
                     const std::vector<LeafRecord>& live) {
    if (!broker_ok) return;
    nlohmann::json slivers = nlohmann::json::array();
    std::set<std::string> listed;
    for (const SliverSpec& s : desired) {
      if (slivers.size() >= kMaxSliverReport) break;
      auto b = bought.find(s.name);
      auto f = enforce_failures.find(s.name);
      nlohmann::json sv = {
          {"slice", s.name},
          {"state", f == enforce_failures.end() ? "active" : "error"},
          {"bought", core::ResourceVectorToJson(b == bought.end() ? s.res : b->second)},
          {"enforced", core::ResourceVectorToJson(s.res)},
          {"kernel", nullptr}};
      auto k = kernel.find(s.name);
      if (k != kernel.end()) sv["kernel"] = KernelJson(s, k->second, kernel_read_ms);
      if (f != enforce_failures.end()) {
        sv["error"] = (f->second.step + ": " + f->second.message).substr(0, 1024);
      }
      slivers.push_back(std::move(sv));
      listed.insert(s.name);
    }
    // Slices whose leaves all start later: scheduled, nothing in the kernel.
    std::map<std::string, core::ResourceVector> scheduled;
    for (const LeafRecord& l : live) {
      if (listed.count(l.slice)) continue;
      auto [it, fresh] = scheduled.try_emplace(l.slice, l.res);
      if (!fresh) it->second = it->second.Plus(l.res).value_or(it->second);
    }
    for (const auto& [slice, res] : scheduled) {
      if (slivers.size() >= kMaxSliverReport) break;
      slivers.push_back({{"slice", slice},
                         {"state", "scheduled"},
                         {"bought", core::ResourceVectorToJson(res)},
                         {"enforced", nullptr},
                         {"kernel", nullptr}});
    }
    nlohmann::json key = slivers;
    for (auto& sv : key) {
      if (sv["kernel"].is_object()) sv["kernel"].erase("read_ms");
    }
    std::string digest = key.dump();
    if (digest == sliver_report_sent) return;
    nlohmann::json body = {{"slivers", std::move(slivers)}};
    auto res = Call("POST", "/v1/nodes/" + cfg.node_id + "/slivers", &body);
    if (res.ok()) {
      sliver_report_sent = std::move(digest);
    } else {
      fprintf(stderr, "nodeguard: reporting slivers: %s\n", res.status().ToString().c_str());
    }
  }

  // POST /v1/nodes/{node}/logs: the slivers' events and boot-log tails
  // (docs/nodeguard.md "Sliver events and logs"), sent when they changed.
  // A refusal is tried again next pass, after the broker's rate bound (429)
  // not before 10 s.
  void ReportLogs() {
    if (!broker_ok || clock->NowMillis() < logs_next_try_ms) return;
    nlohmann::json body = logs->ReportBody();
    std::string text = body.dump();
    if (text == logs_report_sent) return;
    auto res = Call("POST", "/v1/nodes/" + cfg.node_id + "/logs", &body);
    if (res.ok()) {
      logs_report_sent = std::move(text);
    } else {
      if (res.status().message().find("HTTP 429") != std::string::npos) {
        logs_next_try_ms = clock->NowMillis() + 10'000;
      }
      fprintf(stderr, "nodeguard: reporting sliver logs: %s\n", res.status().ToString().c_str());
    }
  }

  // ------------------------------------------------------------ usage
  void Meter(const std::map<std::string, std::string>& slice_leaf) {
    int64_t now = clock->NowSeconds();
    if (!meter_every_pass) {
      if (last_usage_s == 0) {
        // Boot: the first figures are taken one period later, off the boot path.
        last_usage_s = now;
        return;
      }
      if (now - last_usage_s < cfg.reconcile_period_s) return;
    }
    last_usage_s = now;
    last_usage = enforcer->Usage();
    auto marks = store->UsageMarks();
    if (!marks.ok()) return;
    std::vector<UsageEntry> entries;
    for (const auto& [slice, leaf] : slice_leaf) {
      auto it = last_usage.find(slice);
      if (it == last_usage.end()) continue;
      const SliverUsage& u = it->second;
      UsageEntry e;
      e.cpu_mark = u.cpu_usec;
      e.net_mark = u.net_tx_bytes;
      UsageReport& r = e.report;
      r.id = cfg.node_id + "-" + slice + "-" + std::to_string(now);
      r.slice = slice;
      r.rcap = leaf;
      r.to = now;
      r.disk_used_mib = u.disk_used_mib;
      auto m = marks->find(slice);
      if (m == marks->end()) {
        // First sight: the counters started with the sliver; report them.
        r.from = now - cfg.reconcile_period_s;
        r.cpu_usec = u.cpu_usec;
        r.net_tx_bytes = u.net_tx_bytes;
      } else {
        if (m->second.ts >= now) continue;
        // Counters restart when a sliver is recreated.
        int64_t cpu0 = u.cpu_usec < m->second.cpu_usec ? 0 : m->second.cpu_usec;
        int64_t net0 = u.net_tx_bytes < m->second.net_tx_bytes ? 0 : m->second.net_tx_bytes;
        r.from = m->second.ts;
        r.cpu_usec = u.cpu_usec - cpu0;
        r.net_tx_bytes = u.net_tx_bytes - net0;
      }
      entries.push_back(std::move(e));
    }
    store->AddUsageReports(entries).IgnoreError();
  }

  // ------------------------------------------------------------ pass
  Result<PassStats> Pass() {
    PassStats st;
    static const bool trace = getenv("BOURSE_NODEGUARD_TRACE") != nullptr;
    auto t = std::chrono::steady_clock::now();
    auto lap = [&](const char* what) {
      if (!trace) return;
      auto n = std::chrono::steady_clock::now();
      fprintf(stderr, "nodeguard trace: %-10s %8.2f ms\n", what,
              std::chrono::duration<double, std::milli>(n - t).count());
      t = n;
    };
    ScanSpool(&st);
    lap("spool");
    SyncBindings(&st);
    SyncShares(&st);
    SyncSshKeys(st);
    lap("broker");
    int64_t now = clock->NowSeconds();
    BOURSE_ASSIGN_OR_RETURN(std::vector<std::string> touched, store->AdvanceTime(now));
    st.expired = static_cast<int>(touched.size());
    BOURSE_ASSIGN_OR_RETURN(std::vector<LeafRecord> live, store->LiveLeaves());
    std::map<std::string, SliverSpec> by_slice;
    std::map<std::string, std::string> slice_leaf;
    std::vector<std::string> active_slices;
    std::set<std::string> best_effort_live;  // slices with a best-effort sliver now
    for (const LeafRecord& l : live) {
      if (l.not_before <= now && now < l.not_after) active_slices.push_back(l.slice);
    }
    for (const BestEffortSlice& b : best_effort) {
      if (now < b.expires) {
        active_slices.push_back(b.slice);
        best_effort_live.insert(b.slice);
      }
    }
    BOURSE_ASSIGN_OR_RETURN(auto slots, store->SlotsFor(active_slices));
    // The slice's sliver, named and given its uid and class when first seen.
    auto sliver_of = [&](const std::string& slice) -> std::pair<SliverSpec*, bool> {
      auto [it, fresh] = by_slice.try_emplace(slice);
      if (fresh) {
        int64_t slot = slots[slice];
        it->second.name = slice;
        it->second.uid = static_cast<uint32_t>(cfg.uid_base + slot);
        it->second.class_minor = static_cast<uint32_t>(slot + 2);
      }
      return {&it->second, fresh};
    };
    for (const LeafRecord& l : live) {
      if (!(l.not_before <= now && now < l.not_after)) continue;  // scheduled: not yet
      auto [sp, fresh] = sliver_of(l.slice);
      SliverSpec& s = *sp;
      if (fresh) {
        s.res = l.res;
        slice_leaf[l.slice] = l.leaf_id;
      } else {
        auto sum = s.res.Plus(l.res);
        if (sum.ok()) s.res = *sum;
      }
      if (!l.boot_script.empty()) s.boot_script = l.boot_script;
    }
    // A slice instantiated here without an rcap still gets its sliver.
    for (const BestEffortSlice& b : best_effort) {
      if (!best_effort_live.count(b.slice)) continue;
      SliverSpec& s = *sliver_of(b.slice).first;
      if (s.boot_script.empty()) s.boot_script = b.boot_script;
    }
    std::vector<SliverSpec> desired;
    std::map<std::string, core::ResourceVector> bought;  // rcap sums, before shares
    for (auto& [name, s] : by_slice) {
      bought[name] = s.res;
      desired.push_back(s);
    }
    std::map<std::string, ShareGrant> grants;
    if (shares) {
      grants = ApplyShares(*shares,
                           {.cpu_mcores = cfg.cpu_mcores,
                            .link_kbps = cfg.interface.empty() ? 0 : cfg.link_kbps,
                            .default_min_kbps = cfg.default_min_kbps},
                           &desired);
    }
    std::map<std::string, BestEffortGrant> be_grants =
        ApplyBestEffort(best_effort,
                        {.cpu_mcores = cfg.cpu_mcores,
                         .link_kbps = cfg.interface.empty() ? 0 : cfg.link_kbps,
                         .default_min_kbps = cfg.default_min_kbps},
                        now, &desired);
    if (cfg.cpu_cap == "guaranteed") {
      for (SliverSpec& s : desired) s.cpu_cap_mcores = s.res.cpu_mcores;
    }
    lap("desired");
    SyncLogins(desired);
    bool verify = passes % 10 == 0;
    ++passes;
    // A kernel error on one sliver must not stop metering, reporting or the
    // status API; the pass reports it at the end.
    auto e = enforcer->Reconcile(desired, verify);
    Status enforce_status = e.ok() ? Status::Ok() : e.status();
    if (e.ok()) st.enforce = *e;
    enforce_error = enforce_status.ok() ? "" : enforce_status.ToString();
    enforce_failures = enforcer->Failures();
    st.enforce_failed = static_cast<int>(enforce_failures.size());
    // A sliver that still cannot be enforced after kMaxEnforceAttempts
    // passes is refused: its leaves are released and reported, and the next
    // pass tears it down.
    // A fault of the node rather than of a sliver (every sliver failing at
    // a step other than its own boot: the link cannot be read back, a tool
    // is missing, the cgroup tree is gone) is reported as an error but
    // refuses nothing: a refusal is final, and paid bindings must not be
    // lost to a hiccup of the node.
    bool node_wide = !desired.empty() && enforce_failures.size() >= desired.size();
    for (const auto& [slice, f] : enforce_failures) node_wide = node_wide && f.step != "boot";
    for (const auto& [slice, f] : enforce_failures) {
      fprintf(stderr, "nodeguard: sliver %s not enforced (%s, attempt %d of %d): %s\n",
              slice.c_str(), f.step.c_str(), f.attempts, kMaxEnforceAttempts, f.message.c_str());
      if (f.attempts < kMaxEnforceAttempts || node_wide) continue;
      std::vector<std::string> ids;
      for (const LeafRecord& l : live) {
        if (l.slice == slice && l.not_before <= now && now < l.not_after) ids.push_back(l.leaf_id);
      }
      Status r =
          store->RefuseLeaves(ids, "sliver " + slice + ": " + f.step + ": " + f.message, now);
      if (r.ok()) {
        st.enforce_refused += static_cast<int>(ids.size());
      } else if (enforce_status.ok()) {
        enforce_status = r;
      }
    }
    Status events = logs->RecordPass(desired, st.enforce, enforce_failures, verify);
    if (!events.ok()) fprintf(stderr, "nodeguard: sliver events: %s\n", events.ToString().c_str());
    lap("enforce");
    if (st.enforce_refused > 0) {
      // The refused leaves are no longer live.
      BOURSE_ASSIGN_OR_RETURN(live, store->LiveLeaves());
    }
    if (st.enforce.removed > 0 || st.expired > 0 || st.revoked > 0) {
      BOURSE_RETURN_IF_ERROR(store->DropIdleSlices(best_effort_live));
    }
    Meter(slice_leaf);
    lap("meter");
    ReadKernel(desired, st, verify);
    Report();
    ReportSlivers(desired, bought, live);
    ReportLogs();
    lap("report");
    if (ready_from.empty()) MaybeReady(st, desired.size());
    UpdateSnapshot(std::move(desired), std::move(bought), std::move(grants), std::move(be_grants),
                   std::move(live));
    lap("snapshot");
    if (!enforce_status.ok()) return enforce_status;
    return st;
  }

  // Called after each pass until the guard is ready. A guard with a broker is
  // ready after the first pass whose bindings fetch answered (everything bound
  // to the node redeemed and enforced), or, while the broker cannot be
  // reached, after a pass that enforced its own database, provided that
  // database holds an earlier sync: an empty state directory has nothing to
  // boot from, so that guard keeps trying the broker before it is ready. A
  // guard without a broker (spool only) is ready after its first pass.
  void MaybeReady(const PassStats& st, size_t slivers) {
    if (cfg.broker_url.empty()) {
      ready_from = "state";
    } else if (st.broker_ok) {
      ready_from = "broker";
    } else if (store->GetMeta("last_broker_contact_ms").ok()) {
      ready_from = "state";
    } else {
      return;
    }
    std::string what = "enforcing " + std::to_string(slivers) + " sliver" +
                       (slivers == 1 ? "" : "s") + " (booted from " +
                       (ready_from == "broker" ? "the broker" : "its own state") + ")";
    fprintf(stderr, "bourse-nodeguard: ready: %s\n", what.c_str());
    Status n = core::NotifyServiceManager("READY=1\nSTATUS=" + what);
    if (!n.ok()) fprintf(stderr, "nodeguard: %s\n", n.ToString().c_str());
  }

  // What the status API shows; the JSON is built when asked.
  struct Snapshot {
    int64_t ts_ms = 0;
    bool broker_ok = false;
    std::vector<SliverSpec> desired;
    std::map<std::string, core::ResourceVector> bought;
    std::map<std::string, ShareGrant> grants;
    std::map<std::string, BestEffortGrant> be_grants;
    std::optional<ShareTable> shares;
    std::deque<ShareRefusal> share_refusals;
    std::string share_error;
    std::vector<LeafRecord> live;
    std::map<std::string, SliverUsage> usage;
    std::vector<RefusalRecord> refusals;
    std::map<std::string, SliverFailure> failures;
    std::string enforce_error;
    std::map<std::string, KernelReadback> kernel;
    int64_t kernel_read_ms = 0;
    int64_t pending_usage = 0;
    int64_t last_contact_ms = -1;
    std::string ready_from;
    nlohmann::json ssh;
  };
  Snapshot snap GUARDED_BY(snap_mu);

  void UpdateSnapshot(std::vector<SliverSpec> desired,
                      std::map<std::string, core::ResourceVector> bought,
                      std::map<std::string, ShareGrant> grants,
                      std::map<std::string, BestEffortGrant> be_grants,
                      std::vector<LeafRecord> live) {
    Snapshot n;
    n.ts_ms = clock->NowMillis();
    n.broker_ok = broker_ok;
    n.ready_from = ready_from;
    n.desired = std::move(desired);
    n.bought = std::move(bought);
    n.grants = std::move(grants);
    n.be_grants = std::move(be_grants);
    n.shares = shares;
    n.share_refusals = share_refusals;
    n.share_error = share_error;
    n.live = std::move(live);
    n.usage = last_usage;
    n.failures = enforce_failures;
    n.enforce_error = enforce_error;
    n.kernel = kernel;
    n.kernel_read_ms = kernel_read_ms;
    n.ssh = SshStatus();
    auto refs = store->Refusals(false, 100);
    if (refs.ok()) n.refusals = std::move(*refs);
    auto pending = store->CountPendingUsage();
    n.pending_usage = pending.ok() ? *pending : -1;
    auto last = store->GetMeta("last_broker_contact_ms");
    if (last.ok()) n.last_contact_ms = std::strtoll(last->c_str(), nullptr, 10);
    core::MutexLock l(&snap_mu);
    snap = std::move(n);
  }

  nlohmann::json BuildStatus() const EXCLUDES(snap_mu) {
    core::MutexLock l(&snap_mu);
    nlohmann::json j;
    j["node"] = cfg.node_id;
    j["ts"] = snap.ts_ms;
    j["ready"] = !snap.ready_from.empty();
    j["ready_from"] = snap.ready_from.empty() ? nlohmann::json(nullptr) : nlohmann::json(snap.ready_from);
    j["broker"] = {{"url", cfg.broker_url}, {"ok", snap.broker_ok}};
    if (snap.last_contact_ms >= 0) j["broker"]["last_contact_ms"] = snap.last_contact_ms;
    std::map<std::string, nlohmann::json> leaves;
    for (const LeafRecord& l : snap.live) {
      leaves[l.slice].push_back({{"id", l.leaf_id},
                                 {"state", l.state},
                                 {"source", l.source},
                                 {"not_before", l.not_before},
                                 {"not_after", l.not_after},
                                 {"res", core::ResourceVectorToJson(l.res)}});
    }
    nlohmann::json slivers = nlohmann::json::array();
    std::set<std::string> listed;
    for (const SliverSpec& s : snap.desired) {
      auto uit = snap.usage.find(s.name);
      SliverUsage u = uit == snap.usage.end() ? SliverUsage{} : uit->second;
      char cls[16];
      snprintf(cls, sizeof cls, "1:%x", s.class_minor);
      auto bit = snap.bought.find(s.name);
      auto fit = snap.failures.find(s.name);
      nlohmann::json sliver = {
          {"slice", s.name},
          {"state", fit == snap.failures.end() ? "active" : "error"},
          {"uid", s.uid},
          {"class", cls},
          {"dir", enforcer->SliverDir(s.name)},
          {"effective", core::ResourceVectorToJson(bit == snap.bought.end() ? s.res : bit->second)},
          {"enforced", core::ResourceVectorToJson(s.res)},
          {"cpu_cap_mcores", s.cpu_cap_mcores},
          {"leaves", leaves[s.name]},
          {"usage",
           {{"cpu_usec", u.cpu_usec},
            {"net_tx_bytes", u.net_tx_bytes},
            {"disk_used_mib", u.disk_used_mib}}}};
      auto kit = snap.kernel.find(s.name);
      if (kit != snap.kernel.end()) {
        sliver["kernel"] = KernelJson(s, kit->second, snap.kernel_read_ms);
      }
      if (fit != snap.failures.end()) {
        sliver["error"] = {{"step", fit->second.step},
                           {"message", fit->second.message},
                           {"attempts", fit->second.attempts},
                           {"max_attempts", kMaxEnforceAttempts}};
      }
      auto git = snap.grants.find(s.name);
      if (git != snap.grants.end()) {
        sliver["share"] = {{"cpu_weight", git->second.cpu_weight},
                           {"net_kbps", git->second.net_kbps},
                           {"added_cpu_mcores", git->second.cpu_mcores},
                           {"added_net_kbps", git->second.net_rate_kbps}};
      }
      auto bit2 = snap.be_grants.find(s.name);
      if (bit2 != snap.be_grants.end()) {
        const BestEffortGrant& g = bit2->second;
        sliver["best_effort"] = {{"share", g.share},
                                 {"added_cpu_mcores", g.cpu_mcores},
                                 {"added_net_kbps", g.net_rate_kbps},
                                 {"disk_mib", g.disk_mib},
                                 {"mem_mib", g.mem_mib}};
      }
      slivers.push_back(std::move(sliver));
      listed.insert(s.name);
    }
    for (auto& [slice, ls] : leaves) {
      if (listed.count(slice)) continue;
      slivers.push_back({{"slice", slice}, {"state", "scheduled"}, {"leaves", ls}});
    }
    j["slivers"] = slivers;
    j["enforcement"] = {{"ok", snap.failures.empty() && snap.enforce_error.empty()},
                        {"failed_slivers", snap.failures.size()}};
    if (!snap.enforce_error.empty()) j["enforcement"]["error"] = snap.enforce_error;
    nlohmann::json refusals = nlohmann::json::array();
    for (const RefusalRecord& r : snap.refusals) {
      refusals.push_back({{"rcap", r.leaf_id},
                          {"slice", r.slice},
                          {"reason", r.reason},
                          {"detail", r.detail},
                          {"ts", r.ts},
                          {"reported", r.reported}});
    }
    j["refusals"] = refusals;
    j["pending_usage"] = snap.pending_usage;
    nlohmann::json sh = {
        {"enabled", broker_key.has_value()}, {"ts", nullptr}, {"table", nlohmann::json::array()}};
    if (snap.shares) {
      sh["ts"] = snap.shares->ts_ms;
      for (const ShareEntry& e : snap.shares->shares) {
        sh["table"].push_back(
            {{"slice", e.slice}, {"cpu_weight", e.cpu_weight}, {"net_kbps", e.net_kbps}});
      }
    }
    sh["refusals"] = nlohmann::json::array();
    for (const ShareRefusal& r : snap.share_refusals) {
      sh["refusals"].push_back({{"reason", r.reason}, {"detail", r.detail}, {"ts", r.ts_ms}});
    }
    if (!snap.share_error.empty()) sh["last_error"] = snap.share_error;
    j["shares"] = sh;
    j["ssh"] = snap.ssh;
    return j;
  }

  // ------------------------------------------------------------ status socket
  // The status API's answer to GET `path` (DESIGN §7, docs/nodeguard.md).
  http::Response StatusAnswer(std::string_view method, std::string_view path) const {
    int code = 200;
    nlohmann::json body;
    nlohmann::json snapshot = BuildStatus();
    if (method != "GET" && method != "HEAD") {
      code = 405;
      body = {{"error", {{"code", "method_not_allowed"}, {"message", "only GET"}}}};
    } else if (path == "/v1/status" || path == "/") {
      body = snapshot;
    } else if (path == "/v1/slivers") {
      body = {{"slivers", snapshot.value("slivers", nlohmann::json::array())}};
    } else if (path == "/v1/refusals") {
      body = {{"refusals", snapshot.value("refusals", nlohmann::json::array())}};
    } else if (path == "/v1/usage") {
      nlohmann::json u = nlohmann::json::object();
      for (const auto& s : snapshot.value("slivers", nlohmann::json::array())) {
        if (s.contains("usage")) u[s["slice"].get<std::string>()] = s["usage"];
      }
      body = {{"usage", u}};
    } else {
      code = 404;
      body = {
          {"error", {{"code", "not_found"}, {"message", "no such path: " + std::string(path)}}}};
    }
    http::Response r;
    r.status = code;
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
  }
};

Guard::Guard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Guard::~Guard() { StopStatus(); }

Result<std::unique_ptr<Guard>> Guard::Create(const GuardConfig& config, const core::Clock* clock,
                                             std::unique_ptr<Enforcer> enforcer) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = config;
  impl->clock = clock;
  BOURSE_ASSIGN_OR_RETURN(impl->trusted, ledger::LoadTrustFile(config.trust_file));
  if (!config.node_key.empty()) {
    BOURSE_ASSIGN_OR_RETURN(core::PrivateKey k, core::PrivateKey::LoadPem(config.node_key));
    impl->node_key = k;
  }
  if (!config.broker_key.empty()) {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey bk, core::PublicKey::FromText(config.broker_key));
    impl->broker_key = bk;
  }
  BOURSE_ASSIGN_OR_RETURN(impl->store, StateStore::Open(config.state_dir));
  impl->LoadShares();
  impl->LoadBestEffort();
  if (enforcer) {
    impl->enforcer = std::move(enforcer);
  } else {
    BOURSE_ASSIGN_OR_RETURN(EnforcerOptions eo, config.ToEnforcerOptions());
    BOURSE_ASSIGN_OR_RETURN(impl->enforcer, Enforcer::Create(eo));
  }
  mkdir(config.spool_dir.c_str(), 0700);
  if (config.ssh) {
    BOURSE_ASSIGN_OR_RETURN(EnforcerOptions eo, config.ToEnforcerOptions());
    impl->login_cgroups = eo.cgroup;
    LoginOptions lo;
    lo.ssh_dir = config.state_dir + "/ssh";
    lo.login_shell = config.login_shell;
    BOURSE_ASSIGN_OR_RETURN(impl->logins, Logins::Create(lo));
    impl->ssh_keys = impl->logins->StoredKeys();
  }
  impl->logs = std::make_unique<SliverLogs>(impl->store.get(), impl->enforcer.get(), clock);
  return std::unique_ptr<Guard>(new Guard(std::move(impl)));
}

Result<PassStats> Guard::ReconcileOnce() { return impl_->Pass(); }
void Guard::MeterEveryPass(bool on) { impl_->meter_every_pass = on; }

void Guard::Run(std::atomic<bool>* stop) {
  while (!*stop) {
    auto r = ReconcileOnce();
    if (!r.ok()) fprintf(stderr, "nodeguard: pass failed: %s\n", r.status().ToString().c_str());
    int64_t wait_ms = impl_->cfg.reconcile_period_s * 1000;
    if (!impl_->cfg.broker_url.empty() && !impl_->broker_ok) {
      wait_ms =
          std::clamp<int64_t>(impl_->broker_next_try_ms - impl_->clock->NowMillis(), 100, wait_ms);
    }
    for (int64_t waited = 0; waited < wait_ms && !*stop; waited += 100) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

Status Guard::ServeStatus() {
  if (impl_->status_server) return Status::Ok();
  http::Server::Options o;
  o.unix_path = impl_->cfg.status_socket;
  o.unix_mode = 0600;
  o.io_threads = 1;
  o.max_connections = 64;
  o.limits.max_body_bytes = 0;
  o.read_timeout_s = 2;
  o.keep_alive_timeout_s = 2;
  o.stop_timeout_s = 2;
  Impl* impl = impl_.get();
  impl_->status_service =
      std::make_unique<StatusService>([impl](std::string_view method, std::string_view path) {
        return impl->StatusAnswer(method, path);
      });
  auto server = std::make_unique<http::Server>(impl_->status_service.get(), o);
  Status bound = server->Bind();
  if (!bound.ok()) {
    return bound.code() == core::StatusCode::kInvalidArgument
               ? core::InvalidArgument("status_socket: " + bound.message())
               : core::Unavailable("status socket: " + bound.message());
  }
  impl_->status_server = std::move(server);
  http::Server* srv = impl_->status_server.get();
  impl_->status_thread = std::thread([srv] { srv->Run(); });
  return Status::Ok();
}

void Guard::StopStatus() {
  if (!impl_->status_server) return;
  impl_->status_server->Stop();
  if (impl_->status_thread.joinable()) impl_->status_thread.join();
  impl_->status_server.reset();  // removes the socket file
  impl_->status_service.reset();
}

nlohmann::json Guard::StatusJson() const { return impl_->BuildStatus(); }

StateStore& Guard::store() { return *impl_->store; }
Enforcer& Guard::enforcer() { return *impl_->enforcer; }

CommandOutput RunRedeemCommand(const std::vector<std::string>& args, const core::Clock& clock) {
  std::string state, trust, node, slice, file;
  const char* usage =
      "usage: bourse-nodeguard redeem --state DIR --trust FILE --node ID [--slice NAME] "
      "CHAIN.json\n";
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    bool ok = true;
    if (args[i] == "--state") {
      ok = val(&state);
    } else if (args[i] == "--trust") {
      ok = val(&trust);
    } else if (args[i] == "--node") {
      ok = val(&node);
    } else if (args[i] == "--slice") {
      ok = val(&slice);
    } else if (!args[i].empty() && args[i][0] == '-') {
      return {2, "", "unknown option " + args[i] + "\n" + usage};
    } else if (file.empty()) {
      file = args[i];
    } else {
      return {2, "", std::string("more than one chain file\n") + usage};
    }
    if (!ok) return {2, "", args[i] + " needs a value\n" + usage};
  }
  if (state.empty() || trust.empty() || node.empty() || file.empty()) return {2, "", usage};
  auto keys = ledger::LoadTrustFile(trust);
  if (!keys.ok()) return {2, "", "trust file: " + keys.status().ToString() + "\n"};
  auto text = internal::ReadFileText(file);
  if (!text.ok()) return {2, "", "chain file: " + text.status().ToString() + "\n"};
  ChainInput in = ReadChainInput(*text, Stem(file));
  if (!slice.empty()) in.slice = slice;
  if (!ValidSliceName(in.slice)) {
    return {2, "", "slice name \"" + in.slice + "\" is not 1..64 chars of [A-Za-z0-9_.-]\n"};
  }
  auto store = StateStore::Open(state);
  if (!store.ok()) return {2, "", store.status().ToString() + "\n"};
  auto r = (*store)->Redeem(in.chain_json, in.slice, in.boot_script, "cli", *keys, node,
                            clock.NowSeconds());
  if (!r.ok()) return {2, "", r.status().ToString() + "\n"};
  if (!r->verdict.ok()) return {1, r->verdict.refusal().ToJson().dump() + "\n", ""};
  nlohmann::json out = r->verdict->ToJson();
  out["slice"] = in.slice;
  out["already_redeemed"] = r->already_redeemed;
  return {0, out.dump() + "\n", ""};
}

}  // namespace bourse::nodeguard
