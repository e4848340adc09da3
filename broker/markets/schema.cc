// The markets' tables in the host's SQLite file (storage_schema component
// "markets"). A file written before versions were recorded is at version 0:
// migration 1 is what every start ran then (CREATE ... IF NOT EXISTS), so
// such a file keeps its markets as they are.
#include "broker/markets/markets.h"
#include "storage/sqlite.h"

namespace bourse::markets {
namespace {

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS m_markets(id TEXT PRIMARY KEY, node TEXT NOT NULL, site TEXT NOT NULL,
  unit TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
  close_s INTEGER NOT NULL, holder TEXT NOT NULL, state TEXT NOT NULL, creator TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS m_orders(id INTEGER PRIMARY KEY, market TEXT NOT NULL,
  owner TEXT NOT NULL, account TEXT NOT NULL, side TEXT NOT NULL, is_market INTEGER NOT NULL,
  ioc INTEGER NOT NULL, qty INTEGER NOT NULL, price_nanos INTEGER NOT NULL,
  remaining INTEGER NOT NULL, filled INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
  prio INTEGER NOT NULL, escrow TEXT NOT NULL, escrow_gen INTEGER NOT NULL,
  cap_escrow TEXT NOT NULL, cap_units INTEGER NOT NULL, cap_sold INTEGER NOT NULL,
  cap_returned INTEGER NOT NULL, returned_rcap TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS m_orders_live ON m_orders(market, state, prio);
CREATE INDEX IF NOT EXISTS m_orders_owner ON m_orders(owner, id);
CREATE INDEX IF NOT EXISTS m_orders_cap_escrow ON m_orders(cap_escrow) WHERE cap_escrow!='';
CREATE TABLE IF NOT EXISTS m_trades(id INTEGER PRIMARY KEY, market TEXT NOT NULL,
  buy INTEGER NOT NULL, sell INTEGER NOT NULL, buyer TEXT NOT NULL, seller TEXT NOT NULL,
  qty INTEGER NOT NULL, price_nanos INTEGER NOT NULL, rcap TEXT NOT NULL, ts_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS m_trades_market ON m_trades(market, id);
CREATE TABLE IF NOT EXISTS m_rounds(id TEXT PRIMARY KEY, state TEXT NOT NULL,
  close_s INTEGER NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
  offers TEXT NOT NULL, result TEXT NOT NULL, creator TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS m_round_bids(id TEXT PRIMARY KEY, round TEXT NOT NULL,
  bidder TEXT NOT NULL, lim TEXT NOT NULL, bundles TEXT NOT NULL, escrow TEXT NOT NULL,
  state TEXT NOT NULL, pay TEXT NOT NULL, rcaps TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS m_round_bids_round ON m_round_bids(round, created_ms);
CREATE TABLE IF NOT EXISTS m_share_bids(id TEXT PRIMARY KEY, node TEXT NOT NULL,
  slice TEXT NOT NULL, bidder TEXT NOT NULL, rate TEXT NOT NULL, escrow TEXT NOT NULL,
  charged_to_ms INTEGER NOT NULL, state TEXT NOT NULL, charged TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS m_share_bids_node ON m_share_bids(node, state);
CREATE INDEX IF NOT EXISTS m_share_bids_slice ON m_share_bids(slice, state);
)sql";

// Requests for quote (issue #17, docs/markets.md "Requests for quote").
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE m_rfqs(id TEXT PRIMARY KEY, buyer TEXT NOT NULL, res TEXT NOT NULL,
  nodes INTEGER NOT NULL, min_sites INTEGER NOT NULL, not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL, max_price TEXT NOT NULL, close_s INTEGER NOT NULL,
  award TEXT NOT NULL, state TEXT NOT NULL, escrow TEXT NOT NULL, winner TEXT NOT NULL,
  quote TEXT NOT NULL, price TEXT NOT NULL, rcaps TEXT NOT NULL, reason TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX m_rfqs_due ON m_rfqs(state, close_s);
CREATE INDEX m_rfqs_buyer ON m_rfqs(buyer, state);
CREATE TABLE m_rfq_quotes(id TEXT PRIMARY KEY, rfq TEXT NOT NULL, seller TEXT NOT NULL,
  account TEXT NOT NULL, price TEXT NOT NULL, pieces TEXT NOT NULL, state TEXT NOT NULL,
  returned TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE INDEX m_rfq_quotes_rfq ON m_rfq_quotes(rfq, state, created_ms);
CREATE INDEX m_rfq_quotes_open ON m_rfq_quotes(state) WHERE state='open';
)sql";

// The live-orders index without prio: a move, which gives its order a new
// prio, then updates the row alone (book.cc UpdateOrder); a book rebuilt from
// the table sorts its few resting orders by prio.
constexpr const char* kSchemaV3 = R"sql(
DROP INDEX IF EXISTS m_orders_live;
CREATE INDEX m_orders_live ON m_orders(market, state);
)sql";

// The size of a round's bids (docs/markets.md "Sealed-bid combinatorial
// rounds", limits): bids are counted per bidder through an index, and the
// round keeps the sum of its bids' terms. Rounds open at the migration start
// from 0 terms.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE m_rounds ADD COLUMN bid_terms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX m_round_bids_bidder ON m_round_bids(round, bidder);
)sql";

}  // namespace

const storage::Schema& MarketsSchema() {
  static const storage::Schema* schema =
      new storage::Schema{"markets",
                          {{1, "markets, orders, trades, rounds, round bids, share bids",
                            [](storage::Connection& c) -> core::Status {
                              return c.Exec(kSchemaV1, "markets schema");
                            }},
                           {2, "requests for quote and their quotes",
                            [](storage::Connection& c) -> core::Status {
                              return c.Exec(kSchemaV2, "markets schema v2");
                            }},
                           {3, "the live-orders index without prio",
                            [](storage::Connection& c) -> core::Status {
                              return c.Exec(kSchemaV3, "markets schema v3");
                            }},
                           {4, "round bids counted per bidder and terms per round",
                            [](storage::Connection& c) -> core::Status {
                              return c.Exec(kSchemaV4, "markets schema v4");
                            }}}};
  return *schema;
}

}  // namespace bourse::markets
