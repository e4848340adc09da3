// Store: the ledger's Merkle log in one SQLite file (WAL), with group commit,
// caller tables in the same transaction, signed tree heads and O(log n) proofs.
//
//   StoreOptions opt;  opt.signing_key = ledger_key;     // needed to create or write
//   BOURSE_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open("bourse.db", opt));
//   // One call = one atomic unit: the caller's own rows + its entries.
//   BOURSE_ASSIGN_OR_RETURN(CommitResult r, store->Commit([&](Txn& txn) -> core::Status {
//     BOURSE_RETURN_IF_ERROR(txn.Exec("INSERT INTO orders(id) VALUES('o1')"));
//     return txn.Append("order_placed", {{"order", "o1"}}).status();
//   }));
//   // r.first_seq, r.count, r.head (the signed head covering these entries)
//   TreeHead head = store->Head();
//   BOURSE_ASSIGN_OR_RETURN(auto path, store->InclusionProof(r.first_seq, head.size));
//
// Group commit: concurrent Commit and CommitAsync calls are gathered into one
// SQLite transaction and one signed tree head. Each caller's fn runs inside
// its own SAVEPOINT on the store's writer thread (one per writable store; it
// takes every queued caller into the next batch, so a batch grows with the
// load, see also the pacing options): if fn returns an error or fails to
// append, only its own rows and entries are rolled back and only it gets
// that error; the others commit. If the COMMIT itself fails every caller of
// that batch gets the error and nothing is applied. A batch with no entries
// writes no new tree head.
//
// Durability: a caller is answered only once its batch is durable. The
// batch's COMMIT writes the WAL without syncing it (synchronous=NORMAL); a
// syncer thread then fdatasyncs the WAL, one sync for every batch committed
// meanwhile, publishes the newest head and answers the callers, while the
// writer already runs the next batch. Nothing acknowledged is lost across
// kill -9 or power loss, and Head() (so entries, proofs, heads) never shows
// a batch before it is durable; other reads of the database may see a
// committed batch a moment before that. If a sync fails the outcome of what
// was written is unknown: those callers and every later Commit get
// unavailable until the store is reopened.
//
// CommitAsync is Commit without a waiting thread: the syncer calls `done`
// once the batch is durable (or has failed), so a front end can answer from
// its own event loop instead of parking a thread per request.
//
// fn rules: it runs on another thread than the caller, must not call Commit
// (deadlock), must not run BEGIN/COMMIT/ROLLBACK/SAVEPOINT itself, and must
// touch only its own tables (names not starting with "ledger_" or "acct_"/"rcap_",
// which belong to this library).
//
// Opening checks the last tree head: its signature by the ledger key, that its
// size equals the number of entries and its root equals the root recomputed
// from the stored subtree hashes. A store that does not check out is refused
// (failed_precondition, saying what and where), never repaired. A full audit
// of every entry is AuditStore (audit.h).
//
// Reads (Head, Entries, proofs, Read) are safe concurrently with writes: they
// use separate read connections (a pool) and see the last committed state.
//
// Thread safety: every method is safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/keys.h"
#include "core/status.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "storage/sqlite.h"

namespace bourse::ledger {

struct StoreOptions {
  // The ledger key. Required to create a store and to Commit; a store opened
  // without it is read-only (Commit returns failed_precondition).
  std::optional<core::PrivateKey> signing_key;
  // When set, the store's recorded ledger key must be this one.
  std::optional<core::PublicKey> expected_key;
  bool create_if_missing = true;
  // Time source for entry and head timestamps; SystemClock when null.
  const core::Clock* clock = nullptr;
  // At most this many callers' fns go into one transaction.
  int max_batch_callers = 1024;
  // Group-commit pacing (0: none). Under load (the previous batch, or the
  // previous sync, covered two or more callers) a batch starts at least
  // batch_interval_us after the previous one and a WAL sync at least
  // sync_interval_us after the previous one. Each adds at most that much
  // latency, never to a lone caller, and saves per-batch and per-sync costs
  // (a signed tree head, hot pages rewritten, a disk flush) under load.
  int batch_interval_us = 0;
  int sync_interval_us = 0;
  // SQLite page cache per connection, in KiB.
  int cache_kib = 65536;
};

struct EntryInput {
  std::string type;
  nlohmann::json body;
};

// Counters since the store was opened (for metrics and benchmarks).
struct StoreStats {
  uint64_t batches = 0;  // transactions committed by the writer
  uint64_t callers = 0;  // Commit/CommitAsync calls answered
  uint64_t syncs = 0;    // fdatasyncs of the WAL
};

struct CommitResult {
  uint64_t first_seq = 0;  // seq of this caller's first entry (== head.size when none)
  uint64_t count = 0;      // entries this caller appended
  TreeHead head;           // the signed head of the batch
};

// One caller's part of a commit batch. Valid only during the fn call.
class Txn {
 public:
  // The writer connection (storage/sqlite.h), for the caller's own tables.
  storage::Connection* db() const;
  // A prepared statement for `sql`, cached on the writer connection across
  // batches; it is reset and its bindings cleared when returned and when
  // the handle goes. Errors: storage's mapping (storage/sqlite.h).
  core::Result<storage::Statement> Prepare(std::string_view sql);
  // Runs SQL without results. Errors: storage's mapping.
  core::Status Exec(std::string_view sql);
  // Appends an entry; returns its seq. The body must be a JSON object that
  // canonical JSON accepts. Errors: invalid_argument naming the flaw.
  core::Result<uint64_t> Append(std::string_view type, nlohmann::json body);
  // The seq the next Append gets.
  uint64_t next_seq() const;
  // The ts (unix ms) this batch's entries carry.
  int64_t now_millis() const;
  // Runs fn inside a savepoint nested in this caller's part (one step of a
  // batch of independent steps in one commit, e.g. POST /v1/orders:batch):
  // when fn returns an error, the rows it wrote and the entries it appended
  // are rolled back and its error returned; the rest of the caller's part
  // stands. Nested calls nest. Errors: fn's; unavailable when SQLite
  // abandoned the whole transaction (the caller's fn must then fail).
  core::Status Nested(const std::function<core::Status()>& fn);

  struct Impl;
  explicit Txn(Impl* impl) : impl_(impl) {}

 private:
  Impl* impl_;
};

class Store {
 public:
  // Opens (or creates, with options.signing_key) the store at `path`.
  // Errors: not_found (missing and not create_if_missing, or creating without
  // a key); failed_precondition when the store does not check out (bad head
  // signature, head size != entries, root mismatch, wrong key, unknown
  // format); unavailable for I/O errors.
  static core::Result<std::unique_ptr<Store>> Open(const std::string& path, StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Runs fn in the next batch and waits for the durable commit. Errors: fn's
  // own error (its part rolled back); failed_precondition when read-only;
  // internal/unavailable when the batch could not commit.
  core::Result<CommitResult> Commit(const std::function<core::Status(Txn&)>& fn);
  // The same, returning at once: `done` gets what Commit would have returned.
  // It runs on the store's syncer thread once the batch is durable (on the
  // calling thread, at once, for a read-only store), so it must be short and
  // must not call Commit: hand the result to another thread. Callers are
  // answered in the order they were queued.
  void CommitAsync(std::function<core::Status(Txn&)> fn,
                   std::function<void(core::Result<CommitResult>)> done);
  core::Result<CommitResult> Append(std::string_view type, nlohmann::json body);
  core::Result<CommitResult> AppendBatch(std::vector<EntryInput> entries);

  // The last committed signed head.
  TreeHead Head() const;
  StoreStats Stats() const;
  const core::PublicKey& key() const;
  const std::string& path() const;

  // Entries [from, to), to <= Head().size. Errors: invalid_argument.
  core::Result<std::vector<Entry>> Entries(uint64_t from, uint64_t to) const;
  // The same as their canonical JSON text (the leaf data).
  core::Result<std::vector<std::string>> EntryTexts(uint64_t from, uint64_t to) const;
  // RFC 9162 §2.1.3 path for leaf seq in the tree of `size` (seq < size <=
  // Head().size). Errors: invalid_argument.
  core::Result<std::vector<Hash>> InclusionProof(uint64_t seq, uint64_t size) const;
  // RFC 9162 §2.1.4 path between sizes first <= second <= Head().size.
  core::Result<std::vector<Hash>> ConsistencyProof(uint64_t first, uint64_t second) const;
  // Root of the first `size` leaves (size <= Head().size).
  core::Result<Hash> RootAt(uint64_t size) const;
  // The published signed heads (one per committed batch with entries, and the
  // empty tree's), by size ascending, with from <= size < to: at most `limit`.
  core::Result<std::vector<TreeHead>> Heads(uint64_t from_size, uint64_t to_size,
                                            uint64_t limit = UINT64_MAX) const;

  // Runs fn on a read connection inside a read transaction (a consistent
  // snapshot), for the caller's own tables. Errors: fn's, or internal.
  core::Status Read(const std::function<core::Status(storage::Connection*)>& fn) const;

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Brings `schema` (a component's tables in the store's file, e.g. the
// broker's or the markets') to its latest version, one commit (one
// transaction) per migration. Errors: the migration's (storage::Migrate) or
// the commit's.
core::Status MigrateSchema(Store& store, const storage::Schema& schema);

}  // namespace bourse::ledger
