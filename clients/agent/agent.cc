#include "clients/agent/agent.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <utility>

#include "clients/escrow.h"
#include "core/clock.h"
#include "core/json_codec.h"

namespace bourse::agent {

using nlohmann::json;

namespace {

int64_t NowS() { return core::SystemClock::Get().NowSeconds(); }

std::optional<core::Money> PriceOf(const json& o) {
  if (!o.contains("price") || !o["price"].is_string()) return std::nullopt;
  core::Result<core::Money> m = core::Money::Parse(o["price"].get<std::string>());
  return m.ok() ? std::optional<core::Money>(*m) : std::nullopt;
}

bool IsDown(const core::Status& s) {
  return s.code() == core::StatusCode::kUnavailable || s.code() == core::StatusCode::kInternal;
}

int64_t ParamInt(const AgentConfig& c, const std::string& name, int64_t dflt) {
  auto it = c.params.find(name);
  if (it == c.params.end()) return dflt;
  try {
    return std::stoll(it->second);
  } catch (...) {
    return dflt;
  }
}

// Sums qty x price of the trades `pick` selects.
template <typename Pick>
core::Money Volume(const View& v, Pick pick) {
  core::Money sum;
  for (const MarketView& m : v.all_markets) {
    for (const json& t : m.trades) {
      if (!pick(t)) continue;
      std::optional<core::Money> p = PriceOf(t);
      if (!p) continue;
      auto x = p->MulInt(t.value("qty", int64_t{0}));
      if (x.ok()) sum = sum.Add(*x).value_or(sum);
    }
  }
  return sum;
}

}  // namespace

int64_t UnitHours(const core::ResourceVector& res, const core::ResourceVector& unit,
                  const core::Interval& iv) {
  __extension__ using Wide = __int128;  // a GNU extension: -Wpedantic knows it is meant
  Wide secs = std::max<int64_t>(0, iv.not_after - iv.not_before);
  Wide best = 0;
  auto size = [&](int64_t have, int64_t per) {
    if (per > 0) best = std::max<Wide>(best, have * secs / (per * Wide{3600}));
  };
  size(res.cpu_mcores, unit.cpu_mcores);
  size(res.mem_mib, unit.mem_mib);
  size(res.disk_mib, unit.disk_mib);
  size(res.net_min_kbps, unit.net_min_kbps);
  return static_cast<int64_t>(std::min<Wide>(best, INT64_MAX));
}

Agent::Agent(AgentConfig config, core::PrivateKey key, std::unique_ptr<ActionLog> log)
    : config_(std::move(config)),
      key_(std::move(key)),
      me_(key_.public_key().ToText()),
      log_(std::move(log)),
      client_(config_.broker_url, key_),
      reader_(&client_, me_, config_.sites, config_.markets) {}

core::Result<std::unique_ptr<Agent>> Agent::Create(AgentConfig config, bool log_to_file) {
  core::Result<core::PrivateKey> key = core::PrivateKey::LoadPem(config.key);
  if (!key.ok()) return core::InvalidArgument("key: " + key.status().message());
  std::string path;
  if (log_to_file) {
    std::error_code ec;
    std::filesystem::create_directories(config.state_dir, ec);
    if (ec) return core::InvalidArgument("state_dir: " + config.state_dir + ": " + ec.message());
    path = config.state_dir + "/agent.log";
  }
  auto log = std::make_unique<ActionLog>(path);
  ActionLog* raw = log.get();
  std::unique_ptr<Agent> a(new Agent(std::move(config), *std::move(key), std::move(log)));
  BOURSE_ASSIGN_OR_RETURN(
      a->policy_, MakePolicy(a->config_, [raw](std::string s) { raw->Line("policy " + s); }));
  return a;
}

Situation Agent::BuildSituation(const View& v, int64_t now_s) const {
  Situation s;
  s.now_s = now_s;
  for (const Held& h : v.holdings) {
    if (!h.nested) s.pool_units += UnitHours(h.rcap.res, config_.unit, h.rcap.interval);
  }
  for (const MarketView& m : v.all_markets) {
    for (const json& t : m.trades) {
      if (t.value("seller", "") != me_) continue;
      core::ResourceVector r = m.unit.Times(t.value("qty", int64_t{0})).value_or(m.unit);
      s.sold_units += UnitHours(r, config_.unit, m.window);
    }
  }
  const int64_t demand_s = ParamInt(config_, "demand_window_s", 300);
  for (const MarketView& m : v.markets) {
    Item it{.kind = "market",
            .id = m.id,
            .node = m.node,
            .site = m.site,
            .res = m.unit,
            .count = 1,
            .not_before = m.window.not_before,
            .not_after = m.window.not_after,
            .base = {},
            .last_price = {},
            .best_bid = {},
            .best_ask_others = {}};
    it.base =
        BasePrice(config_, m.unit, m.window.not_before, m.window.not_after).value_or(core::Money());
    if (!m.trades.empty()) it.last_price = PriceOf(m.trades.back());
    if (!m.bids.empty()) it.best_bid = PriceOf(m.bids.front());
    for (const json& a : m.asks) {
      std::optional<core::Money> p = PriceOf(a);
      if (a.value("owner", "") == me_) {
        it.our_resting_units += a.value("remaining", int64_t{0});
      } else if (p && (!it.best_ask_others || *p < *it.best_ask_others)) {
        it.best_ask_others = p;
      }
    }
    for (const json& b : m.bids) it.unmet_bid_units += b.value("remaining", int64_t{0});
    for (const json& t : m.trades) {
      if (t.value("ts_ms", int64_t{0}) >= (now_s - demand_s) * 1000) {
        it.recent_trade_units += t.value("qty", int64_t{0});
      }
      if (t.value("seller", "") == me_) it.our_sold_units += t.value("qty", int64_t{0});
    }
    s.items.push_back(std::move(it));
  }
  return s;
}

void Agent::PlanMarket(View& v, const MarketView& m, const std::optional<core::Money>& price,
                       bool failed, Plan& plan) {
  // No answer from the policy (it failed): no change, its asks there stay as they are.
  if (failed) return;
  for (const json& o : v.my_orders) {
    if (o.value("market", "") != m.id || o.value("side", "") != "sell") continue;
    const int64_t id = o.value("id", int64_t{0});
    if (!price) {
      plan.ops.push_back({.kind = BookOp::kCancel,
                          .market = m.id,
                          .order = id,
                          .body = nullptr,
                          .what = "cancel " + m.id + " order " + std::to_string(id)});
    } else if (PriceOf(o) != price) {
      plan.ops.push_back(
          {.kind = BookOp::kMove,
           .market = m.id,
           .order = id,
           .body = {{"price", price->ToString()}},
           .what = "move " + m.id + " order " + std::to_string(id) + " to " + price->ToString()});
    }
  }
  if (!price) return;
  Held* best = nullptr;
  int64_t units = 0;
  for (Held& h : v.holdings) {
    bool here = m.node.empty() ? h.site == m.site : h.rcap.node == m.node;
    if (!here) continue;
    int64_t u = UnitsIn(FreeOver(h, m.window), m.unit);
    if (u > units) best = &h, units = u;
  }
  if (best == nullptr) return;
  std::string what = "sell " + m.id + " " + std::to_string(units) + " from " + best->rcap.id +
                     " at " + price->ToString();
  std::string key = "sell " + m.id + " " + std::to_string(units) + " from " + best->rcap.id;
  if (refused_.contains(key)) return;
  core::Result<ledger::Rcap> e = clients::SellEscrow(m.json, best->rcap, key_, *broker_key_, units);
  if (!e.ok()) {
    refused_.insert(key);
    Log("skip " + what + ": " + e.status().ToString());
    return;
  }
  best->children.push_back(*e);  // later markets of this pass see it used
  plan.ops.push_back({.kind = BookOp::kPlace,
                      .market = m.id,
                      .order = 0,
                      .body = {{"side", "sell"},
                               {"qty", units},
                               {"price", price->ToString()},
                               {"escrow", e->ToJson()}},
                      .what = key + " at " + price->ToString()});
}

void Agent::PlanBuy(const View& v, const Situation& s, size_t i, Plan& plan) {
  const Item& it = s.items[i];
  const MarketView& m = v.markets[i];
  if (!it.best_ask_others) return;
  const core::Money ask = *it.best_ask_others;
  std::optional<core::Money> value = policy_->Value(s, it);
  if (!value || !(ask < *value) || !ask.is_positive()) return;
  int64_t qty = 0;
  for (const json& a : m.asks) {
    if (a.value("owner", "") != me_ && PriceOf(a) == ask) qty += a.value("remaining", int64_t{0});
    if (a.value("owner", "") == me_ && PriceOf(a) <= ask) return;  // would trade with itself
  }
  if (config_.buy_budget) {
    core::Money spent = Volume(v, [&](const json& t) { return t.value("buyer", "") == me_; });
    core::Money left = config_.buy_budget->Sub(spent).value_or(core::Money());
    if (!left.is_positive()) return;
    qty = std::min<int64_t>(qty, static_cast<int64_t>(left.nanos() / ask.nanos()));
  }
  if (qty <= 0) return;
  std::string key = "buy " + m.id + " " + std::to_string(qty) + " at " + ask.ToString();
  if (refused_.contains(key)) return;
  plan.ops.push_back(
      {.kind = BookOp::kPlace,
       .market = m.id,
       .order = 0,
       .body = {{"side", "buy"}, {"qty", qty}, {"price", ask.ToString()}, {"tif", "ioc"}},
       .what = key});
}

void Agent::Apply(const Plan& plan) {
  std::vector<OpResult> results = ApplyBookOps(client_, plan.ops);
  std::string whole_failure;
  size_t whole_ops = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const BookOp& op = plan.ops[i];
    const OpResult& r = results[i];
    if (r.whole) {
      // The request failed, not this op: nothing is remembered, the next pass tries again.
      whole_failure = r.status.ToString();
      ++whole_ops;
    } else if (r.status.ok()) {
      std::string extra;
      if (r.reply.contains("order")) {
        extra = " (order " + std::to_string(r.reply["order"].value("id", int64_t{0}));
        extra += ", " + std::to_string(r.reply.value("trades", json::array()).size()) + " trades)";
      }
      Log(op.what + extra);
    } else if (!IsDown(r.status)) {
      if (refused_.size() > 10000) refused_.clear();
      refused_.insert(op.what.substr(0, op.what.find(" at ")));
      refused_.insert(op.what);
      Log("refused " + op.what + ": " + r.status.ToString());
    }
  }
  if (whole_ops > 0) {
    Log("batch request failed (" + whole_failure + "); " + std::to_string(whole_ops) +
        " book ops left for the next pass");
  }
}

core::Status Agent::Pass() {
  BOURSE_ASSIGN_OR_RETURN(View v, reader_.Read());
  if (!broker_key_) {
    BOURSE_ASSIGN_OR_RETURN(json k, client_.Call("GET", "/v1/ledger/key"));
    BOURSE_ASSIGN_OR_RETURN(broker_key_, core::PublicKey::FromText(k.value("key", "")));
  }
  for (const std::string& p : v.problems) {
    if (told_.insert(p).second) Log(p);
  }
  Situation s = BuildSituation(v, NowS());
  if (config_.rfq) AddRfqItems(v, s);
  std::vector<std::optional<core::Money>> prices = policy_->Price(s);
  prices.resize(s.items.size());
  std::vector<bool> failed(s.items.size());
  size_t failures = 0;
  for (size_t i = 0; i < s.items.size(); ++i) failures += failed[i] = policy_->Failed(i);
  if (failures > 0) {
    Log("policy gave no answer for " + std::to_string(failures) + " of " +
        std::to_string(s.items.size()) + " items; their offers stay as they are");
  }
  Plan plan;
  // RFQs first: capacity that is free now answers them before it rests on a market.
  if (config_.rfq) PlanRfqs(v, s, prices, failed, plan);
  for (size_t i = 0; i < v.markets.size(); ++i) {
    PlanMarket(v, v.markets[i], prices[i], failed[i], plan);
    if (config_.buy) PlanBuy(v, s, i, plan);
  }
  Apply(plan);
  ApplyRfqs(plan);
  return core::Status::Ok();
}

core::Result<int64_t> Agent::LedgerSize() {
  BOURSE_ASSIGN_OR_RETURN(json head, client_.Call("GET", "/v1/ledger/head"));
  return head.value("size", int64_t{0});
}

void Agent::Run(const std::atomic<bool>& stop) {
  Log("agent " + me_ + " working " + config_.broker_url + " with policy " +
      std::string(policy_->name()));
  int backoff_s = 1;
  bool down = false;
  std::string last_error;
  auto sleep_ms = [&stop](int64_t ms) {
    for (int64_t t = 0; t < ms && !stop; t += 100) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  };
  while (!stop) {
    core::Status st = Pass();
    if (IsDown(st)) {
      if (!down) Log("broker unreachable (" + st.ToString() + "); backing off");
      down = true;
      sleep_ms(backoff_s * 1000);
      backoff_s = std::min(backoff_s * 2, 30);
      continue;
    }
    if (down) Log("broker reachable again");
    down = false;
    backoff_s = 1;
    if (!st.ok() && st.ToString() != last_error) Log("pass failed: " + st.ToString());
    last_error = st.ok() ? "" : st.ToString();
    core::Result<int64_t> seen = LedgerSize();
    const int64_t deadline = NowS() + std::max<int64_t>(1, config_.reprice_period_s);
    while (!stop && NowS() < deadline) {
      sleep_ms(1000);
      core::Result<int64_t> size = LedgerSize();
      if (seen.ok() && size.ok() && *size != *seen) break;
    }
  }
  Log("agent stopped");
}

}  // namespace bourse::agent
