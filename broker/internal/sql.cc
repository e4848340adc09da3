#include "broker/internal/sql.h"

namespace bourse::broker::internal {

core::Result<Stmt> Stmt::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) {
    if (s != nullptr) sqlite3_finalize(s);
    return core::Internal(std::string("sqlite prepare: ") + sqlite3_errmsg(db) + " in " +
                          std::string(sql));
  }
  return Stmt(s, true);
}

Stmt::~Stmt() {
  if (s_ == nullptr) return;
  if (owned_) {
    sqlite3_finalize(s_);
  } else {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
}

core::Result<bool> Stmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(s_);
  std::string msg = std::string("sqlite: ") + sqlite3_errmsg(db);
  if ((rc & 0xff) == SQLITE_CONSTRAINT) return core::AlreadyExists(msg);
  if ((rc & 0xff) == SQLITE_BUSY) return core::Unavailable(msg);
  return core::Internal(msg);
}

core::Status Stmt::Run() {
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return core::Status::Ok();
  }
}

std::string Stmt::Text(int col) const {
  const unsigned char* t = sqlite3_column_text(s_, col);
  if (t == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(t),
                     static_cast<size_t>(sqlite3_column_bytes(s_, col)));
}

core::Result<Stmt> GetOneOrNotFound(sqlite3* db, std::string_view sql, std::string_view key,
                                    std::string_view what, std::string_view field) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db, sql));
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

core::Status Exec(sqlite3* db, std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  if (sqlite3_exec(db, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return core::Internal("sqlite: " + msg);
  }
  return core::Status::Ok();
}

int64_t Changes(sqlite3* db) { return sqlite3_changes(db); }

}  // namespace bourse::broker::internal
