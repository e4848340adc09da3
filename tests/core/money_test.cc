#include "core/money.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/random.h"

namespace bourse::core {
namespace {

using boost::multiprecision::cpp_int;

Money M(std::string_view text) {
  auto m = Money::Parse(text);
  EXPECT_TRUE(m.ok()) << text << ": " << m.status().ToString();
  return m.value_or(Money());
}

Money MaxMoney() { return *Money::FromRep(Money::MaxNanos()); }
Money MinMoney() { return *MaxMoney().Negate(); }

// ---------------------------------------------------------------- parsing

TEST(MoneyParseTest, AcceptsTheGrammar) {
  EXPECT_EQ(M("12").nanos(), Money::Rep(12'000'000'000LL));
  EXPECT_EQ(M("12.5").nanos(), Money::Rep(12'500'000'000LL));
  EXPECT_EQ(M("-0.000000001").nanos(), Money::Rep(-1));
  EXPECT_EQ(M("0").nanos(), Money::Rep(0));
  EXPECT_EQ(M("-0").nanos(), Money::Rep(0));
  EXPECT_EQ(M("0.1").nanos(), Money::Rep(100'000'000));
  EXPECT_EQ(M("0.999999999").nanos(), Money::Rep(999'999'999));
  EXPECT_EQ(M("1.000000000").nanos(), Money::Rep(1'000'000'000));
  EXPECT_EQ(M("10").nanos(), Money::Rep(10'000'000'000LL));
  EXPECT_EQ(M("-7.25").nanos(), Money::Rep(-7'250'000'000LL));
  // More than 18 digits: the chunked accumulation must carry across chunks.
  EXPECT_EQ(M("1234567890123456789012.123456789").nanos(),
            Money::Rep(cpp_int("1234567890123456789012123456789")));
}

TEST(MoneyParseTest, AcceptsTheWholeRangeAndNoMore) {
  // 2^127 - 1 nano-credits.
  const std::string max = "170141183460469231731687303715.884105727";
  EXPECT_EQ(M(max).nanos(), Money::MaxNanos());
  EXPECT_EQ(M("-" + max).nanos(), -Money::MaxNanos());
  EXPECT_EQ(M(max).ToString(), max);
  for (std::string_view bad :
       {"170141183460469231731687303715.884105728", "-170141183460469231731687303715.884105728",
        "999999999999999999999999999999", "1000000000000000000000000000000",
        "1000000000000000000000000000000000000000000000000000000000000000000000000"}) {
    auto r = Money::Parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("out of range"), std::string::npos) << r.status().message();
  }
}

struct BadMoney {
  std::string text;
  std::string problem;  // must appear in the message
};

TEST(MoneyParseTest, RefusesMalformedTextNamingTheProblem) {
  const std::vector<BadMoney> cases = {
      {"", "empty"},
      {"1e5", "exponent"},
      {"1E5", "exponent"},
      {"1.5e3", "exponent"},
      {"2e-3", "exponent"},
      {"1.0000000001", "more than 9 decimal places"},
      {"0.1234567891", "more than 9 decimal places"},
      {" 1", "whitespace"},
      {"1 ", "whitespace"},
      {"1 000", "whitespace"},
      {"\t1", "whitespace"},
      {"1\n", "whitespace"},
      {"- 1", "whitespace"},
      {"+1", "'+'"},
      {"+0.5", "'+'"},
      {"--1", "sign may only lead"},
      {"-+1", "sign may only lead"},
      {"1-", "sign may only lead"},
      {"1.5-", "sign may only lead"},
      {"1+2", "sign may only lead"},
      {"-", "no digits"},
      {".", "no digit before '.'"},
      {".5", "no digit before '.'"},
      {"-.5", "no digit before '.'"},
      {"1.", "no digit after '.'"},
      {"1.e5", "no digit after '.'"},
      {"01", "leading zeros"},
      {"00", "leading zeros"},
      {"00.5", "leading zeros"},
      {"-01.5", "leading zeros"},
      {"1.2.3", "more than one '.'"},
      {"1,5", "','"},
      {"abc", "unexpected character 'a'"},
      {"0x10", "unexpected character 'x'"},
      {"NaN", "unexpected character 'N'"},
      {"inf", "unexpected character 'i'"},
      {"-Infinity", "unexpected character 'I'"},
      {"1_000", "unexpected character '_'"},
      {"12$", "unexpected character '$'"},
      {std::string("1\0", 2), "byte \\x00"},
      {"\xef\xbc\x91", "byte \\xef"},  // fullwidth digit one
      {"\xe2\x88\x92"
       "1",
       "byte \\xe2"},  // U+2212 minus sign
  };
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    auto r = Money::Parse(c.text);
    ASSERT_FALSE(r.ok()) << "accepted \"" << c.text << "\"";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(r.status().message().find("money: "), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(c.problem), std::string::npos)
        << "for \"" << c.text << "\" got: " << r.status().message();
  }
}

TEST(MoneyParseTest, MessageQuotesTheInputSafely) {
  auto r = Money::Parse("12\"x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"12?x\""), std::string::npos) << r.status().message();
  std::string long_text(200, '5');
  long_text += 'z';
  r = Money::Parse(long_text);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 160u);  // the input is cut, not echoed whole
  EXPECT_NE(r.status().message().find("..."), std::string::npos);
}

// ---------------------------------------------------------------- formatting

TEST(MoneyFormatTest, CanonicalHasNineDecimals) {
  EXPECT_EQ(M("12.5").ToString(), "12.500000000");
  EXPECT_EQ(M("12").ToString(), "12.000000000");
  EXPECT_EQ(M("0").ToString(), "0.000000000");
  EXPECT_EQ(M("-0").ToString(), "0.000000000");
  EXPECT_EQ(M("-0.000000001").ToString(), "-0.000000001");
  EXPECT_EQ(M("-12.05").ToString(), "-12.050000000");
  EXPECT_EQ(Money::FromNanos(1).ToString(), "0.000000001");
  EXPECT_EQ(Money::FromNanos(std::numeric_limits<int64_t>::min()).ToString(),
            "-9223372036.854775808");
}

TEST(MoneyFormatTest, MinimalDropsTrailingZeros) {
  EXPECT_EQ(M("12.5").ToMinimalString(), "12.5");
  EXPECT_EQ(M("12.000").ToMinimalString(), "12");
  EXPECT_EQ(M("0").ToMinimalString(), "0");
  EXPECT_EQ(M("100").ToMinimalString(), "100");
  EXPECT_EQ(M("-0.000000001").ToMinimalString(), "-0.000000001");
  EXPECT_EQ(M("-10.10").ToMinimalString(), "-10.1");
}

TEST(MoneyFormatTest, BothFormsParseBackExactly) {
  DeterministicRandom rng(7);
  for (int i = 0; i < 2000; ++i) {
    cpp_int v = cpp_int(rng.NextU64()) << 64 | cpp_int(rng.NextU64());
    v >>= static_cast<unsigned>(rng.Uniform(128));  // all magnitudes
    if (rng.Uniform(2) == 0) v = -v;
    if (abs(v) > cpp_int(Money::MaxNanos())) continue;
    Money m = *Money::FromRep(Money::Rep(v));
    EXPECT_EQ(M(m.ToString()), m);
    EXPECT_EQ(M(m.ToMinimalString()), m);
  }
}

// ---------------------------------------------------------------- construction

TEST(MoneyTest, FromRepAndFromCredits) {
  EXPECT_TRUE(Money::FromRep(Money::MaxNanos()).ok());
  EXPECT_TRUE(Money::FromRep(-Money::MaxNanos()).ok());
  EXPECT_FALSE(Money::FromRep(Money::MaxNanos() + 1).ok());
  EXPECT_FALSE(Money::FromRep(-Money::MaxNanos() - 1).ok());
  EXPECT_EQ(Money::FromRep(Money::MaxNanos() + 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Money::FromCredits(3)->ToString(), "3.000000000");
  EXPECT_EQ(Money::FromCredits(-3)->ToString(), "-3.000000000");
  EXPECT_EQ(Money::FromCredits(std::numeric_limits<int64_t>::max())->ToMinimalString(),
            "9223372036854775807");
  EXPECT_TRUE(Money().is_zero());
  EXPECT_TRUE(M("-1").is_negative());
  EXPECT_TRUE(M("1").is_positive());
}

TEST(MoneyTest, Comparison) {
  EXPECT_LT(M("-1"), M("0"));
  EXPECT_LT(M("0.000000001"), M("0.000000002"));
  EXPECT_GT(MaxMoney(), M("1"));
  EXPECT_LT(MinMoney(), M("-1"));
  EXPECT_EQ(M("1.5"), M("1.500"));
  EXPECT_NE(M("1.5"), M("1.500000001"));
  EXPECT_LE(M("2"), M("2"));
}

// ---------------------------------------------------------------- arithmetic

TEST(MoneyArithmeticTest, AddSubNegate) {
  EXPECT_EQ(*M("1.5").Add(M("2.25")), M("3.75"));
  EXPECT_EQ(*M("1.5").Sub(M("2.25")), M("-0.75"));
  EXPECT_EQ(*M("-0.000000001").Add(M("0.000000001")), M("0"));
  EXPECT_EQ(*M("3").Negate(), M("-3"));
  EXPECT_EQ(*MaxMoney().Negate(), MinMoney());
  EXPECT_EQ(*MinMoney().Negate(), MaxMoney());
  EXPECT_EQ(*MaxMoney().Sub(MaxMoney()), Money());
  EXPECT_EQ(*MaxMoney().Add(MinMoney()), Money());
}

TEST(MoneyArithmeticTest, AddOverflowIsAnError) {
  auto r = MaxMoney().Add(Money::FromNanos(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("money overflow in Add"), std::string::npos);
  EXPECT_FALSE(MinMoney().Add(Money::FromNanos(-1)).ok());
  EXPECT_FALSE(MaxMoney().Add(MaxMoney()).ok());
  EXPECT_FALSE(MinMoney().Add(MinMoney()).ok());
  EXPECT_TRUE(MaxMoney().Add(Money()).ok());
}

TEST(MoneyArithmeticTest, SubOverflowIsAnError) {
  auto r = MinMoney().Sub(Money::FromNanos(1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("money overflow in Sub"), std::string::npos);
  EXPECT_FALSE(MaxMoney().Sub(Money::FromNanos(-1)).ok());
  EXPECT_FALSE(MaxMoney().Sub(MinMoney()).ok());
  EXPECT_FALSE(MinMoney().Sub(MaxMoney()).ok());
}

TEST(MoneyArithmeticTest, MulInt) {
  EXPECT_EQ(*M("1.5").MulInt(40), M("60"));
  EXPECT_EQ(*M("1.5").MulInt(-3), M("-4.5"));
  EXPECT_EQ(*M("-0.000000001").MulInt(-1'000'000'000), M("1"));
  EXPECT_EQ(*M("7").MulInt(0), Money());
  EXPECT_EQ(*MaxMoney().MulInt(-1), MinMoney());
  // int64 x int64 fits: no spurious error.
  auto big = Money::FromNanos(std::numeric_limits<int64_t>::min())
                 .MulInt(std::numeric_limits<int64_t>::min());
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->nanos(), Money::Rep(1) << 126);
}

TEST(MoneyArithmeticTest, MulIntOverflowIsAnError) {
  auto r = MaxMoney().MulInt(2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("money overflow in MulInt"), std::string::npos);
  EXPECT_FALSE(MinMoney().MulInt(2).ok());
  EXPECT_FALSE(MaxMoney().MulInt(-2).ok());
  Money half = *Money::FromRep(Money::MaxNanos() / 2 + 1);
  EXPECT_FALSE(half.MulInt(2).ok());
  EXPECT_TRUE(Money::FromRep(Money::MaxNanos() / 2)->MulInt(2).ok());
  EXPECT_FALSE(M("1000000000000000000000").MulInt(std::numeric_limits<int64_t>::max()).ok());
}

struct RoundCase {
  int64_t nanos;
  int64_t divisor;
  int64_t floor, ceil, trunc, half_even;
};

TEST(MoneyArithmeticTest, DivIntRoundsEveryWayIncludingNegatives) {
  const std::vector<RoundCase> cases = {
      {7, 2, 3, 4, 3, 4},       // 3.5 -> even 4
      {5, 2, 2, 3, 2, 2},       // 2.5 -> even 2
      {-7, 2, -4, -3, -3, -4},  // -3.5 -> even -4
      {-5, 2, -3, -2, -2, -2},  // -2.5 -> even -2
      {7, -2, -4, -3, -3, -4},  // negative divisor
      {-7, -2, 3, 4, 3, 4},     // both negative: 3.5
      {-7, 3, -3, -2, -2, -2},  // -2.33
      {-8, 3, -3, -2, -2, -3},  // -2.67
      {8, 3, 2, 3, 2, 3},       // 2.67
      {6, 3, 2, 2, 2, 2},       // exact
      {-6, 3, -2, -2, -2, -2},  // exact negative
      {1, 3, 0, 1, 0, 0},      {-1, 3, -1, 0, 0, 0}, {0, 5, 0, 0, 0, 0},
  };
  for (const auto& c : cases) {
    Money m = Money::FromNanos(c.nanos);
    SCOPED_TRACE(std::to_string(c.nanos) + " / " + std::to_string(c.divisor));
    EXPECT_EQ(m.DivInt(c.divisor, Rounding::kFloor)->nanos(), Money::Rep(c.floor));
    EXPECT_EQ(m.DivInt(c.divisor, Rounding::kCeil)->nanos(), Money::Rep(c.ceil));
    EXPECT_EQ(m.DivInt(c.divisor, Rounding::kTruncate)->nanos(), Money::Rep(c.trunc));
    EXPECT_EQ(m.DivInt(c.divisor, Rounding::kHalfEven)->nanos(), Money::Rep(c.half_even));
    // MulFrac(1, d) is the same division.
    EXPECT_EQ(m.MulFrac(1, c.divisor, Rounding::kFloor)->nanos(), Money::Rep(c.floor));
    EXPECT_EQ(m.MulFrac(1, c.divisor, Rounding::kCeil)->nanos(), Money::Rep(c.ceil));
    EXPECT_EQ(m.MulFrac(1, c.divisor, Rounding::kTruncate)->nanos(), Money::Rep(c.trunc));
    EXPECT_EQ(m.MulFrac(1, c.divisor, Rounding::kHalfEven)->nanos(), Money::Rep(c.half_even));
  }
}

TEST(MoneyArithmeticTest, DivIntByZeroAndExtremes) {
  auto r = M("1").DivInt(0, Rounding::kFloor);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("division by zero"), std::string::npos);
  // Division never leaves the range, whatever the divisor.
  EXPECT_EQ(*MaxMoney().DivInt(1, Rounding::kCeil), MaxMoney());
  EXPECT_EQ(*MaxMoney().DivInt(-1, Rounding::kFloor), MinMoney());
  EXPECT_EQ(*MinMoney().DivInt(-1, Rounding::kHalfEven), MaxMoney());
  EXPECT_TRUE(MinMoney().DivInt(std::numeric_limits<int64_t>::min(), Rounding::kCeil).ok());
  EXPECT_EQ(M("-1").DivInt(std::numeric_limits<int64_t>::min(), Rounding::kCeil)->nanos(),
            Money::Rep(1));
}

TEST(MoneyArithmeticTest, MulFrac) {
  EXPECT_EQ(*M("10").MulFrac(1, 3, Rounding::kFloor), M("3.333333333"));
  EXPECT_EQ(*M("10").MulFrac(1, 3, Rounding::kCeil), M("3.333333334"));
  EXPECT_EQ(*M("10").MulFrac(2, 3, Rounding::kHalfEven), M("6.666666667"));
  EXPECT_EQ(*M("-10").MulFrac(2, 3, Rounding::kTruncate), M("-6.666666666"));
  EXPECT_EQ(*M("-10").MulFrac(2, 3, Rounding::kFloor), M("-6.666666667"));
  EXPECT_EQ(*M("-10").MulFrac(-2, 3, Rounding::kFloor), M("6.666666666"));
  // The intermediate product may be far beyond 128 bits without harm.
  EXPECT_EQ(*MaxMoney().MulFrac(Money::MaxNanos(), Money::MaxNanos(), Rounding::kFloor),
            MaxMoney());
  EXPECT_EQ(*MinMoney().MulFrac(Money::MaxNanos() - 1, Money::MaxNanos(), Rounding::kCeil),
            *MinMoney().Add(Money::FromNanos(1)));
  auto r = M("1").MulFrac(1, 0, Rounding::kFloor);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("division by zero"), std::string::npos);
}

TEST(MoneyArithmeticTest, MulFracOverflowIsAnError) {
  auto r = MaxMoney().MulFrac(3, 2, Rounding::kFloor);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("money overflow in MulFrac"), std::string::npos);
  EXPECT_FALSE(MinMoney().MulFrac(3, 2, Rounding::kCeil).ok());
  EXPECT_FALSE(M("1").MulFrac(Money::MaxNanos(), 1, Rounding::kFloor).ok());
  // Rounding up past the bound is an overflow too.
  EXPECT_FALSE(MaxMoney().MulFrac(Money::MaxNanos() + 1, Money::MaxNanos(), Rounding::kCeil).ok());
}

TEST(MoneyArithmeticTest, MulRateRoundsEveryWay) {
  // 0.000000015 * 0.5 = 0.0000000075 -> a tie between 7 and 8 nanos.
  Money small = M("0.000000015");
  Money half = M("0.5");
  EXPECT_EQ(small.MulRate(half, Rounding::kFloor)->nanos(), Money::Rep(7));
  EXPECT_EQ(small.MulRate(half, Rounding::kCeil)->nanos(), Money::Rep(8));
  EXPECT_EQ(small.MulRate(half, Rounding::kTruncate)->nanos(), Money::Rep(7));
  EXPECT_EQ(small.MulRate(half, Rounding::kHalfEven)->nanos(), Money::Rep(8));
  Money neg = M("-0.000000015");
  EXPECT_EQ(neg.MulRate(half, Rounding::kFloor)->nanos(), Money::Rep(-8));
  EXPECT_EQ(neg.MulRate(half, Rounding::kCeil)->nanos(), Money::Rep(-7));
  EXPECT_EQ(neg.MulRate(half, Rounding::kTruncate)->nanos(), Money::Rep(-7));
  EXPECT_EQ(neg.MulRate(half, Rounding::kHalfEven)->nanos(), Money::Rep(-8));
  // 0.000000025 * 0.5 = 12.5 nanos -> even 12.
  EXPECT_EQ(M("0.000000025").MulRate(half, Rounding::kHalfEven)->nanos(), Money::Rep(12));
  EXPECT_EQ(M("-0.000000025").MulRate(half, Rounding::kHalfEven)->nanos(), Money::Rep(-12));
  // A 5% fee.
  EXPECT_EQ(*M("123.45").MulRate(M("0.05"), Rounding::kHalfEven), M("6.1725"));
  EXPECT_EQ(*M("100").MulRate(M("-0.05"), Rounding::kFloor), M("-5"));
  EXPECT_EQ(*MaxMoney().MulRate(M("1"), Rounding::kFloor), MaxMoney());
}

TEST(MoneyArithmeticTest, MulRateOverflowIsAnError) {
  auto r = MaxMoney().MulRate(M("2"), Rounding::kFloor);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("money overflow in MulRate"), std::string::npos);
  EXPECT_FALSE(MaxMoney().MulRate(M("1.000000001"), Rounding::kFloor).ok());
  EXPECT_FALSE(MinMoney().MulRate(M("-1.000000001"), Rounding::kFloor).ok());
  EXPECT_FALSE(MaxMoney().MulRate(MaxMoney(), Rounding::kTruncate).ok());
}

TEST(MoneyArithmeticTest, DivRoundOnUnboundedIntegers) {
  cpp_int huge = cpp_int(1) << 300;
  EXPECT_EQ(DivRound(huge + 1, 2, Rounding::kCeil), (cpp_int(1) << 299) + 1);
  EXPECT_EQ(DivRound(-huge - 1, 2, Rounding::kCeil), -(cpp_int(1) << 299));
  EXPECT_EQ(DivRound(-huge - 1, 2, Rounding::kFloor), -(cpp_int(1) << 299) - 1);
}

// ---------------------------------------------------------------- pro-rata split

cpp_int Sum(const std::vector<Money>& parts) {
  cpp_int s = 0;
  for (const auto& p : parts) s += cpp_int(p.nanos());
  return s;
}

TEST(MoneySplitTest, SmallExamples) {
  const uint64_t equal[] = {1, 1, 1};
  auto parts = *Money::SplitProRata(Money::FromNanos(100), equal);
  ASSERT_EQ(parts.size(), 3u);
  // 33.33 each: the one leftover nano goes to the lowest index.
  EXPECT_EQ(parts[0].nanos(), Money::Rep(34));
  EXPECT_EQ(parts[1].nanos(), Money::Rep(33));
  EXPECT_EQ(parts[2].nanos(), Money::Rep(33));

  auto neg = *Money::SplitProRata(Money::FromNanos(-100), equal);
  EXPECT_EQ(neg[0].nanos(), Money::Rep(-33));
  EXPECT_EQ(neg[1].nanos(), Money::Rep(-33));
  EXPECT_EQ(neg[2].nanos(), Money::Rep(-34));

  const uint64_t weights[] = {1, 2, 3, 0};
  auto w = *Money::SplitProRata(M("60"), weights);
  EXPECT_EQ(w[0], M("10"));
  EXPECT_EQ(w[1], M("20"));
  EXPECT_EQ(w[2], M("30"));
  EXPECT_EQ(w[3], Money());

  // Largest remainder wins over a lower index: 10 over {1, 3}: 2.5 and 7.5 -> tie.
  const uint64_t w13[] = {1, 3};
  auto t = *Money::SplitProRata(Money::FromNanos(10), w13);
  EXPECT_EQ(t[0].nanos(), Money::Rep(3));
  EXPECT_EQ(t[1].nanos(), Money::Rep(7));
  // 11 over {1, 3}: 2.75 and 8.25 -> the leftover goes to index 0 (.75 > .25).
  auto u = *Money::SplitProRata(Money::FromNanos(11), w13);
  EXPECT_EQ(u[0].nanos(), Money::Rep(3));
  EXPECT_EQ(u[1].nanos(), Money::Rep(8));

  const uint64_t one[] = {5};
  EXPECT_EQ((*Money::SplitProRata(MinMoney(), one))[0], MinMoney());
}

TEST(MoneySplitTest, RefusesEmptyAndAllZeroWeights) {
  auto r = Money::SplitProRata(M("1"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no weights"), std::string::npos);
  const uint64_t zeros[] = {0, 0, 0};
  r = Money::SplitProRata(M("1"), zeros);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("all weights zero"), std::string::npos);
}

TEST(MoneySplitTest, HugeWeightsDoNotOverflow) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  const uint64_t weights[] = {max, max, max, 1};
  auto parts = *Money::SplitProRata(MaxMoney(), weights);
  EXPECT_EQ(Sum(parts), cpp_int(Money::MaxNanos()));
  EXPECT_EQ(parts[0].nanos() - parts[1].nanos(), Money::Rep(1));  // tie -> lower index
}

// Checks every promise of SplitProRata on one case against exact arithmetic.
void CheckSplit(const Money& total, const std::vector<uint64_t>& weights) {
  auto r = Money::SplitProRata(total, weights);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& parts = *r;
  ASSERT_EQ(parts.size(), weights.size());
  const cpp_int t(total.nanos());
  ASSERT_EQ(Sum(parts), t) << "parts do not sum to " << total.ToString();
  cpp_int w_sum = 0;
  for (uint64_t w : weights) w_sum += w;
  // Each part is floor(t*w/W) or one more; the extra nanos went to the largest
  // remainders, ties to the lower index.
  std::vector<cpp_int> rem(weights.size());
  std::vector<bool> bumped(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    cpp_int prod = t * weights[i];
    cpp_int fl = DivRound(prod, w_sum, Rounding::kFloor);
    cpp_int got(parts[i].nanos());
    ASSERT_TRUE(got == fl || got == fl + 1) << "part " << i << " is not floor or floor+1";
    bumped[i] = got == fl + 1;
    rem[i] = prod - fl * w_sum;
    if (weights[i] == 0) {
      ASSERT_EQ(got, 0) << "a zero weight got something";
    }
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    for (size_t j = 0; j < weights.size(); ++j) {
      if (bumped[i] && !bumped[j]) {
        ASSERT_GE(rem[i], rem[j]) << "a smaller remainder was preferred";
        if (rem[i] == rem[j]) {
          ASSERT_LT(i, j) << "tie not given to the lower index";
        }
      }
    }
  }
  // Deterministic: the same call gives the same parts.
  ASSERT_EQ(*Money::SplitProRata(total, weights), parts);
}

TEST(MoneySplitTest, TenThousandRandomCasesSumExactly) {
  DeterministicRandom rng(20261124);
  for (int c = 0; c < 10'000; ++c) {
    // Totals across the whole range: small, int64-sized and near 2^127.
    cpp_int t;
    switch (rng.Uniform(4)) {
      case 0:
        t = rng.Uniform(1000);
        break;
      case 1:
        t = cpp_int(rng.NextU64());
        break;
      case 2:
        t = (cpp_int(rng.NextU64()) << 64 | rng.NextU64()) >> (1 + rng.Uniform(100));
        break;
      default:
        t = cpp_int(Money::MaxNanos()) - rng.Uniform(1000);
        break;
    }
    if (rng.Uniform(3) == 0) t = -t;
    const Money total = *Money::FromRep(Money::Rep(t));
    const size_t n = 1 + rng.Uniform(12);
    std::vector<uint64_t> weights(n);
    bool any = false;
    for (auto& w : weights) {
      switch (rng.Uniform(4)) {
        case 0:
          w = 0;
          break;
        case 1:
          w = 1 + rng.Uniform(10);
          break;
        case 2:
          w = rng.NextU64();
          break;
        default:
          w = 1 + rng.Uniform(1'000'000);
          break;
      }
      any = any || w != 0;
    }
    if (!any) weights[rng.Uniform(n)] = 1 + rng.Uniform(5);
    SCOPED_TRACE("case " + std::to_string(c));
    CheckSplit(total, weights);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace bourse::core
