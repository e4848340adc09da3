// The pooling agent's pricing policies (DESIGN §10, docs/agent.md "Policies"): one interface,
// one small class per policy (policy_fixed.cc, policy_utilisation.cc, policy_demand.cc,
// policy_decay.cc, policy_command.cc), made from the configuration by MakePolicy.
//
//   BOURSE_ASSIGN_OR_RETURN(auto policy, MakePolicy(config, [](std::string l) { Log(l); }));
//   Situation s{.now_s = now, .pool_units = 100, .sold_units = 40, .items = {...}};
//   std::vector<std::optional<core::Money>> asks = policy->Price(s);   // one per item
//   std::optional<core::Money> most = policy->Value(s, market_item);  // for buying
//
// Money is exact: every price is computed on nano-credits with integer arithmetic, rounded up
// (a price never falls below what the policy says), and clamped to [floor, ceiling] scaled to
// the item (per unit-hour in the config, times the item's hours and size).
//
// Thread safety: a Policy is not thread-safe (demand keeps state per item); one caller at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clients/agent/config.h"
#include "core/money.h"
#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::agent {

// One thing to price: an ask on a market, or a quote for an RFQ.
struct Item {
  std::string kind;          // "market" | "rfq"
  std::string id;            // market id or rfq id
  std::string node;          // the market's node ("" for a site market and for an rfq)
  std::string site;          // the market's site ("" for an rfq)
  core::ResourceVector res;  // market: its unit; rfq: res per node
  int64_t count = 1;         // rfq: nodes; market: 1
  int64_t not_before = 0, not_after = 0;
  core::Money base;  // BasePrice(config, res, not_before, not_after) x count
  // Market signals (per unit of the market); absent when unknown.
  std::optional<core::Money> last_price, best_bid, best_ask_others;
  int64_t recent_trade_units = 0;  // units traded on it in the demand window
  int64_t unmet_bid_units = 0;     // units bid at or above our last ask that did not fill, or
                                   // resting bids
  int64_t our_resting_units = 0, our_sold_units = 0;
};

struct Situation {
  int64_t now_s = 0;
  int64_t pool_units = 0;  // capacity the agent holds, in config units x hours (rounded down)
  int64_t sold_units = 0;  // of that, sold or escrowed to buyers (same measure)
  std::vector<Item> items;
  // What the command policy gets on stdin (docs/agent.md "The command policy"): money as
  // decimal strings, absent signals as null.
  nlohmann::json ToJson() const;
};

using PolicyLog = std::function<void(std::string)>;

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  // One price per item, same order (the whole item: per unit for a market, the whole quote for
  // an rfq), or nullopt = make no offer for it. Clamped to [floor, ceiling] when set.
  virtual std::vector<std::optional<core::Money>> Price(const Situation& s) = 0;
  // The most it would pay per unit on `market_item` (for buying); nullopt = do not buy.
  virtual std::optional<core::Money> Value(const Situation& s, const Item& market_item) = 0;
  // Whether the last Price() could not answer for item `i` (the command policy timed out,
  // crashed or printed bad output, or its price for the item was unusable): no answer, as
  // against nullopt without failure = "do not offer". The agent then leaves its offers for the
  // item as they are.
  virtual bool Failed(size_t i) const {
    (void)i;
    return false;
  }
};

// The policy `c.policy` with its parameters from `c.params`; `log` gets one line per problem
// worth telling the operator (the command policy's failures). Errors: invalid_argument naming
// the policy or the parameter.
core::Result<std::unique_ptr<Policy>> MakePolicy(const AgentConfig& c, PolicyLog log);

}  // namespace bourse::agent
