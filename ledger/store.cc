#include "ledger/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/canonical_json.h"
#include "core/encoding.h"
#include "core/mutex.h"
#include "ledger/internal/node_id.h"
#include "storage/sqlite.h"

namespace bourse::ledger {

using core::Result;
using core::Status;
using storage::Statement;

namespace {

constexpr const char* kFormat = "bourse-ledger-1";

// The ledger's tables (storage_schema component "ledger"). Version 1 is the
// layout every store had before versions were recorded (format
// bourse-ledger-1), so a store written by earlier code is at version 0 and
// migration 1 only records the number.
const storage::Schema& LedgerSchema() {
  static const storage::Schema* schema = new storage::Schema{
      "ledger",
      {{1, "the Merkle log: ledger_meta, ledger_entries, ledger_nodes, ledger_heads",
        [](storage::Connection& c) {
          return c.Exec(
              "CREATE TABLE IF NOT EXISTS ledger_meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
              "CREATE TABLE IF NOT EXISTS ledger_entries(seq INTEGER PRIMARY KEY,"
              " data TEXT NOT NULL);"
              "CREATE TABLE IF NOT EXISTS ledger_nodes(id INTEGER PRIMARY KEY,"
              " hash BLOB NOT NULL);"
              "CREATE TABLE IF NOT EXISTS ledger_heads(size INTEGER PRIMARY KEY,"
              " ts INTEGER NOT NULL, root BLOB NOT NULL, sig BLOB NOT NULL);",
              "ledger schema");
        }}}};
  return *schema;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Resets a statement on scope exit (its bindings stay: the next use
// rebinds every parameter).
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement& s) : s_(s) {}
  ~ResetOnExit() { s_.Reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Statement& s_;
};

// Sets *stop under mu, wakes cv's waiter and joins t (a no-op when t never
// started).
void StopAndJoin(core::Mutex* mu, bool* stop, core::CondVar* cv, std::thread& t) EXCLUDES(mu) {
  if (!t.joinable()) return;
  {
    core::MutexLock l(mu);
    *stop = true;
  }
  cv->SignalAll();
  t.join();
}

// Complete subtree hashes of level >= kCachedLevel are kept in memory once
// read: they are immutable once committed, there are about n / 2^kCachedLevel
// of them (1 MiB per million entries with the map's overhead), and with them
// a proof over a million entries costs ~6 B-tree lookups instead of ~20.
constexpr int kCachedLevel = 6;

class UpperCache {
 public:
  bool Get(int64_t id, Hash* out) const EXCLUDES(mu_) {
    core::MutexLock lock(&mu_);
    auto it = map_.find(id);
    if (it == map_.end()) return false;
    *out = it->second;
    return true;
  }
  void Put(int64_t id, const Hash& h) EXCLUDES(mu_) {
    core::MutexLock lock(&mu_);
    map_.emplace(id, h);
  }

 private:
  mutable core::Mutex mu_;
  std::unordered_map<int64_t, Hash> map_ GUARDED_BY(mu_);
};

// Complete subtree hashes read from ledger_nodes through one statement (and
// the upper levels through `cache` when given). Only committed nodes are read
// here, so whatever goes into the cache is final.
class NodeReader final : public SubtreeSource {
 public:
  explicit NodeReader(Statement* stmt, UpperCache* cache = nullptr) : stmt_(stmt), cache_(cache) {}
  Result<Hash> Subtree(int level, uint64_t index) const override {
    int64_t id = internal::NodeId(level, index);
    bool cacheable = cache_ != nullptr && level >= kCachedLevel;
    Hash h;
    if (cacheable && cache_->Get(id, &h)) return h;
    ResetOnExit r(*stmt_);
    stmt_->Bind(1, id);
    BOURSE_ASSIGN_OR_RETURN(bool row, stmt_->Step());
    if (row && stmt_->Bytes(0) == 32) {
      std::memcpy(h.data(), stmt_->Blob(0), 32);
      if (cacheable) cache_->Put(id, h);
      return h;
    }
    return core::FailedPrecondition("ledger_nodes: subtree level " + std::to_string(level) +
                                    " index " + std::to_string(index) + " is missing or damaged");
  }

 private:
  Statement* stmt_;
  UpperCache* cache_;
};

// A pooled read connection and its statements (cached on it; declared after
// it, so they go first).
struct ReadConn {
  std::unique_ptr<storage::Connection> conn;
  Statement node, entries, heads, begin, commit;
};

Result<TreeHead> HeadFromRow(const Statement& s) {
  TreeHead h;
  h.size = static_cast<uint64_t>(s.Int(0));
  h.ts = s.Int(1);
  if (s.Bytes(2) != 32 || s.Bytes(3) != 64) {
    return core::FailedPrecondition("ledger_heads: head at size " + std::to_string(h.size) +
                                    " has a malformed root or signature");
  }
  std::memcpy(h.root.data(), s.Blob(2), 32);
  std::memcpy(h.sig.data(), s.Blob(3), 64);
  return h;
}

// Binds (size, ts, root, sig) of `h`; the root and signature are not copied.
void BindHead(Statement& s, const TreeHead& h) {
  s.Bind(1, static_cast<int64_t>(h.size));
  s.Bind(2, h.ts);
  s.BindBlobStatic(3, h.root.data(), 32);
  s.BindBlobStatic(4, h.sig.data(), 64);
}

void AppendCanonicalEntry(std::string* out, const std::string& body, const std::string& prev,
                          uint64_t seq, int64_t ts, const std::string& type) {
  out->clear();
  out->reserve(body.size() + type.size() + 140);
  out->append("{\"body\":");
  out->append(body);
  out->append(",\"prev\":\"");
  out->append(prev);
  out->append("\",\"seq\":");
  out->append(std::to_string(seq));
  out->append(",\"ts\":");
  out->append(std::to_string(ts));
  out->append(",\"type\":\"");
  out->append(type);
  out->append("\"}");
}

}  // namespace

struct Txn::Impl {
  Store::Impl* store;
  uint64_t base_seq;
  int64_t ts;
  struct Pending {
    std::string type;
    std::string body;  // canonical
  };
  std::vector<Pending> pending;
};

struct Store::Impl {
  std::string path;
  StoreOptions options;
  const core::Clock* clock;
  std::optional<core::PrivateKey> key;
  std::optional<core::PublicKey> pub;

  // Writer state: used only by the writer thread (and by Init before it starts).
  // wdb is wfile's connection; wfile holds the process lock of a writable store.
  std::unique_ptr<storage::Database> wfile;
  storage::Connection* wdb = nullptr;  // wfile's connection
  Statement ins_head;
  // The batch's ledger rows, inserted together before its COMMIT; multi-row
  // INSERT statements by row count (index n: n rows).
  struct EntryRow {
    int64_t seq;
    std::string data;
  };
  struct NodeRow {
    int64_t id;
    Hash hash;
  };
  static constexpr size_t kRowsPerInsert = 32;
  std::vector<EntryRow> entry_rows;
  std::vector<NodeRow> node_rows;
  // Statements cached on wdb, borrowed here for the store's lifetime.
  std::vector<Statement> ins_entries, ins_nodes;
  std::unordered_map<std::string, Statement, internal::StringHash, std::equal_to<>> cache;
  MerkleFrontier frontier;
  std::string last_leaf_hex;
  int64_t last_ts = 0;

  // Group commit. Callers queue Requests; the writer thread takes every
  // queued one (up to max_batch_callers) into one transaction. A caller of
  // Commit waits on its own condition variable (no thundering herd); a
  // caller of CommitAsync is called back by the writer.
  struct Request {
    std::function<Status(Txn&)> owned_fn;  // CommitAsync's, kept alive here
    const std::function<Status(Txn&)>* fn = nullptr;
    std::function<void(Result<CommitResult>)> done;  // CommitAsync: called by the writer
    // Commit: guarded by the store's q_mu (which the analysis cannot name
    // from here; every access is under a MutexLock on it).
    bool finished = false;
    Status status;
    CommitResult result;
    core::CondVar cv;
  };
  core::Mutex q_mu;
  std::deque<Request*> queue GUARDED_BY(q_mu);
  bool writer_waiting GUARDED_BY(q_mu) = false;  // the writer sleeps on writer_cv
  bool writer_stop GUARDED_BY(q_mu) = false;
  core::CondVar writer_cv;
  std::thread writer;

  void Enqueue(Request* r) EXCLUDES(q_mu) {
    bool wake;
    {
      core::MutexLock l(&q_mu);
      queue.push_back(r);
      wake = writer_waiting;
      writer_waiting = false;
    }
    if (wake) writer_cv.Signal();
  }
  void WriterLoop() EXCLUDES(q_mu, sync_mu);

  // Durability, pipelined: the writer's connection runs with
  // synchronous=NORMAL, so a batch's COMMIT only writes its frames to the
  // WAL; the syncer thread then fdatasyncs the WAL (one sync covers every
  // batch committed meanwhile), publishes the newest tree head and only
  // then answers the batch's callers, while the writer already runs the
  // next batch: the disk's flush latency is off the serial path. Nothing is
  // acknowledged, and no tree head is served (Head(), entries, proofs),
  // before its batch is durable. A failed sync poisons the store: the
  // outcome of what was written is unknown, so every later commit fails
  // (unavailable) until the store is reopened.
  struct Committed {
    std::vector<Request*> batch;
    TreeHead head;  // the head after this batch (the previous one if it appended nothing)
    bool wrote;     // a caller committed: the WAL needs a sync
  };
  int wal_fd = -1;
  TreeHead writer_head;  // writer only: the head of the last committed batch
  core::Mutex sync_mu;
  core::CondVar sync_cv;
  std::deque<Committed> to_sync GUARDED_BY(sync_mu);
  bool syncer_stop GUARDED_BY(sync_mu) = false;
  std::thread syncer;
  std::atomic<bool> poisoned{false};
  std::atomic<uint64_t> n_batches{0}, n_callers{0}, n_syncs{0};
  Status poison;  // written once before poisoned is set
  void SyncerLoop() EXCLUDES(sync_mu, head_mu, q_mu);
  void Answer(std::vector<Request*>& batch) EXCLUDES(q_mu);

  mutable core::Mutex head_mu;
  TreeHead head GUARDED_BY(head_mu);

  mutable core::Mutex pool_mu;
  mutable std::vector<std::unique_ptr<ReadConn>> pool GUARDED_BY(pool_mu);
  mutable UpperCache upper;

  // Checkpoints run on their own thread and connection (PASSIVE: they never
  // block the writer), so a commit never pays for copying the WAL back into
  // the database. The writer's WAL hook wakes the thread once the WAL holds
  // kCheckpointBytes (in pages of the file's size, checkpoint_pages);
  // should the WAL still reach 16 times that (readers pinning old frames),
  // the writer checkpoints inline as SQLite's default auto-checkpoint would.
  static constexpr int kCheckpointBytes = 16 << 20;
  int checkpoint_pages = kCheckpointBytes / 4096;
  std::thread ckpt_thread;
  core::Mutex ckpt_mu;
  core::CondVar ckpt_cv;
  bool ckpt_wanted GUARDED_BY(ckpt_mu) = false;
  bool ckpt_stop GUARDED_BY(ckpt_mu) = false;

  std::atomic<bool> ckpt_inline{false};  // the checkpointer could not open its connection

  void WalHook(int pages) EXCLUDES(ckpt_mu) {
    if (pages >= 16 * checkpoint_pages ||
        (pages >= checkpoint_pages && ckpt_inline.load(std::memory_order_relaxed))) {
      wdb->CheckpointPassive();
    } else if (pages >= checkpoint_pages) {
      core::MutexLock l(&ckpt_mu);
      ckpt_wanted = true;
      ckpt_cv.Signal();
    }
  }
  void StartCheckpointer() {
    wdb->SetWalHook([this](int pages) { WalHook(pages); });
    ckpt_thread = std::thread([this]() EXCLUDES(ckpt_mu) {
      storage::ConnectionOptions co;
      co.cache_kib = 2048;
      co.mmap_bytes = 1073741824;
      co.wal = false;  // the file is in WAL mode already (the writer set it)
      auto db = storage::Connection::Open(path, co);
      if (!db.ok()) {
        ckpt_inline = true;  // fall back to checkpoints on commit, in the writer's hook
        return;
      }
      core::MutexLock l(&ckpt_mu);
      while (true) {
        while (!ckpt_wanted && !ckpt_stop) ckpt_cv.Wait(&ckpt_mu);
        if (ckpt_stop) break;
        ckpt_wanted = false;
        l.Unlock();
        (*db)->CheckpointPassive();
        l.Lock();
      }
    });
  }

  ~Impl() {
    // The writer finishes what is queued, the syncer answers it.
    StopAndJoin(&q_mu, &writer_stop, &writer_cv, writer);
    StopAndJoin(&sync_mu, &syncer_stop, &sync_cv, syncer);
    if (wal_fd >= 0) ::close(wal_fd);
    StopAndJoin(&ckpt_mu, &ckpt_stop, &ckpt_cv, ckpt_thread);
    cache.clear();
    ins_entries.clear();
    ins_nodes.clear();
    ins_head = Statement();
    pool.clear();
    wfile.reset();
  }

  Result<std::unique_ptr<ReadConn>> AcquireReader() const EXCLUDES(pool_mu) {
    {
      core::MutexLock lock(&pool_mu);
      if (!pool.empty()) {
        auto c = std::move(pool.back());
        pool.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<ReadConn>();
    storage::ConnectionOptions co;
    co.cache_kib = options.cache_kib;
    co.mmap_bytes = 1073741824;
    co.wal = false;  // the file is in WAL mode already (the writer set it)
    BOURSE_ASSIGN_OR_RETURN(c->conn, storage::Connection::Open(path, co));
    storage::Connection& db = *c->conn;
    BOURSE_ASSIGN_OR_RETURN(c->node, db.Cached("SELECT hash FROM ledger_nodes WHERE id=?"));
    BOURSE_ASSIGN_OR_RETURN(
        c->entries,
        db.Cached("SELECT seq, data FROM ledger_entries WHERE seq>=? AND seq<? ORDER BY seq"));
    BOURSE_ASSIGN_OR_RETURN(c->heads, db.Cached("SELECT size, ts, root, sig FROM ledger_heads"
                                                " WHERE size>=? AND size<? ORDER BY size LIMIT ?"));
    BOURSE_ASSIGN_OR_RETURN(c->begin, db.Cached("BEGIN"));
    BOURSE_ASSIGN_OR_RETURN(c->commit, db.Cached("COMMIT"));
    return c;
  }
  void ReleaseReader(std::unique_ptr<ReadConn> c) const EXCLUDES(pool_mu) {
    core::MutexLock lock(&pool_mu);
    pool.push_back(std::move(c));
  }
  // Runs fn(conn) inside one read transaction on a pooled connection: one
  // consistent snapshot, and one WAL lock round for all of fn's lookups
  // (without it every statement takes and drops its own shared lock, which
  // costs more than the B-tree lookups themselves).
  template <typename Fn>
  auto WithSnapshot(Fn&& fn) const -> decltype(fn(std::declval<ReadConn&>())) {
    BOURSE_ASSIGN_OR_RETURN(auto c, AcquireReader());
    Status st = c->begin.Run();
    c->begin.Reset();
    if (!st.ok()) return st;
    auto out = fn(*c);
    st = c->commit.Run();
    c->commit.Reset();
    if (!st.ok()) return st;
    ReleaseReader(std::move(c));
    return out;
  }

  // Runs one statement without results through the writer's statement
  // cache (transaction control runs several times per batch: parsing it
  // every time showed up in profiles).
  Status ExecCached(const char* sql) {
    auto it = cache.find(std::string_view(sql));
    if (it == cache.end()) {
      BOURSE_ASSIGN_OR_RETURN(Statement s, wdb->Cached(sql));
      it = cache.emplace(sql, std::move(s)).first;
    }
    Result<bool> row = it->second.Step();
    it->second.Reset();
    return row.status();
  }

  Status Init(bool creating);
  Status CheckFormatAndKey();
  Status LoadTree();
  // Runs one batch in one transaction and COMMITs it (not yet durable);
  // true when a caller succeeded (the WAL then needs a sync).
  bool RunBatch(std::vector<Request*>& batch);
  void WriteEntries(Txn::Impl& t, std::vector<MerkleFrontier::Node>* closed);
  Status FlushRows();
};

Status Store::Impl::Init(bool creating) {
  // A writable store takes the database's process lock first: two writers
  // would each extend their own in-memory tree and fork the log.
  storage::DatabaseOptions dbo;
  dbo.conn.create = creating;
  dbo.conn.cache_kib = options.cache_kib;
  dbo.conn.mmap_bytes = 1073741824;
  dbo.conn.wal = true;
  if (key) dbo.lock_owner = storage::ProgramName();
  // A read-only store must not write: it only checks the version.
  if (key) dbo.schemas.push_back(&LedgerSchema());
  auto file = storage::Database::Open(path, dbo);
  if (!file.ok()) return file.status().WithContext("ledger store");
  wfile = std::move(*file);
  wdb = &wfile->conn();
  {
    auto ps = wdb->Prepare("PRAGMA page_size");
    if (ps.ok() && ps->Step().value_or(false) && ps->Int(0) > 0) {
      checkpoint_pages = std::max<int>(1, kCheckpointBytes / static_cast<int>(ps->Int(0)));
    }
  }
  if (!key) {
    BOURSE_ASSIGN_OR_RETURN(int v, storage::SchemaVersion(wfile->conn(), "ledger"));
    if (v > LedgerSchema().latest()) {
      return core::FailedPrecondition("ledger store " + path + ": ledger schema version " +
                                      std::to_string(v) + " is newer than this program knows (" +
                                      std::to_string(LedgerSchema().latest()) + ")");
    }
  }
  // A writable store syncs the WAL itself, off the writer's path, before it
  // answers (SyncerLoop): its connection runs with NORMAL, which in WAL mode
  // keeps every commit atomic and consistent and leaves the sync to us (and
  // syncs the WAL before each checkpoint). Nothing acknowledged is lost
  // across kill -9 or power loss. A larger checkpoint interval means fewer
  // rewrites of hot pages (the log's B-tree edges) into the database;
  // writable stores move checkpoints off the writer (StartCheckpointer).
  BOURSE_RETURN_IF_ERROR(
      wdb->Exec(key ? "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=8192"
                    : "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=8192"));
  BOURSE_RETURN_IF_ERROR(wdb->Exec("BEGIN IMMEDIATE"));
  Status st = CheckFormatAndKey();
  if (st.ok()) st = LoadTree();
  if (!st.ok()) {
    wdb->Exec("ROLLBACK").IgnoreError();
    return st;
  }
  BOURSE_RETURN_IF_ERROR(wdb->Exec("COMMIT"));

  BOURSE_ASSIGN_OR_RETURN(
      ins_head, wdb->Cached("INSERT INTO ledger_heads(size, ts, root, sig) VALUES(?,?,?,?)"));
  if (key) {
    // The WAL exists once the connection has run a transaction. What Init
    // wrote (a new store's format, key and first head) is made durable now.
    const std::string wal = path + "-wal";
    wal_fd = ::open(wal.c_str(), O_RDWR | O_CLOEXEC);
    if (wal_fd < 0 || ::fdatasync(wal_fd) != 0) {
      return core::Unavailable("ledger store " + path + ": cannot open and sync " + wal + ": " +
                               std::strerror(errno));
    }
  }
  return Status::Ok();
}

// Inside Init's transaction: the store's format and key (a new store's
// first rows when the file has none yet); sets pub.
Status Store::Impl::CheckFormatAndKey() {
  Status st;
  if (!key) {
    auto has = wfile->conn().Prepare(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='ledger_meta'");
    if (!has.ok()) return has.status();
    auto row = has->Step();
    if (!row.ok()) return row.status();
    if (!*row) {
      return core::NotFound("ledger store " + path + ": not a ledger store");
    }
  }
  auto meta = wdb->Prepare("SELECT v FROM ledger_meta WHERE k=?");
  if (!meta.ok()) return meta.status();
  auto get_meta = [&](const char* k) -> std::optional<std::string> {
    ResetOnExit r(*meta);
    meta->BindStatic(1, k);
    auto row = meta->Step();
    if (row.ok() && *row) return meta->Text(0);
    return std::nullopt;
  };
  std::optional<std::string> format = get_meta("format");
  std::optional<std::string> key_text = get_meta("key");
  if (!format) {
    // A fresh file (or one without our tables yet).
    auto any = wdb->Prepare("SELECT count(*) FROM ledger_entries");
    if (!any.ok()) return any.status();
    auto any_row = any->Step();
    if (any_row.ok() && *any_row && any->Int(0) != 0) {
      return core::FailedPrecondition("ledger store " + path +
                                      ": entries present but no format record; refusing");
    }
    if (!key) {
      return core::NotFound("ledger store " + path +
                            ": not a ledger store yet, and creating one needs the ledger key");
    }
    std::string ins = "INSERT INTO ledger_meta(k, v) VALUES('format','" + std::string(kFormat) +
                      "'),('key','" + key->public_key().ToText() + "')";
    st = wdb->Exec(ins);
    if (!st.ok()) return st;
    TreeHead h0 = SignTreeHead(0, EmptyTreeRoot(), clock->NowMillis(), *key);
    auto ins_h = wdb->Prepare("INSERT INTO ledger_heads(size, ts, root, sig) VALUES(?,?,?,?)");
    if (!ins_h.ok()) return ins_h.status();
    BindHead(*ins_h, h0);
    st = ins_h->Run();
    if (!st.ok()) return st;
    format = kFormat;
    key_text = key->public_key().ToText();
  }
  if (*format != kFormat) {
    return core::FailedPrecondition("ledger store " + path + ": unknown format \"" + *format +
                                    "\"");
  }
  if (!key_text)
    return core::FailedPrecondition("ledger store " + path + ": no ledger key recorded");
  auto recorded = core::PublicKey::FromText(*key_text);
  if (!recorded.ok()) {
    return core::FailedPrecondition("ledger store " + path +
                                    ": recorded ledger key: " + recorded.status().message());
  }
  if (options.expected_key && !(*options.expected_key == *recorded)) {
    return core::FailedPrecondition("ledger store " + path + ": ledger key " + *key_text +
                                    " is not the expected " + options.expected_key->ToText());
  }
  if (key && !(key->public_key() == *recorded)) {
    return core::FailedPrecondition("ledger store " + path + ": ledger key " + *key_text +
                                    " does not match the signing key " +
                                    key->public_key().ToText());
  }
  pub = *recorded;

  return Status::Ok();
}

// Inside Init's transaction: the last signed head, the entry count and the
// frontier, checked against each other; sets frontier, last_ts, head.
Status Store::Impl::LoadTree() {
  // The last tree head must check out.
  auto last =
      wdb->Prepare("SELECT size, ts, root, sig FROM ledger_heads ORDER BY size DESC LIMIT 1");
  if (!last.ok()) return last.status();
  auto last_row = last->Step();
  if (!last_row.ok() || !*last_row) {
    return core::FailedPrecondition("ledger store " + path + ": no signed tree head");
  }
  auto h = HeadFromRow(*last);
  if (!h.ok()) return h.status().WithContext("ledger store " + path);
  Status st = VerifyTreeHead(*h, *pub);
  if (!st.ok()) {
    return core::FailedPrecondition("ledger store " + path + ": last " + st.message());
  }
  auto count = wdb->Prepare("SELECT count(*), coalesce(max(seq)+1, 0) FROM ledger_entries");
  if (!count.ok()) return count.status();
  static_cast<void>(count->Step());  // one row always; an error reads as zeros
  uint64_t n = static_cast<uint64_t>(count->Int(0));
  uint64_t top = static_cast<uint64_t>(count->Int(1));
  if (n != top) {
    return core::FailedPrecondition("ledger store " + path + ": " + std::to_string(n) +
                                    " entries but the highest seq is " + std::to_string(top - 1) +
                                    " (entries missing)");
  }
  if (n != h->size) {
    return core::FailedPrecondition("ledger store " + path + ": the last signed tree head covers " +
                                    std::to_string(h->size) + " entries but the store holds " +
                                    std::to_string(n));
  }
  auto node = wdb->Prepare("SELECT hash FROM ledger_nodes WHERE id=?");
  if (!node.ok()) return node.status();
  NodeReader reader(&*node);
  auto fr = MerkleFrontier::Load(reader, n);
  if (!fr.ok()) return fr.status().WithContext("ledger store " + path);
  if (fr->Root() != h->root) {
    return core::FailedPrecondition("ledger store " + path + ": the stored tree's root at size " +
                                    std::to_string(n) + " does not match the signed tree head (" +
                                    HashToHex(fr->Root()).substr(0, 16) + "... vs " +
                                    HashToHex(h->root).substr(0, 16) + "...)");
  }
  frontier = *fr;
  last_ts = h->ts;
  if (n > 0) {
    auto lh = reader.Subtree(0, n - 1);
    if (!lh.ok()) return lh.status();
    last_leaf_hex = HashToHex(*lh);
    auto le = wdb->Prepare("SELECT data FROM ledger_entries WHERE seq=?");
    if (!le.ok()) return le.status();
    le->Bind(1, static_cast<int64_t>(n - 1));
    auto le_row = le->Step();
    if (!le_row.ok()) return le_row.status();
    if (!*le_row) return core::Internal("ledger_entries read: entry missing");
    std::string data = le->Text(0);
    if (LeafHash(data) != *lh) {
      return core::FailedPrecondition("ledger store " + path + ": entry " + std::to_string(n - 1) +
                                      " does not hash to its stored leaf");
    }
    auto e = ParseEntry(data);
    if (!e.ok()) {
      return core::FailedPrecondition("ledger store " + path + ": entry " + std::to_string(n - 1) +
                                      ": " + e.status().message());
    }
    last_ts = std::max(last_ts, e->ts);
  }
  {
    core::MutexLock l(&head_mu);  // no other thread yet; the analysis wants it
    head = *h;
    writer_head = head;
  }
  return Status::Ok();
}

// A caller's entries: chained, hashed into the frontier and queued for the
// batch's inserts (FlushRows), which no fn reads before the COMMIT.
void Store::Impl::WriteEntries(Txn::Impl& t, std::vector<MerkleFrontier::Node>* closed) {
  for (size_t i = 0; i < t.pending.size(); ++i) {
    const auto& p = t.pending[i];
    uint64_t seq = frontier.size();
    std::string text;
    AppendCanonicalEntry(&text, p.body, last_leaf_hex, seq, t.ts, p.type);
    Hash leaf = LeafHash(text);
    entry_rows.push_back({static_cast<int64_t>(seq), std::move(text)});
    closed->clear();
    frontier.Append(leaf, closed);
    for (const auto& n : *closed) node_rows.push_back({internal::NodeId(n.level, n.index), n.hash});
    last_leaf_hex = HashToHex(leaf);
  }
}

// The batch's entry and node rows, kRowsPerInsert rows per INSERT statement
// (one statement per row cost more than the B-tree inserts themselves).
Status Store::Impl::FlushRows() {
  auto stmt = [&](const char* table, const char* cols, size_t rows,
                  std::vector<Statement>* cache) -> Result<Statement*> {
    if (cache->size() <= rows) cache->resize(rows + 1);
    Statement& st = (*cache)[rows];
    if (!st.valid()) {
      std::string sql = std::string("INSERT INTO ") + table + "(" + cols + ") VALUES";
      for (size_t i = 0; i < rows; ++i) sql += i == 0 ? "(?,?)" : ",(?,?)";
      BOURSE_ASSIGN_OR_RETURN(st, wdb->Cached(sql));
    }
    return &st;
  };
  for (size_t at = 0; at < entry_rows.size();) {
    size_t n = std::min(kRowsPerInsert, entry_rows.size() - at);
    BOURSE_ASSIGN_OR_RETURN(Statement * st, stmt("ledger_entries", "seq, data", n, &ins_entries));
    ResetOnExit r(*st);
    for (size_t i = 0; i < n; ++i) {
      st->Bind(static_cast<int>(2 * i + 1), entry_rows[at + i].seq);
      st->BindStatic(static_cast<int>(2 * i + 2), entry_rows[at + i].data);
    }
    BOURSE_RETURN_IF_ERROR(st->Run());
    at += n;
  }
  for (size_t at = 0; at < node_rows.size();) {
    size_t n = std::min(kRowsPerInsert, node_rows.size() - at);
    BOURSE_ASSIGN_OR_RETURN(Statement * st, stmt("ledger_nodes", "id, hash", n, &ins_nodes));
    ResetOnExit r(*st);
    for (size_t i = 0; i < n; ++i) {
      st->Bind(static_cast<int>(2 * i + 1), node_rows[at + i].id);
      st->BindBlobStatic(static_cast<int>(2 * i + 2), node_rows[at + i].hash.data(), 32);
    }
    BOURSE_RETURN_IF_ERROR(st->Run());
    at += n;
  }
  entry_rows.clear();
  node_rows.clear();
  return Status::Ok();
}

bool Store::Impl::RunBatch(std::vector<Request*>& batch) {
  auto fail_all = [&](const Status& st) {
    for (Request* r : batch) {
      if (r->status.ok()) r->status = st;
    }
  };
  if (poisoned.load(std::memory_order_acquire)) {
    fail_all(poison);
    return false;
  }
  int64_t ts = std::max(clock->NowMillis(), last_ts);
  Status st = ExecCached("BEGIN IMMEDIATE");
  if (!st.ok()) {
    fail_all(st.WithContext("ledger commit"));
    return false;
  }
  MerkleFrontier frontier0 = frontier;
  std::string last0 = last_leaf_hex;
  std::vector<MerkleFrontier::Node> closed;
  bool any_entries = false;
  bool any_ok = false;
  for (Request* r : batch) {
    Txn::Impl ti{this, frontier.size(), ts, {}};
    Txn txn(&ti);
    MerkleFrontier fr_before = frontier;
    std::string last_before = last_leaf_hex;
    const size_t entries_before = entry_rows.size(), nodes_before = node_rows.size();
    Status s = ExecCached("SAVEPOINT bourse_caller");
    if (s.ok()) {
      s = (*r->fn)(txn);
      if (s.ok()) WriteEntries(ti, &closed);
      if (s.ok()) {
        s = ExecCached("RELEASE bourse_caller");
      } else {
        ExecCached("ROLLBACK TO bourse_caller").IgnoreError();
        ExecCached("RELEASE bourse_caller").IgnoreError();
      }
    }
    if (!s.ok()) {
      frontier = fr_before;
      last_leaf_hex = last_before;
      entry_rows.resize(entries_before);
      node_rows.resize(nodes_before);
      r->status = s;
      if (!wdb->InTransaction()) {
        // SQLite abandoned the whole transaction (I/O error, disk full...):
        // nothing of this batch can commit.
        st = core::Unavailable("ledger commit: the batch's transaction was aborted by: " +
                               s.message());
        break;
      }
      continue;
    }
    r->result.first_seq = ti.base_seq;
    r->result.count = ti.pending.size();
    any_entries = any_entries || !ti.pending.empty();
    any_ok = true;
  }
  if (st.ok()) st = FlushRows();
  TreeHead new_head = writer_head;
  if (st.ok() && any_entries) {
    new_head = SignTreeHead(frontier.size(), frontier.Root(), ts, *key);
    ResetOnExit rs(ins_head);
    BindHead(ins_head, new_head);
    st = ins_head.Run();
  }
  if (st.ok()) st = ExecCached("COMMIT");
  if (!st.ok()) {
    if (wdb->InTransaction()) ExecCached("ROLLBACK").IgnoreError();
    frontier = frontier0;
    last_leaf_hex = last0;
    entry_rows.clear();
    node_rows.clear();
    fail_all(st.WithContext("ledger commit"));
    return false;
  }
  if (any_entries) {
    last_ts = ts;
    writer_head = new_head;
  }
  for (Request* r : batch) {
    if (r->status.ok()) r->result.head = new_head;
  }
  // Whatever a successful caller did (rows, entries, even DDL, which
  // SQLite's total_changes does not count) is made durable before it is
  // answered.
  return any_ok;
}

// ---- Txn ----------------------------------------------------------------

storage::Connection* Txn::db() const { return &impl_->store->wfile->conn(); }

Result<storage::Statement> Txn::Prepare(std::string_view sql) {
  return impl_->store->wfile->conn().Cached(sql);
}

Status Txn::Exec(std::string_view sql) { return impl_->store->wdb->Exec(sql); }

Result<uint64_t> Txn::Append(std::string_view type, nlohmann::json body) {
  BOURSE_RETURN_IF_ERROR(ValidateEntryType(type));
  if (!body.is_object()) return core::InvalidArgument("entry.body: must be a JSON object");
  std::string canon;
  Status st = core::AppendCanonicalJson(body, &canon);
  if (!st.ok()) return st.WithContext("entry.body");
  uint64_t seq = impl_->base_seq + impl_->pending.size();
  if (seq >= static_cast<uint64_t>(core::kMaxSafeInteger)) {
    return core::ResourceExhausted("ledger: seq space exhausted");
  }
  impl_->pending.push_back({std::string(type), std::move(canon)});
  return seq;
}

uint64_t Txn::next_seq() const { return impl_->base_seq + impl_->pending.size(); }

Status Txn::Nested(const std::function<Status()>& fn) {
  Store::Impl& store = *impl_->store;
  const size_t pending_before = impl_->pending.size();
  BOURSE_RETURN_IF_ERROR(store.ExecCached("SAVEPOINT bourse_nested"));
  Status s = fn();
  if (s.ok()) s = store.ExecCached("RELEASE bourse_nested");
  if (s.ok()) return s;
  impl_->pending.resize(pending_before);
  if (!store.wdb->InTransaction()) {
    return core::Unavailable("ledger commit: the batch's transaction was aborted by: " +
                             s.message());
  }
  store.ExecCached("ROLLBACK TO bourse_nested").IgnoreError();
  store.ExecCached("RELEASE bourse_nested").IgnoreError();
  return s;
}
int64_t Txn::now_millis() const { return impl_->ts; }

// ---- Store --------------------------------------------------------------

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, StoreOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->clock = options.clock ? options.clock : &core::SystemClock::Get();
  impl->key = options.signing_key;
  bool exists = FileExists(path);
  if (!exists && !options.create_if_missing) {
    return core::NotFound("ledger store " + path + ": no such file");
  }
  if (!exists && !options.signing_key) {
    return core::NotFound("ledger store " + path +
                          ": no such file (creating needs the ledger key)");
  }
  impl->options = std::move(options);
  BOURSE_RETURN_IF_ERROR(impl->Init(!exists));
  if (impl->key) {
    impl->StartCheckpointer();
    Impl* raw = impl.get();
    raw->syncer = std::thread([raw] { raw->SyncerLoop(); });
    pthread_setname_np(raw->syncer.native_handle(), "bourse-sync");
    raw->writer = std::thread([raw] { raw->WriterLoop(); });
    pthread_setname_np(raw->writer.native_handle(), "bourse-writer");
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<CommitResult> Store::Commit(const std::function<Status(Txn&)>& fn) {
  Impl& s = *impl_;
  if (!s.key) return core::FailedPrecondition("ledger store " + s.path + ": opened read-only");
  Impl::Request req;
  req.fn = &fn;
  s.Enqueue(&req);
  core::MutexLock lk(&s.q_mu);
  while (!req.finished) req.cv.Wait(&s.q_mu);
  if (!req.status.ok()) return req.status;
  return req.result;
}

void Store::CommitAsync(std::function<Status(Txn&)> fn,
                        std::function<void(Result<CommitResult>)> done) {
  Impl& s = *impl_;
  if (!s.key) {
    done(core::FailedPrecondition("ledger store " + s.path + ": opened read-only"));
    return;
  }
  auto* req = new Impl::Request;
  req->owned_fn = std::move(fn);
  req->fn = &req->owned_fn;
  req->done = std::move(done);
  s.Enqueue(req);
}

// The writer: takes every queued request into one batch, commits it and
// hands it to the syncer, which answers its callers once it is durable (a
// Commit caller is woken, a CommitAsync caller is called back). On stop it
// finishes what is queued first.
void Store::Impl::WriterLoop() {
  std::vector<Request*> batch;
  size_t last_batch_callers = 0;
  auto last_batch_start = std::chrono::steady_clock::now();
  core::MutexLock lk(&q_mu);
  for (;;) {
    while (queue.empty() && !writer_stop) {
      writer_waiting = true;
      writer_cv.Wait(&q_mu);
    }
    if (queue.empty()) break;
    // Pacing under load: a batch starts at least batch_interval after the
    // previous one when that one had several callers (so a lone client is
    // never held back), gathering more callers per transaction: fewer tree
    // heads to sign and fewer WAL pages written per caller.
    if (options.batch_interval_us > 0 && last_batch_callers >= 2 && !writer_stop &&
        queue.size() < static_cast<size_t>(options.max_batch_callers)) {
      auto until = last_batch_start + std::chrono::microseconds(options.batch_interval_us);
      while (!writer_stop && queue.size() < static_cast<size_t>(options.max_batch_callers) &&
             writer_cv.WaitUntil(&q_mu, until) == std::cv_status::no_timeout) {
      }
    }
    last_batch_start = std::chrono::steady_clock::now();
    batch.clear();
    while (!queue.empty() && batch.size() < static_cast<size_t>(options.max_batch_callers)) {
      batch.push_back(queue.front());
      queue.pop_front();
    }
    lk.Unlock();
    last_batch_callers = batch.size();
    bool wrote = RunBatch(batch);
    n_batches.fetch_add(1, std::memory_order_relaxed);
    n_callers.fetch_add(batch.size(), std::memory_order_relaxed);
    {
      core::MutexLock l(&sync_mu);
      to_sync.push_back({std::move(batch), writer_head, wrote});
    }
    sync_cv.Signal();
    batch.clear();
    lk.Lock();
  }
}

// Answers the callers of a batch once it is durable (or failed).
void Store::Impl::Answer(std::vector<Request*>& batch) {
  // Callbacks apart first: a woken Commit caller may return and free its
  // request.
  std::vector<Request*> asyncs;
  for (Request* r : batch) {
    if (r->done) asyncs.push_back(r);
  }
  {
    core::MutexLock l(&q_mu);
    for (Request* r : batch) {
      if (r->done) continue;
      r->finished = true;
      r->cv.Signal();
    }
  }
  for (Request* r : asyncs) {
    if (r->status.ok()) {
      r->done(std::move(r->result));
    } else {
      r->done(std::move(r->status));
    }
    delete r;
  }
}

void Store::Impl::SyncerLoop() {
  std::vector<Committed> items;
  auto last_sync = std::chrono::steady_clock::now();
  size_t last_sync_callers = 0;
  for (;;) {
    {
      core::MutexLock l(&sync_mu);
      while (to_sync.empty() && !syncer_stop) sync_cv.Wait(&sync_mu);
      if (to_sync.empty()) break;
      // Pacing under load (the previous sync covered several callers):
      // syncs start at least sync_interval apart; what the writer commits
      // meanwhile rides on the same sync. (A sync costs more than its
      // latency: on a VM each one is a few exits to the hypervisor.)
      if (options.sync_interval_us > 0 && last_sync_callers >= 2 && !syncer_stop) {
        auto until = last_sync + std::chrono::microseconds(options.sync_interval_us);
        while (!syncer_stop && sync_cv.WaitUntil(&sync_mu, until) == std::cv_status::no_timeout) {
        }
      }
      items.assign(std::make_move_iterator(to_sync.begin()),
                   std::make_move_iterator(to_sync.end()));
      to_sync.clear();
    }
    last_sync = std::chrono::steady_clock::now();
    last_sync_callers = 0;
    for (const Committed& c : items) last_sync_callers += c.batch.size();
    bool need = false;
    for (const Committed& c : items) need = need || c.wrote;
    Status st;
    if (need && !poisoned.load(std::memory_order_acquire)) {
      int rc;
      do {
        rc = ::fdatasync(wal_fd);
      } while (rc != 0 && errno == EINTR);
      n_syncs.fetch_add(1, std::memory_order_relaxed);
      if (rc != 0) {
        poison = core::Unavailable(std::string("ledger store ") + path +
                                   ": syncing the WAL failed (" + std::strerror(errno) +
                                   "); the store takes no more writes until it is reopened");
        poisoned.store(true, std::memory_order_release);
      }
    }
    if (poisoned.load(std::memory_order_acquire)) st = poison;
    if (st.ok()) {
      core::MutexLock lock(&head_mu);
      if (items.back().head.size >= head.size) head = items.back().head;
    }
    for (Committed& c : items) {
      if (!st.ok()) {
        for (Request* r : c.batch) {
          if (r->status.ok()) r->status = st;
        }
      }
      Answer(c.batch);
    }
    items.clear();
  }
}

Result<CommitResult> Store::Append(std::string_view type, nlohmann::json body) {
  return Commit([&](Txn& txn) { return txn.Append(type, std::move(body)).status(); });
}

Result<CommitResult> Store::AppendBatch(std::vector<EntryInput> entries) {
  return Commit([&](Txn& txn) -> Status {
    for (size_t i = 0; i < entries.size(); ++i) {
      auto r = txn.Append(entries[i].type, std::move(entries[i].body));
      if (!r.ok()) return r.status().WithContext("entries[" + std::to_string(i) + "]");
    }
    return Status::Ok();
  });
}

TreeHead Store::Head() const {
  core::MutexLock lock(&impl_->head_mu);
  return impl_->head;
}

StoreStats Store::Stats() const {
  return {impl_->n_batches.load(std::memory_order_relaxed),
          impl_->n_callers.load(std::memory_order_relaxed),
          impl_->n_syncs.load(std::memory_order_relaxed)};
}

const core::PublicKey& Store::key() const { return *impl_->pub; }
const std::string& Store::path() const { return impl_->path; }

namespace {

Status CheckRange(uint64_t from, uint64_t to, uint64_t size, const char* what) {
  if (from > to || to > size) {
    return core::InvalidArgument(std::string(what) + ": range [" + std::to_string(from) + ", " +
                                 std::to_string(to) + ") is outside the tree of size " +
                                 std::to_string(size));
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::string>> Store::EntryTexts(uint64_t from, uint64_t to) const {
  BOURSE_RETURN_IF_ERROR(CheckRange(from, to, Head().size, "entries"));
  BOURSE_ASSIGN_OR_RETURN(auto c, impl_->AcquireReader());
  std::vector<std::string> out;
  Status st;
  {
    Statement& s = c->entries;
    ResetOnExit r(s);
    s.Bind(1, static_cast<int64_t>(from));
    s.Bind(2, static_cast<int64_t>(to));
    Result<bool> row = false;
    while ((row = s.Step()).ok() && *row) out.push_back(s.Text(1));
    st = row.status();
  }
  impl_->ReleaseReader(std::move(c));
  BOURSE_RETURN_IF_ERROR(st);
  if (out.size() != to - from) return core::Internal("ledger_entries: entries missing in range");
  return out;
}

Result<std::vector<Entry>> Store::Entries(uint64_t from, uint64_t to) const {
  BOURSE_ASSIGN_OR_RETURN(auto texts, EntryTexts(from, to));
  std::vector<Entry> out;
  out.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto e = ParseEntry(texts[i]);
    if (!e.ok()) return e.status().WithContext("entry " + std::to_string(from + i));
    out.push_back(std::move(*e));
  }
  return out;
}

Result<std::vector<Hash>> Store::InclusionProof(uint64_t seq, uint64_t size) const {
  uint64_t n = Head().size;
  if (size > n) {
    return core::InvalidArgument("inclusion proof: size " + std::to_string(size) +
                                 " is above the tree size " + std::to_string(n));
  }
  return impl_->WithSnapshot([&](ReadConn& c) {
    NodeReader reader(&c.node, &impl_->upper);
    return ledger::InclusionPath(reader, seq, size);
  });
}

Result<std::vector<Hash>> Store::ConsistencyProof(uint64_t first, uint64_t second) const {
  uint64_t n = Head().size;
  if (second > n) {
    return core::InvalidArgument("consistency proof: second " + std::to_string(second) +
                                 " is above the tree size " + std::to_string(n));
  }
  return impl_->WithSnapshot([&](ReadConn& c) {
    NodeReader reader(&c.node, &impl_->upper);
    return ledger::ConsistencyPath(reader, first, second);
  });
}

Result<Hash> Store::RootAt(uint64_t size) const {
  uint64_t n = Head().size;
  if (size > n) {
    return core::InvalidArgument("root: size " + std::to_string(size) + " is above the tree size " +
                                 std::to_string(n));
  }
  return impl_->WithSnapshot([&](ReadConn& c) {
    NodeReader reader(&c.node, &impl_->upper);
    return ledger::RootAt(reader, size);
  });
}

Result<std::vector<TreeHead>> Store::Heads(uint64_t from_size, uint64_t to_size,
                                           uint64_t limit) const {
  // Only published (durable) heads: a head written but not yet synced is
  // not shown.
  to_size = std::min(to_size, Head().size + 1);
  BOURSE_ASSIGN_OR_RETURN(auto c, impl_->AcquireReader());
  std::vector<TreeHead> out;
  Status st;
  {
    Statement& s = c->heads;
    ResetOnExit r(s);
    s.Bind(1, static_cast<int64_t>(std::min<uint64_t>(from_size, INT64_MAX)));
    s.Bind(2, static_cast<int64_t>(std::min<uint64_t>(to_size, INT64_MAX)));
    s.Bind(3, static_cast<int64_t>(std::min<uint64_t>(limit, INT64_MAX)));
    Result<bool> row = false;
    while ((row = s.Step()).ok() && *row) {
      auto h = HeadFromRow(s);
      if (!h.ok()) {
        st = h.status();
        break;
      }
      out.push_back(*h);
    }
    if (st.ok()) st = row.status();
  }
  impl_->ReleaseReader(std::move(c));
  BOURSE_RETURN_IF_ERROR(st);
  return out;
}

Status Store::Read(const std::function<Status(storage::Connection*)>& fn) const {
  BOURSE_ASSIGN_OR_RETURN(auto c, impl_->AcquireReader());
  Status st = c->conn->Exec("BEGIN");
  if (st.ok()) {
    st = fn(c->conn.get());
    c->conn->Exec("COMMIT").IgnoreError();
  }
  impl_->ReleaseReader(std::move(c));
  return st;
}

core::Status MigrateSchema(Store& store, const storage::Schema& schema) {
  for (bool done = false; !done;) {
    auto r = store.Commit([&](Txn& txn) -> core::Status {
      return storage::MigrateStep(*txn.db(), schema, &done);
    });
    BOURSE_RETURN_IF_ERROR(r.status());
  }
  return core::Status::Ok();
}

}  // namespace bourse::ledger
