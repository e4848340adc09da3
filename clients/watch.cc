#include "clients/watch.h"

#include <cstdio>
#include <ctime>

#include "clients/client.h"

namespace bourse::clients {

using nlohmann::json;

namespace {

// A JSON scalar as text: strings bare, null as "-".
std::string Str(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "-";
  return j.dump();
}

// The first `n` levels of a depth side (best first).
json Top(const json& levels, size_t n) {
  json out = json::array();
  if (!levels.is_array()) return out;
  for (size_t i = 0; i < levels.size() && i < n; ++i) out.push_back(levels[i]);
  return out;
}

std::string Level(const char* side, const json& l) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "  %-4s %14s %10s %7s\n", side,
                Str(l.value("price", json())).c_str(), Str(l.value("qty", json())).c_str(),
                Str(l.value("orders", json())).c_str());
  return buf;
}

std::string Best(const char* side, const json& levels) {
  if (!levels.is_array() || levels.empty()) return std::string(side) + " -";
  return std::string(side) + " " + Str(levels[0].value("price", json())) + " x " +
         Str(levels[0].value("qty", json()));
}

}  // namespace

std::string UtcTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string WatchPath(const WatchTarget& t) {
  switch (t.kind) {
    case WatchKind::kMarket:
      return "/v1/events?topics=trades,book&market=" + EscapeSegment(t.name);
    case WatchKind::kSlice:
      return "/v1/events?topics=bindings&slice=" + EscapeSegment(t.name);
    case WatchKind::kLedger:
      break;
  }
  return "/v1/events?topics=ledger";
}

void MarketWatch::SetBook(const json& depth) {
  bids_ = Top(depth.value("bids", json::array()), kLevels);
  asks_ = Top(depth.value("asks", json::array()), kLevels);
}

bool MarketWatch::Apply(const SseEvent& e) {
  json d = json::parse(e.data, nullptr, false);
  if (!d.is_object() || d.value("market", json()) != market_) return false;
  last_id_ = e.id;
  if (e.type == "book") {
    SetBook(d);
    return true;
  }
  if (e.type == "trade") {
    trades_.push_front(std::move(d));
    while (trades_.size() > kTrades) trades_.pop_back();
    return true;
  }
  return false;
}

std::string MarketWatch::Render(bool clear) const {
  std::string out = clear ? "\x1b[H\x1b[2J" : "";
  out += "market " + market_ + (last_id_.empty() ? "" : "  (event " + last_id_ + ")") + "\n";
  char head[160];
  std::snprintf(head, sizeof head, "  %-4s %14s %10s %7s\n", "SIDE", "PRICE", "QTY", "ORDERS");
  out += head;
  // Asks best (lowest) first: printed highest first, above the bids.
  for (auto it = asks_.rbegin(); it != asks_.rend(); ++it) out += Level("ask", *it);
  out += "  ----\n";
  for (const json& l : bids_) out += Level("bid", l);
  out += "last trades (newest first)\n";
  std::snprintf(head, sizeof head, "  %-20s %8s %14s %8s %8s\n", "TIME", "QTY", "PRICE", "BUY",
                "SELL");
  out += head;
  for (const json& t : trades_) {
    char row[200];
    std::snprintf(row, sizeof row, "  %-20s %8s %14s %8s %8s\n",
                  UtcTime(t.value("ts", int64_t{0})).c_str(), Str(t.value("qty", json())).c_str(),
                  Str(t.value("price", json())).c_str(), Str(t.value("buy", json())).c_str(),
                  Str(t.value("sell", json())).c_str());
    out += row;
  }
  return out;
}

std::string MarketWatch::EventLine(const SseEvent& e) {
  json d = json::parse(e.data, nullptr, false);
  if (!d.is_object()) return e.type + " " + e.data;
  if (e.type == "trade") {
    return UtcTime(d.value("ts", int64_t{0})) + " trade " + Str(d.value("qty", json())) + " @ " +
           Str(d.value("price", json())) + " (buy " + Str(d.value("buy", json())) + ", sell " +
           Str(d.value("sell", json())) + ", id " + e.id + ")";
  }
  return "book " + Best("bid", d.value("bids", json())) + " | " +
         Best("ask", d.value("asks", json())) + " (id " + e.id + ")";
}

std::string HeadLine(const json& head) {
  std::string root = Str(head.value("root", json()));
  if (root.size() > 16) root = root.substr(0, 16) + "...";
  return UtcTime(head.value("ts", int64_t{0})) + " head size=" + Str(head.value("size", json())) +
         " root=" + root;
}

std::string BindingLine(const json& b) {
  std::string line =
      UtcTime(b.value("ts", int64_t{0})) + " " + Str(b.value("state", json())) + " rcap=";
  const json& rcap = b.value("rcap", json());
  line += rcap.is_object() ? Str(rcap.value("id", json())) : Str(rcap);
  line += " node=" + Str(b.value("node", json())) + " slice=" + Str(b.value("slice", json()));
  if (b.contains("reason") && !b["reason"].is_null()) {
    line += " " + Str(b["reason"]);
    if (b.contains("detail") && b["detail"].is_string() && !b["detail"].get<std::string>().empty())
      line += ": " + b["detail"].get<std::string>();
  }
  return line;
}

std::string JsonLine(const SseEvent& e) {
  json d = json::parse(e.data, nullptr, false);
  json id = e.id;
  if (!e.id.empty() && e.id.find_first_not_of("0123456789") == std::string::npos &&
      e.id.size() < 16) {
    id = std::stoll(e.id);
  }
  return json{{"id", id}, {"event", e.type}, {"data", d.is_discarded() ? json(e.data) : d}}.dump();
}

}  // namespace bourse::clients
