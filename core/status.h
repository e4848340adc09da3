// Status and Result<T>: how every fallible bourse API reports failure.
//
// No exception crosses a component's API. A function that can fail returns a
// [[nodiscard]] Status (no value) or Result<T> (a value or a Status):
//
//   bourse::core::Result<Money> m = Money::Parse("12.5");
//   if (!m.ok()) return m.status();          // "invalid_argument: ..."
//   Money twelve_and_a_half = *m;
//
//   BOURSE_ASSIGN_OR_RETURN(Money fee, Money::Parse(text));
//   BOURSE_RETURN_IF_ERROR(store.Append(batch));
//
// The codes are a small fixed set (CONVENTIONS.md); broker/ maps them to HTTP
// statuses in one place. Messages are for people and name what was wrong.
//
// Thread safety: Status and Result are values; distinct objects may be used
// from distinct threads freely.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace bourse::core {

enum class StatusCode {
  kOk,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kPermissionDenied,
  kUnauthenticated,
  kResourceExhausted,
  kUnavailable,
  kInternal,
  // A payment the payer cannot fund (HTTP 402; e.g. a buy above the buyer's
  // free balance). Ledger primitives report a shortfall as failed_precondition;
  // a route that refuses a whole purchase for it uses this code.
  kInsufficientFunds,
};

// The snake_case name of a code ("invalid_argument"), as used in API errors.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: money: more than 9 decimal places in \"1.0000000001\"".
  std::string ToString() const;

  // Returns a copy whose message is `context + ": " + message()`; OK stays OK.
  Status WithContext(std::string_view context) const;

  // Explicitly discards a status the caller has decided not to act on.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status FailedPrecondition(std::string message);
Status PermissionDenied(std::string message);
Status Unauthenticated(std::string message);
Status ResourceExhausted(std::string message);
Status Unavailable(std::string message);
Status Internal(std::string message);
Status InsufficientFunds(std::string message);

// A value of type T or the Status that explains why there is none.
// Constructing a Result from an OK Status is a programming error and aborts.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<1>, std::move(value)) {}  // NOLINT: implicit
  Result(Status status) : v_(std::in_place_index<0>, std::move(status)) {  // NOLINT
    if (std::get<0>(v_).ok()) std::abort();
  }

  bool ok() const { return v_.index() == 1; }
  const Status& status() const& {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<0>(v_);
  }
  Status status() && { return ok() ? Status() : std::move(std::get<0>(v_)); }

  // Accessing the value of a failed Result aborts: check ok() first.
  const T& value() const& { return ok() ? std::get<1>(v_) : Die(); }
  T& value() & { return ok() ? std::get<1>(v_) : const_cast<T&>(Die()); }
  T&& value() && { return ok() ? std::move(std::get<1>(v_)) : std::move(const_cast<T&>(Die())); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  T value_or(T fallback) const& { return ok() ? std::get<1>(v_) : std::move(fallback); }

 private:
  [[noreturn]] static const T& Die() { std::abort(); }
  std::variant<Status, T> v_;
};

}  // namespace bourse::core

#define BOURSE_STATUS_CONCAT_INNER_(a, b) a##b
#define BOURSE_STATUS_CONCAT_(a, b) BOURSE_STATUS_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define BOURSE_RETURN_IF_ERROR(expr)                          \
  do {                                                        \
    ::bourse::core::Status _bourse_status = (expr);           \
    if (!_bourse_status.ok()) return _bourse_status;          \
  } while (0)

// `lhs = *expr` when `expr` (a Result) is OK, else returns its Status.
#define BOURSE_ASSIGN_OR_RETURN(lhs, expr) \
  BOURSE_ASSIGN_OR_RETURN_IMPL_(BOURSE_STATUS_CONCAT_(_bourse_result_, __LINE__), lhs, expr)
#define BOURSE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()
