// The agent's side of requests for quote (DESIGN §10, docs/agent.md "Answering RFQs"): each
// pass it prices every open RFQ it may answer (an "rfq" item for the policy), places the rspec
// on nodes of its holdings (PlaceRspec) and quotes with one signed escrow per node, and
// withdraws its open quotes whose price the policy now refuses; an RFQ it withdrew from is
// quoted again when the policy accepts it again, up to kMaxQuotesPerRfq quotes (NextRfqStep).
// What the broker gives back (a lost or withdrawn quote's escrows) is an rcap it holds again:
// the next pass pools it.
#include <algorithm>
#include <map>
#include <utility>

#include "clients/agent/agent.h"
#include "clients/escrow.h"
#include "core/clock.h"
#include "core/json_codec.h"

namespace bourse::agent {

using nlohmann::json;

namespace {

int64_t NowS() { return core::SystemClock::Get().NowSeconds(); }

// Whether `free` holds `want` component-wise (net_max_kbps a ceiling: at least as high).
bool Covers(const core::ResourceVector& free, const core::ResourceVector& want) {
  return free.cpu_mcores >= want.cpu_mcores && free.mem_mib >= want.mem_mib &&
         free.disk_mib >= want.disk_mib && free.net_min_kbps >= want.net_min_kbps &&
         free.net_max_kbps >= want.net_max_kbps;
}

core::Interval WindowOf(const json& rfq) {
  return {.not_before = rfq.value("not_before", int64_t{0}),
          .not_after = rfq.value("not_after", int64_t{0})};
}

// Its own quote on `rfq` in `state` ("" = any state), or nullptr.
const json* MyQuote(const json& rfq, const std::string& me, const std::string& state) {
  auto quotes = rfq.find("quotes");  // a pointer into `rfq`, not into a copy
  if (quotes == rfq.end() || !quotes->is_array()) return nullptr;
  for (const json& q : *quotes) {
    if (q.value("seller", "") == me && (state.empty() || q.value("state", "") == state)) return &q;
  }
  return nullptr;
}

// An RFQ it may answer or hold a quote on: open, not its own, before its close.
bool Answerable(const json& rfq, const std::string& me, int64_t now_s) {
  return rfq.value("state", "") == "open" && rfq.value("buyer", "") != me &&
         now_s < rfq.value("close", int64_t{0});
}

}  // namespace

RfqStep NextRfqStep(const json& rfq, const std::string& me, bool refuses) {
  int64_t sent = 0;
  bool open = false, settled = false;
  auto quotes = rfq.find("quotes");
  if (quotes != rfq.end() && quotes->is_array()) {
    for (const json& q : *quotes) {
      if (q.value("seller", "") != me) continue;
      ++sent;
      const std::string state = q.value("state", "");
      open = open || state == "open";
      settled = settled || (state != "open" && state != "withdrawn");  // lost, won
    }
  }
  if (open) return refuses ? RfqStep::kWithdraw : RfqStep::kKeep;
  if (settled || refuses) return RfqStep::kKeep;
  return sent >= kMaxQuotesPerRfq ? RfqStep::kAtBound : RfqStep::kQuote;
}

std::vector<Held*> PlaceRspec(std::vector<Held>& holdings, const core::ResourceVector& res,
                              int64_t nodes, int64_t min_sites, const core::Interval& window,
                              const core::ResourceVector& unit) {
  struct Fit {
    int64_t spare;
    Held* h;
  };
  // The tightest holding of each node that covers `res`.
  std::map<std::string, Fit> by_node;
  for (Held& h : holdings) {
    core::ResourceVector free = FreeOver(h, window);
    if (!Covers(free, res)) continue;
    const int64_t spare = UnitsIn(free, unit);
    auto [it, fresh] = by_node.try_emplace(h.rcap.node, Fit{spare, &h});
    if (!fresh && spare < it->second.spare) it->second = Fit{spare, &h};
  }
  std::map<std::string, std::vector<std::pair<int64_t, std::string>>> by_site;
  for (const auto& [node, f] : by_node) by_site[f.h->site].push_back({f.spare, node});
  std::vector<std::pair<std::pair<int64_t, std::string>, std::string>> sites;  // first fit, site
  for (auto& [site, list] : by_site) {
    std::ranges::sort(list);
    sites.push_back({list.front(), site});
  }
  std::ranges::sort(sites);
  std::vector<Held*> out;
  for (size_t round = 0; static_cast<int64_t>(out.size()) < nodes; ++round) {
    size_t before = out.size();
    for (const auto& [first, site] : sites) {
      const auto& list = by_site[site];
      if (round < list.size() && static_cast<int64_t>(out.size()) < nodes) {
        out.push_back(by_node.at(list[round].second).h);
      }
    }
    if (out.size() == before) break;  // every site used up
  }
  std::map<std::string, int> used_sites;
  for (Held* h : out) ++used_sites[h->site];
  if (static_cast<int64_t>(out.size()) < nodes ||
      static_cast<int64_t>(used_sites.size()) < std::max<int64_t>(1, min_sites)) {
    return {};
  }
  return out;
}

void Agent::AddRfqItems(const View& v, Situation& s) const {
  const int64_t now = NowS();
  for (const json& r : v.rfqs) {
    if (!Answerable(r, me_, now)) continue;
    Item it;
    it.kind = "rfq";
    it.id = r.value("id", "");
    it.res = core::ResourceVectorFromJson(r.value("res", json()), "res").value_or({});
    it.count = r.value("nodes", int64_t{1});
    it.not_before = r.value("not_before", int64_t{0});
    it.not_after = r.value("not_after", int64_t{0});
    core::Money one = BasePrice(config_, it.res, it.not_before, it.not_after).value_or({});
    it.base = one.MulInt(it.count).value_or(core::Money());
    s.items.push_back(std::move(it));
  }
}

void Agent::PlanRfqs(View& v, const Situation& s,
                     const std::vector<std::optional<core::Money>>& prices,
                     const std::vector<bool>& failed, Plan& plan) {
  std::map<std::string, size_t> item_of;
  for (size_t i = v.markets.size(); i < s.items.size(); ++i) item_of[s.items[i].id] = i;
  for (const json& r : v.rfqs) {
    auto it = item_of.find(r.value("id", ""));
    if (it == item_of.end() || failed[it->second]) continue;  // not answerable, or no answer
    const std::optional<core::Money>& price = prices[it->second];
    core::Result<core::Money> max = core::Money::Parse(r.value("max_price", "0"));
    // The policy refuses it: no price, or more than the buyer will pay.
    const bool refuses = !price || !max.ok() || *max < *price;
    const std::string rid = r.value("id", "");
    switch (NextRfqStep(r, me_, refuses)) {
      case RfqStep::kKeep:  // an open quote stands: its capacity is escrowed, it can be honoured
        break;
      case RfqStep::kWithdraw: {
        const std::string qid = MyQuote(r, me_, "open")->value("id", "");
        std::string key = "withdraw " + rid + " quote " + qid;
        if (refused_.contains(key)) break;
        plan.rfq.push_back({.rfq = rid, .quote = qid, .body = nullptr, .what = key, .key = key});
        break;
      }
      case RfqStep::kQuote:  // first, or again after it withdrew
        PlanQuote(v, r, *price, plan);
        break;
      case RfqStep::kAtBound: {
        std::string why = "sent " + std::to_string(kMaxQuotesPerRfq) + " quotes on rfq " + rid +
                          "; no more quotes on it";
        if (told_.insert(why).second) Log(why);
        break;
      }
    }
  }
}

void Agent::PlanQuote(View& v, const json& rfq, const core::Money& price, Plan& plan) {
  const std::string rid = rfq.value("id", "");
  core::Result<core::ResourceVector> res =
      core::ResourceVectorFromJson(rfq.value("res", json()), "rfq.res");
  if (!res.ok()) return;
  const core::Interval window = WindowOf(rfq);
  std::vector<Held*> place = PlaceRspec(v.holdings, *res, rfq.value("nodes", int64_t{0}),
                                        rfq.value("min_sites", int64_t{1}), window, config_.unit);
  if (place.empty()) {
    std::string why = "cannot cover rfq " + rid + " from its free capacity; no quote";
    if (told_.insert(why).second) Log(why);
    return;
  }
  std::string nodes;
  for (const Held* h : place) nodes += (nodes.empty() ? "" : ",") + h->rcap.node;
  std::string key = "quote " + rid + " on " + nodes;
  if (refused_.contains(key) || refused_.contains(key + " at " + price.ToString())) return;
  json pieces = json::array();
  std::vector<std::pair<Held*, ledger::Rcap>> used;
  for (Held* h : place) {
    core::Result<ledger::Rcap> e = clients::RfqEscrow(rfq, h->rcap, key_, *broker_key_);
    if (!e.ok()) {
      refused_.insert(key);
      Log("skip " + key + ": " + e.status().ToString());
      return;
    }
    pieces.push_back({{"rcap", e->ToJson()}, {"node", h->rcap.node}});
    used.push_back({h, *std::move(e)});
  }
  for (auto& [h, e] : used) h->children.push_back(std::move(e));  // the markets see it used
  plan.rfq.push_back({.rfq = rid,
                      .quote = "",
                      .body = {{"price", price.ToString()}, {"rcaps", pieces}},
                      .what = key + " at " + price.ToString(),
                      .key = key});
}

void Agent::ApplyRfqs(const Plan& plan) {
  for (const RfqAction& a : plan.rfq) {
    const std::string path = "/v1/rfqs/" + clients::EscapeSegment(a.rfq) + "/quotes";
    core::Result<json> r =
        a.quote.empty() ? client_.Call("POST", path, a.body)
                        : client_.Call("DELETE", path + "/" + clients::EscapeSegment(a.quote));
    if (r.ok()) {
      std::string extra = a.quote.empty() ? " (quote " + (*r)["quote"].value("id", "") + ")" : "";
      Log(a.what + extra);
    } else if (r.status().code() == core::StatusCode::kUnavailable) {
      Log(a.what + " left for the next pass: " + r.status().ToString());
    } else {
      // Refused by the broker: not tried again until what it was computed from changes.
      if (refused_.size() > 10000) refused_.clear();
      refused_.insert(a.key);
      Log("refused " + a.what + ": " + r.status().ToString());
    }
  }
}

json Agent::QuoteRows(const View& v) const {
  json rows = json::array();
  for (const json& r : v.rfqs) {
    for (const json& q : r.value("quotes", json::array())) {
      if (q.value("seller", "") != me_ || q.value("state", "") != "open") continue;
      rows.push_back({{"rfq", r.value("id", "")},
                      {"quote", q.value("id", "")},
                      {"price", q.value("price", json())},
                      {"state", q.value("state", "")},
                      {"nodes", q.value("nodes", json::array())},
                      {"sites", q.value("sites", json::array())},
                      {"not_before", r.value("not_before", int64_t{0})},
                      {"not_after", r.value("not_after", int64_t{0})},
                      {"close", r.value("close", int64_t{0})}});
    }
  }
  return rows;
}

}  // namespace bourse::agent
