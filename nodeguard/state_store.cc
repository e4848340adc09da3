#include "nodeguard/state_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/canonical_json.h"
#include "core/encoding.h"
#include "core/json_codec.h"
#include "core/mutex.h"
#include "core/sha256.h"
#include "ledger/redemption_book.h"
#include "storage/sqlite.h"

namespace bourse::nodeguard {

using core::Result;
using core::Status;
using ledger::EffectiveLeaf;
using ledger::Refusal;
using ledger::RefusalReason;

nlohmann::json UsageReport::ToJson() const {
  return {{"id", id},
          {"slice", slice},
          {"rcap", rcap},
          {"from", from},
          {"to", to},
          {"cpu_usec", cpu_usec},
          {"net_tx_bytes", net_tx_bytes},
          {"disk_used_mib", disk_used_mib}};
}

nlohmann::json SliverEvent::ToJson() const {
  return {{"ts_ms", ts_ms}, {"kind", kind}, {"message", message}, {"count", count}};
}

namespace {

// Version 1 of the state database (storage_schema component "nodeguard"):
// the layout before versions were recorded.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS leaves(
  leaf_id TEXT PRIMARY KEY, slice TEXT NOT NULL, chain TEXT NOT NULL,
  boot_script TEXT NOT NULL DEFAULT '', source TEXT NOT NULL, state TEXT NOT NULL,
  not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, res TEXT NOT NULL,
  redeemed_at INTEGER NOT NULL, reported_state TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS leaves_state ON leaves(state);
CREATE TABLE IF NOT EXISTS slices(slice TEXT PRIMARY KEY, slot INTEGER UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS refusals(
  chain_hash TEXT NOT NULL, reason TEXT NOT NULL, leaf_id TEXT NOT NULL, slice TEXT NOT NULL,
  detail TEXT NOT NULL, ts INTEGER NOT NULL, reported INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(chain_hash, reason));
CREATE TABLE IF NOT EXISTS usage_reports(
  id TEXT PRIMARY KEY, slice TEXT NOT NULL, rcap TEXT NOT NULL, from_s INTEGER NOT NULL,
  to_s INTEGER NOT NULL, cpu_usec INTEGER NOT NULL, net_tx_bytes INTEGER NOT NULL,
  disk_used_mib INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS usage_marks(
  slice TEXT PRIMARY KEY, ts INTEGER NOT NULL, cpu_usec INTEGER NOT NULL,
  net_tx_bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
)sql";

const storage::Schema& StateSchema() {
  static const storage::Schema* schema = new storage::Schema{
      "nodeguard",
      {{1, "leaves, slices, refusals, usage_reports, usage_marks, meta",
        [](storage::Connection& c) { return c.Exec(kSchema, "state schema"); }},
       {2, "sliver_events: the guard's events of each sliver, bounded per sliver",
        [](storage::Connection& c) {
          return c.Exec(
              "CREATE TABLE IF NOT EXISTS sliver_events(id INTEGER PRIMARY KEY, slice TEXT NOT "
              "NULL, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, count "
              "INTEGER NOT NULL DEFAULT 1);"
              "CREATE INDEX IF NOT EXISTS sliver_events_slice ON sliver_events(slice, id);",
              "sliver_events");
        }}}};
  return *schema;
}

constexpr int kRow = 1, kDone = 0, kError = -1;

// A statement on the state database (storage/sqlite.h), prepared at
// construction (ok(), else status()); Step() gives kRow, kDone or kError
// (then status()).
class Stmt {
 public:
  Stmt(storage::Connection* db, std::string_view sql) {
    auto s = db->Prepare(sql);
    if (s.ok()) {
      s_ = std::move(*s);
    } else {
      status_ = s.status();
    }
  }
  bool ok() const { return s_.valid(); }
  std::string err() const { return status_.message(); }
  const Status& status() const { return status_; }
  Stmt& Bind(int i, const std::string& v) {
    s_.Bind(i, v);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    s_.Bind(i, v);
    return *this;
  }
  int Step() {
    auto r = s_.Step();
    if (!r.ok()) {
      status_ = r.status();
      return kError;
    }
    return *r ? kRow : kDone;
  }
  std::string Text(int i) { return s_.Text(i); }
  int64_t Int(int i) { return s_.Int(i); }

 private:
  storage::Statement s_;
  Status status_;
};

bool ValidSliceName(const std::string& n) {
  if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
  for (char c : n) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

std::string HashHex(std::string_view s) {
  core::Digest d = core::Sha256(s);
  return core::HexEncode(d);
}

}  // namespace

struct StateStore::Impl {
  std::unique_ptr<storage::Database> file;
  core::Mutex mu;
  storage::Connection* db GUARDED_BY(mu) = nullptr;  // file's connection
  ledger::RedemptionBook book GUARDED_BY(mu);
  int64_t data_version GUARDED_BY(mu) = -1;
  bool live_valid GUARDED_BY(mu) = false;
  std::vector<LeafRecord> live GUARDED_BY(mu);  // cache of the live leaves when live_valid

  struct Pending;
  Status Prepare(Pending* p, int64_t now) REQUIRES(mu);
  Result<RedeemResult> Commit(Pending* p, int64_t now, std::vector<std::string>* redeemed)
      REQUIRES(mu);

  Status Exec(const char* sql) REQUIRES(mu) { return db->Exec(sql, "state db"); }

  Status Run(Stmt& s) REQUIRES(mu) {
    if (!s.ok() || s.Step() == kError) return s.status().WithContext("state db");
    return Status::Ok();
  }

  int64_t DataVersion() REQUIRES(mu) {
    Stmt s(db, "PRAGMA data_version");
    return s.ok() && s.Step() == kRow ? s.Int(0) : -1;
  }

  // Rebuilds the book from the live leaves when another connection committed.
  Status Refresh() REQUIRES(mu) {
    int64_t v = DataVersion();
    if (v == data_version) return Status::Ok();
    live_valid = false;
    Stmt s(db, "SELECT chain FROM leaves WHERE state IN ('active','scheduled') ORDER BY rowid");
    if (!s.ok()) return core::Internal("state db: " + s.err());
    std::vector<std::vector<ledger::Rcap>> chains;
    while (s.Step() == kRow) {
      auto c = ledger::ParseChain(s.Text(0));
      if (!c.ok())
        return core::Internal("state db: stored chain unreadable: " + c.status().message());
      chains.push_back(std::move(*c));
    }
    // RedemptionBook is not movable: empty ours and replay the stored chains.
    for (const auto& red : book.Redeemed()) book.Release(red.leaf_id);
    auto again = book.Restore(chains);
    if (!again.ok()) return core::Internal("state db: restore failed: " + again.refusal().detail);
    data_version = v;
    return Status::Ok();
  }

  Status RecordRefusal(const std::string& hash, const Refusal& r, const std::string& leaf,
                       const std::string& slice, int64_t now) REQUIRES(mu) {
    Stmt s(db,
           "INSERT OR IGNORE INTO refusals(chain_hash,reason,leaf_id,slice,detail,ts) "
           "VALUES(?,?,?,?,?,?)");
    s.Bind(1, hash).Bind(2, std::string(ledger::RefusalReasonName(r.reason))).Bind(3, leaf);
    s.Bind(4, slice).Bind(5, r.detail).Bind(6, now);
    return Run(s);
  }

  LeafRecord ReadLeaf(Stmt& s) {
    LeafRecord l;
    l.leaf_id = s.Text(0);
    l.slice = s.Text(1);
    l.source = s.Text(2);
    l.state = s.Text(3);
    l.boot_script = s.Text(4);
    auto j = core::ParseJson(s.Text(5));
    if (j.ok()) {
      auto rv = core::ResourceVectorFromJson(*j, "res");
      if (rv.ok()) l.res = *rv;
    }
    l.not_before = s.Int(6);
    l.not_after = s.Int(7);
    l.reported_state = s.Text(8);
    return l;
  }

  Result<std::vector<LeafRecord>> Leaves(const char* where) REQUIRES(mu) {
    std::string sql =
        "SELECT leaf_id,slice,source,state,boot_script,res,not_before,not_after,reported_state "
        "FROM leaves ";
    sql += where;
    sql += " ORDER BY rowid";
    Stmt s(db, sql.c_str());
    if (!s.ok()) return core::Internal("state db: " + s.err());
    std::vector<LeafRecord> out;
    while (s.Step() == kRow) out.push_back(ReadLeaf(s));
    return out;
  }
};

StateStore::StateStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateStore::~StateStore() = default;

Result<std::unique_ptr<storage::ProcessLock>> StateStore::LockForDaemon(
    const std::string& state_dir) {
  if (mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return core::Internal("state dir " + state_dir + ": " + strerror(errno));
  }
  return storage::ProcessLock::Acquire(state_dir + "/state.db", storage::ProgramName());
}

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& state_dir) {
  if (mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return core::Internal("state dir " + state_dir + ": " + strerror(errno));
  }
  auto impl = std::make_unique<Impl>();
  core::MutexLock l(&impl->mu);  // not shared yet; the analysis wants it held
  std::string path = state_dir + "/state.db";
  storage::DatabaseOptions o;
  o.conn.create = true;
  o.conn.full_mutex = true;
  o.conn.busy_timeout_ms = 5000;
  o.conn.cache_kib = 2048;
  o.conn.synchronous = "NORMAL";
  o.schemas.push_back(&StateSchema());
  auto file = storage::Database::Open(path, o);
  if (!file.ok()) return file.status().WithContext("state db");
  impl->file = std::move(*file);
  impl->db = &impl->file->conn();
  BOURSE_RETURN_IF_ERROR(impl->Refresh());
  return std::unique_ptr<StateStore>(new StateStore(std::move(impl)));
}

// One request on its way through RedeemMany.
struct StateStore::Impl::Pending {
  const RedeemRequest* q = nullptr;
  std::optional<std::vector<ledger::Rcap>> chain;
  std::string canon, hash;
  std::optional<RedeemResult> result;  // decided before verification
  std::optional<ledger::Verdict<ledger::EffectiveLeaf>> verdict;
};

// Phase 1 (in the transaction): parse, and settle what needs no verification.
Status StateStore::Impl::Prepare(Pending* p, int64_t now) {
  const RedeemRequest& q = *p->q;
  auto refuse = [&](const std::string& hash, Refusal r, const std::string& leaf) -> Status {
    mu.AssertHeld();  // a lambda is analysed on its own; it runs here, under the lock
    BOURSE_RETURN_IF_ERROR(RecordRefusal(hash, r, leaf, q.slice, now));
    p->result = RedeemResult{std::move(r), false};
    return Status::Ok();
  };
  if (!ValidSliceName(q.slice)) {
    return refuse(HashHex(q.chain_json + "\n" + q.slice),
                  Refusal{RefusalReason::kMalformed,
                          "slice: \"" + q.slice + "\" is not 1..64 chars of [A-Za-z0-9_.-]"},
                  "");
  }
  auto chain = ledger::ParseChain(q.chain_json);
  if (!chain.ok()) {
    return refuse(HashHex(q.chain_json),
                  Refusal{RefusalReason::kMalformed, chain.status().message()}, "");
  }
  auto canon_r = core::CanonicalJson(ledger::ChainToJson(*chain));
  p->canon = canon_r.ok() ? *canon_r : q.chain_json;
  p->hash = HashHex(p->canon);
  const ledger::Rcap& leaf = chain->back();
  Stmt s(db, "SELECT chain,state,slice FROM leaves WHERE leaf_id=?");
  s.Bind(1, leaf.id);
  if (s.ok() && s.Step() == kRow) {
    std::string stored = s.Text(0), state = s.Text(1), stored_slice = s.Text(2);
    if (stored == p->canon && stored_slice == q.slice &&
        (state == "active" || state == "scheduled")) {
      ledger::EffectiveLeaf e{
          leaf, state == "active" ? ledger::LeafState::kActive : ledger::LeafState::kScheduled};
      p->result = RedeemResult{std::move(e), true};
      return Status::Ok();
    }
    if (state == "refused" && stored == p->canon && stored_slice == q.slice) {
      // Redeemed, then refused because the node could not enforce it: the
      // decision stands (the broker keeps listing the binding until it learns).
      p->result =
          RedeemResult{Refusal{RefusalReason::kEnforcementFailed,
                               "rcap " + leaf.id + " was refused on this node: enforcement failed"},
                       true};
      return Status::Ok();
    }
    if (state == "active" || state == "scheduled" || state == "revoked" || state == "refused") {
      return refuse(p->hash,
                    Refusal{RefusalReason::kDoubleRedemption,
                            "rcap " + leaf.id + " was already redeemed on this node for slice " +
                                stored_slice + " (" + state +
                                (stored == p->canon ? ")" : ", with different content)")},
                    leaf.id);
    }
  }
  p->chain = std::move(*chain);
  return Status::Ok();
}

// Phase 3 (in the transaction, in order): the book, then the row.
Result<RedeemResult> StateStore::Impl::Commit(Pending* p, int64_t now,
                                              std::vector<std::string>* redeemed) {
  const RedeemRequest& q = *p->q;
  const ledger::Rcap& leaf = p->chain->back();
  auto refuse = [&](Refusal r) -> Result<RedeemResult> {
    mu.AssertHeld();  // a lambda is analysed on its own; it runs here, under the lock
    BOURSE_RETURN_IF_ERROR(RecordRefusal(p->hash, r, leaf.id, q.slice, now));
    return RedeemResult{std::move(r), false};
  };
  if (!p->verdict->ok()) return refuse(p->verdict->refusal());
  auto red = book.Redeem(*p->chain);
  if (!red.ok()) return refuse(red.refusal());
  redeemed->push_back(leaf.id);
  ledger::EffectiveLeaf eff = p->verdict->value();
  std::string state(ledger::LeafStateName(eff.state));
  auto res_json = core::CanonicalJson(core::ResourceVectorToJson(leaf.res));
  Stmt ins(db,
           "INSERT OR REPLACE INTO leaves(leaf_id,slice,chain,boot_script,source,state,not_before,"
           "not_after,res,redeemed_at) VALUES(?,?,?,?,?,?,?,?,?,?)");
  ins.Bind(1, leaf.id).Bind(2, q.slice).Bind(3, p->canon).Bind(4, q.boot_script);
  ins.Bind(5, q.source).Bind(6, state).Bind(7, leaf.interval.not_before);
  ins.Bind(8, leaf.interval.not_after);
  ins.Bind(9, res_json.ok() ? *res_json : std::string("{}")).Bind(10, now);
  BOURSE_RETURN_IF_ERROR(Run(ins));
  live_valid = false;
  return RedeemResult{std::move(eff), false};
}

Result<std::vector<RedeemResult>> StateStore::RedeemMany(std::span<const RedeemRequest> reqs,
                                                         std::span<const core::PublicKey> trusted,
                                                         const std::string& node, int64_t now) {
  core::MutexLock l(&impl_->mu);
  std::vector<RedeemResult> out;
  if (reqs.empty()) return out;
  BOURSE_RETURN_IF_ERROR(impl_->Exec("BEGIN IMMEDIATE"));
  std::vector<std::string> redeemed;
  auto fail = [&](Status st) -> Result<std::vector<RedeemResult>> {
    impl_->mu.AssertHeld();  // a lambda is analysed on its own; it runs here, under the lock
    impl_->Exec("ROLLBACK").IgnoreError();
    for (const auto& id : redeemed) impl_->book.Release(id);
    impl_->live_valid = false;
    return st;
  };
  Status fresh = impl_->Refresh();
  if (!fresh.ok()) return fail(fresh);
  static const bool trace = getenv("BOURSE_NODEGUARD_TRACE") != nullptr;
  auto t = std::chrono::steady_clock::now();
  auto lap = [&](const char* what) {
    if (!trace) return;
    auto n = std::chrono::steady_clock::now();
    fprintf(stderr, "nodeguard trace:   redeem %-8s %8.2f ms\n", what,
            std::chrono::duration<double, std::milli>(n - t).count());
    t = n;
  };
  std::vector<Impl::Pending> pend(reqs.size());
  std::vector<size_t> to_verify;
  for (size_t i = 0; i < reqs.size(); ++i) {
    pend[i].q = &reqs[i];
    Status p = impl_->Prepare(&pend[i], now);
    if (!p.ok()) return fail(p);
    if (!pend[i].result) to_verify.push_back(i);
  }
  lap("prepare");
  // Phase 2: signature checks dominate; they are pure, so use every core.
  auto verify_range = [&](size_t from, size_t step) {
    for (size_t k = from; k < to_verify.size(); k += step) {
      Impl::Pending& p = pend[to_verify[k]];
      p.verdict.emplace(ledger::VerifyChain(*p.chain, trusted, node, now));
    }
  };
  size_t threads =
      to_verify.size() >= 64
          ? std::max<size_t>(1, std::min<size_t>(8, std::thread::hardware_concurrency()))
          : 1;
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(verify_range, t, threads);
  verify_range(0, threads);
  for (auto& th : pool) th.join();
  lap("verify");
  for (Impl::Pending& p : pend) {
    if (p.result) {
      out.push_back(std::move(*p.result));
      continue;
    }
    auto r = impl_->Commit(&p, now, &redeemed);
    if (!r.ok()) return fail(r.status());
    out.push_back(std::move(*r));
  }
  lap("book+rows");
  Status c = impl_->Exec("COMMIT");
  if (!c.ok()) return fail(c);
  lap("commit");
  return out;
}

Result<RedeemResult> StateStore::Redeem(std::string_view chain_json, const std::string& slice,
                                        const std::string& boot_script, const std::string& source,
                                        std::span<const core::PublicKey> trusted,
                                        const std::string& node, int64_t now) {
  RedeemRequest q{std::string(chain_json), slice, boot_script, source};
  BOURSE_ASSIGN_OR_RETURN(std::vector<RedeemResult> r,
                          RedeemMany(std::span<const RedeemRequest>(&q, 1), trusted, node, now));
  return std::move(r[0]);
}

Result<std::vector<std::string>> StateStore::AdvanceTime(int64_t now) {
  core::MutexLock l(&impl_->mu);
  BOURSE_RETURN_IF_ERROR(impl_->Refresh());
  std::set<std::string> touched;
  BOURSE_ASSIGN_OR_RETURN(auto expired,
                          impl_->Leaves(("WHERE state IN ('active','scheduled') AND not_after <= " +
                                         std::to_string(now))
                                            .c_str()));
  BOURSE_ASSIGN_OR_RETURN(
      auto started, impl_->Leaves(("WHERE state='scheduled' AND not_before <= " +
                                   std::to_string(now) + " AND not_after > " + std::to_string(now))
                                      .c_str()));
  if (expired.empty() && started.empty()) return std::vector<std::string>{};
  impl_->live_valid = false;
  BOURSE_RETURN_IF_ERROR(impl_->Exec("BEGIN IMMEDIATE"));
  for (const auto& e : expired) {
    Stmt s(impl_->db, "UPDATE leaves SET state='expired' WHERE leaf_id=?");
    s.Bind(1, e.leaf_id);
    BOURSE_RETURN_IF_ERROR(impl_->Run(s));
    impl_->book.Release(e.leaf_id);
    touched.insert(e.slice);
  }
  for (const auto& e : started) {
    Stmt s(impl_->db, "UPDATE leaves SET state='active' WHERE leaf_id=?");
    s.Bind(1, e.leaf_id);
    BOURSE_RETURN_IF_ERROR(impl_->Run(s));
    touched.insert(e.slice);
  }
  BOURSE_RETURN_IF_ERROR(impl_->Exec("COMMIT"));
  return std::vector<std::string>(touched.begin(), touched.end());
}

Status StateStore::Revoke(const std::string& leaf_id) {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db,
         "UPDATE leaves SET state='revoked' WHERE leaf_id=? AND state IN ('active','scheduled')");
  s.Bind(1, leaf_id);
  impl_->live_valid = false;
  BOURSE_RETURN_IF_ERROR(impl_->Run(s));
  impl_->book.Release(leaf_id);
  return Status::Ok();
}

Status StateStore::RefuseLeaves(std::span<const std::string> leaf_ids, const std::string& detail,
                                int64_t now_seconds) {
  if (leaf_ids.empty()) return Status::Ok();
  core::MutexLock l(&impl_->mu);
  impl_->live_valid = false;
  BOURSE_RETURN_IF_ERROR(impl_->Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Status st) {
    impl_->mu.AssertHeld();  // a lambda is analysed on its own; it runs here, under the lock
    impl_->Exec("ROLLBACK").IgnoreError();
    return st;
  };
  std::vector<std::string> done;
  for (const std::string& id : leaf_ids) {
    Stmt q(impl_->db,
           "SELECT chain,slice FROM leaves WHERE leaf_id=? AND state IN ('active','scheduled')");
    q.Bind(1, id);
    if (!q.ok()) return fail(core::Internal("state db: " + q.err()));
    if (q.Step() != kRow) continue;
    std::string hash = HashHex(q.Text(0)), slice = q.Text(1);
    Stmt u(impl_->db, "UPDATE leaves SET state='refused' WHERE leaf_id=?");
    u.Bind(1, id);
    Status st = impl_->Run(u);
    if (st.ok()) {
      st = impl_->RecordRefusal(hash, Refusal{RefusalReason::kEnforcementFailed, detail}, id, slice,
                                now_seconds);
    }
    if (!st.ok()) return fail(st);
    done.push_back(id);
  }
  BOURSE_RETURN_IF_ERROR(impl_->Exec("COMMIT"));
  for (const std::string& id : done) impl_->book.Release(id);
  return Status::Ok();
}

Result<std::vector<LeafRecord>> StateStore::LiveLeaves() {
  core::MutexLock l(&impl_->mu);
  BOURSE_RETURN_IF_ERROR(impl_->Refresh());
  if (!impl_->live_valid) {
    BOURSE_ASSIGN_OR_RETURN(impl_->live, impl_->Leaves("WHERE state IN ('active','scheduled')"));
    impl_->live_valid = true;
  }
  return impl_->live;
}
Result<std::vector<LeafRecord>> StateStore::UnreportedLeaves() {
  core::MutexLock l(&impl_->mu);
  return impl_->Leaves("WHERE state IN ('active','scheduled') AND reported_state != state");
}
Result<std::vector<LeafRecord>> StateStore::AllLeaves() {
  core::MutexLock l(&impl_->mu);
  return impl_->Leaves("");
}

Result<int64_t> StateStore::SlotFor(const std::string& slice) {
  core::MutexLock l(&impl_->mu);
  {
    Stmt s(impl_->db, "SELECT slot FROM slices WHERE slice=?");
    s.Bind(1, slice);
    if (s.ok() && s.Step() == kRow) return s.Int(0);
  }
  Stmt s(impl_->db,
         "SELECT COALESCE((SELECT MIN(a.slot+1) FROM (SELECT 0 AS slot UNION ALL SELECT slot FROM "
         "slices) a WHERE a.slot+1 NOT IN (SELECT slot FROM slices)), 1)");
  if (!s.ok() || s.Step() != kRow) return core::Internal("state db: slot query failed");
  int64_t slot = s.Int(0);
  if (slot > 65000) return core::ResourceExhausted("no free sliver slot (65000 in use)");
  Stmt ins(impl_->db, "INSERT INTO slices(slice,slot) VALUES(?,?)");
  ins.Bind(1, slice).Bind(2, slot);
  BOURSE_RETURN_IF_ERROR(impl_->Run(ins));
  return slot;
}

Result<std::map<std::string, int64_t>> StateStore::SlotsFor(std::span<const std::string> slices) {
  std::map<std::string, int64_t> out;
  std::set<int64_t> used;
  {
    core::MutexLock l(&impl_->mu);
    Stmt s(impl_->db, "SELECT slice,slot FROM slices");
    if (!s.ok()) return core::Internal("state db: " + s.err());
    std::map<std::string, int64_t> all;
    while (s.Step() == kRow) {
      all[s.Text(0)] = s.Int(1);
      used.insert(s.Int(1));
    }
    std::vector<std::string> missing;
    for (const auto& sl : slices) {
      auto it = all.find(sl);
      if (it != all.end()) {
        out[sl] = it->second;
      } else {
        missing.push_back(sl);
      }
    }
    if (missing.empty()) return out;
    BOURSE_RETURN_IF_ERROR(impl_->Exec("BEGIN IMMEDIATE"));
    int64_t next = 1;
    for (const auto& sl : missing) {
      if (out.count(sl)) continue;
      while (used.count(next)) ++next;
      if (next > 65000) {
        impl_->Exec("ROLLBACK").IgnoreError();
        return core::ResourceExhausted("no free sliver slot (65000 in use)");
      }
      Stmt ins(impl_->db, "INSERT INTO slices(slice,slot) VALUES(?,?)");
      ins.Bind(1, sl).Bind(2, next);
      Status st = impl_->Run(ins);
      if (!st.ok()) {
        impl_->Exec("ROLLBACK").IgnoreError();
        return st;
      }
      used.insert(next);
      out[sl] = next;
    }
    BOURSE_RETURN_IF_ERROR(impl_->Exec("COMMIT"));
  }
  return out;
}

Status StateStore::AddUsageReports(std::span<const UsageEntry> entries) {
  core::MutexLock l(&impl_->mu);
  if (entries.empty()) return Status::Ok();
  BOURSE_RETURN_IF_ERROR(impl_->Exec("BEGIN IMMEDIATE"));
  for (const UsageEntry& e : entries) {
    const UsageReport& r = e.report;
    Stmt s(impl_->db,
           "INSERT OR REPLACE INTO usage_reports(id,slice,rcap,from_s,to_s,cpu_usec,net_tx_bytes,"
           "disk_used_mib) VALUES(?,?,?,?,?,?,?,?)");
    s.Bind(1, r.id).Bind(2, r.slice).Bind(3, r.rcap).Bind(4, r.from).Bind(5, r.to);
    s.Bind(6, r.cpu_usec).Bind(7, r.net_tx_bytes).Bind(8, r.disk_used_mib);
    Status st = e.mark_only ? Status::Ok() : impl_->Run(s);
    if (st.ok()) {
      Stmt m(impl_->db,
             "INSERT OR REPLACE INTO usage_marks(slice,ts,cpu_usec,net_tx_bytes) VALUES(?,?,?,?)");
      m.Bind(1, r.slice).Bind(2, r.to).Bind(3, e.cpu_mark).Bind(4, e.net_mark);
      st = impl_->Run(m);
    }
    if (!st.ok()) {
      impl_->Exec("ROLLBACK").IgnoreError();
      return st;
    }
  }
  return impl_->Exec("COMMIT");
}

Result<std::map<std::string, UsageMarkRecord>> StateStore::UsageMarks() {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db, "SELECT slice,ts,cpu_usec,net_tx_bytes FROM usage_marks");
  if (!s.ok()) return core::Internal("state db: " + s.err());
  std::map<std::string, UsageMarkRecord> out;
  while (s.Step() == kRow) out[s.Text(0)] = {s.Int(1), s.Int(2), s.Int(3)};
  return out;
}

Result<int64_t> StateStore::CountPendingUsage() {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db, "SELECT COUNT(*) FROM usage_reports WHERE acked=0");
  if (!s.ok() || s.Step() != kRow) return core::Internal("state db: count failed");
  return s.Int(0);
}

Status StateStore::DropIdleSlices(const std::set<std::string>& keep) {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db,
         "SELECT slice FROM slices WHERE slice NOT IN (SELECT slice FROM leaves WHERE state IN "
         "('active','scheduled'))");
  if (!s.ok()) return core::Internal("state db: " + s.err());
  std::vector<std::string> idle;
  while (s.Step() == kRow) {
    if (!keep.count(s.Text(0))) idle.push_back(s.Text(0));
  }
  for (const std::string& slice : idle) {
    Stmt d(impl_->db, "DELETE FROM slices WHERE slice=?");
    d.Bind(1, slice);
    BOURSE_RETURN_IF_ERROR(impl_->Run(d));
  }
  return Status::Ok();
}

Result<std::vector<SliceRecord>> StateStore::Slices() {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db, "SELECT slice,slot FROM slices ORDER BY slot");
  if (!s.ok()) return core::Internal("state db: " + s.err());
  std::vector<SliceRecord> out;
  while (s.Step() == kRow) out.push_back({s.Text(0), s.Int(1)});
  return out;
}

Result<std::vector<RefusalRecord>> StateStore::Refusals(bool unreported_only, int last) {
  core::MutexLock l(&impl_->mu);
  std::string sql = "SELECT leaf_id,slice,reason,detail,ts,chain_hash,reported FROM refusals";
  if (unreported_only) sql += " WHERE reported=0";
  if (last > 0) {
    sql = "SELECT * FROM (" + sql + " ORDER BY rowid DESC LIMIT " + std::to_string(last) +
          ") ORDER BY ts";
  } else {
    sql += " ORDER BY ts, rowid";
  }
  Stmt s(impl_->db, sql.c_str());
  if (!s.ok()) return core::Internal("state db: " + s.err());
  std::vector<RefusalRecord> out;
  while (s.Step() == kRow) {
    out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Text(5), s.Int(6) != 0});
  }
  return out;
}

Status StateStore::MarkRefusalReported(const std::string& hash, const std::string& reason) {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db, "UPDATE refusals SET reported=1 WHERE chain_hash=? AND reason=?");
  s.Bind(1, hash).Bind(2, reason);
  return impl_->Run(s);
}

Status StateStore::MarkLeafReported(const std::string& leaf_id, const std::string& state) {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db, "UPDATE leaves SET reported_state=? WHERE leaf_id=?");
  s.Bind(1, state).Bind(2, leaf_id);
  impl_->live_valid = false;
  return impl_->Run(s);
}

Status StateStore::AddUsageReport(const UsageReport& r, int64_t cpu_mark, int64_t net_mark) {
  core::MutexLock l(&impl_->mu);
  BOURSE_RETURN_IF_ERROR(impl_->Exec("BEGIN IMMEDIATE"));
  Stmt s(impl_->db,
         "INSERT OR REPLACE INTO usage_reports(id,slice,rcap,from_s,to_s,cpu_usec,net_tx_bytes,"
         "disk_used_mib) VALUES(?,?,?,?,?,?,?,?)");
  s.Bind(1, r.id).Bind(2, r.slice).Bind(3, r.rcap).Bind(4, r.from).Bind(5, r.to);
  s.Bind(6, r.cpu_usec).Bind(7, r.net_tx_bytes).Bind(8, r.disk_used_mib);
  Status st = impl_->Run(s);
  if (st.ok()) {
    Stmt m(impl_->db,
           "INSERT OR REPLACE INTO usage_marks(slice,ts,cpu_usec,net_tx_bytes) VALUES(?,?,?,?)");
    m.Bind(1, r.slice).Bind(2, r.to).Bind(3, cpu_mark).Bind(4, net_mark);
    st = impl_->Run(m);
  }
  if (!st.ok()) {
    impl_->Exec("ROLLBACK").IgnoreError();
    return st;
  }
  return impl_->Exec("COMMIT");
}

Result<std::optional<std::pair<int64_t, std::pair<int64_t, int64_t>>>> StateStore::UsageMark(
    const std::string& slice) {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db, "SELECT ts,cpu_usec,net_tx_bytes FROM usage_marks WHERE slice=?");
  s.Bind(1, slice);
  if (!s.ok()) return core::Internal("state db: " + s.err());
  if (s.Step() != kRow) {
    return std::optional<std::pair<int64_t, std::pair<int64_t, int64_t>>>();
  }
  return std::optional<std::pair<int64_t, std::pair<int64_t, int64_t>>>(
      std::make_pair(s.Int(0), std::make_pair(s.Int(1), s.Int(2))));
}

Result<std::vector<UsageReport>> StateStore::PendingUsage(int limit) {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db,
         "SELECT id,slice,rcap,from_s,to_s,cpu_usec,net_tx_bytes,disk_used_mib FROM usage_reports "
         "WHERE acked=0 ORDER BY rowid LIMIT ?");
  s.Bind(1, static_cast<int64_t>(limit));
  if (!s.ok()) return core::Internal("state db: " + s.err());
  std::vector<UsageReport> out;
  while (s.Step() == kRow) {
    out.push_back(
        {s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Int(4), s.Int(5), s.Int(6), s.Int(7)});
  }
  return out;
}

Status StateStore::AckUsage(std::span<const std::string> ids) {
  core::MutexLock l(&impl_->mu);
  for (const auto& id : ids) {
    Stmt s(impl_->db, "UPDATE usage_reports SET acked=1 WHERE id=?");
    s.Bind(1, id);
    BOURSE_RETURN_IF_ERROR(impl_->Run(s));
  }
  return Status::Ok();
}

size_t StateStore::BookSize() {
  core::MutexLock l(&impl_->mu);
  impl_->Refresh().IgnoreError();
  return impl_->book.size();
}

Status StateStore::PutMeta(const std::string& key, const std::string& value) {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db, "INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)");
  s.Bind(1, key).Bind(2, value);
  return impl_->Run(s);
}

Result<std::string> StateStore::GetMeta(const std::string& key) {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db, "SELECT value FROM meta WHERE key=?");
  s.Bind(1, key);
  if (s.ok() && s.Step() == kRow) return s.Text(0);
  return core::NotFound("meta " + key);
}

Status StateStore::AddSliverEvent(const std::string& slice, const SliverEvent& e) {
  core::MutexLock l(&impl_->mu);
  Stmt last(impl_->db, "SELECT id,kind FROM sliver_events WHERE slice=? ORDER BY id DESC LIMIT 1");
  last.Bind(1, slice);
  if (!last.ok()) return core::Internal("state db: " + last.err());
  if (last.Step() == kRow && last.Text(1) == e.kind) {
    Stmt up(impl_->db, "UPDATE sliver_events SET ts_ms=?,message=?,count=count+? WHERE id=?");
    up.Bind(1, e.ts_ms).Bind(2, e.message).Bind(3, e.count).Bind(4, last.Int(0));
    return impl_->Run(up);
  }
  Stmt ins(impl_->db,
           "INSERT INTO sliver_events(slice,ts_ms,kind,message,count) VALUES(?,?,?,?,?)");
  ins.Bind(1, slice).Bind(2, e.ts_ms).Bind(3, e.kind).Bind(4, e.message).Bind(5, e.count);
  BOURSE_RETURN_IF_ERROR(impl_->Run(ins));
  Stmt trim(impl_->db,
            "DELETE FROM sliver_events WHERE slice=?1 AND id NOT IN (SELECT id FROM sliver_events "
            "WHERE slice=?1 ORDER BY id DESC LIMIT ?2)");
  trim.Bind(1, slice).Bind(2, static_cast<int64_t>(kMaxSliverEvents));
  return impl_->Run(trim);
}

Result<std::vector<SliverEvent>> StateStore::SliverEvents(const std::string& slice, int last) {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db,
         "SELECT ts_ms,kind,message,count FROM (SELECT * FROM sliver_events WHERE slice=? ORDER "
         "BY id DESC LIMIT ?) ORDER BY id");
  s.Bind(1, slice).Bind(2, static_cast<int64_t>(last));
  if (!s.ok()) return core::Internal("state db: " + s.err());
  std::vector<SliverEvent> out;
  while (s.Step() == kRow) out.push_back({s.Int(0), s.Text(1), s.Text(2), s.Int(3)});
  return out;
}

Result<std::map<std::string, int64_t>> StateStore::SliversWithEvents() {
  core::MutexLock l(&impl_->mu);
  Stmt s(impl_->db, "SELECT slice,MAX(ts_ms) FROM sliver_events GROUP BY slice");
  if (!s.ok()) return core::Internal("state db: " + s.err());
  std::map<std::string, int64_t> out;
  while (s.Step() == kRow) out[s.Text(0)] = s.Int(1);
  return out;
}

Status StateStore::PruneSliverEvents(std::span<const std::string> live, int64_t before_ms) {
  BOURSE_ASSIGN_OR_RETURN(auto all, SliversWithEvents());
  std::set<std::string> keep(live.begin(), live.end());
  std::vector<std::pair<int64_t, std::string>> gone;  // newest first after the sort
  for (const auto& [slice, ts] : all) {
    if (!keep.count(slice)) gone.emplace_back(ts, slice);
  }
  std::sort(gone.rbegin(), gone.rend());
  core::MutexLock l(&impl_->mu);
  for (size_t i = 0; i < gone.size(); ++i) {
    if (gone[i].first >= before_ms && i < static_cast<size_t>(kMaxGoneSlivers)) continue;
    Stmt del(impl_->db, "DELETE FROM sliver_events WHERE slice=?");
    del.Bind(1, gone[i].second);
    BOURSE_RETURN_IF_ERROR(impl_->Run(del));
  }
  return Status::Ok();
}

}  // namespace bourse::nodeguard
