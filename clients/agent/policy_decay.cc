// decay: base x max(decay_min, min(1, (not_before - now) / decay_horizon_s)), rounded up,
// clamped; decay_min once the item has started.
#include "clients/agent/policy_common.h"

namespace bourse::agent::internal {
namespace {

class DecayPolicy : public ItemPolicy {
 public:
  DecayPolicy(Limits limits, PolicyLog log, int64_t horizon_s, core::Money min)
      : ItemPolicy(std::move(limits), std::move(log)), horizon_s_(horizon_s), min_(min) {}
  std::string_view name() const override { return "decay"; }

 protected:
  core::Result<core::Money> Raw(const Situation& s, const Item& item) override {
    using Rep = core::Money::Rep;
    Rep left = Rep(item.not_before) - Rep(s.now_s);
    if (left >= horizon_s_) return item.base;
    // left / horizon < min  <=>  left x 10^9 < min_nanos x horizon
    if (left <= 0 || left * core::Money::kNanosPerCredit < min_.nanos() * horizon_s_) {
      return item.base.MulRate(min_, core::Rounding::kCeil);
    }
    return Scale(item.base, left, horizon_s_);
  }

 private:
  int64_t horizon_s_;
  core::Money min_;  // decimal, nanos / 10^9
};

}  // namespace

core::Result<std::unique_ptr<Policy>> MakeDecayPolicy(const AgentConfig& c, PolicyLog log) {
  BOURSE_ASSIGN_OR_RETURN(Limits limits, Limits::FromConfig(c));
  BOURSE_ASSIGN_OR_RETURN(int64_t horizon, IntParam(c, "decay_horizon_s"));
  BOURSE_ASSIGN_OR_RETURN(core::Money min, DecimalParam(c, "decay_min"));
  return std::unique_ptr<Policy>(new DecayPolicy(std::move(limits), std::move(log), horizon, min));
}

}  // namespace bourse::agent::internal
