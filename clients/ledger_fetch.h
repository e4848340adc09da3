// Audits a broker's ledger over HTTP (DESIGN §7 endpoints): the same replay
// as `bourse ledger verify --db`, fed from GET /v1/ledger/{key,head,entries}.
//
//   BOURSE_ASSIGN_OR_RETURN(ledger::AuditReport rep,
//                           AuditUrl("http://127.0.0.1:8080", std::nullopt, {}));
//   if (!rep.ok()) puts(rep.violation->ToString().c_str());
//
// It fetches the signed head first, then entries [0, head.size) in pages,
// checks the head against the replay, and finally checks a consistency proof
// from that head to the broker's newest head (the log only grew).
//
// Thread safety: AuditUrl is safe from any thread (its own connection).
#pragma once

#include <optional>
#include <string>

#include "core/keys.h"
#include "core/status.h"
#include "ledger/audit.h"

namespace bourse::clients {

// `expected_key`: trust this ledger key; without it the key the broker serves
// is used (and printed by the CLI so an operator can compare).
// Errors (not violations): unavailable when the broker cannot be reached or
// answers an error; invalid_argument when its answers are malformed.
core::Result<ledger::AuditReport> AuditUrl(const std::string& url,
                                           const std::optional<core::PublicKey>& expected_key,
                                           const ledger::AuditOptions& options);

}  // namespace bourse::clients
