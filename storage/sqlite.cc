#include "storage/sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace bourse::storage {

namespace {

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ',' ||
          c == ' ')) {
      return false;
    }
  }
  return true;
}

// The table a statement writes or reads first: the word after INTO,
// UPDATE or FROM (enough to name "what" in an error without quoting SQL).
}  // namespace

std::string StatementTarget(std::string_view sql) {
  auto upper = [](std::string_view w) {
    std::string u(w);
    for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u;
  };
  std::string prev;
  size_t i = 0;
  while (i < sql.size()) {
    while (i < sql.size() && !(std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_'))
      ++i;
    size_t j = i;
    while (j < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_'))
      ++j;
    if (j == i) break;
    std::string_view word = sql.substr(i, j - i);
    if (prev == "INTO" || prev == "UPDATE" || prev == "FROM" || prev == "TABLE" ||
        prev == "EXISTS") {
      std::string u = upper(word);
      if (u != "IF" && u != "NOT" && u != "EXISTS" && u != "OR") return std::string(word);
    }
    prev = upper(word);
    i = j;
  }
  return "database";
}

core::Status LastError(sqlite3* db, std::string_view what) {
  return StatusFromSqlite(db, db != nullptr ? sqlite3_extended_errcode(db) : SQLITE_ERROR, what);
}

core::Status StatusFromSqlite(sqlite3* db, int rc, std::string_view what) {
  if (rc == SQLITE_CONSTRAINT && db != nullptr) rc = sqlite3_extended_errcode(db);
  const int primary = rc & 0xff;
  std::string lead(what.empty() ? "database" : what);
  const char* raw = db != nullptr ? sqlite3_errmsg(db) : "";
  std::string_view msg = raw != nullptr ? raw : "";
  if (primary == SQLITE_CONSTRAINT) {
    // SQLite's constraint messages: "<KIND> constraint failed: <detail>".
    std::string_view detail;
    if (size_t p = msg.find("constraint failed: "); p != std::string_view::npos) {
      detail = msg.substr(p + 19);
    }
    if (!IsIdentifier(detail)) detail = {};  // a CHECK expression: SQL, not shown
    std::string d = detail.empty() ? std::string() : " (" + std::string(detail) + ")";
    switch (rc) {
      case SQLITE_CONSTRAINT_UNIQUE:
      case SQLITE_CONSTRAINT_PRIMARYKEY:
      case SQLITE_CONSTRAINT_ROWID:
        return core::AlreadyExists(lead + ": already exists" + d);
      case SQLITE_CONSTRAINT_NOTNULL:
        return core::InvalidArgument(lead + ": a required value is missing" + d);
      case SQLITE_CONSTRAINT_FOREIGNKEY:
        return core::FailedPrecondition(lead + ": a referenced row does not exist");
      case SQLITE_CONSTRAINT_CHECK:
        return core::FailedPrecondition(lead + ": a check failed" + d);
      default:
        return core::FailedPrecondition(lead + ": a constraint failed" + d);
    }
  }
  std::string generic = sqlite3_errstr(rc);  // fixed English per code, never SQL
  std::string text = lead + ": " + generic + " (sqlite " + std::to_string(rc) + ")";
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return core::Unavailable(std::move(text));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return core::FailedPrecondition(std::move(text));
    default:
      // SQLite's own words (which may quote SQL) only for the operator.
      std::fprintf(stderr, "storage: %s: %s\n", lead.c_str(), std::string(msg).c_str());
      return core::Internal(std::move(text));
  }
}

// ---- Statement -----------------------------------------------------------

Statement::Statement(Statement&& o) noexcept : s_(o.s_), owned_(o.owned_) { o.s_ = nullptr; }

Statement& Statement::operator=(Statement&& o) noexcept {
  std::swap(s_, o.s_);
  std::swap(owned_, o.owned_);
  return *this;
}

Statement::~Statement() {
  if (s_ == nullptr) return;
  if (owned_) {
    sqlite3_finalize(s_);
  } else {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
}

void Statement::Bind(int i, std::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void Statement::Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
void Statement::Bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
void Statement::BindStatic(int i, std::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}
void Statement::BindBlobStatic(int i, const void* data, size_t n) {
  sqlite3_bind_blob(s_, i, data, static_cast<int>(n), SQLITE_STATIC);
}
void Statement::BindNull(int i) { sqlite3_bind_null(s_, i); }

core::Result<bool> Statement::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const char* sql = sqlite3_sql(s_);
  return StatusFromSqlite(sqlite3_db_handle(s_), rc, StatementTarget(sql != nullptr ? sql : ""));
}

core::Status Statement::Run() {
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return core::Status::Ok();
  }
}

void Statement::Reset() { sqlite3_reset(s_); }
void Statement::ClearBindings() { sqlite3_clear_bindings(s_); }

std::string Statement::Text(int col) const { return std::string(TextView(col)); }

std::string_view Statement::TextView(int col) const {
  const unsigned char* t = sqlite3_column_text(s_, col);
  if (t == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(t),
                          static_cast<size_t>(sqlite3_column_bytes(s_, col)));
}
int64_t Statement::Int(int col) const { return sqlite3_column_int64(s_, col); }
double Statement::Double(int col) const { return sqlite3_column_double(s_, col); }
bool Statement::IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
const void* Statement::Blob(int col) const { return sqlite3_column_blob(s_, col); }
int Statement::Bytes(int col) const { return sqlite3_column_bytes(s_, col); }

// ---- Connection ----------------------------------------------------------

namespace {

// Statement and savepoint sub-journals are kept in memory up to this size, in
// ONE chunk of it (beyond, in a temporary file). SQLite's default for
// temp_store=MEMORY is an unbounded list of 1 KiB chunks, and the RELEASE of
// every statement or savepoint inside a savepoint walks that list from its
// start: a cost per statement that grows with the writes of the enclosing
// savepoint (the ledger's per-caller savepoint, a batch of 100 orders: about
// a fifth of the writer's time, docs/perf/batch.md).
constexpr int kSubJournalBytes = 4 << 20;

// SQLite's allocator, but for one cached block of a sub-journal's size: a
// write transaction takes a sub-journal chunk and frees it when its outermost
// savepoint ends, and glibc would map and unmap those megabytes (page faults
// on every write) each time.
sqlite3_mem_methods g_sqlite_mem;
std::atomic<void*> g_spare_chunk{nullptr};

void* ChunkMalloc(int n) {
  if (n >= kSubJournalBytes) {
    void* p = g_spare_chunk.exchange(nullptr);
    if (p != nullptr && g_sqlite_mem.xSize(p) >= n) return p;
    if (p != nullptr) g_sqlite_mem.xFree(p);
  }
  return g_sqlite_mem.xMalloc(n);
}

void ChunkFree(void* p) {
  if (p != nullptr && g_sqlite_mem.xSize(p) >= kSubJournalBytes) {
    void* empty = nullptr;
    if (g_spare_chunk.compare_exchange_strong(empty, p)) return;
  }
  g_sqlite_mem.xFree(p);
}

// Process-wide SQLite settings, before the first connection initialises it.
void ConfigureOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // SQLITE_MISUSE if SQLite was initialised already: the defaults then stand.
    if (sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, kSubJournalBytes) != SQLITE_OK) return;
    // No memory statistics (nothing reads them): each of SQLite's
    // allocations would otherwise take a process-wide mutex to count itself.
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &g_sqlite_mem) != SQLITE_OK) return;
    sqlite3_mem_methods m = g_sqlite_mem;
    m.xMalloc = ChunkMalloc;
    m.xFree = ChunkFree;
    (void)sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
  });
}

}  // namespace

core::Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path,
                                                           const ConnectionOptions& o) {
  ConfigureOnce();
  struct stat st;
  if (!o.create && ::stat(path.c_str(), &st) != 0) {
    return core::NotFound("database " + path + ": no such file");
  }
  int flags = (o.full_mutex ? SQLITE_OPEN_FULLMUTEX : SQLITE_OPEN_NOMUTEX) |
              (o.read_only ? SQLITE_OPEN_READONLY
                           : SQLITE_OPEN_READWRITE | (o.create ? SQLITE_OPEN_CREATE : 0));
  std::unique_ptr<Connection> c(new Connection());
  c->path_ = path;
  int rc = sqlite3_open_v2(path.c_str(), &c->db_, flags, nullptr);
  if (rc != SQLITE_OK) return StatusFromSqlite(c->db_, rc, "database " + path + ": open");
  sqlite3_extended_result_codes(c->db_, 1);
  sqlite3_busy_timeout(c->db_, o.busy_timeout_ms);
  // A writer's sub-journals follow kSubJournalBytes (temp_store=MEMORY would
  // keep them in 1 KiB chunks); its temporary tables and sorts stay in memory
  // up to the page cache's size.
  const char* temp_store = o.read_only ? ";PRAGMA temp_store=MEMORY" : ";PRAGMA temp_store=FILE";
  std::string pragmas = "PRAGMA cache_size=-" + std::to_string(o.cache_kib) + temp_store +
                        ";PRAGMA mmap_size=" + std::to_string(o.mmap_bytes) + ";";
  if (o.page_size > 0 && !o.read_only) {
    pragmas += "PRAGMA page_size=" + std::to_string(o.page_size) + ";";  // before WAL
  }
  if (o.wal && !o.read_only) pragmas += "PRAGMA journal_mode=WAL;";
  if (!o.synchronous.empty()) pragmas += "PRAGMA synchronous=" + o.synchronous + ";";
  BOURSE_RETURN_IF_ERROR(c->Exec(pragmas, "database " + path));
  return c;
}

Connection::~Connection() {
  for (auto& [sql, s] : cache_) sqlite3_finalize(s);
  if (db_ != nullptr) sqlite3_close(db_);
}

core::Status Connection::Exec(std::string_view sql, std::string_view what) {
  std::string s(sql);
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return StatusFromSqlite(db_, rc, what.empty() ? StatementTarget(sql) : what);
  return core::Status::Ok();
}

core::Result<Statement> Connection::Prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return StatusFromSqlite(db_, rc, StatementTarget(sql) + " (prepare)");
  }
  return Statement(s, true);
}

core::Result<Statement> Connection::Cached(std::string_view sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) {
    sqlite3_reset(it->second);
    sqlite3_clear_bindings(it->second);
    return Statement(it->second, false);
  }
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return StatusFromSqlite(db_, rc, StatementTarget(sql) + " (prepare)");
  }
  cache_.emplace(std::string(sql), s);
  return Statement(s, false);
}

core::Status Connection::ExecCached(std::string_view sql) {
  BOURSE_ASSIGN_OR_RETURN(Statement s, Cached(sql));
  int rc = sqlite3_step(s.s_);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return StatusFromSqlite(db_, rc, "database");
  return core::Status::Ok();
}

core::Result<Statement> Connection::GetOneOrNotFound(std::string_view sql, std::string_view key,
                                                     std::string_view what,
                                                     std::string_view field) {
  BOURSE_ASSIGN_OR_RETURN(Statement s, Prepare(sql));
  s.Bind(1, key);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    std::string msg;
    if (!field.empty()) msg.append(field).append(": ");
    msg.append(what).append(" ").append(key).append(" does not exist");
    return core::NotFound(std::move(msg));
  }
  return s;
}

int64_t Connection::Changes() const { return sqlite3_changes(db_); }
int64_t Connection::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
bool Connection::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

core::Result<int64_t> Connection::DataVersion() {
  BOURSE_ASSIGN_OR_RETURN(Statement s, Cached("PRAGMA data_version"));
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return core::Internal("database " + path_ + ": no data_version");
  return s.Int(0);
}

int Connection::WalHookThunk(void* arg, sqlite3*, const char*, int pages) {
  static_cast<Connection*>(arg)->wal_hook_(pages);
  return SQLITE_OK;
}

void Connection::SetWalHook(std::function<void(int)> hook) {
  wal_hook_ = std::move(hook);
  sqlite3_wal_hook(db_, wal_hook_ ? &Connection::WalHookThunk : nullptr, this);
}

void Connection::CheckpointPassive() {
  sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

// ---- Transaction ---------------------------------------------------------

core::Result<Transaction> Transaction::Begin(Connection& conn, Mode mode) {
  BOURSE_RETURN_IF_ERROR(conn.ExecCached(mode == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN"));
  return Transaction(&conn);
}

Transaction::~Transaction() {
  if (conn_ != nullptr && conn_->InTransaction()) conn_->ExecCached("ROLLBACK").IgnoreError();
}

core::Status Transaction::Commit() {
  if (conn_ == nullptr) return core::FailedPrecondition("transaction: already finished");
  core::Status st = conn_->ExecCached("COMMIT");
  if (st.ok()) conn_ = nullptr;
  return st;
}

// ---- Schema versions -----------------------------------------------------

namespace {
constexpr const char* kVersionTable =
    "CREATE TABLE IF NOT EXISTS storage_schema(component TEXT PRIMARY KEY,"
    " version INTEGER NOT NULL) WITHOUT ROWID";
}  // namespace

core::Result<int> SchemaVersion(Connection& conn, std::string_view component) {
  BOURSE_ASSIGN_OR_RETURN(
      Statement t,
      conn.Prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name='storage_schema'"));
  BOURSE_ASSIGN_OR_RETURN(bool has, t.Step());
  if (!has) return 0;
  BOURSE_ASSIGN_OR_RETURN(Statement s,
                          conn.Prepare("SELECT version FROM storage_schema WHERE component=?"));
  s.Bind(1, component);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<int>(s.Int(0)) : 0;
}

core::Status MigrateStep(Connection& conn, const Schema& schema, bool* done) {
  *done = false;
  for (size_t i = 0; i < schema.migrations.size(); ++i) {
    if (schema.migrations[i].version != static_cast<int>(i) + 1) {
      return core::Internal(schema.component + " schema: migration " + std::to_string(i + 1) +
                            " is numbered " + std::to_string(schema.migrations[i].version));
    }
  }
  const std::string lead = "database " + conn.path() + ": " + schema.component + " schema";
  BOURSE_ASSIGN_OR_RETURN(int v, SchemaVersion(conn, schema.component));
  if (v > schema.latest()) {
    return core::FailedPrecondition(
        lead + " version " + std::to_string(v) + " is newer than this program knows (" +
        std::to_string(schema.latest()) + "); run a newer bourse release");
  }
  if (v == schema.latest()) {
    *done = true;
    return core::Status::Ok();
  }
  const Migration& m = schema.migrations[v];
  core::Status st = m.apply(conn);
  if (st.ok()) st = conn.Exec(kVersionTable, "storage_schema");
  if (st.ok()) {
    auto s = conn.Prepare(
        "INSERT INTO storage_schema(component, version) VALUES(?,?)"
        " ON CONFLICT(component) DO UPDATE SET version=excluded.version");
    if (s.ok()) {
      s->Bind(1, schema.component);
      s->Bind(2, m.version);
      st = s->Run();
    } else {
      st = s.status();
    }
  }
  if (!st.ok()) {
    return core::Status(st.code(), lead + " migration " + std::to_string(m.version) + " (" +
                                       std::string(m.description) + "): " + st.message());
  }
  return core::Status::Ok();
}

core::Status Migrate(Connection& conn, const Schema& schema) {
  // A quick look first: a current file costs no write transaction.
  BOURSE_ASSIGN_OR_RETURN(int v, SchemaVersion(conn, schema.component));
  if (v == schema.latest()) return core::Status::Ok();
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(conn));
    bool done = false;
    BOURSE_RETURN_IF_ERROR(MigrateStep(conn, schema, &done));
    if (done) return core::Status::Ok();
    BOURSE_RETURN_IF_ERROR(txn.Commit());
  }
}

// ---- ProcessLock ---------------------------------------------------------

core::Result<std::unique_ptr<ProcessLock>> ProcessLock::Acquire(const std::string& db_path,
                                                                std::string_view owner) {
  const std::string path = db_path + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return core::Unavailable("database " + db_path + ": cannot open its lock file " + path + ": " +
                             std::strerror(errno));
  }
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    std::string holder;
    if (err == EWOULDBLOCK) {
      char buf[256];
      ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
      if (n > 0) holder.assign(buf, static_cast<size_t>(n));
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    }
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return core::Unavailable("database " + db_path + ": cannot lock " + path + ": " +
                               std::strerror(err));
    }
    std::string who = "another process";
    if (size_t sp = holder.find(' '); sp != std::string::npos && sp > 0) {
      who = "pid " + holder.substr(0, sp) + " (" + holder.substr(sp + 1) + ")";
    } else if (!holder.empty()) {
      who = "pid " + holder;
    }
    return core::Unavailable("database " + db_path + " is in use by " + who);
  }
  std::string text = std::to_string(::getpid()) + " " + std::string(owner) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    int err = errno;
    ::close(fd);
    return core::Unavailable("database " + db_path + ": cannot write " + path + ": " +
                             std::strerror(err));
  }
  return std::unique_ptr<ProcessLock>(new ProcessLock(fd));
}

ProcessLock::~ProcessLock() { ::close(fd_); }

// ---- Database ------------------------------------------------------------

core::Result<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                       const DatabaseOptions& options) {
  std::unique_ptr<Database> d(new Database());
  if (!options.lock_owner.empty()) {
    BOURSE_ASSIGN_OR_RETURN(d->lock_, ProcessLock::Acquire(path, options.lock_owner));
  }
  BOURSE_ASSIGN_OR_RETURN(d->conn_, Connection::Open(path, options.conn));
  for (const Schema* s : options.schemas) BOURSE_RETURN_IF_ERROR(Migrate(*d->conn_, *s));
  return d;
}

Database::~Database() = default;

std::string ProgramName() {
  const char* n = program_invocation_short_name;  // GNU: argv[0]'s last part
  return n != nullptr && *n != '\0' ? std::string(n) : std::string("bourse");
}

}  // namespace bourse::storage
