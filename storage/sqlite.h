// The one SQLite layer: connections opened with the project's pragmas,
// statements, transactions, one error mapping, schema versions with ordered
// migrations, and an exclusive per-database process lock.
//
//   BOURSE_ASSIGN_OR_RETURN(auto db, storage::Database::Open(path, {.lock_owner = "bourse-broker",
//                                                                  .schemas = {&kMySchema}}));
//   storage::Connection& c = db->conn();
//   BOURSE_ASSIGN_OR_RETURN(storage::Statement s, c.Prepare("SELECT v FROM t WHERE k=?"));
//   s.Bind(1, key);
//   BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
//   if (row) v = s.Text(0);
//
// Errors (every function here): SQLite's result codes map to core codes in
// one place (StatusFromSqlite): a UNIQUE or PRIMARY KEY violation is
// already_exists, NOT NULL invalid_argument, CHECK and FOREIGN KEY
// failed_precondition, BUSY/LOCKED/IOERR/FULL/CANTOPEN/READONLY unavailable,
// CORRUPT/NOTADB failed_precondition, anything else internal. A message
// names the table (and column, for constraints) and never holds SQL text nor
// SQLite's own message where that may quote SQL (a CHECK expression, a
// syntax error): such messages may reach an HTTP reply. The full SQLite
// message and SQL go to stderr (the operator's log) for internal errors.
//
// Schema versions: each component that owns tables in a file has a row in
// storage_schema(component, version); Migrate applies the component's
// migrations above the stored version in order, each in its own
// transaction together with its new version number. A file whose version
// is above the newest migration the code knows is refused
// (failed_precondition). A file without a row is at version 0, the state
// before versions existed: migration 1 must accept such a file as it was
// (CREATE ... IF NOT EXISTS), so files written by earlier code open.
//
// Lock: Database::Open with a lock_owner takes an exclusive flock(2) on
// "<path>.lock" (O_CLOEXEC, so no child inherits it) and writes
// "<pid> <owner>" into it. A second opener gets unavailable "database PATH
// is in use by pid N (OWNER)". The kernel drops the lock when the process
// dies, however it dies (kill -9 included); the file itself stays.
//
// Thread safety: a Connection and its Statements are used by one thread at a
// time (the caller serialises); distinct connections may be used at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace bourse::storage {

// Maps a failed SQLite call (rc, from `db`) to a core Status as described
// above; `what` (e.g. "ledger_heads insert") leads the message. For
// internal use by code that still calls SQLite directly inside storage-aware
// .cc files.
core::Status StatusFromSqlite(sqlite3* db, int rc, std::string_view what);
// The same with the connection's last (extended) error code.
core::Status LastError(sqlite3* db, std::string_view what);
// The table a statement names first (after INTO, UPDATE, FROM or TABLE), or
// "database": how errors name "what" without quoting SQL.
std::string StatementTarget(std::string_view sql);

class Connection;

// A prepared statement: owned (finalized on destruction) or borrowed from a
// connection's cache (reset and its bindings cleared on destruction).
class Statement {
 public:
  Statement() = default;
  Statement(Statement&& o) noexcept;
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  bool valid() const { return s_ != nullptr; }
  // Text is copied (SQLITE_TRANSIENT) unless BindStatic, whose text must
  // outlive the next Step/Reset.
  void Bind(int i, std::string_view v);
  void Bind(int i, const char* v) { Bind(i, std::string_view(v)); }
  void Bind(int i, const std::string& v) { Bind(i, std::string_view(v)); }
  void Bind(int i, int64_t v);
  void Bind(int i, int v) { Bind(i, static_cast<int64_t>(v)); }
  void Bind(int i, uint64_t v) { Bind(i, static_cast<int64_t>(v)); }
  void Bind(int i, double v);
  void BindStatic(int i, std::string_view v);
  // Blob bytes are not copied: they must outlive the next Step/Reset.
  void BindBlobStatic(int i, const void* data, size_t n);
  void BindNull(int i);
  // True when a row is available; false when done. Errors: as above.
  core::Result<bool> Step();
  // Steps to completion (INSERT/UPDATE/DELETE, or a query whose rows are
  // not wanted).
  core::Status Run();
  // Ready to run again (bindings are kept).
  void Reset();
  void ClearBindings();

  std::string Text(int col) const;
  std::string_view TextView(int col) const;  // valid until the next Step/Reset
  int64_t Int(int col) const;
  double Double(int col) const;
  bool IsNull(int col) const;
  // Blob bytes (valid until the next Step/Reset) and their size.
  const void* Blob(int col) const;
  int Bytes(int col) const;

 private:
  friend class Connection;
  Statement(sqlite3_stmt* s, bool owned) : s_(s), owned_(owned) {}
  sqlite3_stmt* s_ = nullptr;
  bool owned_ = true;
};

struct ConnectionOptions {
  bool create = false;     // create the file when missing
  bool read_only = false;  // SQLITE_OPEN_READONLY
  int cache_kib = 8192;    // PRAGMA cache_size
  int busy_timeout_ms = 10000;
  int64_t mmap_bytes = 0;  // PRAGMA mmap_size (0: off)
  bool wal = true;         // PRAGMA journal_mode=WAL (writable connections)
  // PRAGMA page_size of a file this connection creates (a writable one; an
  // existing file keeps its own). 16 KiB: a commit writes one WAL frame,
  // one pwrite, per dirty page, and the ledger's appends and a batch's rows
  // fill a quarter as many pages as with SQLite's 4 KiB (docs/perf/batch.md).
  int page_size = 16384;
  // PRAGMA synchronous: "NORMAL" or "FULL" (empty: SQLite's default).
  std::string synchronous;
  // SQLITE_OPEN_FULLMUTEX instead of NOMUTEX (a connection shared by threads
  // without the caller's own lock).
  bool full_mutex = false;
};

// One SQLite connection (the project's pragmas: extended result codes, busy
// timeout, temp_store=MEMORY, cache_size, optional mmap, WAL).
class Connection {
 public:
  // Errors: not_found when the file is missing and !create; unavailable when
  // it cannot be opened; failed_precondition when it is not a database.
  static core::Result<std::unique_ptr<Connection>> Open(const std::string& path,
                                                        const ConnectionOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs SQL (one or more statements) with no results. Errors: as above,
  // led by `what` (default: the first statement's table).
  core::Status Exec(std::string_view sql, std::string_view what = {});
  // A new statement owned by the caller.
  core::Result<Statement> Prepare(std::string_view sql);
  // A statement cached on this connection for its lifetime (prepared once,
  // SQLITE_PREPARE_PERSISTENT), borrowed: reset and its bindings cleared
  // when fetched and when the handle goes.
  core::Result<Statement> Cached(std::string_view sql);
  // Steps a cached statement with no parameters to completion (transaction
  // control: BEGIN, COMMIT, SAVEPOINT...).
  core::Status ExecCached(std::string_view sql);
  // Prepares `sql` (one `?` parameter), binds `key` and steps to the first
  // row; the statement returned stands on that row. Errors: not_found
  // "<what> <key> does not exist", led by "<field>: " when `field` (the
  // request field that named `key`) is given; those of Prepare and Step.
  core::Result<Statement> GetOneOrNotFound(std::string_view sql, std::string_view key,
                                           std::string_view what, std::string_view field = {});

  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  int64_t LastInsertRowId() const;
  // True inside BEGIN ... COMMIT (SQLite not in autocommit mode).
  bool InTransaction() const;
  // PRAGMA data_version (changes when another connection commits).
  core::Result<int64_t> DataVersion();
  const std::string& path() const { return path_; }

  // WAL: `hook(pages)` runs after each commit with the WAL's size in pages.
  void SetWalHook(std::function<void(int pages)> hook);
  // A PASSIVE checkpoint (never waits for readers or writers).
  void CheckpointPassive();

 private:
  Connection() = default;
  static int WalHookThunk(void* arg, sqlite3* db, const char* name, int pages);
  sqlite3* db_ = nullptr;
  std::string path_;
  std::function<void(int)> wal_hook_;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, sqlite3_stmt*, Hash, std::equal_to<>> cache_;
};

// BEGIN (or BEGIN IMMEDIATE) now; ROLLBACK on destruction unless committed.
class Transaction {
 public:
  enum class Mode { kDeferred, kImmediate };
  static core::Result<Transaction> Begin(Connection& conn, Mode mode = Mode::kImmediate);
  Transaction(Transaction&& o) noexcept : conn_(o.conn_) { o.conn_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  core::Status Commit();

 private:
  explicit Transaction(Connection* c) : conn_(c) {}
  Connection* conn_;
};

// One schema change: version N takes the file from N-1 to N.
struct Migration {
  int version;
  std::string_view description;
  std::function<core::Status(Connection&)> apply;
};

// A component's tables in a file and how they evolved; migrations ascending
// from 1 without gaps.
struct Schema {
  std::string component;
  std::vector<Migration> migrations;
  int latest() const { return migrations.empty() ? 0 : migrations.back().version; }
};

// The version recorded for `component` (0 when none).
core::Result<int> SchemaVersion(Connection& conn, std::string_view component);
// Brings `schema` up to its latest version, one transaction per migration
// (BEGIN IMMEDIATE: concurrent openers serialise). Errors: failed_precondition
// when the file is newer than the code ("<component> schema version N is
// newer than this program knows (M)"); a migration's own error, led by its
// version and description (that migration and later ones not applied).
core::Status Migrate(Connection& conn, const Schema& schema);
// Applies the next pending migration of `schema` inside the caller's own
// transaction (for a connection whose transactions someone else runs, e.g.
// a ledger Txn), with its version number; *done when none was pending.
// Errors: those of Migrate.
core::Status MigrateStep(Connection& conn, const Schema& schema, bool* done);

// An exclusive flock on "<db_path>.lock" holding "<pid> <owner>\n".
class ProcessLock {
 public:
  // Errors: unavailable "database PATH is in use by pid N (OWNER)" when
  // another open file description holds it (another process, or this one);
  // unavailable when the lock file cannot be created.
  static core::Result<std::unique_ptr<ProcessLock>> Acquire(const std::string& db_path,
                                                            std::string_view owner);
  ~ProcessLock();
  ProcessLock(const ProcessLock&) = delete;
  ProcessLock& operator=(const ProcessLock&) = delete;

 private:
  explicit ProcessLock(int fd) : fd_(fd) {}
  int fd_;
};

struct DatabaseOptions {
  ConnectionOptions conn;
  // When non-empty: take the ProcessLock in this owner's name first.
  std::string lock_owner;
  // Migrated in order once the connection is open.
  std::vector<const Schema*> schemas;
};

// A database file: its lock (when asked), its first connection (opened
// with options.conn) and its schemas migrated.
class Database {
 public:
  static core::Result<std::unique_ptr<Database>> Open(const std::string& path,
                                                      const DatabaseOptions& options);
  ~Database();
  Connection& conn() { return *conn_; }
  const std::string& path() const { return conn_->path(); }

 private:
  Database() = default;
  std::unique_ptr<ProcessLock> lock_;  // released after the connection closes
  std::unique_ptr<Connection> conn_;
};

// The running program's short name (for lock owners), e.g. "bourse-broker".
std::string ProgramName();

}  // namespace bourse::storage
