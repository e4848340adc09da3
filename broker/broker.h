// Broker: the bourse service. It owns the ledger store, the broker's own
// tables (principals, sites, nodes, slices, bindings, redemptions, usage)
// in the same SQLite file, and the route registry served over HTTP.
//
//   BOURSE_RETURN_IF_ERROR(Broker::Initialize("bourse.db", ledger_key, admin.public_key()));
//   BOURSE_ASSIGN_OR_RETURN(auto broker, Broker::Open({.db_path = "bourse.db",
//                                                      .ledger_key = ledger_key}));
//   HttpServer server(&broker->router(), http_options, &broker->metrics(),
//                     [&] { return broker->LedgerSize(); });
//
// Every mutation runs through Mutate(): one ledger Store::Commit, i.e. one
// SQLite transaction (a savepoint inside a group commit) holding both the
// broker's rows and the ledger entries that record them; nothing is
// acknowledged before it is durable. Called from a signed request's handler,
// the first Mutate also records the request's (key, nonce) in b_nonces in
// that same transaction, so a signed request runs at most once, across
// restarts and kill -9 (docs/broker.md, "Requests that run once").
//
// How markets (issue #6) plug in: the engine (broker/markets/, its own
// library) gets the broker as its markets::Host (internal/markets_host.h),
// and settles each fill inside one Mutate() fn with the helpers below
// (Transfer/EscrowHold/EscrowRelease/EscrowSettle keep each account's
// history; SplitHeld splits a broker-held rcap and records it in the
// ledger); the broker registers the market routes (market_routes.cc), thin
// adapters around the engine's service functions.
//
// Thread safety: every method is safe from any thread once Open returns.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/events.h"
#include "broker/markets/markets.h"
#include "broker/metrics.h"
#include "broker/rate_limiter.h"
#include "broker/router.h"
#include "core/clock.h"
#include "core/keys.h"
#include "core/money.h"
#include "core/mutex.h"
#include "core/principal.h"
#include "core/status.h"
#include "ledger/rcap.h"
#include "ledger/store.h"

namespace bourse::broker {

namespace internal {
class MarketsHost;
class SliceCache;
}  // namespace internal

// The markets engine (broker/markets/), by the names the broker's code and
// tests have always used.
using markets::Markets;
using markets::MarketsOptions;

// The default and maximum lifetime of a slice (PLC's rule).
inline constexpr int64_t kDefaultSliceLifetimeS = 14 * 86400;
inline constexpr int64_t kMaxSliceLifetimeS = 56 * 86400;
inline constexpr int kDefaultSiteSliceLimit = 10;
inline constexpr size_t kMaxSliceNameLength = 64;
// How often, per node, a sliver report may change (each change is a ledger
// entry) and a logs report may replace the stored one: one every 10 s on
// average, with bursts of 12; beyond that 429 (docs/broker.md "Slivers").
inline constexpr double kNodeReportRate = 0.1;
inline constexpr int kNodeReportBurst = 12;

struct BrokerOptions {
  std::string db_path = "bourse.db";
  std::optional<core::PrivateKey> ledger_key;  // required
  const core::Clock* clock = nullptr;          // nullptr: SystemClock
  // Markets' background tick and share charging (tick_ms = 0: no background
  // thread; the owner calls markets()->Tick(), as tests with a ManualClock do).
  MarketsOptions markets;
  // Group-commit pacing, ledger::StoreOptions (bourse-broker's
  // --batch-interval-us and --sync-interval-us).
  int batch_interval_us = 0;
  int sync_interval_us = 0;
  // GET /v1/events (events.h): streams, buffers, polling.
  EventHubOptions events;
};

// Principals (core/principal.h) and the holder rule (ledger/rcap.h), by the
// names the broker's code has always used.
using core::Principal;
using core::PrincipalKind;
using core::PrincipalKindName;
using ledger::RequireHolder;

class Broker {
 public:
  // Creates a new database at `path` (refuses an existing file): the ledger
  // store signed by `ledger_key`, the broker principal and the first admin.
  // Errors: already_exists when the file exists; unavailable on I/O errors.
  static core::Status Initialize(const std::string& path, const core::PrivateKey& ledger_key,
                                 const core::PublicKey& admin);
  // Errors: not_found when the database does not exist (run init first);
  // failed_precondition when the ledger does not check out.
  static core::Result<std::unique_ptr<Broker>> Open(BrokerOptions options);
  ~Broker();

  Router& router() { return router_; }
  Metrics& metrics() { return metrics_; }
  ledger::Store& store() { return *store_; }
  const core::PublicKey& broker_key() const { return ledger_key_.public_key(); }
  const core::Clock& clock() const { return *clock_; }
  // The market module (never null once Open returns).
  Markets& markets() { return *markets_; }
  // The event stream's hub (never null once Open returns).
  EventHub& events() { return *events_; }
  int64_t LedgerSize() const;

  // One atomic unit: fn's rows and ledger entries commit together or not at
  // all. Inside a signed request's handler, the first call (Mutate or
  // MutateAsync) records the request's (key, nonce) before fn runs.
  // Errors: fn's own error, or the store's; unauthenticated "replayed
  // request" (fn not run) when that (key, nonce) is recorded already.
  core::Result<ledger::CommitResult> Mutate(const std::function<core::Status(ledger::Txn&)>& fn);
  // The same without waiting (ledger::Store::CommitAsync): `done` runs on
  // the ledger store's syncer thread once the commit is durable or has failed, so
  // it must only hand the result on.
  void MutateAsync(std::function<core::Status(ledger::Txn&)> fn,
                   std::function<void(core::Result<ledger::CommitResult>)> done);
  // For async routes (router.h): runs fn in the next commit and answers with
  // build() once it is durable, or with fn's or the commit's error. build
  // runs on the server's loop, not on the writer.
  void MutateAndRespond(std::function<core::Status(ledger::Txn&)> fn, Respond respond,
                        std::function<core::Result<ApiResponse>()> build);

  // ---- Helpers for use inside Mutate fns (markets use these) ----
  // Errors: permission_denied when `key` is not a registered principal.
  static core::Result<Principal> LookupPrincipal(storage::Connection* db, std::string_view key);
  // The same inside a Mutate fn, through the writer's statement cache.
  static core::Result<Principal> LookupPrincipal(ledger::Txn& txn, std::string_view key);
  core::Status Transfer(ledger::Txn& txn, std::string_view from, std::string_view to,
                        const core::Money& amount);
  core::Status EscrowHold(ledger::Txn& txn, std::string_view escrow_id, std::string_view account,
                          const core::Money& amount);
  core::Status EscrowRelease(ledger::Txn& txn, std::string_view escrow_id,
                             const core::Money& amount);
  core::Status EscrowSettle(ledger::Txn& txn, std::string_view escrow_id, std::string_view to,
                            const core::Money& amount);
  core::Status EscrowTopUp(ledger::Txn& txn, std::string_view escrow_id,
                           const core::Money& amount);
  // Splits rcap `parent_id`, held by the broker, into children signed by the
  // broker key, records them (rcap_split) and indexes their holders.
  // Errors: not_found; permission_denied unless the broker holds the parent;
  // failed_precondition exceeds_parent / outside_interval / oversubscribed.
  core::Result<std::vector<ledger::Rcap>> SplitHeld(ledger::Txn& txn, std::string_view parent_id,
                                                    std::span<const ledger::ChildSpec> children);
  // Records a rcap (and indexes its holder) unless already recorded.
  core::Status RecordRcapIfNew(ledger::Txn& txn, const ledger::Rcap& rcap);
  // Releases unused rcap `id`, held by the broker (rcap_released), and drops
  // it from b_rcaps (holdings, pools, its parent's children). Errors:
  // not_found; failed_precondition as ledger::CapacityLog::RecordReleased.
  core::Status ReleaseHeld(ledger::Txn& txn, std::string_view id);
  // Writes the end of every binding whose rcap's not_after has passed
  // (rcap_expired {node, rcap, slice}, DESIGN 4), each exactly once: the
  // entry and the binding's mark (b_bindings.expired_seq) commit together,
  // in batches of kExpireBatch per transaction, at most kExpireBatches
  // batches per call. Run by the markets' tick (Host::Tick); tests that
  // drive time call Markets::Tick() or this. Errors: the store's.
  core::Status ExpireBindings();
  static constexpr int kExpireBatch = 256;
  static constexpr int kExpireBatches = 16;
  // Call after a successful Mutate that changed or deleted slice `name` (the
  // slice read cache; every PLC route here does).
  void InvalidateSlice(const std::string& name);

 private:
  explicit Broker(BrokerOptions options);
  void RegisterServiceRoutes();
  void RegisterLedgerRoutes();
  void RegisterPlcRoutes();
  void RegisterCapacityRoutes();
  void RegisterAccountRoutes();
  void RegisterNodeRoutes();
  // Sliver reports of the node guards (sliver_routes.cc).
  void RegisterSliverRoutes();
  // The slice owners' ssh keys for the node guards (ssh_routes.cc).
  void RegisterSshRoutes();
  // The markets' routes (market_routes.cc), after the engine is open.
  void RegisterMarketRoutes();
  // GET /v1/events (event_routes.cc), after the markets.
  void RegisterEventRoutes();
  core::Status OpenEvents(const ApiRequest& q, const OpenStream& open);

  // PLC routes (plc_routes.cc), registered by RegisterPlcRoutes in this order.
  void RegisterPrincipalRoutes();
  void RegisterSiteRoutes();
  void RegisterSliceRoutes();
  void RegisterSliceUpdateRoutes();
  // GET of one row named by the path parameter `param`: the row as JSON, or
  // not_found "<what> <value> does not exist".
  core::Result<ApiResponse> GetRow(const ApiRequest& q, const std::string& sql,
                                   const std::string& param, const std::string& what,
                                   nlohmann::json (*row_json)(storage::Statement&));
  core::Result<ApiResponse> AddPrincipal(const ApiRequest& q);
  core::Result<ApiResponse> ListPrincipals(const ApiRequest& q);
  core::Result<ApiResponse> AddSite(const ApiRequest& q);
  core::Result<ApiResponse> ListSites(const ApiRequest& q);
  core::Result<ApiResponse> AddNode(const ApiRequest& q);
  core::Result<ApiResponse> ListNodes(const ApiRequest& q);
  core::Result<ApiResponse> CreateSlice(const ApiRequest& q);
  core::Result<ApiResponse> ListSlices(const ApiRequest& q);
  core::Result<ApiResponse> GetSlice(const ApiRequest& q);
  core::Result<ApiResponse> DeleteSlice(const ApiRequest& q);
  core::Result<ApiResponse> SetSliceOwners(const ApiRequest& q);
  core::Result<ApiResponse> SetSliceState(const ApiRequest& q);
  core::Result<ApiResponse> SetSliceResources(const ApiRequest& q);
  core::Result<ApiResponse> InstantiateSlice(const ApiRequest& q);
  core::Result<ApiResponse> RemoveSliceNodes(const ApiRequest& q);
  core::Result<ApiResponse> RenewSlice(const ApiRequest& q);
  core::Result<ApiResponse> AddBinding(const ApiRequest& q);
  core::Result<ApiResponse> ListBindings(const ApiRequest& q);

  // Key rotation routes (key_routes.cc): POST /v1/nodes/{node}/key (`node`)
  // and POST /v1/sites/{site}/pi.
  void RegisterKeyRoutes();
  core::Result<ApiResponse> ChangeKey(const ApiRequest& q, bool node);
  // Drops `key` from the principals cache once it no longer names one.
  void ForgetPrincipal(const std::string& key);

  // Best-effort sliver limits of a site (sliver_limits.cc): GET and PUT
  // /v1/sites/{site}/sliver_limits (ledger/sliver_settings.h).
  void RegisterSliverLimitRoutes();
  core::Result<ApiResponse> GetSiteSliverLimits(const ApiRequest& q);
  core::Result<ApiResponse> SetSiteSliverLimits(const ApiRequest& q);

  // Node guard routes (node_routes.cc).
  core::Result<ApiResponse> ListNodeBindings(const ApiRequest& q);
  core::Result<ApiResponse> AddRedemptions(const ApiRequest& q);
  core::Result<ApiResponse> GetSliceUsage(const ApiRequest& q);
  core::Result<ApiResponse> GetNodeUsage(const ApiRequest& q);
  core::Result<ApiResponse> AddUsageReports(const ApiRequest& q);
  core::Result<ApiResponse> ListNodeSshKeys(const ApiRequest& q);
  core::Result<ApiResponse> ReportSlivers(const ApiRequest& q);
  core::Result<ApiResponse> GetNodeSlivers(const ApiRequest& q);
  core::Result<ApiResponse> GetSliceSlivers(const ApiRequest& q);
  core::Result<ApiResponse> ReportSliverLogs(const ApiRequest& q);

  // Capacity routes (capacity_routes.cc).
  core::Result<ApiResponse> AddGrant(const ApiRequest& q);
  core::Result<ApiResponse> ListPools(const ApiRequest& q);
  core::Result<ApiResponse> ListHoldings(const ApiRequest& q);
  core::Result<ApiResponse> GetRcap(const ApiRequest& q);
  core::Result<ApiResponse> SplitRcap(const ApiRequest& q);

  // Account routes (account_routes.cc).
  core::Result<ApiResponse> GetAccount(const ApiRequest& q);
  core::Result<ApiResponse> GetAccountHistory(const ApiRequest& q);
  void MintCredits(const ApiRequest& q, Respond respond);
  core::Result<ApiResponse> TransferCredits(const ApiRequest& q);
  // Mint's rule, inside its Mutate fn: an admin (`by`) mints `amount` into
  // `to`'s account; the reply's body.
  core::Result<nlohmann::json> MintInto(ledger::Txn& txn, const ApiRequest& q,
                                        const core::PublicKey& to, const core::Money& amount);

  // Service and ledger routes (broker.cc).
  core::Result<ApiResponse> GetHealth(const ApiRequest& q);
  core::Result<ApiResponse> GetMetrics(const ApiRequest& q);
  core::Result<ApiResponse> GetOpenApi(const ApiRequest& q);
  core::Result<ApiResponse> GetLedgerKey(const ApiRequest& q);
  core::Result<ApiResponse> GetLedgerHead(const ApiRequest& q);
  core::Result<ApiResponse> GetLedgerHeads(const ApiRequest& q);
  core::Result<ApiResponse> GetLedgerEntries(const ApiRequest& q);
  core::Result<ApiResponse> GetInclusionProof(const ApiRequest& q);
  core::Result<ApiResponse> GetConsistencyProof(const ApiRequest& q);

  core::Status NoteHistory(ledger::Txn& txn, std::string_view account);
  // The router's caller check (router.h): the signer is a registered
  // principal (else unauthenticated), and a request that may have reached
  // an earlier run of the broker did not run there (else unauthenticated
  // "replayed request").
  core::Result<std::string> CheckCaller(const SignedCaller& caller);
  // Runs fn on a read snapshot.
  core::Status Read(const std::function<core::Status(storage::Connection*)>& fn) const;

  core::PrivateKey ledger_key_;
  const core::Clock* clock_;
  std::unique_ptr<ledger::Store> store_;
  Router router_;
  Metrics metrics_;
  core::Mutex openapi_mu_;
  std::string openapi_ GUARDED_BY(openapi_mu_);  // built once, after every route is registered
  std::unique_ptr<internal::SliceCache> slice_cache_;
  EventHubOptions events_options_;
  // Per node: changes of its sliver report (each a ledger entry) and its
  // logs reports (each a rewrite of its rows), kNodeReportRate per second
  // with bursts of kNodeReportBurst (sliver_routes.cc, docs/broker.md).
  RateLimiter sliver_report_limiter_;
  RateLimiter sliver_log_limiter_;
  // The highest signed timestamp in b_nonces when this run opened (for
  // CheckCaller); INT64_MIN when there was none.
  int64_t earlier_runs_max_ts_ = INT64_MIN;
  // Principals' kinds by key, as looked up (a principal's kind never
  // changes; a key rotation retires a key: ForgetPrincipal). A lookup caches
  // its answer only if no key was forgotten meanwhile (principals_gen_), so
  // a read that raced a rotation never brings a retired key back.
  core::SharedMutex principals_mu_;
  std::unordered_map<std::string, std::string> principals_ GUARDED_BY(principals_mu_);
  uint64_t principals_gen_ GUARDED_BY(principals_mu_) = 0;
  // Markets (issue #6, broker/markets/) and the broker as their host;
  // declared last so the engine stops first.
  std::unique_ptr<internal::MarketsHost> markets_host_;
  std::unique_ptr<Markets> markets_;
  // The event stream (events.h); declared after the markets it reads, so it
  // stops first.
  std::unique_ptr<EventHub> events_;
};

// The OpenAPI 3.1 document for a router.
nlohmann::json BuildOpenApi(const Router& router, std::string_view title, std::string_view version);

}  // namespace bourse::broker
