#include "ledger/redemption_book.h"

#include <unordered_map>

#include "core/mutex.h"
#include "ledger/internal/timeline.h"

namespace bourse::ledger {

struct RedemptionBook::Impl {
  struct Ticket {
    Rcap rcap;
    internal::Timeline use;
    size_t refs = 0;
  };
  mutable core::Mutex mu;
  std::unordered_map<std::string, Ticket> tickets GUARDED_BY(mu);
  std::unordered_map<std::string, Redemption> redeemed GUARDED_BY(mu);

  std::optional<Refusal> CheckLocked(std::span<const Rcap> chain) const REQUIRES(mu) {
    if (chain.empty()) return Refusal{RefusalReason::kMalformed, "chain: empty"};
    for (size_t i = 1; i < chain.size(); ++i) {
      if (!chain[i].parent || *chain[i].parent != chain[i - 1].id) {
        return Refusal{RefusalReason::kBrokenLink,
                       "rcap " + chain[i].id + ": parent is not \"" + chain[i - 1].id + "\""};
      }
    }
    const Rcap& leaf = chain.back();
    if (redeemed.count(leaf.id)) {
      return Refusal{RefusalReason::kDoubleRedemption, "rcap " + leaf.id + " is already redeemed"};
    }
    for (const Rcap& r : chain) {
      auto it = tickets.find(r.id);
      if (it != tickets.end() && !(it->second.rcap == r)) {
        return Refusal{RefusalReason::kDoubleRedemption,
                       "rcap id " + r.id + " is already known here with different content"};
      }
    }
    for (size_t i = 0; i < chain.size(); ++i) {
      const Rcap& t = chain[i];
      auto it = tickets.find(t.id);
      internal::Timeline empty;
      const internal::Timeline& use = it == tickets.end() ? empty : it->second.use;
      if (auto bad = use.CheckAdd(leaf.interval, leaf.res, t.res)) {
        std::string what = i + 1 == chain.size() ? "itself" : "ticket " + t.id;
        return Refusal{RefusalReason::kOversubscribed,
                       "redeeming " + leaf.id + " would oversubscribe " + what + ": " + *bad};
      }
    }
    return std::nullopt;
  }

  Redemption ApplyLocked(std::span<const Rcap> chain) REQUIRES(mu) {
    const Rcap& leaf = chain.back();
    Redemption red{.leaf_id = leaf.id,
                   .node = leaf.node,
                   .res = leaf.res,
                   .interval = leaf.interval,
                   .ancestry = {}};
    for (const Rcap& t : chain) {
      auto it = tickets.find(t.id);
      if (it == tickets.end()) it = tickets.emplace(t.id, Ticket{t, {}, 0}).first;
      it->second.use.Add(leaf.interval, leaf.res);
      ++it->second.refs;
      red.ancestry.push_back(t.id);
    }
    redeemed.emplace(leaf.id, red);
    return red;
  }

  bool ReleaseLocked(std::string_view leaf_id) REQUIRES(mu) {
    auto it = redeemed.find(std::string(leaf_id));
    if (it == redeemed.end()) return false;
    const Redemption& red = it->second;
    for (const std::string& id : red.ancestry) {
      auto t = tickets.find(id);
      if (t == tickets.end()) continue;
      t->second.use.Remove(red.interval, red.res);
      if (--t->second.refs == 0) tickets.erase(t);
    }
    redeemed.erase(it);
    return true;
  }
};

RedemptionBook::RedemptionBook() : impl_(std::make_unique<Impl>()) {}
RedemptionBook::~RedemptionBook() = default;

Verdict<Redemption> RedemptionBook::Redeem(std::span<const Rcap> chain) {
  core::MutexLock lock(&impl_->mu);
  if (auto bad = impl_->CheckLocked(chain)) return *bad;
  return impl_->ApplyLocked(chain);
}

std::optional<Refusal> RedemptionBook::Check(std::span<const Rcap> chain) const {
  core::MutexLock lock(&impl_->mu);
  return impl_->CheckLocked(chain);
}

bool RedemptionBook::Release(std::string_view leaf_id) {
  core::MutexLock lock(&impl_->mu);
  return impl_->ReleaseLocked(leaf_id);
}

std::vector<std::string> RedemptionBook::ReleaseExpired(int64_t now_seconds) {
  core::MutexLock lock(&impl_->mu);
  std::vector<std::string> ids;
  for (const auto& [id, red] : impl_->redeemed) {
    if (red.interval.not_after <= now_seconds) ids.push_back(id);
  }
  for (const std::string& id : ids) impl_->ReleaseLocked(id);
  return ids;
}

Verdict<size_t> RedemptionBook::Restore(std::span<const std::vector<Rcap>> chains) {
  core::MutexLock lock(&impl_->mu);
  std::vector<std::string> done;
  for (size_t i = 0; i < chains.size(); ++i) {
    if (auto bad = impl_->CheckLocked(chains[i])) {
      for (auto it = done.rbegin(); it != done.rend(); ++it) impl_->ReleaseLocked(*it);
      bad->detail = "chains[" + std::to_string(i) + "]: " + bad->detail;
      return *bad;
    }
    done.push_back(impl_->ApplyLocked(chains[i]).leaf_id);
  }
  return chains.size();
}

bool RedemptionBook::IsRedeemed(std::string_view leaf_id) const {
  core::MutexLock lock(&impl_->mu);
  return impl_->redeemed.count(std::string(leaf_id)) > 0;
}

size_t RedemptionBook::size() const {
  core::MutexLock lock(&impl_->mu);
  return impl_->redeemed.size();
}

std::vector<Redemption> RedemptionBook::Redeemed() const {
  core::MutexLock lock(&impl_->mu);
  std::vector<Redemption> out;
  out.reserve(impl_->redeemed.size());
  for (const auto& [id, red] : impl_->redeemed) out.push_back(red);
  return out;
}

core::ResourceVector RedemptionBook::PeakUse(std::string_view id,
                                             const core::Interval& interval) const {
  core::MutexLock lock(&impl_->mu);
  auto it = impl_->tickets.find(std::string(id));
  if (it == impl_->tickets.end()) return {};
  return it->second.use.Peak(interval);
}

}  // namespace bourse::ledger
