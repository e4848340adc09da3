#include "broker/broker.h"

#include <sys/stat.h>

#include <chrono>
#include <mutex>

#include "broker/internal/markets_host.h"
#include "broker/internal/node_capacity.h"
#include "broker/internal/schemas.h"
#include "broker/internal/slice_cache.h"
#include "broker/internal/sql.h"
#include "core/canonical_json.h"
#include "core/json_codec.h"
#include "core/request_signing.h"
#include "http/message.h"
#include "ledger/accounts.h"
#include "ledger/entry.h"
#include "storage/sqlite.h"

namespace bourse::broker {

using internal::Stmt;
using nlohmann::json;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS b_principals(key TEXT PRIMARY KEY, kind TEXT NOT NULL,
  name TEXT NOT NULL UNIQUE, site TEXT, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS b_sites(name TEXT PRIMARY KEY, pi TEXT NOT NULL,
  slice_limit INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS b_nodes(id TEXT PRIMARY KEY, site TEXT NOT NULL, key TEXT NOT NULL UNIQUE,
  capacity TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS b_slices(name TEXT PRIMARY KEY, site TEXT NOT NULL, creator TEXT NOT NULL,
  owners TEXT NOT NULL, ssh_keys TEXT NOT NULL, boot_script TEXT NOT NULL, resources TEXT NOT NULL,
  nodes TEXT NOT NULL, description TEXT NOT NULL, expires INTEGER NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS b_slices_site ON b_slices(site);
CREATE TABLE IF NOT EXISTS b_rcaps(id TEXT PRIMARY KEY, holder TEXT NOT NULL, node TEXT NOT NULL,
  parent TEXT, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS b_rcaps_holder ON b_rcaps(holder);
CREATE INDEX IF NOT EXISTS b_rcaps_parent ON b_rcaps(parent);
CREATE TABLE IF NOT EXISTS b_bindings(leaf TEXT PRIMARY KEY, slice TEXT NOT NULL, node TEXT NOT NULL,
  chain TEXT NOT NULL, not_after INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS b_bindings_node ON b_bindings(node);
CREATE INDEX IF NOT EXISTS b_bindings_slice ON b_bindings(slice);
CREATE TABLE IF NOT EXISTS b_redemptions(rcap TEXT NOT NULL, state TEXT NOT NULL, node TEXT NOT NULL,
  slice TEXT NOT NULL, reason TEXT, detail TEXT, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(rcap, state));
CREATE TABLE IF NOT EXISTS b_usage(node TEXT NOT NULL, id TEXT NOT NULL, slice TEXT NOT NULL,
  rcap TEXT NOT NULL, from_s INTEGER NOT NULL, to_s INTEGER NOT NULL, cpu_usec INTEGER NOT NULL,
  net_tx_bytes INTEGER NOT NULL, disk_used_mib INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(node, id));
CREATE INDEX IF NOT EXISTS b_usage_slice ON b_usage(slice, node, to_s);
CREATE INDEX IF NOT EXISTS b_usage_node_slice ON b_usage(node, slice, to_s);
CREATE TABLE IF NOT EXISTS b_history(account TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(account, seq)) WITHOUT ROWID;
-- The (key, nonce) of every signed request that committed, with its signed
-- timestamp (unix s): a replay (same signed ts, key and nonce) conflicts
-- with its row. Keyed by ts first, so inserts append and pruning (rows
-- older than the skew window plus a margin, kNonceKeepS) takes the front:
-- a commit touches a page or two of it, not one per request.
CREATE TABLE IF NOT EXISTS b_nonces(ts INTEGER NOT NULL, key TEXT NOT NULL, nonce TEXT NOT NULL,
  PRIMARY KEY(ts, key, nonce)) WITHOUT ROWID;
-- Escrows are read from the ledger's own acct_escrows (by account); the
-- mirror earlier versions kept is dropped.
DROP TABLE IF EXISTS b_escrows;
)sql";

// A signed request whose timestamp is more than kMaxClockSkewSeconds from
// the broker's clock is refused as stale, so its nonce need not be kept
// longer; the margin covers the clock stepping back (e.g. across a restart).
constexpr int64_t kNonceKeepS = core::kMaxClockSkewSeconds + 60;
// Expired nonce rows are deleted every kNoncePruneEvery-th recorded nonce, at
// most kNoncePruneBatch of them: 4 per request on average (more than one, so
// the table shrinks back after a burst), in one statement per 32 requests
// rather than one each (the writer thread is the order path's bottleneck).
constexpr uint64_t kNoncePruneEvery = 32;
constexpr int kNoncePruneBatch = 128;

constexpr const char* kReplayMessage = "replayed request: nonce already used";

// Records the request's (key, nonce) and drops a few expired rows.
// Errors: unauthenticated when it is recorded already (a replay).
core::Status RecordNonce(ledger::Txn& txn, const RequestOnce& once) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, txn.Prepare("INSERT OR IGNORE INTO b_nonces(ts,key,nonce) VALUES(?,?,?)"));
  s.Bind(1, once.ts);
  s.Bind(2, once.key);
  s.Bind(3, once.nonce);
  BOURSE_RETURN_IF_ERROR(s.Run());
  if (txn.db()->Changes() == 0) return core::Unauthenticated(kReplayMessage);
  // Any thread may count; only every kNoncePruneEvery-th record prunes.
  static std::atomic<uint64_t> recorded{0};
  if (++recorded % kNoncePruneEvery != 0) return core::Status::Ok();
  BOURSE_ASSIGN_OR_RETURN(
      Stmt prune,
      txn.Prepare("DELETE FROM b_nonces WHERE (ts,key,nonce) IN (SELECT ts,key,nonce FROM "
                  "b_nonces WHERE ts<? ORDER BY ts LIMIT ?)"));
  prune.Bind(1, txn.now_millis() / 1000 - kNonceKeepS);
  prune.Bind(2, kNoncePruneBatch);
  return prune.Run();
}

// The broker's tables in the ledger's file (storage_schema component
// "broker"). A file written before versions were recorded is at version 0:
// migration 1 is what every start ran then (CREATE ... IF NOT EXISTS and the
// capacity backfill), migration 2 the one-time backfill its b_migrations
// table recorded, which it drops; migration 3 adds the slices' url; 4 and 5
// as their notes say; 6 the node guards' sliver reports; 7 adds b_retired_keys
// (key_routes.cc); 8 b_sliver_limits (sliver_limits.cc); 9 the node guards'
// sliver logs (sliver_routes.cc).
const storage::Schema& BrokerSchema() {
  static const storage::Schema* schema = new storage::Schema{
      "broker",
      {{1,
        "principals, sites, nodes, slices, rcaps, bindings, usage, nonces; accounts and "
        "capacity tables; node capacities from b_nodes",
        [](storage::Connection& c) -> core::Status {
          BOURSE_RETURN_IF_ERROR(c.Exec(kSchema, "broker schema"));
          BOURSE_RETURN_IF_ERROR(ledger::Accounts::EnsureSchema(c));
          // A database written before the capacity book (DESIGN 4.1) gains
          // its node capacities from b_nodes.
          return c.Exec(
              "INSERT OR IGNORE INTO rcap_nodes(node,cpu,mem,disk,netmin,netmax) SELECT id,"
              " json_extract(capacity,'$.cpu_mcores'), json_extract(capacity,'$.mem_mib'),"
              " json_extract(capacity,'$.disk_mib'), json_extract(capacity,'$.net_min_kbps'),"
              " json_extract(capacity,'$.net_max_kbps') FROM b_nodes",
              "rcap_nodes backfill");
        }},
       {2, "bindings from the ledger's rcap_bound entries; b_migrations dropped",
        [](storage::Connection& c) -> core::Status {
          // b_bindings lost those of deleted slices; the ledger has them all.
          // Earlier code ran this once and noted it in b_migrations.
          bool done = false;
          {
            BOURSE_ASSIGN_OR_RETURN(storage::Statement t,
                                    c.Prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                              "name='b_migrations'"));
            BOURSE_ASSIGN_OR_RETURN(done, t.Step());
          }
          if (done) {
            BOURSE_ASSIGN_OR_RETURN(
                storage::Statement m,
                c.Prepare("SELECT 1 FROM b_migrations WHERE name='rcap_bound_from_ledger'"));
            BOURSE_ASSIGN_OR_RETURN(done, m.Step());
          }
          if (!done) {
            BOURSE_RETURN_IF_ERROR(
                c.Exec("INSERT OR IGNORE INTO rcap_bound(id,slice) SELECT"
                       " json_extract(data,'$.body.rcap.id'), json_extract(data,'$.body.slice')"
                       " FROM ledger_entries WHERE json_extract(data,'$.type')='rcap_bound'",
                       "rcap_bound backfill"));
          }
          return c.Exec("DROP TABLE IF EXISTS b_migrations", "b_migrations");
        }},
       {3, "slices gain PLC's url (the slice's web page)",
        [](storage::Connection& c) -> core::Status {
          return c.Exec("ALTER TABLE b_slices ADD COLUMN url TEXT NOT NULL DEFAULT ''",
                        "b_slices.url");
        }},
       {4, "bindings gain expired_seq, the seq of their rcap_expired entry",
        [](storage::Connection& c) -> core::Status {
          return c.Exec(
              "ALTER TABLE b_bindings ADD COLUMN expired_seq INTEGER;"
              "CREATE INDEX IF NOT EXISTS b_bindings_due ON b_bindings(not_after)"
              " WHERE expired_seq IS NULL;",
              "b_bindings.expired_seq");
        }},
       {5, "the capacity book gains rcap_released (unsold escrows given back whole)",
        [](storage::Connection& c) -> core::Status { return ledger::Accounts::EnsureSchema(c); }},
       {6, "sliver reports of the node guards: the last report per node and its slivers",
        [](storage::Connection& c) -> core::Status {
          return c.Exec(
              "CREATE TABLE b_sliver_reports(node TEXT PRIMARY KEY, reported_ms INTEGER NOT NULL,"
              " digest TEXT NOT NULL, seq INTEGER NOT NULL, slivers INTEGER NOT NULL);"
              "CREATE TABLE b_slivers(node TEXT NOT NULL, slice TEXT NOT NULL, state TEXT NOT NULL,"
              " body TEXT NOT NULL, PRIMARY KEY(node, slice)) WITHOUT ROWID;"
              "CREATE INDEX b_slivers_slice ON b_slivers(slice, node);",
              "b_sliver_reports, b_slivers");
        }},
       {7, "b_retired_keys: the keys node and site PI key rotations replaced",
        [](storage::Connection& c) -> core::Status {
          return c.Exec(
              "CREATE TABLE IF NOT EXISTS b_retired_keys(key TEXT PRIMARY KEY, kind TEXT NOT "
              "NULL, owner TEXT NOT NULL, seq INTEGER NOT NULL, retired_ms INTEGER NOT NULL);"
              "CREATE INDEX IF NOT EXISTS b_retired_keys_owner ON b_retired_keys(kind, owner);",
              "b_retired_keys");
        }},
       {8,
        "b_sliver_limits: best-effort sliver limits a site's PI or the admin set; slices gain "
        "`instantiated`, the nodes instantiate_slice placed them on",
        [](storage::Connection& c) -> core::Status {
          return c.Exec(
              "CREATE TABLE IF NOT EXISTS b_sliver_limits(site TEXT PRIMARY KEY, limits TEXT NOT "
              "NULL, seq INTEGER NOT NULL);"
              "ALTER TABLE b_slices ADD COLUMN instantiated TEXT NOT NULL DEFAULT '[]';",
              "b_sliver_limits, b_slices.instantiated");
        }},
       {9, "sliver logs of the node guards: the last logs report per node, not in the ledger",
        [](storage::Connection& c) -> core::Status {
          return c.Exec(
              "CREATE TABLE IF NOT EXISTS b_sliver_log_reports(node TEXT PRIMARY KEY, reported_ms "
              "INTEGER NOT NULL, digest TEXT NOT NULL);"
              "CREATE TABLE IF NOT EXISTS b_sliver_logs(node TEXT NOT NULL, slice TEXT NOT NULL,"
              " body TEXT NOT NULL, PRIMARY KEY(node, slice)) WITHOUT ROWID;"
              "CREATE INDEX IF NOT EXISTS b_sliver_logs_slice ON b_sliver_logs(slice, node);",
              "b_sliver_log_reports, b_sliver_logs");
        }}}};
  return *schema;
}

bool FileExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

namespace {
PrincipalKind KindFromName(std::string_view s) {
  for (PrincipalKind k : {PrincipalKind::kAdmin, PrincipalKind::kSite, PrincipalKind::kNode,
                          PrincipalKind::kBroker, PrincipalKind::kAgent, PrincipalKind::kUser}) {
    if (PrincipalKindName(k) == s) return k;
  }
  return PrincipalKind::kUser;
}
}  // namespace

core::Status Broker::Initialize(const std::string& path, const core::PrivateKey& ledger_key,
                                const core::PublicKey& admin) {
  if (FileExists(path)) {
    return core::AlreadyExists("database " + path + " already exists; refusing to initialise");
  }
  ledger::StoreOptions so;
  so.signing_key = ledger_key;
  so.create_if_missing = true;
  BOURSE_ASSIGN_OR_RETURN(std::unique_ptr<ledger::Store> store, ledger::Store::Open(path, so));
  BOURSE_RETURN_IF_ERROR(ledger::MigrateSchema(*store, BrokerSchema()));
  auto r = store->Commit([&](ledger::Txn& txn) -> core::Status {
    int64_t now = txn.now_millis();
    const std::string bkey = ledger_key.public_key().ToText();
    const std::string akey = admin.ToText();
    {
      BOURSE_ASSIGN_OR_RETURN(
          Stmt s, txn.db()->Prepare("INSERT INTO b_principals(key,kind,name,site,created_ms) "
                                    "VALUES(?,?,?,NULL,?)"));
      s.Bind(1, bkey);
      s.Bind(2, "broker");
      s.Bind(3, "broker");
      s.Bind(4, now);
      BOURSE_RETURN_IF_ERROR(s.Run());
    }
    BOURSE_RETURN_IF_ERROR(txn.Append("principal_added", {{"key", bkey},
                                                          {"kind", "broker"},
                                                          {"name", "broker"},
                                                          {"site", nullptr},
                                                          {"by", nullptr}})
                               .status());
    if (akey != bkey) {
      BOURSE_ASSIGN_OR_RETURN(
          Stmt s, txn.db()->Prepare("INSERT INTO b_principals(key,kind,name,site,created_ms) "
                                    "VALUES(?,?,?,NULL,?)"));
      s.Bind(1, akey);
      s.Bind(2, "admin");
      s.Bind(3, "admin");
      s.Bind(4, now);
      BOURSE_RETURN_IF_ERROR(s.Run());
    }
    return ledger::Accounts::AddAdmin(txn, admin, nullptr);
  });
  return r.status();
}

Broker::Broker(BrokerOptions options)
    : ledger_key_(*options.ledger_key),
      clock_(options.clock != nullptr ? options.clock : &core::SystemClock::Get()),
      slice_cache_(std::make_unique<internal::SliceCache>()),
      events_options_(options.events),
      sliver_report_limiter_(kNodeReportRate, kNodeReportBurst),
      sliver_log_limiter_(kNodeReportRate, kNodeReportBurst) {}

void Broker::InvalidateSlice(const std::string& name) { slice_cache_->Invalidate(name); }

Broker::~Broker() = default;

core::Result<std::unique_ptr<Broker>> Broker::Open(BrokerOptions options) {
  if (!options.ledger_key) return core::InvalidArgument("broker: the ledger key is required");
  if (!FileExists(options.db_path)) {
    return core::NotFound("database " + options.db_path +
                          " does not exist; create it with `bourse-broker init --db " +
                          options.db_path + "`");
  }
  std::unique_ptr<Broker> b(new Broker(options));
  ledger::StoreOptions so;
  so.signing_key = options.ledger_key;
  so.expected_key = options.ledger_key->public_key();
  so.create_if_missing = false;
  so.clock = b->clock_;
  so.batch_interval_us = options.batch_interval_us;
  so.sync_interval_us = options.sync_interval_us;
  BOURSE_ASSIGN_OR_RETURN(b->store_, ledger::Store::Open(options.db_path, so));
  BOURSE_RETURN_IF_ERROR(ledger::MigrateSchema(*b->store_, BrokerSchema()));
  BOURSE_RETURN_IF_ERROR(b->Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT MAX(ts) FROM b_nonces"));
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row && !s.IsNull(0)) b->earlier_runs_max_ts_ = s.Int(0);
    return core::Status::Ok();
  }));
  b->router_.SetCallerCheck([raw = b.get()](const SignedCaller& c) { return raw->CheckCaller(c); });
  b->RegisterServiceRoutes();
  b->RegisterLedgerRoutes();
  b->RegisterPlcRoutes();
  b->RegisterCapacityRoutes();
  b->RegisterAccountRoutes();
  b->RegisterNodeRoutes();
  b->RegisterSliverRoutes();
  b->RegisterSshRoutes();
  b->RegisterKeyRoutes();
  b->RegisterSliverLimitRoutes();
  b->markets_host_ = std::make_unique<internal::MarketsHost>(b.get());
  BOURSE_ASSIGN_OR_RETURN(
      b->markets_, Markets::Open(b->markets_host_.get(), *options.ledger_key, options.markets));
  b->RegisterMarketRoutes();
  b->RegisterEventRoutes();
  b->metrics_.SetEventStreamCounter([raw = b.get()] { return raw->events().streams(); });
  return b;
}

int64_t Broker::LedgerSize() const { return static_cast<int64_t>(store_->Head().size); }

core::Result<ledger::CommitResult> Broker::Mutate(
    const std::function<core::Status(ledger::Txn&)>& fn) {
  auto t0 = std::chrono::steady_clock::now();
  std::optional<RequestOnce> once = ClaimCurrentRequest();
  core::Result<ledger::CommitResult> r =
      once ? store_->Commit([&](ledger::Txn& txn) -> core::Status {
        BOURSE_RETURN_IF_ERROR(RecordNonce(txn, *once));
        return fn(txn);
      })
           : store_->Commit(fn);
  if (once && !r.ok()) UnclaimCurrentRequest();  // nothing committed: a later commit records it
  metrics_.RecordCommit(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return r;
}

void Broker::MutateAsync(std::function<core::Status(ledger::Txn&)> fn,
                         std::function<void(core::Result<ledger::CommitResult>)> done) {
  auto t0 = std::chrono::steady_clock::now();
  if (std::optional<RequestOnce> once = ClaimCurrentRequest()) {
    fn = [once = std::move(*once), fn = std::move(fn)](ledger::Txn& txn) -> core::Status {
      BOURSE_RETURN_IF_ERROR(RecordNonce(txn, once));
      return fn(txn);
    };
  }
  store_->CommitAsync(
      std::move(fn), [this, t0, done = std::move(done)](core::Result<ledger::CommitResult> r) {
        metrics_.RecordCommit(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        done(std::move(r));
      });
}

void Broker::MutateAndRespond(std::function<core::Status(ledger::Txn&)> fn, Respond respond,
                              std::function<core::Result<ApiResponse>()> build) {
  MutateAsync(std::move(fn), [respond = std::move(respond),
                              build = std::move(build)](core::Result<ledger::CommitResult> r) {
    if (!r.ok()) {
      respond([st = r.status()]() -> core::Result<ApiResponse> { return st; });
    } else {
      respond(build);
    }
  });
}

core::Status Broker::Read(const std::function<core::Status(storage::Connection*)>& fn) const {
  return store_->Read(fn);
}

core::Result<std::string> Broker::CheckCaller(const SignedCaller& c) {
  std::string key(c.key);
  std::string kind;
  uint64_t gen = 0;
  {
    core::ReaderMutexLock l(&principals_mu_);
    auto it = principals_.find(key);
    if (it != principals_.end()) kind = it->second;
    gen = principals_gen_;
  }
  if (kind.empty()) {
    core::Status st = Read([&](storage::Connection* db) -> core::Status {
      BOURSE_ASSIGN_OR_RETURN(Principal p, LookupPrincipal(db, key));
      kind = std::string(PrincipalKindName(p.kind));
      return core::Status::Ok();
    });
    if (st.code() == core::StatusCode::kPermissionDenied) {
      return core::Unauthenticated("key " + key +
                                   " is not a registered principal (an admin or a site PI "
                                   "registers it with POST /v1/principals; nodes are registered "
                                   "with their site)");
    }
    BOURSE_RETURN_IF_ERROR(st);
    core::WriterMutexLock l(&principals_mu_);
    if (principals_gen_ == gen) principals_.emplace(key, kind);
  }
  // A request that ran in an earlier run of the broker (whose in-memory
  // replay cache is gone) has its row, with its very timestamp, in
  // b_nonces: look for it when the timestamp is not above every row found
  // at Open. Mutate's insert is what guarantees it runs once; this refuses
  // the replay before its handler reads anything. A fresh broker, or one up
  // for a few minutes, never needs the lookup.
  if (c.ts <= earlier_runs_max_ts_) {
    bool seen = false;
    BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
      BOURSE_ASSIGN_OR_RETURN(
          Stmt s, db->Prepare("SELECT 1 FROM b_nonces WHERE ts=? AND key=? AND nonce=?"));
      s.Bind(1, c.ts);
      s.Bind(2, c.key);
      s.Bind(3, c.nonce);
      BOURSE_ASSIGN_OR_RETURN(seen, s.Step());
      return core::Status::Ok();
    }));
    if (seen) return core::Unauthenticated(kReplayMessage);
  }
  return kind;
}

void Broker::ForgetPrincipal(const std::string& key) {
  core::WriterMutexLock l(&principals_mu_);
  principals_.erase(key);
  ++principals_gen_;
}

namespace {
constexpr const char* kPrincipalSql =
    "SELECT kind,name,COALESCE(site,'') FROM b_principals WHERE key=?";

core::Result<Principal> PrincipalFromStmt(Stmt& s, std::string_view key) {
  s.Bind(1, key);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row)
    return core::PermissionDenied("key " + std::string(key) + " is not a registered principal");
  Principal p;
  p.key = std::string(key);
  p.kind = KindFromName(s.Text(0));
  p.name = s.Text(1);
  p.site = s.Text(2);
  return p;
}
}  // namespace

core::Result<Principal> Broker::LookupPrincipal(storage::Connection* db, std::string_view key) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare(kPrincipalSql));
  return PrincipalFromStmt(s, key);
}

core::Result<Principal> Broker::LookupPrincipal(ledger::Txn& txn, std::string_view key) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, txn.Prepare(kPrincipalSql));
  return PrincipalFromStmt(s, key);
}

core::Status Broker::NoteHistory(ledger::Txn& txn, std::string_view account) {
  // The entry just appended is next_seq() - 1.
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          txn.Prepare("INSERT OR IGNORE INTO b_history(account,seq) VALUES(?,?)"));
  s.Bind(1, account);
  s.Bind(2, static_cast<int64_t>(txn.next_seq()) - 1);
  return s.Run();
}

core::Status Broker::Transfer(ledger::Txn& txn, std::string_view from, std::string_view to,
                              const core::Money& amount) {
  BOURSE_RETURN_IF_ERROR(ledger::Accounts::Transfer(txn, from, to, amount));
  BOURSE_RETURN_IF_ERROR(NoteHistory(txn, from));
  return NoteHistory(txn, to);
}

core::Status Broker::EscrowHold(ledger::Txn& txn, std::string_view escrow_id,
                                std::string_view account, const core::Money& amount) {
  BOURSE_RETURN_IF_ERROR(ledger::Accounts::EscrowHold(txn, escrow_id, account, amount));
  return NoteHistory(txn, account);
}

core::Status Broker::EscrowRelease(ledger::Txn& txn, std::string_view escrow_id,
                                   const core::Money& amount) {
  std::string account;
  BOURSE_RETURN_IF_ERROR(ledger::Accounts::EscrowRelease(txn, escrow_id, amount, &account));
  return NoteHistory(txn, account);
}

core::Status Broker::EscrowTopUp(ledger::Txn& txn, std::string_view escrow_id,
                                 const core::Money& amount) {
  std::string account;
  BOURSE_RETURN_IF_ERROR(ledger::Accounts::EscrowTopUp(txn, escrow_id, amount, &account));
  return NoteHistory(txn, account);
}

core::Status Broker::EscrowSettle(ledger::Txn& txn, std::string_view escrow_id, std::string_view to,
                                  const core::Money& amount) {
  std::string account;
  BOURSE_RETURN_IF_ERROR(ledger::Accounts::EscrowSettle(txn, escrow_id, to, amount, &account));
  BOURSE_RETURN_IF_ERROR(NoteHistory(txn, account));
  return NoteHistory(txn, to);
}

namespace {
core::Status IndexRcap(ledger::Txn& txn, const ledger::Rcap& r) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s,
      txn.Prepare("INSERT OR IGNORE INTO b_rcaps(id,holder,node,parent,not_before,not_after,body) "
                  "VALUES(?,?,?,?,?,?,?)"));
  s.Bind(1, r.id);
  s.Bind(2, r.holder.ToText());
  s.Bind(3, r.node);
  if (r.parent) {
    s.Bind(4, *r.parent);
  } else {
    s.BindNull(4);
  }
  s.Bind(5, r.interval.not_before);
  s.Bind(6, r.interval.not_after);
  s.Bind(7, r.Canonical());
  return s.Run();
}
}  // namespace

core::Status Broker::RecordRcapIfNew(ledger::Txn& txn, const ledger::Rcap& rcap) {
  auto known = ledger::CapacityLog::Get(txn.db(), rcap.id);
  if (known.ok()) {
    if (!(*known == rcap)) {
      return core::AlreadyExists("rcap " + rcap.id + ": a different rcap with this id is recorded");
    }
    return IndexRcap(txn, rcap);
  }
  if (known.status().code() != core::StatusCode::kNotFound) return known.status();
  if (rcap.parent) {
    BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordDelegated(txn, rcap));
  } else {
    BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordIssued(txn, rcap));
  }
  return IndexRcap(txn, rcap);
}

core::Status Broker::ReleaseHeld(ledger::Txn& txn, std::string_view id) {
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::CapacityLog::Get(txn.db(), id));
  BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordReleased(txn, r, broker_key()));
  BOURSE_ASSIGN_OR_RETURN(Stmt s, txn.Prepare("DELETE FROM b_rcaps WHERE id=?"));
  s.Bind(1, r.id);
  return s.Run();
}

core::Result<std::vector<ledger::Rcap>> Broker::SplitHeld(
    ledger::Txn& txn, std::string_view parent_id, std::span<const ledger::ChildSpec> children) {
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap parent, ledger::CapacityLog::Get(txn.db(), parent_id));
  if (!(parent.holder == broker_key())) {
    return core::PermissionDenied("rcap " + std::string(parent_id) + " is not held by the broker");
  }
  BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::Rcap> kids,
                          ledger::Split(parent, ledger_key_, children));
  BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordSplit(txn, parent.id, kids));
  for (const ledger::Rcap& k : kids) BOURSE_RETURN_IF_ERROR(IndexRcap(txn, k));
  return kids;
}

// ---- Service routes -------------------------------------------------------

core::Result<ApiResponse> Broker::GetHealth(const ApiRequest&) {
  return JsonResponse(200, {{"status", "ok"}, {"ledger_size", LedgerSize()}});
}

core::Result<ApiResponse> Broker::GetMetrics(const ApiRequest&) {
  ApiResponse r;
  ledger::StoreStats st = store_->Stats();
  ScrapeGauges g;
  BOURSE_ASSIGN_OR_RETURN(g.markets, markets_->Stats());
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(
        g.nodes, internal::NodeCapacityAt(db, broker_key().ToText(), clock_->NowSeconds()));
    return core::Status::Ok();
  }));
  g.event_streams = metrics_.EventStreams();
  r.body = metrics_.Render(
      {.size = LedgerSize(), .batches = st.batches, .commit_calls = st.callers, .syncs = st.syncs},
      g);
  r.content_type = "text/plain; version=0.0.4";
  return r;
}

core::Result<ApiResponse> Broker::GetOpenApi(const ApiRequest&) {
  core::MutexLock l(&openapi_mu_);
  if (openapi_.empty()) openapi_ = BuildOpenApi(router_, "bourse broker", "1").dump();
  ApiResponse r;
  r.body = openapi_;
  return r;
}

void Broker::RegisterServiceRoutes() {
  using namespace internal;
  router_.Add({.method = "GET",
               .pattern = "/healthz",
               .summary = "Liveness: the broker serves and its ledger is open",
               .tag = "service",
               .response_schema = SObj({{"status", SStr()}, {"ledger_size", SInt()}}),
               .handler = [this](const ApiRequest& q) { return GetHealth(q); }});
  router_.Add({.method = "GET",
               .pattern = "/metrics",
               .summary = "Prometheus text-format metrics",
               .tag = "service",
               .response_schema = SStr("Prometheus text exposition format 0.0.4"),
               .handler = [this](const ApiRequest& q) { return GetMetrics(q); }});
  router_.Add({.method = "GET",
               .pattern = "/openapi.json",
               .summary = "This API as an OpenAPI 3.1 document",
               .tag = "service",
               .response_schema = SObj({}, {}, false),
               .handler = [this](const ApiRequest& q) { return GetOpenApi(q); }});
}

// ---- Ledger routes (DESIGN §7, exactly) -----------------------------------

namespace {
constexpr int64_t kMaxEntriesPerRequest = 10000;
constexpr int64_t kDefaultHeadsPerRequest = 1000;
constexpr int64_t kMaxHeadsPerRequest = 1000;
}  // namespace

core::Result<ApiResponse> Broker::GetLedgerKey(const ApiRequest&) {
  return JsonResponse(200, {{"key", store_->key().ToText()}});
}

core::Result<ApiResponse> Broker::GetLedgerHead(const ApiRequest&) {
  return JsonResponse(200, ledger::TreeHeadToJson(store_->Head()));
}

// The published heads with size >= from, oldest first, at most `limit`: an
// auditor pages with from = the last size + 1.
core::Result<ApiResponse> Broker::GetLedgerHeads(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(int64_t from, q.QueryInt("from", 0, core::kMaxSafeInteger, 0));
  BOURSE_ASSIGN_OR_RETURN(int64_t limit, q.QueryInt("limit", 1, kMaxHeadsPerRequest,
                                                    kDefaultHeadsPerRequest));
  BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::TreeHead> heads,
                          store_->Heads(static_cast<uint64_t>(from), UINT64_MAX,
                                        static_cast<uint64_t>(limit)));
  json out = json::array();
  for (const ledger::TreeHead& h : heads) out.push_back(ledger::TreeHeadToJson(h));
  return JsonResponse(200, {{"heads", std::move(out)}});
}

core::Result<ApiResponse> Broker::GetLedgerEntries(const ApiRequest& q) {
  int64_t size = LedgerSize();
  BOURSE_ASSIGN_OR_RETURN(int64_t from, q.QueryInt("from", 0, core::kMaxSafeInteger, {}));
  BOURSE_ASSIGN_OR_RETURN(int64_t to, q.QueryInt("to", 0, core::kMaxSafeInteger, {}));
  if (from > to) return core::InvalidArgument("query parameter from: must be <= to");
  if (to > size) {
    return core::InvalidArgument("query parameter to: " + std::to_string(to) +
                                 " is beyond the ledger size " + std::to_string(size));
  }
  if (to - from > kMaxEntriesPerRequest) {
    return core::InvalidArgument("at most " + std::to_string(kMaxEntriesPerRequest) +
                                 " entries per request");
  }
  BOURSE_ASSIGN_OR_RETURN(
      std::vector<std::string> texts,
      store_->EntryTexts(static_cast<uint64_t>(from), static_cast<uint64_t>(to)));
  ApiResponse r;
  r.body = "{\"entries\":[";
  for (size_t i = 0; i < texts.size(); ++i) {
    if (i) r.body.push_back(',');
    r.body += texts[i];
  }
  r.body += "]}";
  return r;
}

core::Result<ApiResponse> Broker::GetInclusionProof(const ApiRequest& q) {
  int64_t head = LedgerSize();
  BOURSE_ASSIGN_OR_RETURN(int64_t seq, q.QueryInt("seq", 0, core::kMaxSafeInteger, {}));
  BOURSE_ASSIGN_OR_RETURN(int64_t size, q.QueryInt("size", 1, core::kMaxSafeInteger, {}));
  if (size > head) {
    return core::InvalidArgument("query parameter size: beyond the ledger size " +
                                 std::to_string(head));
  }
  if (seq >= size) return core::InvalidArgument("query parameter seq: must be < size");
  BOURSE_ASSIGN_OR_RETURN(auto path, store_->InclusionProof(seq, size));
  return JsonResponse(200, ledger::InclusionProofToJson(seq, size, path));
}

core::Result<ApiResponse> Broker::GetConsistencyProof(const ApiRequest& q) {
  int64_t head = LedgerSize();
  BOURSE_ASSIGN_OR_RETURN(int64_t first, q.QueryInt("first", 0, core::kMaxSafeInteger, {}));
  BOURSE_ASSIGN_OR_RETURN(int64_t second, q.QueryInt("second", 0, core::kMaxSafeInteger, {}));
  if (second > head) {
    return core::InvalidArgument("query parameter second: beyond the ledger size " +
                                 std::to_string(head));
  }
  if (first > second) return core::InvalidArgument("query parameter first: must be <= second");
  BOURSE_ASSIGN_OR_RETURN(auto path, store_->ConsistencyProof(first, second));
  return JsonResponse(200, ledger::ConsistencyProofToJson(first, second, path));
}

void Broker::RegisterLedgerRoutes() {
  using namespace internal;
  json hex_path = SArr({{"type", "string"}, {"pattern", "^[0-9a-f]{64}$"}});
  router_.Add({.method = "GET",
               .pattern = "/v1/ledger/key",
               .summary = "The ledger's public key",
               .tag = "ledger",
               .response_schema = SObj({{"key", SKey()}}, {"key"}),
               .handler = [this](const ApiRequest& q) { return GetLedgerKey(q); }});
  json head_schema = SObj(
      {{"size", SInt()},
       {"root", SStr()},
       {"ts", SInt("unix ms")},
       {"sig", SStr("b64url Ed25519 over canonical JSON of {root,size,ts}")}},
      {"size", "root", "ts", "sig"});
  router_.Add({.method = "GET",
               .pattern = "/v1/ledger/head",
               .summary = "The latest signed tree head",
               .tag = "ledger",
               .response_schema = head_schema,
               .handler = [this](const ApiRequest& q) { return GetLedgerHead(q); }});
  router_.Add(
      {.method = "GET",
       .pattern = "/v1/ledger/heads",
       .summary = "The signed tree heads published, oldest first (one per commit batch)",
       .tag = "ledger",
       .query_params = {{"from", "integer", false, "heads with size >= from (default 0)"},
                        {"limit", "integer", false, "at most this many (1..1000, default 1000)"}},
       .response_schema = SObj({{"heads", SArr(head_schema)}}, {"heads"}),
       .handler = [this](const ApiRequest& q) { return GetLedgerHeads(q); }});
  router_.Add(
      {.method = "GET",
       .pattern = "/v1/ledger/entries",
       .summary = "Entries [from, to) (at most 10000 per request)",
       .tag = "ledger",
       .query_params = {{"from", "integer", true, "first seq"},
                        {"to", "integer", true, "end seq (exclusive)"}},
       .response_schema = SObj({{"entries", SArr(SObj({{"seq", SInt()},
                                                       {"ts", SInt()},
                                                       {"type", SStr()},
                                                       {"body", SObj({}, {}, false)},
                                                       {"prev", SStr()}},
                                                      {"seq", "ts", "type", "body", "prev"}))}},
                               {"entries"}),
       .handler = [this](const ApiRequest& q) { return GetLedgerEntries(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/ledger/proof/inclusion",
               .summary = "RFC 9162 §2.1.3 inclusion proof of leaf seq in the tree of size",
               .tag = "ledger",
               .query_params = {{"seq", "integer", true, ""}, {"size", "integer", true, ""}},
               .response_schema = SObj({{"seq", SInt()}, {"size", SInt()}, {"path", hex_path}},
                                       {"seq", "size", "path"}),
               .handler = [this](const ApiRequest& q) { return GetInclusionProof(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/ledger/proof/consistency",
               .summary = "RFC 9162 §2.1.4 consistency proof between two tree sizes",
               .tag = "ledger",
               .query_params = {{"first", "integer", true, ""}, {"second", "integer", true, ""}},
               .response_schema = SObj({{"first", SInt()}, {"second", SInt()}, {"path", hex_path}},
                                       {"first", "second", "path"}),
               .handler = [this](const ApiRequest& q) { return GetConsistencyProof(q); }});
}

// ---- OpenAPI ----------------------------------------------------------------

json BuildOpenApi(const Router& router, std::string_view title, std::string_view version) {
  json paths = json::object();
  for (const Route& r : router.routes()) {
    json op = {{"summary", r.summary},
               {"operationId", r.method + " " + r.pattern},
               {"tags", json::array({r.tag.empty() ? "misc" : r.tag})}};
    json params = json::array();
    for (std::string_view seg : http::SplitPath(r.pattern)) {
      if (!seg.empty() && seg.front() == '{') {
        params.push_back({{"name", std::string(seg.substr(1, seg.size() - 2))},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
      }
    }
    for (const QueryParam& p : r.query_params) {
      json qp = {{"name", p.name},
                 {"in", "query"},
                 {"required", p.required},
                 {"schema", {{"type", p.type}}}};
      if (!p.description.empty()) qp["description"] = p.description;
      params.push_back(qp);
    }
    if (!params.empty()) op["parameters"] = params;
    if (!r.request_schema.is_null()) {
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/json", {{"schema", r.request_schema}}}}}};
    }
    std::string ct = r.pattern == "/metrics"  ? "text/plain"
                     : r.stream_handler        ? "text/event-stream"
                                               : "application/json";
    json err = {{"description", "error (DESIGN §7)"},
                {"content",
                 {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
    op["responses"] = {
        {std::to_string(r.success_status),
         {{"description", "success"}, {"content", {{ct, {{"schema", r.response_schema}}}}}}},
        {"4XX", err},
        {"5XX", err}};
    if (!r.signer_kinds.empty()) op["x-bourse-signers"] = r.signer_kinds;
    if (r.auth != Auth::kNone) {
      op["security"] = json::array({{{"bourseKey", json::array()},
                                     {"bourseTimestamp", json::array()},
                                     {"bourseNonce", json::array()},
                                     {"bourseSignature", json::array()}}});
      if (r.auth == Auth::kOptional) op["security"].push_back(json::object());  // or unsigned
    }
    std::string m = r.method;
    for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    paths[r.pattern][m] = op;
  }
  auto header = [](const char* name, const char* d) {
    return json{{"type", "apiKey"}, {"in", "header"}, {"name", name}, {"description", d}};
  };
  return {
      {"openapi", "3.1.0"},
      {"info",
       {{"title", title},
        {"version", version},
        {"description",
         "bourse broker REST API. Mutating requests are signed (DESIGN §7): Bourse-Signature "
         "is Ed25519 over METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))."}}},
      {"paths", paths},
      {"components",
       {{"schemas",
         {{"Error",
           {{"type", "object"},
            {"required", {"error"}},
            {"properties",
             {{"error",
               {{"type", "object"},
                {"required", {"code", "message"}},
                {"properties",
                 {{"code", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}}}}}}}},
        {"securitySchemes",
         {{"bourseKey", header("Bourse-Key", "ed25519:<b64url> of the signing key")},
          {"bourseTimestamp", header("Bourse-Timestamp", "unix seconds, within 300 s")},
          {"bourseNonce", header("Bourse-Nonce", "16-64 chars of [A-Za-z0-9_-], never reused")},
          {"bourseSignature", header("Bourse-Signature", "b64url Ed25519 signature")}}}}}};
}

}  // namespace bourse::broker
