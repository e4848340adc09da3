#include "ledger/internal/sqlite_util.h"

#include "storage/sqlite.h"

namespace bourse::ledger::internal {

// One error mapping for the whole project: storage's (no SQL in messages).
core::Status SqliteError(sqlite3* db, std::string_view what) {
  return storage::LastError(db, what);
}

core::Status Exec(sqlite3* db, std::string_view sql) {
  std::string s(sql);
  int rc = sqlite3_exec(db, s.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return storage::StatusFromSqlite(db, rc, storage::StatementTarget(sql));
  return core::Status::Ok();
}

core::Status Prepare(sqlite3* db, std::string_view sql, sqlite3_stmt** out) {
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, out, nullptr);
  if (rc != SQLITE_OK) {
    return storage::StatusFromSqlite(db, rc, storage::StatementTarget(sql) + " (prepare)");
  }
  return core::Status::Ok();
}

}  // namespace bourse::ledger::internal
