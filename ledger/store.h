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
// Group commit: concurrent Commit calls are gathered into one SQLite
// transaction and one signed tree head. Each caller's fn runs inside its own
// SAVEPOINT on the single writer thread of the moment (the thread of one of the
// waiting callers): if fn returns an error or fails to append, only its own
// rows and entries are rolled back and only it gets that error; the others
// commit. Commit returns only after the transaction is durably committed
// (WAL with synchronous=FULL: the WAL is fsynced at every commit, so nothing
// acknowledged is lost across kill -9 or power loss). If the COMMIT itself
// fails every caller of that batch gets the error and nothing is applied.
// A batch with no entries writes no new tree head.
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

struct sqlite3;
struct sqlite3_stmt;

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
  // SQLite page cache per connection, in KiB.
  int cache_kib = 65536;
};

struct EntryInput {
  std::string type;
  nlohmann::json body;
};

struct CommitResult {
  uint64_t first_seq = 0;  // seq of this caller's first entry (== head.size when none)
  uint64_t count = 0;      // entries this caller appended
  TreeHead head;           // the signed head of the batch
};

// One caller's part of a commit batch. Valid only during the fn call.
class Txn {
 public:
  // The writer connection, for the caller's own tables.
  sqlite3* db() const;
  // A prepared statement for `sql`, cached on the writer connection across
  // batches; it is reset and its bindings cleared before it is returned.
  // Errors: internal with SQLite's message.
  core::Result<sqlite3_stmt*> Prepare(std::string_view sql);
  // Runs SQL without results. Errors: internal with SQLite's message.
  core::Status Exec(std::string_view sql);
  // Appends an entry; returns its seq. The body must be a JSON object that
  // canonical JSON accepts. Errors: invalid_argument naming the flaw.
  core::Result<uint64_t> Append(std::string_view type, nlohmann::json body);
  // The seq the next Append gets.
  uint64_t next_seq() const;
  // The ts (unix ms) this batch's entries carry.
  int64_t now_millis() const;

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
  core::Result<CommitResult> Append(std::string_view type, nlohmann::json body);
  core::Result<CommitResult> AppendBatch(std::vector<EntryInput> entries);

  // The last committed signed head.
  TreeHead Head() const;
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
  // Every signed head written, by size ascending, with from <= size < to.
  core::Result<std::vector<TreeHead>> Heads(uint64_t from_size, uint64_t to_size) const;

  // Runs fn on a read connection inside a read transaction (a consistent
  // snapshot), for the caller's own tables. Errors: fn's, or internal.
  core::Status Read(const std::function<core::Status(sqlite3*)>& fn) const;

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bourse::ledger
