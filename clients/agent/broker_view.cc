#include "clients/agent/broker_view.h"

#include <algorithm>
#include <set>
#include <utility>

#include "core/json_codec.h"
#include "ledger/internal/timeline.h"

namespace bourse::agent {

using nlohmann::json;

BrokerReader::BrokerReader(clients::Client* client, std::string me, std::vector<std::string> sites,
                           std::vector<std::string> markets)
    : client_(client), me_(std::move(me)), sites_(std::move(sites)), markets_(std::move(markets)) {}

core::Result<ledger::Rcap> BrokerReader::GetRcap(const std::string& id) {
  auto it = rcaps_.find(id);
  if (it != rcaps_.end()) return it->second;
  BOURSE_ASSIGN_OR_RETURN(json got,
                          client_->Call("GET", "/v1/rcaps/" + clients::EscapeSegment(id)));
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(got["rcap"], "rcap"));
  Remember(r, got);
  return r;
}

void BrokerReader::Remember(const ledger::Rcap& r, const json& got) {
  if (chains_.contains(r.id)) return;
  std::vector<std::string> ancestors;
  for (const json& c : got.value("chain", json::array())) {
    if (c.value("id", "") != r.id) ancestors.push_back(c.value("id", ""));
  }
  chains_[r.id] = std::move(ancestors);
  rcaps_.emplace(r.id, r);
}

namespace {

// Only an unreachable broker stops a read; any other failure is about one item.
bool Unreachable(const core::Status& s) { return s.code() == core::StatusCode::kUnavailable; }

}  // namespace

core::Result<Held> BrokerReader::ReadHeld(const json& listed, View& v) {
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(listed, "rcap"));
  // Its children change; their content does not.
  BOURSE_ASSIGN_OR_RETURN(json got,
                          client_->Call("GET", "/v1/rcaps/" + clients::EscapeSegment(r.id)));
  Remember(r, got);
  Held h{.rcap = r, .children = {}, .site = v.node_site[r.node], .nested = false};
  for (const json& kid : got.value("children", json::array())) {
    BOURSE_ASSIGN_OR_RETURN(ledger::Rcap c, GetRcap(kid.is_string() ? kid.get<std::string>() : ""));
    h.children.push_back(std::move(c));
  }
  return h;
}

core::Status BrokerReader::ReadHoldings(View& v) {
  BOURSE_ASSIGN_OR_RETURN(json nodes, client_->Call("GET", "/v1/nodes"));
  for (const json& n : nodes.value("nodes", json::array())) {
    v.node_site[n.value("id", "")] = n.value("site", "");
  }
  BOURSE_ASSIGN_OR_RETURN(json held,
                          client_->Call("GET", "/v1/holdings/" + clients::EscapeSegment(me_)));
  std::set<std::string> mine;
  for (const json& j : held.value("rcaps", json::array())) {
    core::Result<Held> h = ReadHeld(j, v);
    if (!h.ok()) {
      if (Unreachable(h.status())) return h.status();
      // One holding it cannot read must not stop the agent: it works with the rest.
      std::string id = j.is_object() && j.contains("id") ? j["id"].dump() : j.dump().substr(0, 80);
      v.problems.push_back("skip holding " + id + ": " + h.status().ToString());
      continue;
    }
    mine.insert(h->rcap.id);
    v.holdings.push_back(*std::move(h));
  }
  for (Held& h : v.holdings) {
    for (const std::string& a : chains_[h.rcap.id]) h.nested = h.nested || mine.contains(a);
  }
  return core::Status::Ok();
}

core::Status BrokerReader::ReadTrades(MarketView& m) {
  // No commit since the last read (the ledger's size is the same): no new trades.
  if (trades_seen_size_ == ledger_size_ && trades_.contains(m.id)) {
    m.trades = trades_[m.id];
    return core::Status::Ok();
  }
  std::vector<json>& got = trades_[m.id];
  while (true) {
    int64_t after = got.empty() ? 0 : got.back().value("id", int64_t{0});
    BOURSE_ASSIGN_OR_RETURN(
        json page, client_->Call("GET", "/v1/markets/" + clients::EscapeSegment(m.id) +
                                            "/trades?limit=1000&after=" + std::to_string(after)));
    const json& list = page.value("trades", json::array());
    for (const json& t : list) got.push_back(t);
    if (list.size() < 1000) break;
  }
  m.trades = got;
  return core::Status::Ok();
}

bool BrokerReader::Works(const MarketView& m) const {
  if (m.state != "open") return false;
  const json& holder = m.json.value("holder", json());
  if (holder.is_string() && holder.get<std::string>() != me_) return false;
  bool auto_markets = markets_.empty() || (markets_.size() == 1 && markets_[0] == "auto");
  if (!auto_markets) return std::ranges::find(markets_, m.id) != markets_.end();
  return std::ranges::find(sites_, m.site) != sites_.end();
}

core::Status BrokerReader::ReadMarkets(View& v) {
  BOURSE_ASSIGN_OR_RETURN(json list, client_->Call("GET", "/v1/markets"));
  for (const json& j : list.value("markets", json::array())) {
    MarketView m;
    m.json = j;
    m.id = j.value("id", "");
    m.node = j["node"].is_string() ? j["node"].get<std::string>() : "";
    m.site = j.value("site", "");
    BOURSE_ASSIGN_OR_RETURN(m.unit, core::ResourceVectorFromJson(j["unit"], "market.unit"));
    m.window = {.not_before = j.value("not_before", int64_t{0}),
                .not_after = j.value("not_after", int64_t{0})};
    m.close = j.value("close", int64_t{0});
    m.state = j.value("state", "");
    BOURSE_RETURN_IF_ERROR(ReadTrades(m));
    if (Works(m)) {
      BOURSE_ASSIGN_OR_RETURN(
          json book,
          client_->Call("GET", "/v1/markets/" + clients::EscapeSegment(m.id) + "/orders"));
      for (const json& o : book.value("bids", json::array())) m.bids.push_back(o);
      for (const json& o : book.value("asks", json::array())) m.asks.push_back(o);
      v.markets.push_back(m);
    }
    v.all_markets.push_back(std::move(m));
  }
  // Soonest close first: what can be sold for the shortest time is offered first.
  std::ranges::sort(v.markets, [](const MarketView& a, const MarketView& b) {
    return std::tie(a.close, a.id) < std::tie(b.close, b.id);
  });
  return core::Status::Ok();
}

core::Result<View> BrokerReader::Read() {
  View v;
  v.me = me_;
  BOURSE_ASSIGN_OR_RETURN(json head, client_->Call("GET", "/v1/ledger/head"));
  ledger_size_ = head.value("size", int64_t{-1});
  BOURSE_RETURN_IF_ERROR(ReadHoldings(v));
  BOURSE_RETURN_IF_ERROR(ReadMarkets(v));
  trades_seen_size_ = ledger_size_;
  BOURSE_RETURN_IF_ERROR(ReadRfqs(v));
  BOURSE_ASSIGN_OR_RETURN(json orders,
                          client_->Call("GET", "/v1/orders?owner=" + clients::EscapeSegment(me_)));
  for (const json& o : orders.value("orders", json::array())) v.my_orders.push_back(o);
  BOURSE_ASSIGN_OR_RETURN(v.account,
                          client_->Call("GET", "/v1/accounts/" + clients::EscapeSegment(me_)));
  return v;
}

core::Status BrokerReader::ReadRfqs(View& v) {
  BOURSE_ASSIGN_OR_RETURN(json list, client_->CallSigned("GET", "/v1/rfqs?state=open"));
  for (const json& r : list.value("rfqs", json::array())) v.rfqs.push_back(r);
  return core::Status::Ok();
}

core::ResourceVector FreeOver(const Held& h, const core::Interval& window) {
  if (!window.IsSubsetOf(h.rcap.interval)) return {};
  ledger::internal::Timeline use;
  for (const ledger::Rcap& c : h.children) use.Add(c.interval, c.res);
  core::ResourceVector peak = use.Peak(window);
  core::ResourceVector free = h.rcap.res;
  free.cpu_mcores = std::max<int64_t>(0, free.cpu_mcores - peak.cpu_mcores);
  free.mem_mib = std::max<int64_t>(0, free.mem_mib - peak.mem_mib);
  free.disk_mib = std::max<int64_t>(0, free.disk_mib - peak.disk_mib);
  free.net_min_kbps = std::max<int64_t>(0, free.net_min_kbps - peak.net_min_kbps);
  return free;
}

int64_t UnitsIn(const core::ResourceVector& free, const core::ResourceVector& unit) {
  if (unit.net_max_kbps > free.net_max_kbps) return 0;
  int64_t n = -1;
  auto fit = [&n](int64_t have, int64_t per) {
    if (per > 0) n = n < 0 ? have / per : std::min(n, have / per);
  };
  fit(free.cpu_mcores, unit.cpu_mcores);
  fit(free.mem_mib, unit.mem_mib);
  fit(free.disk_mib, unit.disk_mib);
  fit(free.net_min_kbps, unit.net_min_kbps);
  return std::max<int64_t>(n, 0);
}

}  // namespace bourse::agent
