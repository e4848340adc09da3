#include "core/money.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace bourse::core {
namespace {

using boost::multiprecision::cpp_int;

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 64)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') {
      out += '?';
    } else {
      out += c;
    }
  }
  if (text.size() > 64) out += "...";
  out += '"';
  return out;
}

// A character for an error message: itself when printable ASCII, else \xNN.
std::string Describe(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte \\x") + kHex[u >> 4] + kHex[u & 15];
}

Status ParseError(std::string_view what, std::string_view text) {
  return InvalidArgument("money: " + std::string(what) + " in " + Quote(text));
}

Result<Money> FromWide(const cpp_int& v, std::string_view op) {
  if (abs(v) > cpp_int(Money::MaxNanos())) {
    return InvalidArgument("money overflow in " + std::string(op) +
                           ": result exceeds the range of +/-2^127-1 nano-credits");
  }
  return *Money::FromRep(Money::Rep(v));
}

}  // namespace

const Money::Rep& Money::MaxNanos() {
  static const Rep kMax = (Rep(1) << 127) - 1;
  return kMax;
}

Result<Money> Money::FromRep(const Rep& nanos) {
  if (nanos > MaxNanos() || nanos < -MaxNanos()) {
    return InvalidArgument("money out of range: |nanos| must be at most 2^127-1");
  }
  return Money(nanos);
}

Result<Money> Money::FromCredits(int64_t credits) {
  return FromWide(cpp_int(credits) * kNanosPerCredit, "FromCredits");
}

Result<Money> Money::Parse(std::string_view text) {
  if (text.empty()) return ParseError("empty string", text);
  size_t i = 0;
  bool negative = false;
  if (text[0] == '-') {
    negative = true;
    i = 1;
  } else if (text[0] == '+') {
    return ParseError("a '+' sign is not allowed", text);
  }
  const size_t int_start = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const size_t int_len = i - int_start;
  if (int_len == 0) {
    if (i < text.size() && text[i] == '.') return ParseError("no digit before '.'", text);
    if (i < text.size() &&
        (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
      return ParseError("whitespace is not allowed", text);
    }
    if (i == text.size()) return ParseError("no digits", text);
    if (text[i] == '-' || text[i] == '+') return ParseError("a sign may only lead", text);
    return ParseError("unexpected character " + Describe(text[i]), text);
  }
  if (int_len > 1 && text[int_start] == '0') return ParseError("leading zeros", text);
  size_t frac_len = 0;
  size_t frac_start = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    frac_start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    frac_len = i - frac_start;
    if (frac_len == 0) return ParseError("no digit after '.'", text);
    if (frac_len > static_cast<size_t>(kDecimals)) {
      return ParseError("more than 9 decimal places", text);
    }
  }
  if (i != text.size()) {
    char c = text[i];
    if (c == 'e' || c == 'E') return ParseError("exponents are not allowed", text);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      return ParseError("whitespace is not allowed", text);
    }
    if (c == '-' || c == '+') return ParseError("a sign may only lead", text);
    if (c == '.') return ParseError("more than one '.'", text);
    if (c == ',') return ParseError("',' is not a decimal separator here; use '.'", text);
    return ParseError("unexpected character " + Describe(c), text);
  }
  // 2^127 is about 1.7e38 nanos, 1.7e29 credits: 30 integer digits at most.
  if (int_len > 30) return ParseError("value out of range", text);

  // Accumulate in 64-bit chunks of up to 18 digits, then widen.
  cpp_int value = 0;
  size_t p = int_start;
  while (p < int_start + int_len) {
    size_t n = std::min<size_t>(18, int_start + int_len - p);
    uint64_t chunk = 0;
    uint64_t scale = 1;
    for (size_t k = 0; k < n; ++k) {
      chunk = chunk * 10 + static_cast<uint64_t>(text[p + k] - '0');
      scale *= 10;
    }
    value = value * scale + chunk;
    p += n;
  }
  uint64_t frac = 0;
  for (size_t k = 0; k < static_cast<size_t>(kDecimals); ++k) {
    frac = frac * 10 + (k < frac_len ? static_cast<uint64_t>(text[frac_start + k] - '0') : 0);
  }
  value = value * kNanosPerCredit + frac;
  if (negative) value = -value;
  if (abs(value) > cpp_int(MaxNanos())) return ParseError("value out of range", text);
  return Money(Rep(value));
}

std::string Money::ToString() const {
  Rep mag = nanos_ < 0 ? Rep(-nanos_) : nanos_;
  Rep whole = mag / kNanosPerCredit;
  auto frac = static_cast<uint64_t>(mag % kNanosPerCredit);
  std::string frac_text = std::to_string(frac);
  std::string out;
  if (nanos_ < 0) out += '-';
  out += whole.str();
  out += '.';
  out.append(static_cast<size_t>(kDecimals) - frac_text.size(), '0');
  out += frac_text;
  return out;
}

std::string Money::ToMinimalString() const {
  std::string s = ToString();
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

Result<Money> Money::Add(const Money& other) const {
  return FromWide(cpp_int(nanos_) + cpp_int(other.nanos_), "Add");
}

Result<Money> Money::Sub(const Money& other) const {
  return FromWide(cpp_int(nanos_) - cpp_int(other.nanos_), "Sub");
}

Result<Money> Money::Negate() const { return Money(-nanos_); }

Result<Money> Money::MulInt(int64_t quantity) const {
  return FromWide(cpp_int(nanos_) * quantity, "MulInt");
}

cpp_int DivRound(const cpp_int& a, const cpp_int& b, Rounding rounding) {
  cpp_int q = a / b;  // truncates toward zero
  cpp_int r = a - q * b;
  if (r == 0) return q;
  const bool negative = (a < 0) != (b < 0);
  cpp_int away = q;
  if (negative) {
    away -= 1;
  } else {
    away += 1;
  }
  switch (rounding) {
    case Rounding::kTruncate:
      return q;
    case Rounding::kFloor:
      return negative ? away : q;
    case Rounding::kCeil:
      return negative ? q : away;
    case Rounding::kHalfEven: {
      cpp_int twice = abs(r) * 2;
      cpp_int babs = abs(b);
      if (twice > babs) return away;
      if (twice < babs) return q;
      cpp_int parity = q % 2;
      return parity == 0 ? q : away;
    }
  }
  return q;
}

Result<Money> Money::MulFrac(const Rep& num, const Rep& den, Rounding rounding) const {
  if (den == 0) return InvalidArgument("money: division by zero in MulFrac");
  return FromWide(DivRound(cpp_int(nanos_) * cpp_int(num), cpp_int(den), rounding), "MulFrac");
}

Result<Money> Money::MulRate(const Money& rate, Rounding rounding) const {
  return FromWide(
      DivRound(cpp_int(nanos_) * cpp_int(rate.nanos_), cpp_int(kNanosPerCredit), rounding),
      "MulRate");
}

Result<Money> Money::DivInt(int64_t divisor, Rounding rounding) const {
  if (divisor == 0) return InvalidArgument("money: division by zero in DivInt");
  return FromWide(DivRound(cpp_int(nanos_), cpp_int(divisor), rounding), "DivInt");
}

Result<std::vector<Money>> Money::SplitProRata(const Money& total,
                                               std::span<const uint64_t> weights) {
  if (weights.empty()) return InvalidArgument("money: pro-rata split over no weights");
  cpp_int sum = 0;
  for (uint64_t w : weights) sum += w;
  if (sum == 0) return InvalidArgument("money: pro-rata split with all weights zero");
  const cpp_int t(total.nanos_);
  std::vector<cpp_int> base(weights.size());
  std::vector<cpp_int> rem(weights.size());
  cpp_int allocated = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    cpp_int prod = t * weights[i];
    base[i] = DivRound(prod, sum, Rounding::kFloor);
    rem[i] = prod - base[i] * sum;  // in [0, sum)
    allocated += base[i];
  }
  cpp_int left = t - allocated;  // in [0, n)
  std::vector<size_t> order(weights.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rem[a] > rem[b]; });
  for (size_t k = 0; left > 0; ++k, --left) base[order[k]] += 1;
  std::vector<Money> out;
  out.reserve(weights.size());
  for (auto& b : base) out.push_back(Money(Rep(b)));
  return out;
}

}  // namespace bourse::core
