// The decisions of the example services (clients/examples/README.md), apart
// from the HTTP calls that carry them out, so they are unit-tested
// (tests/clients/examples_plans_test.cc) and read on their own: which window
// a lease or a renewal covers, which rounds to bid on and with what bundles,
// which nodes need a share bid, which markets and round offers the operator
// makes. Every function is pure: JSON in as the broker's GETs answer it,
// values or request bodies out.
//
//   core::Interval lease = FirstLease(now, 600);          // [now, end of the period)
//   CdnStep step = PlanCdn(now, 600, covered_until, rfq_open);
//   std::optional<nlohmann::json> bid = RoundBid(round, want, limit);
//   std::vector<std::string> todo = NodesNeedingShareBid(nodes, bids, "mit_batch");
//   std::vector<MarketSpec> missing = MissingMarkets(nodes, markets, unit, 600, now);
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/interval.h"
#include "core/money.h"
#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::examples {

// ---- the testbed's periods: markets sell aligned windows [k*P, (k+1)*P) ----

// The start of the period holding unix time t, and its end (start + period).
int64_t PeriodStart(int64_t t, int64_t period);
int64_t PeriodEnd(int64_t t, int64_t period);

// ---- content distribution (bourse-example-cdn) ----

// A lease shorter than this is not worth an RFQ: the first lease then runs
// through the next period too.
inline constexpr int64_t kMinLeaseS = 60;
// An RFQ closes (and is awarded) this long after it opens: long enough for
// the pooling agents' next pass to quote, short enough to get nodes at once.
inline constexpr int64_t kRfqCloseAheadS = 12;

// The first lease: from now to the end of the current period, or to the
// end of the next one when less than kMinLeaseS of this one is left.
core::Interval FirstLease(int64_t now, int64_t period);
// The renewal of a lease that ends at `end`: the rest of the period holding
// `end`, i.e. the next whole period when `end` is a period boundary. An
// acquire needs a market window that covers it, and the operator's markets
// are exactly these periods.
core::Interval Renewal(int64_t end, int64_t period);
// How long before a lease ends the service renews it: a third of a period,
// at least 20 s and at most 300 s (time for an RFQ fallback to be awarded).
int64_t RenewLead(int64_t period);

enum class CdnStep {
  kWaitForRfq,  // an RFQ of ours is open: its award is bound when it comes
  kLease,       // nothing bound now: lease FirstLease through an RFQ
  kRenew,       // the lease ends within RenewLead: acquire Renewal(covered_until)
  kIdle,        // covered, and not yet time to renew
};
// covered_until: the end of what is bound (CoveredUntil); rfq_open: whether
// one of our RFQs is still open.
CdnStep PlanCdn(int64_t now, int64_t period, int64_t covered_until, bool rfq_open);

// The end of the capacity bound to a slice: the latest not_after among its
// bindings (GET /v1/slices/{s}/bindings) that are not refused or expired;
// 0 when there is none.
int64_t CoveredUntil(const nlohmann::json& bindings);
// The leaf rcaps of the buyer's awarded RFQs (GET /v1/rfqs?buyer=&state=awarded)
// that are not bound to the slice yet and have not ended, in award order.
std::vector<std::string> UnboundAwards(const nlohmann::json& rfqs, const nlohmann::json& bindings,
                                       int64_t now);

// What a service asks for: `res` on each of `nodes` nodes in >= `min_sites`
// sites over `window`.
struct Rspec {
  core::ResourceVector res;
  int64_t nodes = 1;
  int64_t min_sites = 1;
  core::Interval window;
};
// POST /v1/rfqs: award auto, closing at `close`, at most max_price in all.
nlohmann::json RfqBody(const Rspec& want, const core::Money& max_price, int64_t close);
// POST /v1/acquire: the order books first, an RFQ for the same rspec when
// they cannot fill it ("fallback":"rfq").
nlohmann::json AcquireBody(const Rspec& want, const core::Money& max_price);

// ---- measurement (bourse-example-measure) ----

// Open rounds (GET /v1/rounds?state=open) not in `done` whose close is
// still ahead, oldest first.
std::vector<nlohmann::json> RoundsToBid(const nlohmann::json& rounds,
                                        const std::set<std::string>& done, int64_t now);
// The sealed bid for one round: XOR of (a) "want.nodes of the offered nodes
// in >= want.min_sites sites" over the offers that fit want.res, and (b) two
// named nodes of different sites (the first fitting offer and the first
// fitting offer of another site). A bundle that the offers cannot serve is
// left out; nullopt when neither fits (`why` says so).
std::optional<nlohmann::json> RoundBid(const nlohmann::json& round, const Rspec& want,
                                       const core::Money& limit, std::string* why);
// What `me` won in cleared rounds (GET /v1/rounds?state=cleared) and has not
// bound yet, for rounds whose window has not ended: rcap ids with their node.
struct Won {
  std::string round, rcap, node;
};
std::vector<Won> UnboundWins(const nlohmann::json& rounds, const std::string& me,
                             const nlohmann::json& bindings, int64_t now);

// ---- batch (bourse-example-batch) ----

// `--nodes`: "a,b,c" names those nodes; "all" is every node (an empty list).
// Errors: invalid_argument for an empty name ("a,,b", "") or "all" among others.
core::Result<std::vector<std::string>> ParseNodeList(const std::string& text);
// The nodes of `targets` on which `slice` has no active share bid in `bids`
// (GET /v1/share_bids?holder=ME: {"bids":[...]}), in the order of targets.
std::vector<std::string> NodesNeedingShareBid(const std::vector<std::string>& targets,
                                              const nlohmann::json& bids, const std::string& slice);
// The slice's row of a node's share table (GET /v1/nodes/{n}/shares), or
// null when the slice has no share there.
nlohmann::json SliceShare(const nlohmann::json& table, const std::string& slice);

// ---- the operator (bourse-example-operator) ----

// Trading on a period's market ends this long before the period does.
inline constexpr int64_t kMarketCloseBeforeEndS = 60;
// A round's bids are taken for this long; it is cleared at its close.
inline constexpr int64_t kRoundOpenS = 15;
// A round over less than this of the current period offers the next period.
inline constexpr int64_t kMinRoundWindowS = 60;
// Each round escrows its offer as a child of the rcap offered, so offers
// nest deeper round after round within a period; a node verifies chains of
// at most 32 links and a winner's chain adds two (the escrow, the leaf).
inline constexpr size_t kMaxOfferDepth = 28;

// An order-book market to create: `unit` on `node` over one period.
struct MarketSpec {
  std::string node;
  core::Interval window;
  int64_t close = 0;
};
// For every node, the markets of the current and the next period (unit
// `unit`, closing kMarketCloseBeforeEndS before the period ends) that are
// not among `markets` (GET /v1/markets?state=open) and can still trade.
std::vector<MarketSpec> MissingMarkets(const std::vector<std::string>& nodes,
                                       const nlohmann::json& markets,
                                       const core::ResourceVector& unit, int64_t period,
                                       int64_t now);
// POST /v1/markets for one MarketSpec.
nlohmann::json MarketBody(const MarketSpec& m, const core::ResourceVector& unit);

// A round that closes at `close` offers the rest of the period from its
// close, or the next period when less than kMinRoundWindowS is left.
core::Interval RoundWindow(int64_t close, int64_t period);
// Whether a chain (root first, as GET /v1/rcaps/{id} gives it) is the
// broker's own pool: every link held by the broker's key. Capacity a seller
// escrowed with the broker (a sell order's or a quote's) is not the pool's.
bool IsPoolChain(const nlohmann::json& chain, const std::string& broker_key);

// A broker-held rcap that could be offered in a round.
struct OfferCandidate {
  std::string rcap, node;
  size_t depth = 0;           // links in its chain, itself included
  core::ResourceVector free;  // what is free of it over the round's window
};
// The rcap of `offers` that a refused POST /v1/rounds names in its message
// ("offers[2]: rcap X is escrowed for resting order 7 ..."), or "" when it
// names none: the operator leaves it out of later rounds.
std::string RefusedOffer(const std::string& message, const std::vector<std::string>& offers);
// One offer per node: the shallowest candidate with something free (cpu,
// memory, disk or bandwidth) and no deeper than kMaxOfferDepth; nodes
// without one are left out. Rcap ids in node order.
std::vector<std::string> ChooseOffers(const std::vector<OfferCandidate>& candidates);

}  // namespace bourse::examples
