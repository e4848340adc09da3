// Agent::StatusJson and RenderStatus: what `bourse-agent status` prints.
#include "clients/agent/status.h"

#include <map>

#include "clients/agent/agent.h"
#include "clients/cli_args.h"
#include "core/clock.h"
#include "core/json_codec.h"

namespace bourse::agent {

using nlohmann::json;

namespace {

json Sum(const json& a, const core::ResourceVector& b) {
  core::ResourceVector x = core::ResourceVectorFromJson(a, "res").value_or(core::ResourceVector{});
  return core::ResourceVectorToJson(x.Plus(b).value_or(x));
}

json TradeRow(const MarketView& m, const json& t) {
  return {{"market", m.id},
          {"qty", t.value("qty", int64_t{0})},
          {"price", t.value("price", "")},
          {"ts_ms", t.value("ts_ms", int64_t{0})},
          {"rcap", t.value("rcap", "")}};
}

core::Money MoneyOf(const json& j) {
  return core::Money::Parse(j.is_string() ? j.get<std::string>() : "0").value_or(core::Money());
}

}  // namespace

core::Result<json> Agent::StatusJson() {
  BOURSE_ASSIGN_OR_RETURN(View v, reader_.Read());
  const int64_t now = core::SystemClock::Get().NowSeconds();
  json holdings = json::array(), nodes = json::object();
  for (const Held& h : v.holdings) {
    core::Interval rest{.not_before = std::max(now, h.rcap.interval.not_before),
                        .not_after = h.rcap.interval.not_after};
    core::ResourceVector free = rest.Empty() ? core::ResourceVector{} : FreeOver(h, rest);
    holdings.push_back({{"rcap", h.rcap.id},
                        {"node", h.rcap.node},
                        {"site", h.site},
                        {"res", core::ResourceVectorToJson(h.rcap.res)},
                        {"not_before", h.rcap.interval.not_before},
                        {"not_after", h.rcap.interval.not_after},
                        {"free", core::ResourceVectorToJson(free)},
                        {"returned", h.nested}});
    json& n = nodes[h.rcap.node];
    if (n.is_null()) {
      n = {{"site", h.site},
           {"held", core::ResourceVectorToJson({})},
           {"free", core::ResourceVectorToJson({})}};
    }
    if (!h.nested) n["held"] = Sum(n["held"], h.rcap.res);
    n["free"] = Sum(n["free"], free);
  }
  json asks = json::array(), bids = json::array();
  for (const json& o : v.my_orders) {
    json row = {{"market", o.value("market", "")},
                {"order", o.value("id", int64_t{0})},
                {"remaining", o.value("remaining", int64_t{0})},
                {"price", o.value("price", json())}};
    (o.value("side", "") == "sell" ? asks : bids).push_back(row);
  }
  json sales = json::array(), bought = json::array();
  core::Money earned, spent;
  for (const MarketView& m : v.all_markets) {
    for (const json& t : m.trades) {
      core::Money x =
          MoneyOf(t["price"]).MulInt(t.value("qty", int64_t{0})).value_or(core::Money());
      if (t.value("seller", "") == me_) {
        sales.push_back(TradeRow(m, t));
        earned = earned.Add(x).value_or(earned);
      }
      if (t.value("buyer", "") == me_) {
        bought.push_back(TradeRow(m, t));
        spent = spent.Add(x).value_or(spent);
      }
    }
  }
  return json{{"key", me_},
              {"policy", std::string(policy_->name())},
              {"holdings", holdings},
              {"nodes", nodes},
              {"asks", asks},
              {"bids", bids},
              {"quotes", QuoteRows(v)},
              {"sales", sales},
              {"bought", bought},
              {"earned", earned.ToString()},
              {"spent", spent.ToString()},
              {"profit", earned.Sub(spent).value_or(core::Money()).ToString()},
              {"balance", v.account.value("balance", "0")}};
}

std::string RenderStatus(const json& s) {
  using clients::FormatResourcesJson;
  using clients::Table;
  using clients::Text;
  std::string out = "agent " + Text(s["key"]) + " (policy " + Text(s["policy"]) + ")\n\n";
  Table nodes({"SITE", "NODE", "HELD", "FREE"});
  for (const auto& [node, n] : s["nodes"].items()) {
    nodes.Row(
        {Text(n["site"]), node, FormatResourcesJson(n["held"]), FormatResourcesJson(n["free"])});
  }
  out += "holdings by node\n" + nodes.Render() + "\n";
  Table asks({"MARKET", "ORDER", "REMAINING", "PRICE"});
  for (const json& o : s["asks"]) {
    asks.Row({Text(o["market"]), Text(o["order"]), Text(o["remaining"]), Text(o["price"])});
  }
  out += "resting asks\n" + asks.Render() + "\n";
  Table quotes({"RFQ", "QUOTE", "PRICE", "STATE", "NODES"});
  for (const json& q : s["quotes"]) {
    std::string nodes;
    for (const json& n : q.value("nodes", json::array())) {
      nodes += (nodes.empty() ? "" : ",") + Text(n);
    }
    quotes.Row({Text(q["rfq"]), Text(q["quote"]), Text(q["price"]), Text(q["state"]), nodes});
  }
  out += "open quotes\n" + quotes.Render() + "\n";
  Table sales({"MARKET", "QTY", "PRICE", "RCAP"});
  for (const json& t : s["sales"]) {
    sales.Row({Text(t["market"]), Text(t["qty"]), Text(t["price"]), Text(t["rcap"])});
  }
  out += "sales\n" + sales.Render() + "\n";
  out += "earned  " + Text(s["earned"]) + "\nspent   " + Text(s["spent"]) + "\nprofit  " +
         Text(s["profit"]) + "\nbalance " + Text(s["balance"]) + "\n";
  return out;
}

}  // namespace bourse::agent
