// What the agent knows, read from the broker alone (DESIGN §10: no local
// truth, so a kill -9 loses nothing): the rcaps it holds with their recorded
// children, the markets it works with their resting orders and trades, its
// own resting orders, its account and the open RFQs. BrokerReader fetches one
// View per pass; it caches only what never changes (a recorded rcap's content,
// a trade) and asks for new trades only when the ledger grew (trades are
// paged by id with `after`, so after a restart they are read again once). A
// holding it cannot read or decode is left out and named in `problems`.
//
//   BrokerReader r(&client, me, {"mit", "ucb"}, {"auto"});
//   BOURSE_ASSIGN_OR_RETURN(View v, r.Read(now_s));
//
// Thread safety: a BrokerReader is used by one thread.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "clients/client.h"
#include "core/interval.h"
#include "core/money.h"
#include "core/resource_vector.h"
#include "core/status.h"
#include "ledger/rcap.h"

namespace bourse::agent {

// An rcap the agent holds.
struct Held {
  ledger::Rcap rcap;
  std::vector<ledger::Rcap> children;  // its recorded children (escrows, splits)
  std::string site;
  // An ancestor is held by the agent too (e.g. the unsold part of an escrow
  // returned to it): its capacity is already inside that ancestor's, so it
  // counts once in the pool.
  bool nested = false;
};

struct MarketView {
  nlohmann::json json;         // as GET /v1/markets lists it
  std::string id, node, site;  // node "" for a site market
  core::ResourceVector unit;
  core::Interval window;
  int64_t close = 0;
  std::string state;
  std::vector<nlohmann::json> bids, asks;  // resting, priority order
  std::vector<nlohmann::json> trades;      // every trade, execution order
};

struct View {
  std::string me;
  std::vector<Held> holdings;
  std::vector<MarketView> markets;        // the markets it works (open)
  std::vector<MarketView> all_markets;    // every market (for sales and status)
  std::vector<nlohmann::json> my_orders;  // its resting orders
  std::map<std::string, std::string> node_site;
  nlohmann::json account;  // GET /v1/accounts/{me}
  // Open RFQs (GET /v1/rfqs?state=open, signed: its own quotes' prices shown), newest first.
  std::vector<nlohmann::json> rfqs;
  // What could not be read and was left out (a holding it cannot decode or
  // fetch), one line each for the log.
  std::vector<std::string> problems;
};

class BrokerReader {
 public:
  // sites: the sites it works; markets: market ids, or {"auto"} (every open
  // market of its sites), or empty (= auto).
  BrokerReader(clients::Client* client, std::string me, std::vector<std::string> sites,
               std::vector<std::string> markets);
  // Errors: the client's (unavailable when the broker is unreachable).
  core::Result<View> Read();

 private:
  core::Result<ledger::Rcap> GetRcap(const std::string& id);
  void Remember(const ledger::Rcap& r, const nlohmann::json& got);
  core::Result<Held> ReadHeld(const nlohmann::json& listed, View& v);
  core::Status ReadHoldings(View& v);
  core::Status ReadRfqs(View& v);
  core::Status ReadMarkets(View& v);
  core::Status ReadTrades(MarketView& m);
  bool Works(const MarketView& m) const;

  clients::Client* client_;
  std::string me_;
  std::vector<std::string> sites_, markets_;
  std::map<std::string, ledger::Rcap> rcaps_;                  // recorded rcaps never change
  std::map<std::string, std::vector<std::string>> chains_;     // id -> ancestor ids
  std::map<std::string, std::vector<nlohmann::json>> trades_;  // market -> trades so far
  // The ledger's size at this Read, and when trades_ was last brought up to date: while
  // they are equal nothing was committed, so no trade request is sent.
  int64_t ledger_size_ = -1, trades_seen_size_ = -2;
};

// Free capacity of a held rcap over `window`: its quantities less the peak
// use of its children there (net_max_kbps kept: a ceiling). Zero when the
// window is not inside the rcap's interval.
core::ResourceVector FreeOver(const Held& h, const core::Interval& window);
// Whole `unit`s that fit in `free` (unit's net_max_kbps must fit the ceiling).
int64_t UnitsIn(const core::ResourceVector& free, const core::ResourceVector& unit);

}  // namespace bourse::agent
