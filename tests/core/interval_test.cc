#include "core/interval.h"

#include <gtest/gtest.h>

#include <limits>

namespace bourse::core {
namespace {

constexpr Interval I(int64_t a, int64_t b) { return Interval{.not_before = a, .not_after = b}; }

TEST(IntervalTest, Validate) {
  EXPECT_TRUE(I(0, 1).Validate().ok());
  EXPECT_TRUE(I(100, 200).Validate().ok());
  Status st = I(5, 5).Validate();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("not_after (5) must be after not_before (5)"), std::string::npos);
  EXPECT_FALSE(I(6, 5).Validate().ok());
  st = I(-1, 5).Validate();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("not_before is negative"), std::string::npos);
}

TEST(IntervalTest, ContainsIsHalfOpen) {
  const Interval w = I(100, 200);
  EXPECT_FALSE(w.Contains(99));
  EXPECT_TRUE(w.Contains(100));  // not_before is inside
  EXPECT_TRUE(w.Contains(150));
  EXPECT_TRUE(w.Contains(199));
  EXPECT_FALSE(w.Contains(200));  // not_after is outside
  EXPECT_FALSE(I(5, 5).Contains(5));
  EXPECT_FALSE(I(6, 5).Contains(5));
  EXPECT_FALSE(I(6, 5).Contains(6));
}

TEST(IntervalTest, EmptyAndSeconds) {
  EXPECT_TRUE(I(5, 5).Empty());
  EXPECT_TRUE(I(6, 5).Empty());
  EXPECT_FALSE(I(5, 6).Empty());
  EXPECT_EQ(I(5, 6).Seconds(), 1);
  EXPECT_EQ(I(100, 200).Seconds(), 100);
  EXPECT_EQ(I(5, 5).Seconds(), 0);
  EXPECT_EQ(I(9, 5).Seconds(), 0);
}

TEST(IntervalTest, OverlapsAtTheBoundaries) {
  const Interval w = I(100, 200);
  EXPECT_TRUE(w.Overlaps(w));
  EXPECT_FALSE(w.Overlaps(I(200, 300)));  // touching end to start: no instant shared
  EXPECT_FALSE(I(200, 300).Overlaps(w));
  EXPECT_FALSE(w.Overlaps(I(0, 100)));
  EXPECT_FALSE(I(0, 100).Overlaps(w));
  EXPECT_TRUE(w.Overlaps(I(199, 300)));
  EXPECT_TRUE(I(199, 300).Overlaps(w));
  EXPECT_TRUE(w.Overlaps(I(0, 101)));
  EXPECT_TRUE(w.Overlaps(I(150, 151)));  // inside
  EXPECT_TRUE(w.Overlaps(I(0, 1000)));   // around
  // Empty intervals overlap nothing, not even an interval around them.
  EXPECT_FALSE(w.Overlaps(I(150, 150)));
  EXPECT_FALSE(I(150, 150).Overlaps(w));
  EXPECT_FALSE(I(150, 150).Overlaps(I(150, 150)));
  EXPECT_FALSE(w.Overlaps(I(180, 120)));
}

TEST(IntervalTest, SubsetAtTheBoundaries) {
  const Interval w = I(100, 200);
  EXPECT_TRUE(w.IsSubsetOf(w));
  EXPECT_TRUE(I(100, 150).IsSubsetOf(w));
  EXPECT_TRUE(I(150, 200).IsSubsetOf(w));
  EXPECT_FALSE(I(99, 150).IsSubsetOf(w));
  EXPECT_FALSE(I(150, 201).IsSubsetOf(w));
  EXPECT_FALSE(w.IsSubsetOf(I(100, 150)));
  EXPECT_FALSE(I(0, 1000).IsSubsetOf(w));
  EXPECT_FALSE(I(300, 400).IsSubsetOf(w));
  // An empty interval is a subset of anything, even of an empty one.
  EXPECT_TRUE(I(500, 500).IsSubsetOf(w));
  EXPECT_TRUE(I(7, 3).IsSubsetOf(w));
  EXPECT_TRUE(I(5, 5).IsSubsetOf(I(9, 9)));
  // A non-empty interval is never a subset of an empty one.
  EXPECT_FALSE(I(5, 6).IsSubsetOf(I(5, 5)));
  EXPECT_FALSE(I(5, 6).IsSubsetOf(I(6, 5)));
}

TEST(IntervalTest, ExtremesDoNotOverflow) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const Interval all = I(0, kMax);
  EXPECT_TRUE(all.Contains(kMax - 1));
  EXPECT_FALSE(all.Contains(kMax));
  EXPECT_EQ(all.Seconds(), kMax);
  EXPECT_TRUE(I(kMax - 1, kMax).IsSubsetOf(all));
  EXPECT_TRUE(I(kMax - 1, kMax).Overlaps(all));
}

TEST(IntervalTest, ToStringAndEquality) {
  EXPECT_EQ(I(1, 2).ToString(), "[1, 2)");
  EXPECT_EQ(I(1, 2), I(1, 2));
  EXPECT_NE(I(1, 2), I(1, 3));
}

}  // namespace
}  // namespace bourse::core
