#include "broker/http_status.h"

#include <nlohmann/json.hpp>

namespace bourse::broker {

int HttpStatusFor(core::StatusCode code) {
  switch (code) {
    case core::StatusCode::kOk:
      return 200;
    case core::StatusCode::kInvalidArgument:
      return 400;
    case core::StatusCode::kUnauthenticated:
      return 401;
    case core::StatusCode::kPermissionDenied:
      return 403;
    case core::StatusCode::kNotFound:
      return 404;
    case core::StatusCode::kAlreadyExists:
    case core::StatusCode::kFailedPrecondition:
      return 409;
    case core::StatusCode::kResourceExhausted:
      return 429;
    case core::StatusCode::kUnavailable:
      return 503;
    case core::StatusCode::kInternal:
      return 500;
    case core::StatusCode::kInsufficientFunds:
      return 402;
  }
  return 500;
}

std::string ErrorBody(std::string_view code, std::string_view message) {
  nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ErrorBody(const core::Status& status) {
  return ErrorBody(core::StatusCodeName(status.code()), status.message());
}

}  // namespace bourse::broker
