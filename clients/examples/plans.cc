#include "clients/examples/plans.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "core/json_codec.h"

namespace bourse::examples {

using nlohmann::json;

namespace {

// The list `key` of a GET's reply ({"rfqs":[...]}), or the reply itself
// when it is already the array; an empty array otherwise.
const json& ListOf(const json& doc, const char* key) {
  static const json kEmpty = json::array();
  if (doc.is_array()) return doc;
  if (doc.is_object() && doc.contains(key) && doc[key].is_array()) return doc[key];
  return kEmpty;
}

std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

int64_t Int(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : 0;
}

// Leaf ids bound to the slice, whatever their state: a leaf is bound once.
std::set<std::string> BoundLeaves(const json& bindings) {
  std::set<std::string> out;
  for (const json& b : ListOf(bindings, "bindings")) out.insert(Str(b, "leaf"));
  return out;
}

bool HasQuantity(const core::ResourceVector& r) {
  return r.cpu_mcores > 0 || r.mem_mib > 0 || r.disk_mib > 0 || r.net_min_kbps > 0;
}

json RspecJson(const Rspec& want) {
  return {{"res", core::ResourceVectorToJson(want.res)},
          {"nodes", want.nodes},
          {"min_sites", want.min_sites},
          {"not_before", want.window.not_before},
          {"not_after", want.window.not_after}};
}

}  // namespace

int64_t PeriodStart(int64_t t, int64_t period) { return t - (((t % period) + period) % period); }

int64_t PeriodEnd(int64_t t, int64_t period) { return PeriodStart(t, period) + period; }

// ---- content distribution ----

core::Interval FirstLease(int64_t now, int64_t period) {
  int64_t end = PeriodEnd(now, period);
  if (end - now < kMinLeaseS) end += period;
  return {now, end};
}

core::Interval Renewal(int64_t end, int64_t period) { return {end, PeriodEnd(end, period)}; }

int64_t RenewLead(int64_t period) { return std::clamp<int64_t>(period / 3, 20, 300); }

CdnStep PlanCdn(int64_t now, int64_t period, int64_t covered_until, bool rfq_open) {
  if (rfq_open) return CdnStep::kWaitForRfq;
  if (covered_until <= now) return CdnStep::kLease;
  if (covered_until - now <= RenewLead(period)) return CdnStep::kRenew;
  return CdnStep::kIdle;
}

int64_t CoveredUntil(const json& bindings) {
  int64_t until = 0;
  for (const json& b : ListOf(bindings, "bindings")) {
    std::string state = Str(b, "state");
    if (state == "refused" || state == "expired") continue;
    until = std::max(until, Int(b, "not_after"));
  }
  return until;
}

std::vector<std::string> UnboundAwards(const json& rfqs, const json& bindings, int64_t now) {
  std::set<std::string> bound = BoundLeaves(bindings);
  const json& list = ListOf(rfqs, "rfqs");
  std::vector<std::string> out;
  for (auto it = list.rbegin(); it != list.rend(); ++it) {  // newest first -> award order
    const json& r = *it;
    if (Str(r, "state") != "awarded" || Int(r, "not_after") <= now) continue;
    if (!r.contains("rcaps") || !r["rcaps"].is_array()) continue;
    for (const json& id : r["rcaps"]) {
      if (id.is_string() && !bound.count(id.get<std::string>())) out.push_back(id);
    }
  }
  return out;
}

json RfqBody(const Rspec& want, const core::Money& max_price, int64_t close) {
  json body = RspecJson(want);
  body["max_price"] = max_price.ToString();
  body["close"] = close;
  body["award"] = "auto";
  return body;
}

json AcquireBody(const Rspec& want, const core::Money& max_price) {
  return {{"rspec", RspecJson(want)}, {"max_price", max_price.ToString()}, {"fallback", "rfq"}};
}

// ---- measurement ----

std::vector<json> RoundsToBid(const json& rounds, const std::set<std::string>& done, int64_t now) {
  const json& list = ListOf(rounds, "rounds");
  std::vector<json> out;
  for (auto it = list.rbegin(); it != list.rend(); ++it) {  // newest first -> oldest first
    if (Str(*it, "state") == "open" && Int(*it, "close") > now && !done.count(Str(*it, "id"))) {
      out.push_back(*it);
    }
  }
  return out;
}

std::optional<json> RoundBid(const json& round, const Rspec& want, const core::Money& limit,
                             std::string* why) {
  // The offers that can serve want.res on their own (the broker refuses a
  // bundle that asks a node for more than the round escrowed there).
  struct Fit {
    std::string node, site;
  };
  std::vector<Fit> fits;
  std::set<std::string> sites;
  for (const json& o : ListOf(round, "offers")) {
    auto res = core::ResourceVectorFromJson(o.value("res", json()), "res");
    if (!res.ok() || !want.res.FitsWithin(*res)) continue;
    fits.push_back({Str(o, "node"), Str(o, "site")});
    sites.insert(Str(o, "site"));
  }
  json bundles = json::array();
  if (static_cast<int64_t>(fits.size()) >= want.nodes &&
      static_cast<int64_t>(sites.size()) >= want.min_sites) {
    json from = json::array();
    for (const Fit& f : fits) from.push_back(f.node);
    bundles.push_back({{"count", want.nodes},
                       {"from", from},
                       {"min_sites", want.min_sites},
                       {"res", core::ResourceVectorToJson(want.res)}});
  }
  // Or exactly these two: the first fitting node and the first of another site.
  auto other = std::find_if(fits.begin(), fits.end(),
                            [&](const Fit& f) { return f.site != fits.front().site; });
  if (other != fits.end()) {
    json res = core::ResourceVectorToJson(want.res);
    bundles.push_back(
        {{"items",
          {{{"node", fits.front().node}, {"res", res}}, {{"node", other->node}, {"res", res}}}}});
  }
  if (bundles.empty()) {
    if (why) {
      *why = std::to_string(fits.size()) + " offered node(s) in " + std::to_string(sites.size()) +
             " site(s) fit " + want.res.ToString() + "; " + std::to_string(want.nodes) +
             " in >= " + std::to_string(want.min_sites) + " sites, or 2 in 2 sites, wanted";
    }
    return std::nullopt;
  }
  return json{{"limit", limit.ToString()}, {"bundles", bundles}};
}

std::vector<Won> UnboundWins(const json& rounds, const std::string& me, const json& bindings,
                             int64_t now) {
  std::set<std::string> bound = BoundLeaves(bindings);
  std::vector<Won> out;
  for (const json& r : ListOf(rounds, "rounds")) {
    if (Int(r, "not_after") <= now || !r.contains("result") || !r["result"].is_object()) continue;
    for (const json& w : ListOf(r["result"], "winners")) {
      if (Str(w, "bidder") != me) continue;
      const json& rcaps = ListOf(w, "rcaps");
      const json& nodes = ListOf(w, "nodes");
      for (size_t i = 0; i < rcaps.size(); ++i) {
        if (!rcaps[i].is_string() || bound.count(rcaps[i].get<std::string>())) continue;
        std::string node =
            i < nodes.size() && nodes[i].is_string() ? nodes[i].get<std::string>() : "";
        out.push_back({Str(r, "id"), rcaps[i], node});
      }
    }
  }
  return out;
}

// ---- batch ----

std::vector<std::string> NodesNeedingShareBid(const std::vector<std::string>& targets,
                                              const json& bids, const std::string& slice) {
  std::set<std::string> covered;
  for (const json& b : ListOf(bids, "bids")) {
    if (Str(b, "slice") == slice && Str(b, "state") == "active") covered.insert(Str(b, "node"));
  }
  std::vector<std::string> out;
  for (const std::string& n : targets) {
    if (!covered.count(n)) out.push_back(n);
  }
  return out;
}

core::Result<std::vector<std::string>> ParseNodeList(const std::string& text) {
  std::vector<std::string> out;
  if (text == "all") return out;
  size_t at = 0;
  while (true) {
    size_t comma = std::min(text.find(',', at), text.size());
    std::string name = text.substr(at, comma - at);
    if (name.empty() || name == "all") {
      return core::InvalidArgument("\"" + text + "\" is not a,b,... or all");
    }
    out.push_back(name);
    if (comma == text.size()) return out;
    at = comma + 1;
  }
}

json SliceShare(const json& table, const std::string& slice) {
  for (const json& s : ListOf(table, "shares")) {
    if (Str(s, "slice") == slice) return s;
  }
  return nullptr;
}

// ---- the operator ----

std::vector<MarketSpec> MissingMarkets(const std::vector<std::string>& nodes, const json& markets,
                                       const core::ResourceVector& unit, int64_t period,
                                       int64_t now) {
  auto exists = [&](const std::string& node, const core::Interval& w) {
    for (const json& m : ListOf(markets, "markets")) {
      if (Str(m, "node") != node || Str(m, "state") != "open" ||
          Int(m, "not_before") != w.not_before || Int(m, "not_after") != w.not_after) {
        continue;
      }
      auto u = core::ResourceVectorFromJson(m.value("unit", json()), "unit");
      if (u.ok() && *u == unit) return true;
    }
    return false;
  };
  std::vector<MarketSpec> out;
  const int64_t current = PeriodStart(now, period);
  for (const std::string& node : nodes) {
    for (int64_t start : {current, current + period}) {
      MarketSpec m{node, {start, start + period}, start + period - kMarketCloseBeforeEndS};
      if (m.close <= now) continue;  // trading on it is already over
      if (!exists(node, m.window)) out.push_back(m);
    }
  }
  return out;
}

json MarketBody(const MarketSpec& m, const core::ResourceVector& unit) {
  return {{"node", m.node},
          {"unit", core::ResourceVectorToJson(unit)},
          {"not_before", m.window.not_before},
          {"not_after", m.window.not_after},
          {"close", m.close}};
}

core::Interval RoundWindow(int64_t close, int64_t period) {
  int64_t end = PeriodEnd(close, period);
  if (end - close < kMinRoundWindowS) return {end, end + period};
  return {close, end};
}

bool IsPoolChain(const json& chain, const std::string& broker_key) {
  if (!chain.is_array() || chain.empty()) return false;
  for (const json& link : chain) {
    if (Str(link, "holder") != broker_key) return false;
  }
  return true;
}

std::string RefusedOffer(const std::string& message, const std::vector<std::string>& offers) {
  size_t at = message.find("offers[");
  if (at == std::string::npos) return "";
  size_t i = 0, k = at + 7;
  if (k >= message.size() || !std::isdigit(static_cast<unsigned char>(message[k]))) return "";
  for (; k < message.size() && std::isdigit(static_cast<unsigned char>(message[k])); ++k) {
    i = i * 10 + static_cast<size_t>(message[k] - '0');
    if (i >= offers.size()) return "";
  }
  return k < message.size() && message[k] == ']' ? offers[i] : "";
}

std::vector<std::string> ChooseOffers(const std::vector<OfferCandidate>& candidates) {
  std::map<std::string, const OfferCandidate*> best;  // by node
  for (const OfferCandidate& c : candidates) {
    if (c.depth > kMaxOfferDepth || !HasQuantity(c.free)) continue;
    const OfferCandidate*& b = best[c.node];
    if (!b || c.depth < b->depth || (c.depth == b->depth && c.rcap < b->rcap)) b = &c;
  }
  std::vector<std::string> out;
  for (const auto& [node, c] : best) out.push_back(c->rcap);
  return out;
}

}  // namespace bourse::examples
