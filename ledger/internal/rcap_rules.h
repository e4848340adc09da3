// Link rules with the signature check optional (the auditor may skip it).
#pragma once

#include <optional>

#include "ledger/rcap.h"

namespace bourse::ledger::internal {

std::optional<Refusal> CheckLinkRules(const Rcap& parent, const Rcap& child, bool check_signature);

}  // namespace bourse::ledger::internal
