// RedemptionBook: what a node guard has redeemed, refusing double redemption
// and oversubscription exactly as DESIGN §3 defines them.
//
//   RedemptionBook book;
//   Verdict<EffectiveLeaf> v = VerifyChain(chain, trusted, node_id, now);   // rcap.h
//   if (!v.ok()) return v.refusal();
//   Verdict<Redemption> r = book.Redeem(chain);      // all-or-nothing
//   if (!r.ok()) return r.refusal();                 // double_redemption / oversubscribed
//   ...
//   book.Release(leaf_id);                           // teardown
//   book.ReleaseExpired(now);                        // expiry
//   // at boot, from the guard's own database:
//   Verdict<size_t> n = book.Restore(saved_chains);
//
// Rule: for every ticket T and every instant t, the redeemed leaves that are T
// or descend from T and are valid at t sum to at most T in cpu_mcores, mem_mib,
// disk_mib and net_min_kbps. net_max_kbps is a ceiling: never summed (the
// chain checks already cap each child's by its parent's). So siblings that do
// not overlap in time may each use all of T, and a ticket redeemed itself
// leaves nothing for its own children (and vice versa).
// Tickets are identified by id; a chain presenting an id already known with
// different content is refused as double_redemption.
//
// The book checks links by id only (parent ids); signatures, trust, nodes and
// time are VerifyChain's job, done first by the caller.
//
// Cost: Redeem is O(chain length x breakpoints of each ancestor inside the
// leaf's interval); 1,000 slivers restore in well under a millisecond each.
//
// Thread safety: all methods are safe from many threads (one internal mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/interval.h"
#include "core/resource_vector.h"
#include "ledger/rcap.h"

namespace bourse::ledger {

struct Redemption {
  std::string leaf_id;
  std::string node;
  core::ResourceVector res;
  core::Interval interval;
  std::vector<std::string> ancestry;  // ids root first, the leaf last
};

class RedemptionBook {
 public:
  RedemptionBook();
  ~RedemptionBook();
  RedemptionBook(const RedemptionBook&) = delete;
  RedemptionBook& operator=(const RedemptionBook&) = delete;

  // Records the chain's leaf as redeemed. Refusals: malformed (empty chain),
  // broken_link (a child's parent is not the previous id), double_redemption
  // (leaf already redeemed, or an id known with different content),
  // oversubscribed (some ticket of the chain would be exceeded at some instant;
  // the detail names the ticket, the component and the instant).
  // A refused chain changes nothing.
  Verdict<Redemption> Redeem(std::span<const Rcap> chain);

  // Would Redeem succeed? Changes nothing.
  std::optional<Refusal> Check(std::span<const Rcap> chain) const;

  // Returns the leaf's share to every ticket above it. False when not redeemed.
  bool Release(std::string_view leaf_id);
  // Releases every redeemed leaf whose not_after <= now; returns their ids.
  std::vector<std::string> ReleaseExpired(int64_t now_seconds);

  // Redeems each chain in order (as the guard persisted them). On the first
  // refusal the book is left exactly as before the call and that refusal is
  // returned with "chains[i]: " prefixed to its detail; else the count.
  Verdict<size_t> Restore(std::span<const std::vector<Rcap>> chains);

  bool IsRedeemed(std::string_view leaf_id) const;
  size_t size() const;
  std::vector<Redemption> Redeemed() const;

  // The largest use, over [interval), of ticket `id` by redeemed leaves at or
  // below it, per quantity (net_max_kbps is 0). not_found-like: all zero when
  // the ticket is unknown.
  core::ResourceVector PeakUse(std::string_view id, const core::Interval& interval) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bourse::ledger
