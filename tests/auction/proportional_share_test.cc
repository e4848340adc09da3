// Proportional share: exact shares, largest-remainder units, exact and
// conserving charges with budget drop-outs, and the best-response helper.
#include "auction/proportional_share.h"

#include <gtest/gtest.h>

#include <boost/multiprecision/cpp_int.hpp>
#include <cmath>

#include "core/random.h"

namespace bourse::auction {
namespace {

using boost::multiprecision::cpp_int;
using core::Money;

Money C(const char* s) { return *Money::Parse(s); }

TEST(ProportionalShareTest, ExactSharesAndLargestRemainderUnits) {
  auto node = ShareNode::Create(10000, Money());
  ASSERT_TRUE(node.ok());
  ASSERT_TRUE(node->SetBid(1, C("1"), C("100")).ok());
  ASSERT_TRUE(node->SetBid(2, C("2"), C("100")).ok());
  ASSERT_TRUE(node->SetBid(3, C("3"), C("100")).ok());
  node->Recompute();
  ShareFraction s = node->ShareOf(1);
  EXPECT_EQ(s.numerator, 1'000'000'000);
  EXPECT_EQ(s.denominator, Money::Rep(6'000'000'000LL));
  EXPECT_EQ(node->units_of(1), 1667);  // 1666.67 has the largest remainder
  EXPECT_EQ(node->units_of(2), 3333);
  EXPECT_EQ(node->units_of(3), 5000);
  EXPECT_EQ(node->units_reserved(), 0);
  // Replace and remove.
  ASSERT_TRUE(node->SetBid(3, C("0"), C("0")).ok());
  node->Recompute();
  EXPECT_EQ(node->units_of(1) + node->units_of(2), 10000);
  EXPECT_EQ(node->units_of(3), 0);
  EXPECT_EQ(node->RemoveBid(3).code(), core::StatusCode::kNotFound);
  EXPECT_FALSE(node->SetBid(4, C("-1"), C("1")).ok());
  EXPECT_FALSE(ShareNode::Create(-1, Money()).ok());
}

TEST(ProportionalShareTest, ReserveShareStaysUnsold) {
  auto node = ShareNode::Create(1000, C("3"));
  ASSERT_TRUE(node.ok());
  node->Recompute();
  EXPECT_EQ(node->units_reserved(), 1000);
  ASSERT_TRUE(node->SetBid(7, C("1"), C("10")).ok());
  node->Recompute();
  EXPECT_EQ(node->units_of(7), 250);
  EXPECT_EQ(node->units_reserved(), 750);
  EXPECT_EQ(node->ShareOf(7).denominator, Money::Rep(4'000'000'000LL));
}

TEST(ProportionalShareTest, ApportionMatchesSlowReference) {
  core::DeterministicRandom rng(7);
  std::vector<int64_t> out;
  for (int t = 0; t < 2000; ++t) {
    size_t n = 1 + rng.Uniform(30);
    std::vector<int64_t> w(n);
    for (auto& x : w) {
      x = t % 3 == 0 ? static_cast<int64_t>(rng.Uniform(5))
                     : static_cast<int64_t>(rng.NextU64() >> (1 + rng.Uniform(62)));
    }
    w[0] += 1;
    int64_t total = static_cast<int64_t>(rng.NextU64() >> (1 + rng.Uniform(62)));
    ASSERT_TRUE(ApportionLargestRemainder(w, total, out).ok());
    // Reference with unbounded integers and a stable sort.
    cpp_int sum = 0;
    for (int64_t x : w) sum += x;
    std::vector<cpp_int> base(n), rem(n);
    cpp_int given = 0;
    for (size_t i = 0; i < n; ++i) {
      base[i] = cpp_int(total) * w[i] / sum;
      rem[i] = cpp_int(total) * w[i] % sum;
      given += base[i];
    }
    std::vector<size_t> idx(n);
    for (size_t i = 0; i < n; ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return rem[a] > rem[b]; });
    for (cpp_int k = 0; k < cpp_int(total) - given; ++k) base[idx[static_cast<size_t>(k)]] += 1;
    int64_t got_sum = 0;
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(cpp_int(out[i]), base[i]) << "t=" << t << " i=" << i;
      got_sum += out[i];
    }
    ASSERT_EQ(got_sum, total);
  }
  EXPECT_FALSE(ApportionLargestRemainder(std::vector<int64_t>{0, 0}, 5, out).ok());
  EXPECT_FALSE(ApportionLargestRemainder(std::vector<int64_t>{}, 5, out).ok());
}

TEST(ProportionalShareTest, ChargingIsExactConservesMoneyAndDropsOutAtTheInstant) {
  core::DeterministicRandom rng(11);
  for (int t = 0; t < 300; ++t) {
    auto node = ShareNode::Create(10000, Money());
    ASSERT_TRUE(node.ok());
    size_t n = 1 + rng.Uniform(20);
    std::vector<int64_t> rate(n), budget(n);
    for (size_t i = 0; i < n; ++i) {
      rate[i] = 1 + static_cast<int64_t>(rng.Uniform(5'000'000'000));
      budget[i] = static_cast<int64_t>(rng.Uniform(400'000'000'000));
      ASSERT_TRUE(node->SetBid(i, Money::FromNanos(rate[i]), Money::FromNanos(budget[i])).ok());
    }
    node->Recompute();
    const int64_t elapsed = 1 + static_cast<int64_t>(rng.Uniform(120'000'000'000));
    auto r = node->Advance(elapsed);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->payments.size(), n);
    cpp_int sum = 0;
    size_t dropped = 0;
    for (size_t i = 0; i < n; ++i) {
      const cpp_int paid(r->payments[i].amount.nanos());
      sum += paid;
      const cpp_int exact_x1e9 = cpp_int(rate[i]) * elapsed;  // exact charge * 10^9
      if (exact_x1e9 >= cpp_int(budget[i]) * 1'000'000'000) {
        EXPECT_EQ(paid, budget[i]);  // pays exactly its budget, then leaves
        ++dropped;
        EXPECT_EQ(node->units_of(i), 0);
      } else {
        cpp_int diff = paid * 1'000'000'000 - exact_x1e9;
        EXPECT_LT(abs(diff), 1'000'000'000) << "off by a nano-credit or more";
        EXPECT_EQ(node->budget_of(i).nanos(), budget[i] - static_cast<int64_t>(paid));
      }
    }
    EXPECT_EQ(cpp_int(r->seller_receives.nanos()), sum);  // conservation
    ASSERT_EQ(r->dropouts.size(), dropped);
    for (size_t k = 0; k < r->dropouts.size(); ++k) {
      const DropOut& d = r->dropouts[k];
      EXPECT_EQ(cpp_int(d.at_ns_num), cpp_int(budget[d.bidder]) * 1'000'000'000);
      EXPECT_EQ(d.at_ns_den, rate[d.bidder]);
      EXPECT_LE(cpp_int(d.at_ns_num), cpp_int(elapsed) * d.at_ns_den);
      if (k > 0) {  // in time order
        const DropOut& p = r->dropouts[k - 1];
        EXPECT_LE(cpp_int(p.at_ns_num) * d.at_ns_den, cpp_int(d.at_ns_num) * p.at_ns_den);
      }
    }
    EXPECT_EQ(node->bids(), n - dropped);
    if (node->bids() > 0) {
      int64_t units = node->units_reserved();
      for (size_t i = 0; i < n; ++i) units += node->units_of(i);
      EXPECT_EQ(units, 10000);  // the remaining bidders' shares grew
    }
  }
}

TEST(ProportionalShareTest, DropOutGrowsTheOthersShares) {
  auto node = ShareNode::Create(1000, Money());
  ASSERT_TRUE(node.ok());
  ASSERT_TRUE(node->SetBid(1, C("1"), C("30")).ok());  // runs out after 30 s
  ASSERT_TRUE(node->SetBid(2, C("1"), C("1000")).ok());
  node->Recompute();
  EXPECT_EQ(node->units_of(2), 500);
  auto r = node->Advance(60'000'000'000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->payments[0].amount, C("30"));
  EXPECT_EQ(r->payments[1].amount, C("60"));
  EXPECT_EQ(r->seller_receives, C("90"));
  ASSERT_EQ(r->dropouts.size(), 1u);
  EXPECT_EQ(r->dropouts[0].at_ns_num / r->dropouts[0].at_ns_den, 30'000'000'000LL);
  EXPECT_EQ(node->units_of(2), 1000);
  EXPECT_FALSE(node->Advance(-1).ok());
}

double Utility(const std::vector<double>& w, const std::vector<double>& y,
               const std::vector<double>& x) {
  double u = 0;
  for (size_t j = 0; j < w.size(); ++j) {
    if (x[j] + y[j] > 0) u += w[j] * x[j] / (x[j] + y[j]);
  }
  return u;
}

TEST(ProportionalShareTest, BestResponseSpendsExactlyTheBudgetAndIsOptimal) {
  core::DeterministicRandom rng(5);
  for (int t = 0; t < 200; ++t) {
    size_t n = 1 + rng.Uniform(8);
    std::vector<double> w(n), yd(n);
    std::vector<Money> y(n);
    for (size_t j = 0; j < n; ++j) {
      w[j] = static_cast<double>(rng.Uniform(100));
      int64_t yn = 1 + static_cast<int64_t>(rng.Uniform(10'000'000'000));
      y[j] = Money::FromNanos(yn);
      yd[j] = static_cast<double>(yn);
    }
    w[0] += 1;
    const int64_t budget = 1 + static_cast<int64_t>(rng.Uniform(20'000'000'000));
    auto x = BestResponse(Money::FromNanos(budget), w, y);
    ASSERT_TRUE(x.ok()) << x.status().ToString();
    std::vector<double> xd(n);
    int64_t total = 0;
    for (size_t j = 0; j < n; ++j) {
      ASSERT_FALSE((*x)[j].is_negative());
      total += static_cast<int64_t>((*x)[j].nanos());
      xd[j] = static_cast<double>(static_cast<int64_t>((*x)[j].nanos()));
    }
    ASSERT_EQ(total, budget);
    // No random reallocation of the budget does better.
    const double best = Utility(w, yd, xd);
    for (int k = 0; k < 50; ++k) {
      std::vector<double> alt(n);
      double s = 0;
      for (double& a : alt) s += (a = static_cast<double>(rng.Uniform(1000)));
      if (s == 0) continue;
      for (double& a : alt) a = a / s * static_cast<double>(budget);
      EXPECT_LE(Utility(w, yd, alt), best * (1 + 1e-9) + 1e-9);
    }
  }
  // An uncontested node gets the minimum rate that wins it.
  auto x = BestResponse(C("1"), std::vector<double>{1, 1}, std::vector<Money>{Money(), C("1")});
  ASSERT_TRUE(x.ok());
  EXPECT_EQ((*x)[0], Money::FromNanos(1));
  EXPECT_EQ((*x)[1], Money::FromNanos(999'999'999));
  EXPECT_FALSE(BestResponse(C("1"), std::vector<double>{0}, std::vector<Money>{C("1")}).ok());
  EXPECT_FALSE(BestResponse(C("1"), std::vector<double>{1}, std::vector<Money>{}).ok());
}

}  // namespace
}  // namespace bourse::auction
