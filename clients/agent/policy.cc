#include "clients/agent/policy.h"

#include "clients/agent/policy_common.h"
#include "core/json_codec.h"

namespace bourse::agent {
namespace {

nlohmann::json OptionalMoney(const std::optional<core::Money>& m) {
  return m ? core::MoneyToJson(*m) : nlohmann::json(nullptr);
}

nlohmann::json ItemToJson(const Item& i) {
  return {{"kind", i.kind},
          {"id", i.id},
          {"node", i.node},
          {"site", i.site},
          {"res", core::ResourceVectorToJson(i.res)},
          {"count", i.count},
          {"not_before", i.not_before},
          {"not_after", i.not_after},
          {"base", core::MoneyToJson(i.base)},
          {"last_price", OptionalMoney(i.last_price)},
          {"best_bid", OptionalMoney(i.best_bid)},
          {"best_ask_others", OptionalMoney(i.best_ask_others)},
          {"recent_trade_units", i.recent_trade_units},
          {"unmet_bid_units", i.unmet_bid_units},
          {"our_resting_units", i.our_resting_units},
          {"our_sold_units", i.our_sold_units}};
}

}  // namespace

nlohmann::json Situation::ToJson() const {
  nlohmann::json items = nlohmann::json::array();
  for (const Item& i : this->items) items.push_back(ItemToJson(i));
  return {{"now", now_s}, {"pool_units", pool_units}, {"sold_units", sold_units}, {"items", items}};
}

core::Result<std::unique_ptr<Policy>> MakePolicy(const AgentConfig& c, PolicyLog log) {
  if (!log) log = [](std::string) {};
  if (c.policy == "fixed") return internal::MakeFixedPolicy(c, std::move(log));
  if (c.policy == "utilisation") return internal::MakeUtilisationPolicy(c, std::move(log));
  if (c.policy == "demand") return internal::MakeDemandPolicy(c, std::move(log));
  if (c.policy == "decay") return internal::MakeDecayPolicy(c, std::move(log));
  if (c.policy == "command") return internal::MakeCommandPolicy(c, std::move(log));
  return core::InvalidArgument("policy: \"" + c.policy +
                               "\" is not fixed, utilisation, demand, decay or command");
}

}  // namespace bourse::agent
