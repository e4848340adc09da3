// Markets: the order-book markets, sealed-bid rounds, proportional shares
// and acquire of bourse (issue #6), as a library of its own (issue #14:
// broker/markets/, bourse::markets). It runs one continuous double auction
// (auction::OrderBook) per market, sealed-bid combinatorial rounds
// (auction::ClearRound) and proportional-share bids, and settles every
// outcome into the host's SQLite file and ledger in one Mutate() each. It
// knows nothing of HTTP: the broker's routes (its market_routes.cc) decode
// a request, call one service function below and encode its result.
//
//   // inside Broker::Open, with a Host over the broker (internal/markets_host.h):
//   BOURSE_ASSIGN_OR_RETURN(b->markets_, Markets::Open(host, *options.ledger_key));
//   BOURSE_ASSIGN_OR_RETURN(json order, markets.GetOrder("mkt_1", "17"));
//   // tests that drive time by hand call Tick() themselves:
//   BOURSE_RETURN_IF_ERROR(markets->Tick());
//
// A market is (node, unit ResourceVector, window [not_before, not_after),
// optional holder): one unit of it is `unit` on `node` for the whole window.
// docs/markets.md has the REST API, the escrow rules and the ledger entries.
//
// Escrow. A buy holds price x quantity credits (ledger escrow_hold) while it
// rests; an incoming buy pays each fill from its free balance. A sell holds
// capacity: an rcap E, child of an rcap the seller holds, whose holder is the
// broker (the seller signs E and submits it with the order, since the broker
// never holds the seller's private key; for capacity in the broker's own pool
// an admin names the pool rcap and the broker splits E off it). Each fill is
// one split of E to the buyer signed by the broker, recorded with the credit
// movement and the trade in the same transaction. What is not sold when the
// order ends goes back to the seller as a child of E.
//
// Service functions take the decoded request (a JSON body, path and query
// values, the caller's key text and the request's time) and return the
// reply's JSON body or a Status whose code and message are the reply's.
//
// Thread safety: every method is safe from any thread. Each market's book is
// guarded by its own mutex; mutations of books happen inside Mutate fns,
// which the ledger store runs one at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broker/markets/host.h"
#include "core/keys.h"
#include "core/money.h"
#include "core/mutex.h"
#include "core/status.h"
#include "storage/sqlite.h"

namespace bourse::ledger {
class Txn;
}  // namespace bourse::ledger

namespace bourse::markets {

namespace internal {
struct LiveOrder;
struct MarketInfo;
struct MarketState;
struct OpCtx;
struct PlacedOrder;
}  // namespace internal

// The markets' tables (m_*) in the host's file: storage_schema component
// "markets" (docs/storage.md).
const storage::Schema& MarketsSchema();

// The most orders (GET /v1/orders) or share bids (GET /v1/share_bids) one
// listing returns, newest first.
inline constexpr int64_t kMaxListed = 500;

// One market's figures for the broker's GET /metrics (Markets::Stats).
struct MarketStats {
  std::string market;
  int64_t trades = 0;                       // trades ever made
  int64_t volume_units = 0;                 // units traded: the sum of the trades' qty
  core::Money volume;                       // credits traded: the sum of qty x price
  std::optional<int64_t> last_price_nanos;  // the newest trade's price; none before the first
  int64_t resting_buy = 0;                  // orders resting on each side now
  int64_t resting_sell = 0;
};

struct MarketsOptions {
  // Background work (market close, round clearing, share charging) runs
  // every this many milliseconds; 0: no background thread (call Tick()).
  int tick_ms = 1000;
  // Proportional-share bids are charged to the ledger at most this often.
  int64_t share_charge_interval_s = 10;
  // The solver's time budget per sealed-bid round (auction::ClearOptions::
  // time_budget_s; bourse-broker --round-budget). 0: the greedy tier alone.
  double round_budget_s = 1.0;
  // What one sealed-bid round takes (its clearing's time grows with them;
  // more is 429): sealed bids, bids of one bidder, and terms (a bundle, each
  // of its items, each node of its `from`) over all its bids.
  int64_t round_max_bids = 10'000;
  int64_t round_max_bids_per_bidder = 100;
  int64_t round_max_terms = 250'000;
};

class Markets {
 public:
  // Brings the market tables to MarketsSchema().latest(), rebuilds every
  // open book from its resting orders and starts the background thread.
  // `host` must outlive the engine. Errors: the store's.
  static core::Result<std::unique_ptr<Markets>> Open(Host* host, const core::PrivateKey& ledger_key,
                                                     MarketsOptions options = {});
  ~Markets();
  Markets(const Markets&) = delete;
  Markets& operator=(const Markets&) = delete;

  // Closes markets whose trading has ended (resting orders cancelled, escrow
  // released), clears rounds past their close time and charges share bids;
  // then runs the host's periodic work (Host::Tick).
  core::Status Tick() EXCLUDES(tick_mu_);

  // DESIGN 4.1: a broker-held rcap that escrows a resting sell order, an
  // open round's offer or an open RFQ quote is committed to it; an admin
  // cannot offer it again (sell it from the pool, offer it in another round
  // or an RFQ quote, or split it). Run
  // inside the transaction that would use `id`. Errors: failed_precondition
  // "<field>: rcap <id> is escrowed for ..." (409).
  static core::Status RequireUncommitted(ledger::Txn& txn, const std::string& id,
                                         std::string_view field);

  // For delete_slice, inside its Mutate fn: every active share bid of
  // `slice` (on any node) pays up to now_ms, exactly as a withdrawal does,
  // and the rest of its budget is released; each is left `withdrawn` with a
  // share_bid_withdrawn {bid, reason:"slice_deleted"} entry, so the slice
  // leaves every node's share table in the same transaction. The ids of the
  // bids ended are appended to *ended. Errors: the store's.
  core::Status EndSliceShares(ledger::Txn& txn, const std::string& slice, int64_t now_ms,
                              std::vector<std::string>* ended);

  // ---- Order books (orders.cc); docs/markets.md has each reply ----
  // POST /v1/markets: the new market's JSON (the reply's body).
  core::Result<nlohmann::json> CreateMarket(const nlohmann::json& body, const std::string& caller,
                                            int64_t now_ms);
  // The markets' JSON (an array), in id order, filtered by what is given.
  nlohmann::json ListMarkets(const std::optional<std::string>& node,
                             const std::optional<std::string>& site,
                             const std::optional<std::string>& state) EXCLUDES(mu_);
  core::Result<nlohmann::json> MarketSummary(const std::string& market);
  // POST /v1/markets/{market}/orders, without waiting for the commit: `done`
  // gets, once (from this thread when the request is refused before the
  // book, else on the store's syncer thread once durable), a function that
  // builds the reply ({order, trades}) or its error; call it where the reply
  // is sent (it is cheap), not on the syncer.
  using PlaceDone = std::function<void(std::function<core::Result<nlohmann::json>()>)>;
  void PlaceOrder(const std::string& market, const nlohmann::json& body, const std::string& caller,
                  int64_t now_ms, PlaceDone done);
  // Cancel, reduce ({qty}) and move ({price}) order `order` (its decimal id
  // as in the path): {order, trades}.
  core::Result<nlohmann::json> CancelOrder(const std::string& market, const std::string& order,
                                           const std::string& caller);
  core::Result<nlohmann::json> ReduceOrder(const std::string& market, const std::string& order,
                                           const nlohmann::json& body, const std::string& caller);
  core::Result<nlohmann::json> MoveOrder(const std::string& market, const std::string& order,
                                         const nlohmann::json& body, const std::string& caller);
  core::Result<nlohmann::json> GetOrder(const std::string& market, const std::string& order);
  // GET /v1/orders: {"orders": [...]}, the orders of `owner` (a key, required)
  // across markets, newest first, at most kMaxListed, each as GetOrder shows
  // it (with its "market"): only resting ones unless `state` is "all"
  // ("open", the default), only those of `market` if given.
  core::Result<nlohmann::json> ListOrders(const std::optional<std::string>& owner,
                                          const std::optional<std::string>& state,
                                          const std::optional<std::string>& market);
  core::Result<nlohmann::json> RestingOrders(const std::string& market);
  core::Result<nlohmann::json> Depth(const std::string& market, int64_t levels);
  // The trades after id `after` (an array), oldest first, at most `limit`.
  core::Result<nlohmann::json> Trades(const std::string& market, int64_t after, int64_t limit);
  core::Result<nlohmann::json> Candles(const std::string& market, int64_t interval, int64_t from,
                                       int64_t to);

  // ---- Batch orders (batch.cc): POST /v1/orders:batch, docs/markets.md "Batch orders" ----
  // The most ops one batch carries.
  static constexpr size_t kMaxBatchOps = 100;
  // Runs {"ops":[...]} (place, cancel, move and reduce, across markets) as
  // `caller`, in op order, in ONE commit, each op applied whole or not at
  // all (a placement in its own savepoint; a cancel, move or reduce makes
  // every check that can refuse it before it writes): an op that fails
  // changes nothing (its result is the error its single route would have
  // given) and the later ops still run. `done` gets, once
  // (as PlaceOrder's), a function that builds {"results":[...]} (each
  // {"ok":true, "order", "trades"} or {"ok":false, "error":{code, message}})
  // once the commit is durable, or the whole request's error:
  // invalid_argument naming the op when the ops array is malformed (nothing
  // applied), or the commit's.
  void Batch(const nlohmann::json& body, const std::string& caller, int64_t now_ms,
             PlaceDone done);

  // Every market's figures, in id order (stats.cc): one query for the
  // resting orders, and one for the trades made since the last call (the
  // totals are kept, so each trade is read once per run of the engine).
  // Errors: the store's; invalid_argument if a volume overflows 128 bits.
  core::Result<std::vector<MarketStats>> Stats() EXCLUDES(mu_, stats_mu_);

  // ---- Acquire (acquire.cc): POST /v1/acquire's reply ----
  core::Result<nlohmann::json> Acquire(const nlohmann::json& body, const std::string& caller,
                                       int64_t now_ms);

  // ---- Rounds (rounds.cc): each the reply's body, {"round": ...} or {"bid": ...} ----
  core::Result<nlohmann::json> OpenRound(const nlohmann::json& body, const std::string& caller,
                                         int64_t now_ms);
  core::Result<nlohmann::json> PlaceRoundBid(const std::string& round, const nlohmann::json& body,
                                             const std::string& caller, int64_t now_ms);
  // {"rounds": [...]}, newest first, at most 500; only those in `state`
  // (open, cleared or failed) if given.
  core::Result<nlohmann::json> ListRounds(const std::optional<std::string>& state);
  // {"round": ...}; signed by `caller` (non-empty), also "my_bids": the
  // caller's own bids in the round, whose content is otherwise sealed.
  core::Result<nlohmann::json> GetRound(const std::string& round, const std::string& caller = "");
  // An admin clears a round whose close has passed: {"round": id, state, result}.
  core::Result<nlohmann::json> ClearRound(const std::string& round, const std::string& caller,
                                          int64_t now_ms);

  // ---- Proportional shares (shares.cc): each the reply's body, {"bid": ...} ----
  core::Result<nlohmann::json> PlaceShareBid(const std::string& node, const nlohmann::json& body,
                                             const std::string& caller, int64_t now_ms);
  core::Result<nlohmann::json> WithdrawShareBid(const std::string& id, const std::string& caller,
                                                int64_t now_ms);
  core::Result<nlohmann::json> GetShareBid(const std::string& id);
  // GET /v1/share_bids: {"bids": [...]}, the share bids of `holder` (the
  // bidder's key) and/or on `node` (at least one is required), newest first,
  // at most kMaxListed, each as GetShareBid shows it: only active ones unless
  // `state` is exhausted, withdrawn or all.
  core::Result<nlohmann::json> ListShareBids(const std::optional<std::string>& holder,
                                             const std::optional<std::string>& node,
                                             const std::optional<std::string>& state);
  // The node's share table, signed by the ledger key (the whole reply).
  core::Result<nlohmann::json> NodeShares(const std::string& node, int64_t now_ms);

  // ---- Requests for quote (rfqs.cc; docs/markets.md "Requests for quote") ----
  // Each returns the reply's body. `viewer` is the key of a signed GET ("" if
  // unsigned): quote prices are sealed until the close but to the buyer and
  // to each quote's seller.
  static constexpr int64_t kMaxQuotesPerRfq = 200;       // open quotes on one RFQ
  static constexpr int64_t kMaxOpenRfqsPerBuyer = 1000;  // open RFQs of one buyer
  // Quotes ever made on one RFQ (withdrawn ones are kept and shown), in all
  // and by one seller: they bound what quote/withdraw cycles can pile up.
  static constexpr int64_t kMaxQuotesEverPerRfq = 2000;
  static constexpr int64_t kMaxQuotesPerSeller = 20;
  // POST /v1/rfqs: {"rfq": ...}; max_price is escrowed from the caller.
  core::Result<nlohmann::json> OpenRfq(const nlohmann::json& body, const std::string& caller,
                                       int64_t now_ms);
  // POST /v1/rfqs/{rfq}/quotes: {"quote": ...}; each piece's capacity escrowed.
  core::Result<nlohmann::json> QuoteRfq(const std::string& rfq, const nlohmann::json& body,
                                        const std::string& caller, int64_t now_ms);
  // DELETE /v1/rfqs/{rfq}/quotes/{quote}: {"quote": ...}, its escrows returned.
  core::Result<nlohmann::json> WithdrawQuote(const std::string& rfq, const std::string& quote,
                                             const std::string& caller, int64_t now_ms);
  // POST /v1/rfqs/{rfq}/accept {"quote"}: {"rfq": ..., "chains": [chain per node]}.
  core::Result<nlohmann::json> AcceptQuote(const std::string& rfq, const nlohmann::json& body,
                                           const std::string& caller, int64_t now_ms);
  // DELETE /v1/rfqs/{rfq}: {"rfq": ...}, cancelled, every escrow released.
  core::Result<nlohmann::json> CancelRfq(const std::string& rfq, const std::string& caller,
                                         int64_t now_ms);
  // GET /v1/rfqs: {"rfqs": [...]}, newest first, at most kMaxListed.
  core::Result<nlohmann::json> ListRfqs(const std::optional<std::string>& state,
                                        const std::optional<std::string>& buyer,
                                        const std::string& viewer, int64_t now_ms);
  core::Result<nlohmann::json> GetRfq(const std::string& rfq, const std::string& viewer,
                                      int64_t now_ms);
  // Tick's step: awards (or fails) every open RFQ whose close has passed,
  // each in one transaction that first checks the RFQ is still open.
  core::Status AwardDueRfqs();

  // ---- for the implementation files ----
  Host& host() { return *host_; }
  const MarketsOptions& options() const { return options_; }
  const core::PrivateKey& key() const { return key_; }
  uint64_t OwnerId(const std::string& key) EXCLUDES(mu_);
  int64_t next_order_id() { return next_order_id_++; }
  int64_t next_prio() { return next_prio_++; }
  // The market, or not_found.
  core::Result<internal::MarketState*> Find(const std::string& id) EXCLUDES(mu_);

 private:
  Markets(Host* host, const core::PrivateKey& key, MarketsOptions options);
  core::Status LoadAll();
  // Adds a market created in a committed transaction.
  void AddMarket(std::unique_ptr<internal::MarketState> ms) EXCLUDES(mu_);
  core::Status DecodeOrder(const std::string& market, const nlohmann::json& body,
                           const std::string& caller, internal::PlacedOrder* st);
  core::Result<nlohmann::json> CreateMarket(std::unique_ptr<internal::MarketState> ms, bool by_node,
                                            const std::string& caller);
  core::Status InsertMarket(ledger::Txn& txn, internal::MarketInfo& mi, bool by_node,
                            const std::string& caller);
  void PlaceOrderOp(std::shared_ptr<internal::PlacedOrder> st, std::shared_ptr<internal::OpCtx> ctx,
                    int64_t now_ms, std::string caller, std::function<void(core::Status)> done);
  // The markets whose info satisfies `pred`, in id order.
  std::vector<internal::MarketState*> MarketsIf(
      const std::function<bool(const internal::MarketInfo&)>& pred) EXCLUDES(mu_);
  // The tick's steps; CloseDueMarkets is the only writer of a market's
  // info.state, which tick_mu_ keeps to one thread.
  core::Status CloseDueMarkets() REQUIRES(tick_mu_);
  core::Status ClearDueRounds() REQUIRES(tick_mu_);
  core::Status ClearRoundNow(const std::string& round);
  core::Status ClearRoundTxn(const std::string& round);
  core::Status ChargeShares(bool force) REQUIRES(tick_mu_);

  Host* host_;
  core::PrivateKey key_;
  MarketsOptions options_;
  core::Mutex mu_;  // the map, not the states (each has its own mu)
  std::map<std::string, std::unique_ptr<internal::MarketState>> markets_ GUARDED_BY(mu_);
  std::map<std::string, uint64_t> owners_ GUARDED_BY(mu_);
  std::atomic<int64_t> next_order_id_{1};
  std::atomic<int64_t> next_prio_{1};
  // Trade totals by market for Stats(), up to trade id trades_seen_.
  core::Mutex stats_mu_;
  std::map<std::string, MarketStats> trade_totals_ GUARDED_BY(stats_mu_);
  int64_t trades_seen_ GUARDED_BY(stats_mu_) = 0;
  core::Mutex tick_mu_;  // one Tick() at a time
  int64_t last_share_charge_s_ GUARDED_BY(tick_mu_) = 0;
  core::Mutex stop_mu_;
  core::CondVar stop_cv_;
  bool stop_ GUARDED_BY(stop_mu_) = false;
  std::thread ticker_;
};

}  // namespace bourse::markets
