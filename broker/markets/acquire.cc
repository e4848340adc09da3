// Markets: acquire(rspec) -> rcap chains. Buys an rspec through the order
// books at or under a price limit, all or nothing, in one transaction.
//
// An rspec {"res":V,"nodes":N,"min_sites":K,"not_before":a,"not_after":b}
// is served by open markets whose window is exactly [a, b) and whose unit u
// divides V (V == k x u for an integer k): on each chosen node the broker
// places a market buy of k units. Per node the cheapest such market is used
// (cost = walking its asks, the caller's own asks skipped); then the cheapest
// node of each of the K cheapest sites, then the cheapest remaining nodes up
// to N. If the total exceeds max_price, or fewer than N nodes (K sites) can
// fill, nothing changes. The fills are settled exactly like any other order
// and all of it commits in ONE Mutate: either every chain comes back or the
// ledger and the books are unchanged.
#include <algorithm>
#include <map>
#include <set>

#include "broker/markets/internal/market_state.h"
#include "broker/markets/markets.h"
#include "core/json_codec.h"
#include "ledger/accounts.h"

namespace bourse::markets {

using internal::LiveOrder;
using internal::MarketState;
using internal::OpCtx;
using nlohmann::json;

namespace {

constexpr int64_t kMaxNodes = 1000;

struct Rspec {
  core::ResourceVector res;
  int64_t nodes = 1;
  int64_t min_sites = 0;
  core::Interval interval;
};

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

// k with v == k x u, or 0.
int64_t UnitsOf(const core::ResourceVector& v, const core::ResourceVector& u) {
  int64_t k = 0;
  const int64_t vs[] = {v.cpu_mcores, v.mem_mib, v.disk_mib, v.net_min_kbps};
  const int64_t us[] = {u.cpu_mcores, u.mem_mib, u.disk_mib, u.net_min_kbps};
  for (int i = 0; i < 4; ++i) {
    if (us[i] == 0) continue;
    if (vs[i] % us[i] != 0) return 0;
    k = vs[i] / us[i];
    break;
  }
  if (k <= 0) return 0;
  auto t = u.Times(k);
  return t.ok() && *t == v ? k : 0;
}

struct Candidate {
  MarketState* ms = nullptr;
  int64_t units = 0;
  internal::Int128 cost = 0;  // nano-credits
};

// The cheapest fillable node market of each node among `all` (open, whose
// unit divides the rspec's res, walking its asks without the caller's own),
// with the markets' locks held (through the caller's unique_locks).
core::Result<std::vector<Candidate>> CheapestPerNode(Markets& m, ledger::Txn& txn,
                                                     const std::vector<MarketState*>& all,
                                                     const Rspec& rs, uint64_t me, int64_t now_s) {
  std::map<std::string, Candidate> best;
  for (MarketState* ms : all) {
    ms->mu.AssertHeld();  // through `locks` (which the analysis cannot follow)
    if (ms->info.state != "open" || now_s >= ms->info.close_s) continue;
    // Site markets fill from several nodes at once: acquire, which
    // places whole per-node amounts, uses node markets only.
    if (ms->info.node.empty()) continue;
    BOURSE_RETURN_IF_ERROR(internal::EnsureFresh(&m, txn, ms));
    int64_t k = UnitsOf(rs.res, ms->info.unit);
    int64_t need = k;
    internal::Int128 cost = 0;
    for (const auction::RestingOrder& o : ms->book->Orders(auction::Side::kSell)) {
      if (o.owner == me) continue;
      int64_t take = std::min(need, o.qty);
      cost += static_cast<internal::Int128>(take) * o.price_nanos;
      need -= take;
      if (need == 0) break;
    }
    if (need > 0) continue;
    auto it = best.find(ms->info.node);
    if (it == best.end() || cost < it->second.cost) {
      best[ms->info.node] = Candidate{ms, k, cost};
    }
  }
  std::vector<Candidate> cands;
  for (auto& [node, c] : best) cands.push_back(c);
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    return a.cost != b.cost ? a.cost < b.cost : a.ms->info.node < b.ms->info.node;
  });
  return cands;
}

// Choose: the cheapest node of each of the min_sites cheapest sites, then
// the cheapest of the rest. Errors: failed_precondition when too few.
core::Result<std::vector<Candidate>> Choose(const std::vector<Candidate>& cands, const Rspec& rs) {
  std::vector<Candidate> chosen;
  std::set<std::string> sites, nodes;
  for (const Candidate& c : cands) {
    if (static_cast<int64_t>(sites.size()) >= rs.min_sites) break;
    if (sites.insert(c.ms->info.site).second) {
      chosen.push_back(c);
      nodes.insert(c.ms->info.node);
    }
  }
  for (const Candidate& c : cands) {
    if (static_cast<int64_t>(chosen.size()) >= rs.nodes) break;
    if (nodes.insert(c.ms->info.node).second) {
      chosen.push_back(c);
      sites.insert(c.ms->info.site);
    }
  }
  if (static_cast<int64_t>(chosen.size()) < rs.nodes ||
      static_cast<int64_t>(sites.size()) < rs.min_sites) {
    return core::FailedPrecondition(
        "rspec: the order books cannot fill it now (" + std::to_string(cands.size()) +
        " nodes offer it for the interval, " + std::to_string(rs.nodes) +
        " needed in >= " + std::to_string(rs.min_sites) + " sites)");
  }
  return chosen;
}

// The total cost of `chosen`, at most max_price.
core::Result<core::Money> CheckCost(const std::vector<Candidate>& chosen,
                                    const core::Money& max_price) {
  internal::Int128 total = 0;
  for (const Candidate& c : chosen) total += c.cost;
  if (total > static_cast<internal::Int128>(INT64_MAX)) {
    return core::FailedPrecondition("max_price: the cheapest fill overflows");
  }
  core::Money cost = core::Money::FromNanos(static_cast<int64_t>(total));
  if (cost > max_price) {
    return core::FailedPrecondition("max_price: the cheapest fill costs " + cost.ToString() +
                                    " > " + max_price.ToString());
  }
  return cost;
}

// What the buys on the chosen nodes produced.
struct Bought {
  json node_list = json::array(), trades = json::array();
  std::vector<std::string> rcaps;
};

// Places the market buy of c.units on c's market for `caller` (owner id
// `me`), with its lock held; all of it must fill.
core::Status BuyOn(Markets& m, ledger::Txn& txn, const Candidate& c, const std::string& caller,
                   uint64_t me, Bought* out) {
  MarketState* ms = c.ms;
  ms->mu.AssertHeld();  // through `locks`
  OpCtx ctx;
  ctx.markets = &m;
  ctx.txn = &txn;
  ctx.ms = ms;
  ctx.ms->mu.AssertHeld();
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
  core::Status st = ms->book->Place(req);
  if (st.ok()) st = internal::FinishOp(ctx);
  ms->fwd.ctx = nullptr;
  if (!st.ok()) return st;
  if (ctx.final_orders[id].filled != c.units) {
    return core::FailedPrecondition("rspec: node " + ms->info.node + " filled " +
                                    std::to_string(ctx.final_orders[id].filled) + " of " +
                                    std::to_string(c.units) + " units (funds?): nothing bought");
  }
  out->node_list.push_back(ms->info.node);
  for (auto& t : ctx.trades) out->trades.push_back(t);
  for (auto& b : ctx.bought_rcaps) out->rcaps.push_back(b);
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
  BOURSE_ASSIGN_OR_RETURN(std::vector<Candidate> cands,
                          CheapestPerNode(m, txn, all, rs, me, now_ms / 1000));
  BOURSE_ASSIGN_OR_RETURN(std::vector<Candidate> chosen, Choose(cands, rs));
  BOURSE_ASSIGN_OR_RETURN(core::Money cost, CheckCost(chosen, max_price));
  Bought bought;
  for (const Candidate& c : chosen) {
    touched->push_back(c.ms);
    BOURSE_RETURN_IF_ERROR(BuyOn(m, txn, c, caller, me, &bought));
  }
  json chains = json::array();
  for (const std::string& id : bought.rcaps) {
    BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::Rcap> chain,
                            ledger::CapacityLog::ChainOf(txn.db(), id));
    chains.push_back(ledger::ChainToJson(chain));
  }
  BOURSE_RETURN_IF_ERROR(
      txn.Append(
             "acquired",
             {{"by", caller}, {"rspec", rspec}, {"paid", cost.ToString()}, {"rcaps", bought.rcaps}})
          .status());
  return json{{"chains", chains},
              {"nodes", bought.node_list},
              {"paid", cost.ToString()},
              {"trades", bought.trades}};
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

core::Result<json> Markets::Acquire(const json& body, const std::string& caller, int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"rspec", "max_price"}));
  BOURSE_ASSIGN_OR_RETURN(const json* rj, core::RequireMember(body, "", "rspec"));
  BOURSE_ASSIGN_OR_RETURN(Rspec rs, ParseRspec(*rj));
  BOURSE_ASSIGN_OR_RETURN(const json* mp, core::RequireMember(body, "", "max_price"));
  BOURSE_ASSIGN_OR_RETURN(core::Money max_price, core::MoneyFromJson(*mp, "max_price"));
  if (!max_price.is_positive()) return core::InvalidArgument("max_price: must be > 0");
  std::vector<MarketState*> all = MarketsIf([&](const internal::MarketInfo& mi) {
    return mi.window == rs.interval && UnitsOf(rs.res, mi.unit) > 0;
  });
  return AcquireAll(*this, all, rs, *rj, max_price, caller, now_ms);
}

}  // namespace bourse::markets
