// The broker's names for the storage layer (storage/sqlite.h): statements
// and the "this row, else not_found" read.
//
//   BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT site FROM b_nodes WHERE id=?"));
//   BOURSE_ASSIGN_OR_RETURN(Stmt n, GetOneOrNotFound(db, "SELECT site FROM b_nodes WHERE id=?",
//                                                    node_id, "node"));
//   site = n.Text(0);  // else: not_found "node <node_id> does not exist"
#pragma once

#include <string_view>

#include "core/status.h"
#include "storage/sqlite.h"

namespace bourse::broker::internal {

using Stmt = storage::Statement;

inline core::Result<Stmt> GetOneOrNotFound(storage::Connection* db, std::string_view sql,
                                           std::string_view key, std::string_view what,
                                           std::string_view field = {}) {
  return db->GetOneOrNotFound(sql, key, what, field);
}

}  // namespace bourse::broker::internal
