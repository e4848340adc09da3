// Shared helpers of the broker's route files.
#pragma once

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <string_view>

#include "broker/broker.h"
#include "broker/internal/sql.h"
#include "core/canonical_json.h"
#include "core/json_codec.h"
#include "core/status.h"

namespace bourse::broker::internal {

// True iff `s` matches `re` entirely (patterns are compiled once by callers).
inline bool Matches(const std::regex& re, std::string_view s) {
  return std::regex_match(s.begin(), s.end(), re);
}

inline nlohmann::json ParseStored(const std::string& text) { return core::ParseStoredJson(text); }

inline std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Runs a query and returns each row converted by `row_fn` into a JSON array.
template <typename RowFn>
core::Result<nlohmann::json> QueryArray(storage::Connection* db, std::string_view sql,
                                        const std::function<void(Stmt&)>& bind, RowFn row_fn) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare(sql));
  bind(s);
  nlohmann::json out = nlohmann::json::array();
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(row_fn(s));
  }
  return out;
}

// not_found "<field>: key ... is not a registered principal" unless `key` is one.
inline core::Status RequirePrincipal(storage::Connection* db, std::string_view key,
                                     std::string_view field) {
  auto p = Broker::LookupPrincipal(db, key);
  if (p.ok()) return core::Status::Ok();
  if (p.status().code() == core::StatusCode::kPermissionDenied) {
    return core::NotFound(std::string(field) + ": " + p.status().message());
  }
  return p.status();
}

// The node guard routes' caller rule: node `node` exists and `caller` is its
// key. Errors: not_found for the node, permission_denied for another key.
inline core::Status RequireNodeCaller(storage::Connection* db, const std::string& node,
                                      const std::string& caller) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          GetOneOrNotFound(db, "SELECT key FROM b_nodes WHERE id=?", node, "node"));
  if (s.Text(0) != caller) {
    return core::PermissionDenied("only node " + node + "'s own key may use this endpoint");
  }
  return core::Status::Ok();
}

}  // namespace bourse::broker::internal
