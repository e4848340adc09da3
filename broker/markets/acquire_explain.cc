// Markets: what acquire(rspec) says when it refuses and when it rounds
// (internal/acquire.h). Pure functions of what acquire found; the rules are
// in acquire.cc and docs/markets.md ("acquire(rspec)").
#include <algorithm>
#include <set>

#include "broker/markets/internal/acquire.h"
#include "core/json_codec.h"

namespace bourse::markets::internal {

namespace {

// At most this many nodes or windows are named in one message.
constexpr size_t kMaxNamed = 10;

struct Quantity {
  const char* name;
  int64_t core::ResourceVector::*member;
};
constexpr Quantity kQuantities[] = {{"cpu_mcores", &core::ResourceVector::cpu_mcores},
                                    {"mem_mib", &core::ResourceVector::mem_mib},
                                    {"disk_mib", &core::ResourceVector::disk_mib},
                                    {"net_min_kbps", &core::ResourceVector::net_min_kbps}};

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// "a, b, c and 4 more" from at most kMaxNamed of `items`.
std::string NameSome(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < kMaxNamed; ++i) {
    out += (i == 0 ? "" : ", ") + items[i];
  }
  if (items.size() > kMaxNamed) out += " and " + std::to_string(items.size() - kMaxNamed) + " more";
  return out;
}

// The resources of rs none of `covering` offers: a quantity no unit has, or
// a net_max_kbps above every unit's.
std::vector<std::string> MissingResources(const Rspec& rs,
                                          const std::vector<const MarketView*>& covering) {
  std::vector<std::string> missing;
  for (const Quantity& q : kQuantities) {
    if (rs.res.*q.member == 0) continue;
    bool offered = std::any_of(covering.begin(), covering.end(),
                               [&](const MarketView* v) { return v->unit.*q.member > 0; });
    if (!offered) missing.push_back(q.name);
  }
  if (rs.res.net_max_kbps > 0) {
    bool offered = std::any_of(covering.begin(), covering.end(), [&](const MarketView* v) {
      return v->unit.net_max_kbps >= rs.res.net_max_kbps;
    });
    if (!offered) missing.push_back("net_max_kbps >= " + std::to_string(rs.res.net_max_kbps));
  }
  return missing;
}

}  // namespace

int64_t UnitsCovering(const core::ResourceVector& res, const core::ResourceVector& unit) {
  if (res.net_max_kbps > unit.net_max_kbps) return 0;
  int64_t k = 1;
  for (const Quantity& q : kQuantities) {
    const int64_t want = res.*q.member, per = unit.*q.member;
    if (want == 0) continue;
    if (per <= 0) return 0;
    k = std::max(k, want / per + (want % per != 0 ? 1 : 0));
  }
  return unit.Times(k).ok() ? k : 0;
}

std::string ShortRes(const core::ResourceVector& r) {
  std::string out;
  for (const Quantity& q : kQuantities) {
    if (r.*q.member == 0) continue;
    out += (out.empty() ? "" : ",") + std::string(q.name) + "=" + std::to_string(r.*q.member);
  }
  if (r.net_max_kbps != 0) {
    out += (out.empty() ? "" : ",") + std::string("net_max_kbps=") + std::to_string(r.net_max_kbps);
  }
  return out.empty() ? "nothing" : out;
}

core::Status NoMarketServes(const Rspec& rs, const std::vector<MarketView>& open) {
  const std::string when = rs.interval.ToString();
  std::vector<const MarketView*> covering;
  for (const MarketView& v : open) {
    if (rs.interval.IsSubsetOf(v.window)) covering.push_back(&v);
  }
  if (covering.empty()) {
    std::string msg = "rspec: no open node market's window covers " + when;
    if (open.empty()) return core::FailedPrecondition(msg + " (no node market is open)");
    std::set<std::pair<int64_t, int64_t>> seen;
    std::vector<std::string> windows;
    for (const MarketView& v : open) {
      if (seen.insert({v.window.not_before, v.window.not_after}).second) {
        windows.push_back(v.window.ToString());
      }
    }
    return core::FailedPrecondition(msg + " (open node markets' windows: " + NameSome(windows) +
                                    ")");
  }
  std::vector<std::string> missing = MissingResources(rs, covering);
  std::string markets =
      " (" + Plural(covering.size(), "open market covers", "open markets cover") + " the window)";
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size(); ++i) list += (i == 0 ? "" : ", ") + missing[i];
    return core::FailedPrecondition("rspec.res: no open market offers " + list + " for " + when +
                                    markets);
  }
  return core::FailedPrecondition("rspec.res: no single open market offers all of " +
                                  ShortRes(rs.res) + " for " + when + markets);
}

core::Status TooFewNodes(const Rspec& rs, const std::vector<Candidate>& cands,
                         const std::vector<Unfilled>& unfilled) {
  std::set<std::string> sites;
  std::vector<std::string> can;
  for (const Candidate& c : cands) {
    sites.insert(c.ms->info.site);  // immutable once the market exists
    can.push_back(c.ms->info.node + " (site " + c.ms->info.site + ")");
  }
  std::string msg =
      "rspec: the order books cannot fill it: " + Plural(cands.size(), "node can", "nodes can") +
      " fill for " + rs.interval.ToString();
  if (!can.empty()) msg += ": " + NameSome(can);
  msg += "; " + std::to_string(rs.nodes) + " needed";
  if (rs.min_sites > 0) msg += " in >= " + std::to_string(rs.min_sites) + " sites";
  std::vector<std::string> shorts;
  if (static_cast<int64_t>(cands.size()) < rs.nodes) {
    shorts.push_back(Plural(rs.nodes - cands.size(), "node", "nodes") + " short");
  }
  if (static_cast<int64_t>(sites.size()) < rs.min_sites) {
    shorts.push_back(Plural(rs.min_sites - sites.size(), "site", "sites") + " short");
  }
  if (!shorts.empty()) msg += ": " + NameSome(shorts);
  if (!unfilled.empty()) {
    std::vector<std::string> few;
    for (const Unfilled& u : unfilled) {
      few.push_back(u.node + " (site " + u.site + ", " + std::to_string(u.offered) + " of " +
                    std::to_string(u.needed) + " units on offer)");
    }
    msg += "; too few asks on " + NameSome(few);
  }
  return core::FailedPrecondition(msg);
}

core::Status OverMaxPrice(const Rspec& rs, const core::Money& cost, const core::Money& max_price) {
  return core::FailedPrecondition("max_price: the cheapest fill of " +
                                  Plural(rs.nodes, "node", "nodes") + " costs " + cost.ToString() +
                                  " > max_price " + max_price.ToMinimalString());
}

core::Status ShortOfFunds(const core::Money& cost, const std::string& account,
                          const core::Money& available) {
  auto short_by = cost.Sub(available);
  return core::InsufficientFunds(
      "insufficient funds: acquire costs " + cost.ToString() + "; account " + account + " has " +
      available.ToString() + " available" +
      (short_by.ok() ? ": " + short_by->ToString() + " short" : std::string()));
}

bool IsRounded(const Rounding& r) {
  auto bought = r.unit.Times(r.units);
  if (!bought.ok()) return true;
  for (const Quantity& q : kQuantities) {
    if ((*bought).*q.member != r.asked.*q.member) return true;
  }
  return !(r.window == r.asked_window);
}

nlohmann::json RoundingToJson(const Rounding& r) {
  auto window = [](const core::Interval& w) {
    return nlohmann::json{{"not_before", w.not_before}, {"not_after", w.not_after}};
  };
  return {{"node", r.node},
          {"market", r.market},
          {"units", r.units},
          {"unit", core::ResourceVectorToJson(r.unit)},
          {"bought", core::ResourceVectorToJson(r.unit.Times(r.units).value_or(r.unit))},
          {"asked", core::ResourceVectorToJson(r.asked)},
          {"window", window(r.window)},
          {"asked_window", window(r.asked_window)}};
}

std::string RoundingNote(const std::vector<Rounding>& rounded) {
  if (rounded.empty()) return "";
  std::vector<std::string> parts;
  for (const Rounding& r : rounded) {
    std::string p = r.node + ": " + std::to_string(r.units) + " x " + ShortRes(r.unit);
    auto bought = r.unit.Times(r.units);
    if (bought.ok()) p += " = " + ShortRes(*bought);
    p += " for " + ShortRes(r.asked) + " asked";
    if (!(r.window == r.asked_window)) {
      p += ", over the market's window " + r.window.ToString() + " for " +
           r.asked_window.ToString() + " asked";
    }
    parts.push_back(p);
  }
  return "bought in whole units over whole market windows (" + NameSome(parts) +
         "); each chain ends in exactly the res and window asked, and the rest is the "
         "buyer's too (extra)";
}

}  // namespace bourse::markets::internal
