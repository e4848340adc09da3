// demand: each item's price moves from the last one it set, up by demand_step when the item
// traded or had unmet bids in the window, down by demand_step when it did not; the first price
// is the base. Kept within base x [demand_min, demand_max], rounded up, clamped.
#include <map>

#include "clients/agent/policy_common.h"

namespace bourse::agent::internal {
namespace {

constexpr int64_t kForgetAfterS = 86'400;  // items unseen this long lose their history

class DemandPolicy : public ItemPolicy {
 public:
  DemandPolicy(Limits limits, PolicyLog log, core::Money step, core::Money lo, core::Money hi)
      : ItemPolicy(std::move(limits), std::move(log)), step_(step), lo_(lo), hi_(hi) {}
  std::string_view name() const override { return "demand"; }

  std::vector<std::optional<core::Money>> Price(const Situation& s) override {
    std::vector<std::optional<core::Money>> out;
    out.reserve(s.items.size());
    for (const Item& item : s.items) {
      std::optional<core::Money> p = Finish(item, Peek(s, item));
      if (p) last_[Key(item)] = {*p, s.now_s};
      out.push_back(p);
    }
    std::erase_if(last_,
                  [&](const auto& kv) { return kv.second.seen_s < s.now_s - kForgetAfterS; });
    return out;
  }

 protected:
  core::Result<core::Money> Raw(const Situation& s, const Item& item) override {
    return Peek(s, item);
  }

  // What Price would set now, without setting it.
  core::Result<core::Money> Peek(const Situation& s, const Item& item) override {
    auto it = last_.find(Key(item));
    if (it == last_.end()) return item.base;
    if (it->second.seen_s == s.now_s) return it->second.price;  // moved once this second already
    using Rep = core::Money::Rep;
    Rep one = core::Money::kNanosPerCredit;
    bool up = item.recent_trade_units > 0 || item.unmet_bid_units > 0;
    BOURSE_ASSIGN_OR_RETURN(
        core::Money moved,
        Scale(it->second.price, up ? one + step_.nanos() : one - step_.nanos(), one));
    BOURSE_ASSIGN_OR_RETURN(core::Money lo, item.base.MulRate(lo_, core::Rounding::kCeil));
    BOURSE_ASSIGN_OR_RETURN(core::Money hi, item.base.MulRate(hi_, core::Rounding::kCeil));
    if (moved < lo) return lo;
    if (moved > hi) return hi;
    return moved;
  }

 private:
  struct Last {
    core::Money price;  // the last price set, clamped
    int64_t seen_s = 0;
  };
  static std::string Key(const Item& item) { return item.kind + ":" + item.id; }

  core::Money step_, lo_, hi_;  // decimals, nanos / 10^9
  std::map<std::string, Last> last_;
};

}  // namespace

core::Result<std::unique_ptr<Policy>> MakeDemandPolicy(const AgentConfig& c, PolicyLog log) {
  BOURSE_ASSIGN_OR_RETURN(Limits limits, Limits::FromConfig(c));
  BOURSE_ASSIGN_OR_RETURN(core::Money step, DecimalParam(c, "demand_step"));
  BOURSE_ASSIGN_OR_RETURN(core::Money lo, DecimalParam(c, "demand_min"));
  BOURSE_ASSIGN_OR_RETURN(core::Money hi, DecimalParam(c, "demand_max"));
  if (lo > hi) return core::InvalidArgument("policy demand: demand_min is above demand_max");
  return std::unique_ptr<Policy>(new DemandPolicy(std::move(limits), std::move(log), step, lo, hi));
}

}  // namespace bourse::agent::internal
