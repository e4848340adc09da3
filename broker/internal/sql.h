// Small RAII helpers over SQLite statements for the broker's own tables.
//
//   BOURSE_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db, "SELECT site FROM b_nodes WHERE id=?"));
//   s.Bind(1, node_id);
//   BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
//   if (row) site = s.Text(0);
//
// Stmt either owns a statement it prepared or borrows one cached by the
// ledger Txn (Stmt::Borrow), which it only resets.
//
// The usual "this row, else not_found" read is one call:
//
//   BOURSE_ASSIGN_OR_RETURN(Stmt n, GetOneOrNotFound(db, "SELECT site FROM b_nodes WHERE id=?",
//                                                    node_id, "node"));
//   site = n.Text(0);  // else: not_found "node <node_id> does not exist"
//
// Thread safety: a Stmt is used by one thread, on its connection.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace bourse::broker::internal {

class Stmt {
 public:
  static core::Result<Stmt> Prepare(sqlite3* db, std::string_view sql);
  static Stmt Borrow(sqlite3_stmt* s) { return Stmt(s, false); }
  Stmt(Stmt&& o) noexcept : s_(o.s_), owned_(o.owned_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  void Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void Bind(int i, int v) { sqlite3_bind_int64(s_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(s_, i); }
  // True when a row is available; false when done. Errors: internal,
  // already_exists on a constraint violation.
  core::Result<bool> Step();
  // Steps to completion (INSERT/UPDATE/DELETE).
  core::Status Run();
  std::string Text(int col) const;
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  sqlite3_stmt* get() const { return s_; }

 private:
  Stmt(sqlite3_stmt* s, bool owned) : s_(s), owned_(owned) {}
  sqlite3_stmt* s_;
  bool owned_;
};

// Prepares `sql` (one `?` parameter), binds `key` to it and steps to the first
// row; the returned statement stands on that row. Errors: not_found
// "<what> <key> does not exist" when there is none, led by "<field>: " when
// `field` (the request field that named `key`) is given; those of Prepare and
// Step.
core::Result<Stmt> GetOneOrNotFound(sqlite3* db, std::string_view sql, std::string_view key,
                                    std::string_view what, std::string_view field = {});

// Runs SQL with no results. Errors: internal with SQLite's message.
core::Status Exec(sqlite3* db, std::string_view sql);
// The number of rows changed by the last statement.
int64_t Changes(sqlite3* db);

}  // namespace bourse::broker::internal
