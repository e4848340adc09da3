#include "broker/internal/binding_state.h"

#include "broker/internal/schemas.h"
#include "broker/internal/sql.h"

namespace bourse::broker::internal {

using nlohmann::json;

json BindingReportSchema() {
  json nullable_str = {{"type", json::array({"string", "null"})}};
  json report = SObj({{"state", SStr("the node's state: active|scheduled|refused")},
                      {"reason", nullable_str},
                      {"detail", SStr()},
                      {"ts", SInt("unix s, the guard's")},
                      {"seq", SInt("ledger seq of the report")}},
                     {"state", "reason", "detail", "ts", "seq"});
  return {{"oneOf", json::array({report, {{"type", "null"}}})}};
}

core::Status AddBindingState(storage::Connection* db, std::string_view leaf, std::string_view slice,
                             int64_t not_before, int64_t not_after, int64_t now_s, json* binding) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT state,reason,detail,ts,seq FROM "
                                              "b_redemptions WHERE rcap=? AND slice=? "
                                              "ORDER BY seq DESC LIMIT 1"));
  s.Bind(1, leaf);
  s.Bind(2, slice);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  json report = nullptr;
  std::string state;
  if (row) {
    std::string node_state = s.Text(0);
    std::string reason = s.Text(1);
    report = {{"state", node_state},
              {"reason", reason.empty() ? json() : json(reason)},
              {"detail", s.Text(2)},
              {"ts", s.Int(3)},
              {"seq", s.Int(4)}};
    state = node_state == "refused" ? "refused" : "redeemed";
  } else {
    state = not_before > now_s ? "scheduled" : "active";
  }
  if (not_after <= now_s) state = "expired";
  (*binding)["state"] = state;
  (*binding)["report"] = std::move(report);
  return core::Status::Ok();
}

}  // namespace bourse::broker::internal
