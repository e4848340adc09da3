// What `bourse watch` (DESIGN §8, docs/cli.md) shows, apart from the
// terminal and the network: the query it follows, the market view it keeps
// from `book` and `trade` events, and the text of each kind of line.
//
//   MarketWatch view("mkt_1");
//   view.SetBook(depth_json);                    // GET /v1/markets/mkt_1/depth
//   if (view.Apply(event)) std::fputs(view.Render(true).c_str(), stdout);
//
// Thread safety: none (one per watch).
#pragma once

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <string>

#include "clients/sse.h"

namespace bourse::clients {

enum class WatchKind { kMarket, kLedger, kSlice };

struct WatchTarget {
  WatchKind kind = WatchKind::kLedger;
  std::string name;  // the market or the slice
};

// The path and query of GET /v1/events for `t` (docs/events.md).
std::string WatchPath(const WatchTarget& t);

// The book (top kLevels each side) and the last kTrades trades of a market.
class MarketWatch {
 public:
  static constexpr size_t kLevels = 10;
  static constexpr size_t kTrades = 10;
  explicit MarketWatch(std::string market) : market_(std::move(market)) {}

  // The book as GET /v1/markets/{m}/depth answers it ({bids, asks}).
  void SetBook(const nlohmann::json& depth);
  // A `book` or `trade` event of this market: true when the view changed.
  bool Apply(const SseEvent& e);
  // The whole view; with `clear`, an ANSI clear-screen and home first.
  std::string Render(bool clear) const;
  // One line for the event Apply took (for output that is not a terminal).
  static std::string EventLine(const SseEvent& e);

  const std::deque<nlohmann::json>& trades() const { return trades_; }  // newest first

 private:
  std::string market_;
  nlohmann::json bids_ = nlohmann::json::array();
  nlohmann::json asks_ = nlohmann::json::array();
  std::deque<nlohmann::json> trades_;
  std::string last_id_;
};

// "<time> head size=N root=<first 16 hex>…" for a `head` event's data.
std::string HeadLine(const nlohmann::json& head);
// "<time> <state> rcap=R node=N slice=S[ reason: detail]" for a `binding`.
std::string BindingLine(const nlohmann::json& binding);
// {"id":..,"event":..,"data":{..}} on one line (--json): data parsed when
// it is JSON, else kept as a string; id a number when it is one.
std::string JsonLine(const SseEvent& e);
// A unix-ms time as RFC 3339 UTC with seconds ("2026-12-06T16:45:00Z").
std::string UtcTime(int64_t ms);

}  // namespace bourse::clients
