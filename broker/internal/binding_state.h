// What the broker knows of a binding on its node (DESIGN §4.1): a binding's
// `state` is
//   scheduled  starts later; the node has not reported it
//   active     in force; the node has not reported it
//   redeemed   the node guard reported it redeemed (`report.state` is the
//              node's effective state, active or scheduled; `report.ts` when)
//   refused    the node guard refused it (`report.reason`, `report.detail`)
//   expired    its not_after has passed (whatever the node said; the report,
//              if any, is still shown)
// from the guard's reports (POST /v1/nodes/{node}/redemptions, b_redemptions):
// the newest report (by ledger seq) for the leaf in that slice counts.
//
//   json b = {{"slice", s}, {"leaf", leaf}, ...};
//   BOURSE_RETURN_IF_ERROR(AddBindingState(db, leaf, s, nb, na, now_s, &b));
//   // b["state"] and b["report"] (null, or {state,reason,detail,ts,seq})
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/status.h"
#include "storage/sqlite.h"

namespace bourse::broker::internal {

// JSON Schema of the `report` member (an object or null).
nlohmann::json BindingReportSchema();

// Sets (*binding)["state"] and (*binding)["report"] for the binding of rcap
// `leaf` (valid [not_before, not_after)) to `slice` at `now_s`.
// Errors: internal (SQLite).
core::Status AddBindingState(storage::Connection* db, std::string_view leaf, std::string_view slice,
                             int64_t not_before, int64_t not_after, int64_t now_s,
                             nlohmann::json* binding);

}  // namespace bourse::broker::internal
