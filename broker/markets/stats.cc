// Markets::Stats: the figures GET /metrics shows per market (markets.h).
#include "broker/markets/internal/market_state.h"
#include "broker/markets/markets.h"

namespace bourse::markets {

using internal::Stmt;

namespace {

// Adds the trades with id > *seen to *totals (by market) and advances *seen.
core::Status AddNewTrades(storage::Connection* db, std::map<std::string, MarketStats>* totals,
                          int64_t* seen) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare("SELECT id,market,qty,price_nanos FROM m_trades WHERE id>? ORDER BY id"));
  s.Bind(1, *seen);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    MarketStats& t = (*totals)[s.Text(1)];
    const int64_t qty = s.Int(2);
    const int64_t price = s.Int(3);
    BOURSE_ASSIGN_OR_RETURN(core::Money value, core::Money::FromNanos(price).MulInt(qty));
    BOURSE_ASSIGN_OR_RETURN(t.volume, t.volume.Add(value));
    ++t.trades;
    t.volume_units += qty;
    t.last_price_nanos = price;
    *seen = s.Int(0);
  }
  return core::Status::Ok();
}

// The resting orders by (market, side).
core::Status CountResting(storage::Connection* db, std::map<std::string, MarketStats>* out) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT market,side,COUNT(*) FROM m_orders "
                                              "WHERE state='resting' GROUP BY market,side"));
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    MarketStats& m = (*out)[s.Text(0)];
    (s.Text(1) == "buy" ? m.resting_buy : m.resting_sell) = s.Int(2);
  }
  return core::Status::Ok();
}

}  // namespace

core::Result<std::vector<MarketStats>> Markets::Stats() {
  std::vector<std::string> ids;
  {
    core::MutexLock l(&mu_);
    for (const auto& [id, ms] : markets_) ids.push_back(id);
  }
  std::map<std::string, MarketStats> resting;
  core::MutexLock l(&stats_mu_);
  // Work on copies so a failed read leaves the kept totals as they were.
  std::map<std::string, MarketStats> totals = trade_totals_;
  int64_t seen = trades_seen_;
  BOURSE_RETURN_IF_ERROR(host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_RETURN_IF_ERROR(AddNewTrades(db, &totals, &seen));
    return CountResting(db, &resting);
  }));
  trade_totals_ = totals;
  trades_seen_ = seen;
  std::vector<MarketStats> out;
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    MarketStats m = totals[id];
    m.market = id;
    auto r = resting.find(id);
    if (r != resting.end()) {
      m.resting_buy = r->second.resting_buy;
      m.resting_sell = r->second.resting_sell;
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace bourse::markets
