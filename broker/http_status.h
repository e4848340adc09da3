// The one place where a core::StatusCode becomes an HTTP status and the
// DESIGN §7 error body `{"error":{"code":"...","message":"..."}}`.
//
//   int http = HttpStatusFor(status.code());          // kNotFound -> 404
//   std::string body = ErrorBody(status);             // canonical JSON
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "core/status.h"

namespace bourse::broker {

// invalid_argument 400, unauthenticated 401, permission_denied 403,
// not_found 404, already_exists 409, failed_precondition 409,
// resource_exhausted 429, unavailable 503, internal 500, insufficient_funds 402
// (a purchase the payer cannot fund, DESIGN §4.1).
int HttpStatusFor(core::StatusCode code);

// The error document for a non-OK status.
std::string ErrorBody(const core::Status& status);
// The error document for a code name and message (HTTP-level errors with no
// Status behind them, e.g. "payload_too_large").
std::string ErrorBody(std::string_view code, std::string_view message);

}  // namespace bourse::broker
