// Small SQLite helpers shared by the ledger's store, accounts and audit code.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "ledger/merkle.h"

namespace bourse::ledger::internal {

// "what: <sqlite message> (code N)" as internal, or unavailable for I/O-ish codes.
core::Status SqliteError(sqlite3* db, std::string_view what);
core::Status Exec(sqlite3* db, std::string_view sql);
// Prepares `sql`; *out is finalized by the caller.
core::Status Prepare(sqlite3* db, std::string_view sql, sqlite3_stmt** out);

// Owns a prepared statement.
class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  sqlite3_stmt* get() const { return s_; }
  sqlite3_stmt** out() { return &s_; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// Resets a statement on scope exit.
class Resetter {
 public:
  explicit Resetter(sqlite3_stmt* s) : s_(s) {}
  ~Resetter() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

 private:
  sqlite3_stmt* s_;
};

inline void BindText(sqlite3_stmt* s, int i, std::string_view t) {
  sqlite3_bind_text(s, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
}
inline void BindTextStatic(sqlite3_stmt* s, int i, std::string_view t) {
  sqlite3_bind_text(s, i, t.data(), static_cast<int>(t.size()), SQLITE_STATIC);
}
inline std::string ColumnText(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  int n = sqlite3_column_bytes(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

// Transparent hash for string-keyed maps looked up by string_view or
// const char* without building a std::string (statement caches).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Node id of the complete subtree (level, index): its in-order position.
inline int64_t NodeId(int level, uint64_t index) {
  return static_cast<int64_t>((index << (level + 1)) + (uint64_t{1} << level) - 1);
}

}  // namespace bourse::ledger::internal
