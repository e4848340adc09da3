// utilisation: base x (1 + k x sold / pool), rounded up, clamped; base when the pool is empty.
#include "clients/agent/policy_common.h"

namespace bourse::agent::internal {
namespace {

class UtilisationPolicy : public ItemPolicy {
 public:
  UtilisationPolicy(Limits limits, PolicyLog log, core::Money k)
      : ItemPolicy(std::move(limits), std::move(log)), k_(std::move(k)) {}
  std::string_view name() const override { return "utilisation"; }

 protected:
  core::Result<core::Money> Raw(const Situation& s, const Item& item) override {
    if (s.pool_units <= 0) return item.base;
    using Rep = core::Money::Rep;
    Rep sold = s.sold_units > 0 ? Rep(s.sold_units) : Rep(0);
    Rep one = core::Money::kNanosPerCredit;
    // (1 + k x sold / pool) = (pool x 10^9 + k_nanos x sold) / (pool x 10^9)
    return Scale(item.base, Rep(s.pool_units) * one + k_.nanos() * sold, Rep(s.pool_units) * one);
  }

 private:
  core::Money k_;  // decimal, nanos / 10^9
};

}  // namespace

core::Result<std::unique_ptr<Policy>> MakeUtilisationPolicy(const AgentConfig& c, PolicyLog log) {
  BOURSE_ASSIGN_OR_RETURN(Limits limits, Limits::FromConfig(c));
  BOURSE_ASSIGN_OR_RETURN(core::Money k, DecimalParam(c, "utilisation_k"));
  return std::unique_ptr<Policy>(
      new UtilisationPolicy(std::move(limits), std::move(log), std::move(k)));
}

}  // namespace bourse::agent::internal
