// fixed: the item's base price (config `price` scaled to the item), clamped.
#include "clients/agent/policy_common.h"

namespace bourse::agent::internal {
namespace {

class FixedPolicy : public ItemPolicy {
 public:
  using ItemPolicy::ItemPolicy;
  std::string_view name() const override { return "fixed"; }

 protected:
  core::Result<core::Money> Raw(const Situation&, const Item& item) override { return item.base; }
};

}  // namespace

core::Result<std::unique_ptr<Policy>> MakeFixedPolicy(const AgentConfig& c, PolicyLog log) {
  BOURSE_ASSIGN_OR_RETURN(Limits limits, Limits::FromConfig(c));
  return std::unique_ptr<Policy>(new FixedPolicy(std::move(limits), std::move(log)));
}

}  // namespace bourse::agent::internal
