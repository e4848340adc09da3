#include "ledger/internal/sqlite_util.h"

namespace bourse::ledger::internal {

core::Status SqliteError(sqlite3* db, std::string_view what) {
  int code = db ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "no connection") +
                    " (code " + std::to_string(code) + ")";
  int primary = code & 0xff;
  if (primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN ||
      primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_READONLY) {
    return core::Unavailable(std::move(msg));
  }
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return core::FailedPrecondition(std::move(msg));
  }
  return core::Internal(std::move(msg));
}

core::Status Exec(sqlite3* db, std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    sqlite3_free(err);
    return SqliteError(db, "sqlite: " + s.substr(0, 60));
  }
  return core::Status::Ok();
}

core::Status Prepare(sqlite3* db, std::string_view sql, sqlite3_stmt** out) {
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, out, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, "sqlite prepare: " + std::string(sql.substr(0, 60)));
  return core::Status::Ok();
}

}  // namespace bourse::ledger::internal
