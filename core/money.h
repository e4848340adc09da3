// Money: exact fixed-point credits with 9 decimal places (nano-credits).
//
// The value is a count of nano-credits in a Boost.Multiprecision checked
// 128-bit integer, bounded to |nanos| <= 2^127 - 1 so that any implementation
// with a two's-complement int128 can hold every value bourse emits. No
// floating point touches money; every operation that could leave the range
// returns an error instead of wrapping.
//
//   BOURSE_ASSIGN_OR_RETURN(Money price, Money::Parse("1.5"));
//   BOURSE_ASSIGN_OR_RETURN(Money cost, price.MulInt(40));          // 60
//   BOURSE_ASSIGN_OR_RETURN(auto parts, Money::SplitProRata(cost, {1, 1, 1}));
//   cost.ToString();         // "60.000000000" (canonical, as JSON carries it)
//   cost.ToMinimalString();  // "60"
//
// Text grammar accepted by Parse: -?(0|[1-9][0-9]*)(\.[0-9]{1,9})?
// ("12", "12.5", "-0.000000001"). Everything else is refused with a message
// naming the problem: exponents, more than 9 decimals, spaces, '+' or signs
// elsewhere, empty strings, leading zeros, a bare or trailing '.', values out
// of range.
//
// Thread safety: a value type; immutable operations only.
#pragma once

#include <boost/multiprecision/cpp_int.hpp>
#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace bourse::core {

// How a division that does not come out exact is rounded.
enum class Rounding {
  kFloor,     // toward negative infinity
  kCeil,      // toward positive infinity
  kTruncate,  // toward zero
  kHalfEven,  // to nearest, ties to even (banker's rounding)
};

class Money {
 public:
  using Rep = boost::multiprecision::checked_int128_t;
  static constexpr int kDecimals = 9;
  static constexpr int64_t kNanosPerCredit = 1'000'000'000;

  // Zero.
  Money() = default;

  // Exact constructors. FromNanos cannot fail (int64 is in range).
  static Money FromNanos(int64_t nanos) { return Money(Rep(nanos)); }
  // Errors: invalid_argument when |nanos| > 2^127 - 1.
  static Result<Money> FromRep(const Rep& nanos);
  // Whole credits. Errors: invalid_argument on overflow.
  static Result<Money> FromCredits(int64_t credits);

  // Parses the decimal text form. Errors: invalid_argument naming the flaw.
  static Result<Money> Parse(std::string_view text);

  // Canonical form: always 9 decimals, "-" only when negative: "12.500000000".
  std::string ToString() const;
  // Shortest exact form: trailing zeros and a bare '.' dropped: "12.5", "12".
  std::string ToMinimalString() const;

  const Rep& nanos() const { return nanos_; }
  bool is_zero() const { return nanos_ == 0; }
  bool is_negative() const { return nanos_ < 0; }
  bool is_positive() const { return nanos_ > 0; }

  // Checked arithmetic. Errors: invalid_argument ("money overflow ...") when
  // the result leaves the range.
  Result<Money> Add(const Money& other) const;
  Result<Money> Sub(const Money& other) const;
  Result<Money> Negate() const;
  // this * quantity, exact.
  Result<Money> MulInt(int64_t quantity) const;
  // this * num / den, rounded as asked. Errors: invalid_argument when den is 0
  // or the result is out of range (the intermediate product never overflows).
  Result<Money> MulFrac(const Rep& num, const Rep& den, Rounding rounding) const;
  // this * rate, where rate is itself a decimal (e.g. a fee of 0.05), i.e.
  // nanos * rate.nanos / 10^9 rounded as asked.
  Result<Money> MulRate(const Money& rate, Rounding rounding) const;
  // this / divisor rounded as asked. Errors: invalid_argument when divisor is 0.
  Result<Money> DivInt(int64_t divisor, Rounding rounding) const;

  // Splits `total` into weights.size() parts pro rata to the weights. Each part
  // is floor(total * w_i / W); the nano-credits left over go one each to the
  // parts with the largest fractional remainders, ties to the lower index, so
  // the parts always sum exactly to `total` and the split is deterministic.
  // Errors: invalid_argument when weights is empty or all zero.
  static Result<std::vector<Money>> SplitProRata(const Money& total,
                                                 std::span<const uint64_t> weights);

  friend bool operator==(const Money& a, const Money& b) { return a.nanos_ == b.nanos_; }
  friend std::strong_ordering operator<=>(const Money& a, const Money& b) {
    if (a.nanos_ < b.nanos_) return std::strong_ordering::less;
    if (b.nanos_ < a.nanos_) return std::strong_ordering::greater;
    return std::strong_ordering::equal;
  }

  static const Rep& MaxNanos();

 private:
  explicit Money(Rep nanos) : nanos_(std::move(nanos)) {}
  Rep nanos_ = 0;
};

// Divides a by b (b != 0) with the given rounding, on unbounded integers.
boost::multiprecision::cpp_int DivRound(const boost::multiprecision::cpp_int& a,
                                        const boost::multiprecision::cpp_int& b,
                                        Rounding rounding);

}  // namespace bourse::core
