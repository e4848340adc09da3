// Markets: acquire(rspec) -> rcap chains. Buys an rspec through the order
// books at or under a price limit, all or nothing, in one transaction.
//
// An rspec {"res":V,"nodes":N,"min_sites":K,"not_before":a,"not_after":b}
// is served by the open node markets whose window covers [a, b) and whose
// unit u covers V in k whole units (internal::UnitsCovering: k is the
// largest ceil(V_i / u_i); a lower net_max_kbps than u's is fine, it is a
// ceiling). Per node the cheapest such market is used (cost = walking its
// asks for k units, the caller's own asks skipped); then the cheapest node of
// each of the K cheapest sites, then the cheapest remaining nodes up to N.
// If fewer than N nodes (K sites) can fill, the total exceeds max_price or
// the caller's free balance, nothing changes and the refusal says what fell
// short (acquire_explain.cc). Else one market buy of k units per chosen node,
// whose fills are children of the sellers' escrows held by the BROKER
// (OpCtx::fills_to_broker; otherwise settled exactly like any other fill),
// and the broker delegates to the caller, out of each node's fills, exactly
// V over [a, b), and the rest of the fills, which the caller paid for, as
// more children (Narrow: `extra`). All of it commits in ONE Mutate: either
// every chain comes back or the ledger and the books are unchanged.
#include "broker/markets/internal/acquire.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <span>

#include "broker/markets/internal/market_state.h"
#include "broker/markets/markets.h"
#include "core/json_codec.h"
#include "ledger/accounts.h"

namespace bourse::markets {

using internal::Candidate;
using internal::LiveOrder;
using internal::MarketState;
using internal::OpCtx;
using internal::Rspec;
using internal::Unfilled;
using nlohmann::json;

namespace {

constexpr int64_t kMaxNodes = 1000;

core::Result<Rspec> ParseRspec(const json& j) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(
      j, "rspec", {"res", "nodes", "min_sites", "not_before", "not_after"}));
  Rspec r;
  BOURSE_ASSIGN_OR_RETURN(const json* res, core::RequireMember(j, "rspec", "res"));
  BOURSE_ASSIGN_OR_RETURN(r.res, core::ResourceVectorFromJson(*res, "rspec.res"));
  if (r.res.IsZero()) return core::InvalidArgument("rspec.res: must not be zero");
  if (j.contains("nodes")) {
    BOURSE_ASSIGN_OR_RETURN(r.nodes, core::IntFromJson(j["nodes"], "rspec.nodes", 1, kMaxNodes));
  }
  if (j.contains("min_sites")) {
    BOURSE_ASSIGN_OR_RETURN(r.min_sites,
                            core::IntFromJson(j["min_sites"], "rspec.min_sites", 0, kMaxNodes));
  }
  if (r.min_sites > r.nodes) return core::InvalidArgument("rspec.min_sites: more than rspec.nodes");
  BOURSE_ASSIGN_OR_RETURN(const json* nb, core::RequireMember(j, "rspec", "not_before"));
  BOURSE_ASSIGN_OR_RETURN(r.interval.not_before,
                          core::IntFromJson(*nb, "rspec.not_before", 0, core::kMaxSafeInteger));
  BOURSE_ASSIGN_OR_RETURN(const json* na, core::RequireMember(j, "rspec", "not_after"));
  BOURSE_ASSIGN_OR_RETURN(r.interval.not_after,
                          core::IntFromJson(*na, "rspec.not_after", 0, core::kMaxSafeInteger));
  if (r.interval.not_after <= r.interval.not_before) {
    return core::InvalidArgument("rspec.not_after: must be after not_before");
  }
  return r;
}

// Whether a node market with `window` and `unit` may serve rs: its window
// covers the interval and its unit covers res.
bool Serves(const core::Interval& window, const core::ResourceVector& unit, const Rspec& rs) {
  return rs.interval.IsSubsetOf(window) && internal::UnitsCovering(rs.res, unit) > 0;
}

// The nodes that can fill rs now, each with its cheapest market, cheapest
// first, and the nodes whose fitting markets have too few asks.
struct Fillable {
  std::vector<Candidate> cands;
  std::vector<Unfilled> unfilled;
};

// Walks the asks of ms (without owner `me`'s) for `units`: the cost in
// nano-credits, and how many units are on offer (at most `units`).
std::pair<internal::Int128, int64_t> WalkAsks(MarketState* ms, int64_t units, uint64_t me)
    REQUIRES(ms->mu) {
  int64_t need = units;
  internal::Int128 cost = 0;
  for (const auction::RestingOrder& o : ms->book->Orders(auction::Side::kSell)) {
    if (o.owner == me) continue;
    int64_t take = std::min(need, o.qty);
    cost += static_cast<internal::Int128>(take) * o.price_nanos;
    need -= take;
    if (need == 0) break;
  }
  return {cost, units - need};
}

// The cheapest fillable market of each node among `all` (each Serves rs,
// open now), with the markets' locks held (through the caller's unique_locks).
core::Result<Fillable> CheapestPerNode(Markets& m, ledger::Txn& txn,
                                       const std::vector<MarketState*>& all, const Rspec& rs,
                                       uint64_t me, int64_t now_s) {
  std::map<std::string, Candidate> best;
  std::map<std::string, Unfilled> few;
  for (MarketState* ms : all) {
    ms->mu.AssertHeld();  // through `locks` (which the analysis cannot follow)
    if (ms->info.state != "open" || now_s >= ms->info.close_s) continue;
    BOURSE_RETURN_IF_ERROR(internal::EnsureFresh(&m, txn, ms));
    const int64_t k = internal::UnitsCovering(rs.res, ms->info.unit);
    auto [cost, offered] = WalkAsks(ms, k, me);
    const std::string& node = ms->info.node;
    if (offered < k) {
      auto it = few.find(node);
      if (it == few.end() || it->second.offered < offered) {
        few[node] = Unfilled{node, ms->info.site, offered, k};
      }
      continue;
    }
    auto it = best.find(node);
    if (it == best.end() || cost < it->second.cost) best[node] = Candidate{ms, k, cost};
  }
  Fillable out;
  for (auto& [node, c] : best) out.cands.push_back(c);
  for (auto& [node, u] : few) {
    if (!best.count(node)) out.unfilled.push_back(u);
  }
  std::sort(out.cands.begin(), out.cands.end(), [](const Candidate& a, const Candidate& b) {
    return a.cost != b.cost ? a.cost < b.cost : a.ms->info.node < b.ms->info.node;
  });
  return out;
}

// Choose: the cheapest node of each of the min_sites cheapest sites, then
// the cheapest of the rest. Errors: failed_precondition when too few.
core::Result<std::vector<Candidate>> Choose(const Fillable& f, const Rspec& rs) {
  std::vector<Candidate> chosen;
  std::set<std::string> sites, nodes;
  for (const Candidate& c : f.cands) {
    if (static_cast<int64_t>(sites.size()) >= rs.min_sites) break;
    if (sites.insert(c.ms->info.site).second) {
      chosen.push_back(c);
      nodes.insert(c.ms->info.node);
    }
  }
  for (const Candidate& c : f.cands) {
    if (static_cast<int64_t>(chosen.size()) >= rs.nodes) break;
    if (nodes.insert(c.ms->info.node).second) {
      chosen.push_back(c);
      sites.insert(c.ms->info.site);
    }
  }
  if (static_cast<int64_t>(chosen.size()) < rs.nodes ||
      static_cast<int64_t>(sites.size()) < rs.min_sites) {
    return internal::TooFewNodes(rs, f.cands, f.unfilled);
  }
  return chosen;
}

// The total cost of `chosen`: at most max_price and the caller's free
// balance (checked before anything is placed, so nothing is written).
core::Result<core::Money> CheckCost(ledger::Txn& txn, const std::vector<Candidate>& chosen,
                                    const Rspec& rs, const core::Money& max_price,
                                    const std::string& caller) {
  internal::Int128 total = 0;
  for (const Candidate& c : chosen) total += c.cost;
  if (total > static_cast<internal::Int128>(INT64_MAX)) {
    return core::FailedPrecondition("max_price: the cheapest fill overflows");
  }
  core::Money cost = core::Money::FromNanos(static_cast<int64_t>(total));
  if (cost > max_price) return internal::OverMaxPrice(rs, cost, max_price);
  BOURSE_ASSIGN_OR_RETURN(core::Money available, ledger::Accounts::Balance(txn.db(), caller));
  if (available < cost) return internal::ShortOfFunds(cost, caller, available);
  return cost;
}

// What the buys on the chosen nodes produced.
struct Bought {
  json node_list = json::array(), trades = json::array(), rounded = json::array();
  std::vector<std::string> fills, leaves, extra;  // extra: what was bought beyond the request
  std::vector<internal::Rounding> rounding;
};

// Places the market buy of c.units on c's market for `caller` (owner id
// `me`), with its lock held; all of it must fill. The fills are held by the
// broker: their ids are appended to *fills.
core::Status BuyOn(Markets& m, ledger::Txn& txn, const Candidate& c, const std::string& caller,
                   uint64_t me, Bought* out, std::vector<std::string>* fills) {
  MarketState* ms = c.ms;
  ms->mu.AssertHeld();  // through `locks`
  OpCtx ctx;
  ctx.markets = &m;
  ctx.txn = &txn;
  ctx.ms = ms;
  ctx.ms->mu.AssertHeld();
  ctx.fills_to_broker = true;
  ms->fwd.ctx = &ctx;
  LiveOrder lo;
  lo.id = m.next_order_id();
  lo.market = ms->info.id;
  lo.owner = lo.account = caller;
  lo.side = auction::Side::kBuy;
  lo.is_market = true;
  lo.qty = c.units;
  lo.created_ms = txn.now_millis();
  BOURSE_RETURN_IF_ERROR(txn.Append("order_placed", {{"market", lo.market},
                                                     {"order", lo.id},
                                                     {"owner", lo.owner},
                                                     {"side", "buy"},
                                                     {"type", "market"},
                                                     {"tif", "ioc"},
                                                     {"qty", lo.qty},
                                                     {"price", nullptr},
                                                     {"acquire", true}})
                             .status());
  int64_t id = lo.id;
  auction::OrderRequest req{.id = static_cast<uint64_t>(id),
                            .owner = me,
                            .side = auction::Side::kBuy,
                            .type = auction::OrderType::kMarket,
                            .tif = auction::TimeInForce::kIoc,
                            .qty = c.units,
                            .price = {}};
  ms->orders[id] = std::move(lo);
  ctx.touched.insert(id);
  ctx.book_touched = true;
  ctx.placing_buy = id;  // a fill it cannot fund refuses the whole acquire (402)
  core::Status st = ms->book->Place(req);
  if (st.ok()) st = internal::FinishOp(ctx);
  ms->fwd.ctx = nullptr;
  if (!st.ok()) return st;
  if (ctx.final_orders[id].filled != c.units) {
    return core::FailedPrecondition("rspec: node " + ms->info.node + " filled " +
                                    std::to_string(ctx.final_orders[id].filled) + " of " +
                                    std::to_string(c.units) + " units: nothing bought");
  }
  out->node_list.push_back(ms->info.node);
  for (auto& t : ctx.trades) out->trades.push_back(t);
  for (auto& b : ctx.bought_rcaps) fills->push_back(b);
  return core::Status::Ok();
}

// Delegates to `buyer`, out of one node's broker-held fills (in order),
// exactly rs.res over rs.interval: each leaf takes of each quantity what is
// still asked, up to its fill's; every leaf carries the asked net_max_kbps
// (at most the unit's: UnitsCovering). A fill left with nothing asked of it
// gets no leaf. What the buyer paid for beyond the request is the buyer's
// too: the rest of each fill goes to it as up to three more children (the
// fill less the leaf over the request's window, and the whole fill before
// and after it), in the same split. The leaves' and the rest's ids are
// appended.
core::Status Narrow(Markets& m, ledger::Txn& txn, const std::vector<std::string>& fills,
                    const Rspec& rs, const core::PublicKey& buyer,
                    std::vector<std::string>* leaves, std::vector<std::string>* extra) {
  using RV = core::ResourceVector;
  static constexpr int64_t RV::*kQ[] = {&RV::cpu_mcores, &RV::mem_mib, &RV::disk_mib,
                                        &RV::net_min_kbps};
  RV left = rs.res;
  bool first = true;
  for (const std::string& id : fills) {
    BOURSE_ASSIGN_OR_RETURN(ledger::Rcap fill, ledger::CapacityLog::Get(txn.db(), id));
    RV take{.net_max_kbps = rs.res.net_max_kbps};
    RV rest{.net_max_kbps = fill.res.net_max_kbps};
    bool any = false, some_left = false;
    for (auto q : kQ) {
      take.*q = std::min(left.*q, fill.res.*q);
      left.*q -= take.*q;
      rest.*q = fill.res.*q - take.*q;
      any = any || take.*q > 0;
      some_left = some_left || rest.*q > 0;
    }
    const bool leaf = any || first;
    first = false;
    std::vector<ledger::ChildSpec> specs;
    if (leaf) specs.push_back({.id = "", .holder = buyer, .res = take, .interval = rs.interval});
    if (some_left) {
      specs.push_back({.id = "", .holder = buyer, .res = rest, .interval = rs.interval});
    }
    if (fill.interval.not_before < rs.interval.not_before) {
      specs.push_back({.id = "",
                       .holder = buyer,
                       .res = fill.res,
                       .interval = {fill.interval.not_before, rs.interval.not_before}});
    }
    if (rs.interval.not_after < fill.interval.not_after) {
      specs.push_back({.id = "",
                       .holder = buyer,
                       .res = fill.res,
                       .interval = {rs.interval.not_after, fill.interval.not_after}});
    }
    if (specs.empty()) continue;
    BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::Rcap> kids, m.host().SplitHeld(txn, id, specs));
    for (size_t k = 0; k < kids.size(); ++k) {
      (leaf && k == 0 ? leaves : extra)->push_back(kids[k].id);
    }
  }
  for (auto q : kQ) {
    if (left.*q != 0) return core::Internal("acquire: the fills do not cover the rspec");
  }
  return core::Status::Ok();
}

// Buys c for the caller and narrows what it bought to the rspec; notes the
// rounding when it bought more than asked.
core::Status BuyAndNarrow(Markets& m, ledger::Txn& txn, const Candidate& c, const Rspec& rs,
                          const std::string& caller, uint64_t me, Bought* out) {
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey buyer, core::PublicKey::FromText(caller));
  std::vector<std::string> fills;
  BOURSE_RETURN_IF_ERROR(BuyOn(m, txn, c, caller, me, out, &fills));
  BOURSE_RETURN_IF_ERROR(Narrow(m, txn, fills, rs, buyer, &out->leaves, &out->extra));
  out->fills.insert(out->fills.end(), fills.begin(), fills.end());
  const internal::MarketInfo& mi = c.ms->info;  // fixed at creation
  internal::Rounding r{.node = mi.node,
                       .market = mi.id,
                       .units = c.units,
                       .unit = mi.unit,
                       .asked = rs.res,
                       .window = mi.window,
                       .asked_window = rs.interval};
  if (internal::IsRounded(r)) {
    out->rounded.push_back(internal::RoundingToJson(r));
    out->rounding.push_back(std::move(r));
  }
  return core::Status::Ok();
}

// acquire(rspec) inside its Mutate fn with the locks of `all` held: the
// cheapest choice within max_price is bought, all of it, and `acquired`
// appended. Markets whose books were touched are added to *touched.
core::Result<json> AcquireLocked(Markets& m, ledger::Txn& txn, const std::vector<MarketState*>& all,
                                 const Rspec& rs, const json& rspec, const core::Money& max_price,
                                 const std::string& caller, uint64_t me, int64_t now_ms,
                                 std::vector<MarketState*>* touched) {
  BOURSE_RETURN_IF_ERROR(m.host().LookupPrincipal(txn, caller).status());
  BOURSE_ASSIGN_OR_RETURN(Fillable f, CheapestPerNode(m, txn, all, rs, me, now_ms / 1000));
  BOURSE_ASSIGN_OR_RETURN(std::vector<Candidate> chosen, Choose(f, rs));
  BOURSE_ASSIGN_OR_RETURN(core::Money cost, CheckCost(txn, chosen, rs, max_price, caller));
  Bought bought;
  for (const Candidate& c : chosen) {
    touched->push_back(c.ms);
    BOURSE_RETURN_IF_ERROR(BuyAndNarrow(m, txn, c, rs, caller, me, &bought));
  }
  json chains = json::array();
  for (const std::string& id : bought.leaves) {
    BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::Rcap> chain,
                            ledger::CapacityLog::ChainOf(txn.db(), id));
    chains.push_back(ledger::ChainToJson(chain));
  }
  BOURSE_RETURN_IF_ERROR(txn.Append("acquired", {{"by", caller},
                                                 {"rspec", rspec},
                                                 {"paid", cost.ToString()},
                                                 {"rcaps", bought.leaves},
                                                 {"extra", bought.extra},
                                                 {"fills", bought.fills}})
                             .status());
  json out = {{"chains", chains},
              {"nodes", bought.node_list},
              {"paid", cost.ToString()},
              {"trades", bought.trades},
              {"rounded", bought.rounded},
              {"extra", bought.extra}};
  if (!bought.rounding.empty()) out["note"] = internal::RoundingNote(bought.rounding);
  return out;
}

// acquire(rspec) over the candidate markets `all`, in one Mutate: either
// every chain comes back or the ledger is unchanged and the books touched
// are marked stale.
core::Result<json> AcquireAll(Markets& m, const std::vector<MarketState*>& all, const Rspec& rs,
                              const json& rspec, const core::Money& max_price,
                              const std::string& caller, int64_t now_ms) {
  const uint64_t me = m.OwnerId(caller);
  json out;
  std::vector<MarketState*> touched;
  auto r = m.host().Mutate([&](ledger::Txn& txn) -> core::Status {
    std::vector<std::unique_lock<core::Mutex>> locks;
    for (MarketState* ms : all) locks.emplace_back(ms->mu);  // map order: no deadlock
    auto res = AcquireLocked(m, txn, all, rs, rspec, max_price, caller, me, now_ms, &touched);
    if (res.ok()) {
      out = std::move(*res);
      return core::Status::Ok();
    }
    // Rolled back: the books touched must be rebuilt before their next use.
    for (MarketState* ms : touched) {
      ms->mu.AssertHeld();  // through `locks`
      ms->stale = true;
      ms->fwd.ctx = nullptr;
    }
    return res.status();
  });
  if (!r.ok()) {
    for (MarketState* ms : touched) {
      core::MutexLock l(&ms->mu);
      ms->stale = true;
      ms->fwd.ctx = nullptr;
    }
    return r.status();
  }
  return out;
}

}  // namespace

std::vector<MarketState*> Markets::MarketsIf(
    const std::function<bool(const internal::MarketInfo&)>& pred) {
  std::vector<MarketState*> all;
  core::MutexLock l(&mu_);
  for (auto& [id, ms] : markets_) {
    if (pred(ms->info)) all.push_back(ms.get());
  }
  return all;
}

namespace {
// The close of a fallback RFQ whose window starts within this many seconds
// (an RFQ otherwise closes at not_before).
constexpr int64_t kFallbackCloseS = 60;
}  // namespace

core::Result<json> Markets::Acquire(const json& body, const std::string& caller, int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"rspec", "max_price", "fallback"}));
  const json* fallback = core::OptionalMember(body, "fallback");
  if (fallback != nullptr && !(fallback->is_string() && fallback->get<std::string>() == "rfq")) {
    return core::InvalidArgument("fallback: must be \"rfq\"");
  }
  BOURSE_ASSIGN_OR_RETURN(const json* rj, core::RequireMember(body, "", "rspec"));
  BOURSE_ASSIGN_OR_RETURN(Rspec rs, ParseRspec(*rj));
  BOURSE_ASSIGN_OR_RETURN(const json* mp, core::RequireMember(body, "", "max_price"));
  BOURSE_ASSIGN_OR_RETURN(core::Money max_price, core::MoneyFromJson(*mp, "max_price"));
  if (!max_price.is_positive()) return core::InvalidArgument("max_price: must be > 0");
  core::Result<json> got = [&]() -> core::Result<json> {
    // The node markets open now; those that serve rs are locked in the
    // Mutate (CheapestPerNode checks again that each is open).
    std::vector<MarketState*> all;
    std::vector<internal::MarketView> open;
    for (MarketState* ms :
         MarketsIf([](const internal::MarketInfo& mi) { return !mi.node.empty(); })) {
      core::MutexLock l(&ms->mu);  // info.state changes at the close
      if (ms->info.state != "open" || now_ms / 1000 >= ms->info.close_s) continue;
      open.push_back({ms->info.node, ms->info.site, ms->info.unit, ms->info.window});
      if (Serves(ms->info.window, ms->info.unit, rs)) all.push_back(ms);
    }
    if (all.empty()) return internal::NoMarketServes(rs, open);
    return AcquireAll(*this, all, rs, *rj, max_price, caller, now_ms);
  }();
  // "fallback":"rfq": what the books cannot fill (not a refusal for funds
  // or a bad request) becomes an RFQ for the same rspec and max_price.
  if (got.ok() || fallback == nullptr ||
      got.status().code() != core::StatusCode::kFailedPrecondition) {
    return got;
  }
  json rfq = *rj;
  rfq["max_price"] = *mp;
  // An rspec may leave min_sites at 0 and start now; an RFQ needs at least one
  // site and a close in the future, before not_after.
  rfq["min_sites"] = std::max<int64_t>(rs.min_sites, 1);
  const int64_t now_s = now_ms / 1000;
  if (rs.interval.not_before <= now_s + kFallbackCloseS) {
    rfq["close"] = std::min(now_s + kFallbackCloseS, rs.interval.not_after - 1);
  }
  auto opened = OpenRfq(rfq, caller, now_ms);
  if (!opened.ok()) return opened.status().WithContext("fallback rfq");
  return json{{"rfq", (*opened)["rfq"]["id"]},
              {"fallback", true},
              {"refused", got.status().message()},
              {"opened", (*opened)["rfq"]}};
}

}  // namespace bourse::markets
