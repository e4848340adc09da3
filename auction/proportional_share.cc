#include "auction/proportional_share.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace bourse::auction {

using core::Money;
using core::Result;
using core::Status;

namespace {

__extension__ typedef __int128 i128;

constexpr int64_t kNanosPerSecond = 1'000'000'000;

Result<int64_t> ToInt64Nanos(const Money& m, const char* field) {
  if (m.is_negative()) return core::InvalidArgument(std::string(field) + ": must not be negative");
  if (m.nanos() > INT64_MAX) {
    return core::InvalidArgument(std::string(field) + ": above 2^63-1 nano-credits");
  }
  return static_cast<int64_t>(m.nanos());
}

Money MoneyOf(i128 v) {
  // Values here are sums of int64 nanos over at most a few million entries.
  return *Money::FromRep(Money::Rep(static_cast<long long>(v >> 64)) * (Money::Rep(1) << 64) +
                         Money::Rep(static_cast<unsigned long long>(v)));
}

}  // namespace

Status ApportionLargestRemainder(std::span<const int64_t> weights, int64_t total,
                                 std::vector<int64_t>& out) {
  const size_t n = weights.size();
  if (n == 0) return core::InvalidArgument("apportion: no weights");
  if (total < 0) return core::InvalidArgument("apportion: negative total");
  i128 sum = 0;
  for (int64_t w : weights) {
    if (w < 0) return core::InvalidArgument("apportion: negative weight");
    sum += w;
  }
  if (sum == 0) return core::InvalidArgument("apportion: all weights zero");
  out.resize(n);
  const double scale = static_cast<double>(total) / static_cast<double>(sum);
  int64_t given = 0;
  const bool narrow = sum <= static_cast<i128>(UINT64_MAX);
  // Remainders fit in 64 bits when the sum does (remainder < sum).
  thread_local std::vector<uint64_t> rem64;
  thread_local std::vector<i128> rem128;
  if (narrow)
    rem64.resize(n);
  else
    rem128.resize(n);
  if (total == 0 || sum <= INT64_MAX / total) {
    // Every product total * w fits in int64: the common case, kept cheap.
    const int64_t s64 = static_cast<int64_t>(sum);
    for (size_t i = 0; i < n; ++i) {
      int64_t q = static_cast<int64_t>(static_cast<double>(weights[i]) * scale);
      int64_t r = total * weights[i] - q * s64;
      while (r < 0) {
        --q;
        r += s64;
      }
      while (r >= s64) {
        ++q;
        r -= s64;
      }
      out[i] = q;
      given += q;
      rem64[i] = static_cast<uint64_t>(r);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      // floor(total * w / sum): a floating estimate corrected exactly.
      int64_t q = static_cast<int64_t>(static_cast<double>(weights[i]) * scale);
      i128 r = static_cast<i128>(total) * weights[i] - static_cast<i128>(q) * sum;
      if (r < 0 || r >= sum) {
        i128 adj = r / sum;
        q += static_cast<int64_t>(adj);
        r -= adj * sum;
      }
      while (r < 0) {
        --q;
        r += sum;
      }
      while (r >= sum) {
        ++q;
        r -= sum;
      }
      out[i] = q;
      given += q;
      if (narrow)
        rem64[i] = static_cast<uint64_t>(r);
      else
        rem128[i] = r;
    }
  }
  int64_t left = total - given;  // in [0, n)
  if (left == 0) return Status();
  if (narrow) {
    // Bucket the remainders by their leading fraction of the sum (monotone in
    // the remainder), find the bucket holding the left-th largest, and sort
    // only that bucket: exact, and linear time.
    constexpr int kBuckets = 1024;
    int counts[kBuckets] = {};
    thread_local std::vector<uint16_t> bucket;
    bucket.resize(n);
    const double to_bucket = kBuckets / static_cast<double>(sum);
    for (size_t i = 0; i < n; ++i) {
      int b = static_cast<int>(static_cast<double>(rem64[i]) * to_bucket);
      b = std::min(b, kBuckets - 1);
      bucket[i] = static_cast<uint16_t>(b);
      ++counts[b];
    }
    int beta = kBuckets - 1;
    int64_t above = 0;
    while (above + counts[beta] < left) above += counts[beta--];
    thread_local std::vector<size_t> tied;
    tied.clear();
    for (size_t i = 0; i < n; ++i) {
      out[i] += bucket[i] > beta;  // branch-free: most remainders are not tied
      if (bucket[i] == beta) [[unlikely]]
        tied.push_back(i);
    }
    std::stable_sort(tied.begin(), tied.end(),
                     [&](size_t a, size_t b) { return rem64[a] > rem64[b]; });
    for (int64_t k = 0; k < left - above; ++k) ++out[tied[static_cast<size_t>(k)]];
  } else {
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](size_t a, size_t b) { return rem128[a] > rem128[b]; });
    for (int64_t k = 0; k < left; ++k) ++out[idx[static_cast<size_t>(k)]];
  }
  return Status();
}

Result<ShareNode> ShareNode::Create(int64_t units, const Money& reserve_rate) {
  if (units < 0) return core::InvalidArgument("share node: units must not be negative");
  ShareNode node;
  node.units_ = units;
  BOURSE_ASSIGN_OR_RETURN(node.reserve_, ToInt64Nanos(reserve_rate, "reserve_rate"));
  node.reserve_units_ = units;
  return node;
}

size_t ShareNode::IndexOf(uint64_t bidder) const {
  auto it = index_.find(bidder);
  return it == index_.end() ? bidders_.size() : it->second;
}

Status ShareNode::SetBid(uint64_t bidder, const Money& rate, const Money& budget) {
  BOURSE_ASSIGN_OR_RETURN(int64_t r, ToInt64Nanos(rate, "rate"));
  BOURSE_ASSIGN_OR_RETURN(int64_t b, ToInt64Nanos(budget, "budget"));
  const size_t i = IndexOf(bidder);
  if (r == 0) {
    if (i < bidders_.size()) return RemoveBid(bidder);
    return Status();
  }
  if (i < bidders_.size()) {
    rates_[i] = r;
    budgets_[i] = b;
  } else {
    index_.emplace(bidder, bidders_.size());
    bidders_.push_back(bidder);
    rates_.push_back(r);
    budgets_.push_back(b);
    units_out_.push_back(0);
  }
  return Status();
}

Status ShareNode::RemoveBid(uint64_t bidder) {
  const size_t i = IndexOf(bidder);
  if (i == bidders_.size()) return core::NotFound("share node: no bid from this bidder");
  std::vector<bool> drop(bidders_.size(), false);
  drop[i] = true;
  RemoveMarked(drop);
  return Status();
}

// Removes the marked bids in one pass, keeping the others' order (it breaks
// apportionment ties).
void ShareNode::RemoveMarked(const std::vector<bool>& drop) {
  size_t w = 0;
  for (size_t r = 0; r < bidders_.size(); ++r) {
    if (drop[r]) {
      index_.erase(bidders_[r]);
      continue;
    }
    bidders_[w] = bidders_[r];
    rates_[w] = rates_[r];
    budgets_[w] = budgets_[r];
    units_out_[w] = units_out_[r];
    index_[bidders_[w]] = w;
    ++w;
  }
  bidders_.resize(w);
  rates_.resize(w);
  budgets_.resize(w);
  units_out_.resize(w);
}

void ShareNode::Recompute() {
  const size_t n = rates_.size();
  if (n == 0 && reserve_ == 0) {
    reserve_units_ = units_;  // nobody bids: the owner keeps everything
    return;
  }
  weights_.assign(rates_.begin(), rates_.end());
  if (reserve_ > 0) weights_.push_back(reserve_);
  ApportionLargestRemainder(weights_, units_, split_).IgnoreError();  // weights are valid
  std::copy(split_.begin(), split_.begin() + static_cast<ptrdiff_t>(n), units_out_.begin());
  reserve_units_ = reserve_ > 0 ? split_[n] : 0;
}

ShareFraction ShareNode::ShareOf(uint64_t bidder) const {
  ShareFraction f;
  i128 sum = reserve_;
  for (int64_t r : rates_) sum += r;
  f.denominator = MoneyOf(sum).nanos();
  const size_t i = IndexOf(bidder);
  if (i < rates_.size()) f.numerator = rates_[i];
  return f;
}

int64_t ShareNode::units_of(uint64_t bidder) const {
  const size_t i = IndexOf(bidder);
  return i < units_out_.size() ? units_out_[i] : 0;
}

Money ShareNode::budget_of(uint64_t bidder) const {
  const size_t i = IndexOf(bidder);
  return i < budgets_.size() ? Money::FromNanos(budgets_[i]) : Money();
}

Result<ChargeResult> ShareNode::Advance(int64_t elapsed_ns) {
  if (elapsed_ns < 0) return core::InvalidArgument("share node: elapsed time must not be negative");
  ChargeResult out;
  const size_t n = rates_.size();
  std::vector<int64_t> pay(n, 0);
  std::vector<bool> out_of_budget(n, false);
  // Exact amounts rate * T / 10^9 for those who stay: floors, then the
  // leftover nano-credits of the floored total to the largest remainders.
  std::vector<size_t> stay;
  std::vector<int64_t> rem(n, 0);
  i128 total_num = 0;
  int64_t floors = 0;
  for (size_t i = 0; i < n; ++i) {
    const i128 num = static_cast<i128>(rates_[i]) * elapsed_ns;  // nanos * 10^9
    if (num >= static_cast<i128>(budgets_[i]) * kNanosPerSecond) {
      out_of_budget[i] = true;
      pay[i] = budgets_[i];
      continue;
    }
    pay[i] = static_cast<int64_t>(num / kNanosPerSecond);
    rem[i] = static_cast<int64_t>(num % kNanosPerSecond);
    total_num += num;
    floors += pay[i];
    stay.push_back(i);
  }
  int64_t left = static_cast<int64_t>(total_num / kNanosPerSecond) - floors;  // in [0, |stay|)
  std::stable_sort(stay.begin(), stay.end(), [&](size_t a, size_t b) { return rem[a] > rem[b]; });
  for (int64_t k = 0; k < left; ++k) ++pay[stay[static_cast<size_t>(k)]];
  i128 received = 0;
  for (size_t i = 0; i < n; ++i) {
    out.payments.push_back({bidders_[i], Money::FromNanos(pay[i])});
    received += pay[i];
    budgets_[i] -= pay[i];
    if (out_of_budget[i]) {
      DropOut d;
      d.bidder = bidders_[i];
      d.at_ns_num = Money::Rep(budgets_[i] + pay[i]) * kNanosPerSecond;
      d.at_ns_den = rates_[i];
      out.dropouts.push_back(d);
    }
  }
  out.seller_receives = MoneyOf(received);
  std::stable_sort(out.dropouts.begin(), out.dropouts.end(),
                   [](const DropOut& a, const DropOut& b) {
                     using boost::multiprecision::cpp_int;
                     return cpp_int(a.at_ns_num) * b.at_ns_den < cpp_int(b.at_ns_num) * a.at_ns_den;
                   });
  if (!out.dropouts.empty()) RemoveMarked(out_of_budget);
  Recompute();
  return out;
}

Result<std::vector<Money>> BestResponse(const Money& budget, std::span<const double> weights,
                                        std::span<const Money> others) {
  const size_t n = weights.size();
  if (others.size() != n) return core::InvalidArgument("best response: weights and others differ");
  BOURSE_ASSIGN_OR_RETURN(int64_t x_total, ToInt64Nanos(budget, "budget"));
  std::vector<int64_t> y(n);
  bool any = false;
  for (size_t j = 0; j < n; ++j) {
    if (!(weights[j] >= 0) || !std::isfinite(weights[j])) {
      return core::InvalidArgument("best response: weights[" + std::to_string(j) +
                                   "] must be a non-negative number");
    }
    any |= weights[j] > 0;
    BOURSE_ASSIGN_OR_RETURN(y[j], ToInt64Nanos(others[j], "others"));
  }
  if (!any) return core::InvalidArgument("best response: no node has a positive weight");
  std::vector<int64_t> x(n, 0);
  int64_t left = x_total;
  // Uncontested nodes: the smallest positive rate already wins the node.
  std::vector<size_t> free_nodes;
  for (size_t j = 0; j < n; ++j) {
    if (weights[j] > 0 && y[j] == 0) free_nodes.push_back(j);
  }
  std::stable_sort(free_nodes.begin(), free_nodes.end(),
                   [&](size_t a, size_t b) { return weights[a] > weights[b]; });
  for (size_t j : free_nodes) {
    if (left == 0) break;
    x[j] = 1;
    --left;
  }
  std::vector<size_t> order;
  for (size_t j = 0; j < n; ++j) {
    if (weights[j] > 0 && y[j] > 0) order.push_back(j);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return weights[a] / static_cast<double>(y[a]) > weights[b] / static_cast<double>(y[b]);
  });
  long double sum_sqrt = 0, sum_y = 0;
  size_t k = 0;
  for (; k < order.size(); ++k) {
    const size_t j = order[k];
    const long double wy = std::sqrt(static_cast<long double>(weights[j]) * y[j]);
    const long double s2 = sum_sqrt + wy, y2 = sum_y + y[j];
    // Node j is active iff its bid at the resulting multiplier is positive.
    if (std::sqrt(static_cast<long double>(weights[j]) / y[j]) * (left + y2) <= s2) break;
    sum_sqrt = s2;
    sum_y = y2;
  }
  if (k > 0 && left > 0) {
    std::vector<int64_t> ideal(k);
    for (size_t a = 0; a < k; ++a) {
      const size_t j = order[a];
      long double xj =
          std::sqrt(static_cast<long double>(weights[j]) * y[j]) * (left + sum_y) / sum_sqrt - y[j];
      ideal[a] = std::max<int64_t>(0, std::llround(xj));
    }
    if (std::all_of(ideal.begin(), ideal.end(), [](int64_t v) { return v == 0; })) ideal[0] = 1;
    std::vector<int64_t> parts;
    BOURSE_RETURN_IF_ERROR(ApportionLargestRemainder(ideal, left, parts));
    for (size_t a = 0; a < k; ++a) x[order[a]] += parts[a];
    left = 0;
  }
  if (left > 0) {
    // Every remaining node is uncontested: spread what is left over them.
    std::vector<int64_t> w1(free_nodes.size(), 1);
    std::vector<int64_t> parts;
    BOURSE_RETURN_IF_ERROR(ApportionLargestRemainder(w1, left, parts));
    for (size_t a = 0; a < free_nodes.size(); ++a) x[free_nodes[a]] += parts[a];
  }
  std::vector<Money> rates;
  rates.reserve(n);
  for (int64_t v : x) rates.push_back(Money::FromNanos(v));
  return rates;
}

}  // namespace bourse::auction
