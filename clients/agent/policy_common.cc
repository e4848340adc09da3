#include "clients/agent/policy_common.h"

namespace bourse::agent::internal {

core::Result<Limits> Limits::FromConfig(const AgentConfig& c) {
  Limits l{.unit = c.unit, .floor = c.floor, .ceiling = c.ceiling, .buy_below = {}};
  BOURSE_ASSIGN_OR_RETURN(l.buy_below, DecimalParam(c, "buy_below"));
  return l;
}

core::Result<core::Money> Limits::Clamp(const Item& item, const core::Money& price) const {
  core::Money out = price;
  if (floor) {
    BOURSE_ASSIGN_OR_RETURN(core::Money lo,
                            ScalePrice(*floor, unit, item.res, item.not_before, item.not_after));
    BOURSE_ASSIGN_OR_RETURN(lo, lo.MulInt(item.count));
    if (out < lo) out = lo;
  }
  if (ceiling) {
    BOURSE_ASSIGN_OR_RETURN(core::Money hi,
                            ScalePrice(*ceiling, unit, item.res, item.not_before, item.not_after));
    BOURSE_ASSIGN_OR_RETURN(hi, hi.MulInt(item.count));
    if (out > hi) out = hi;
  }
  return out;
}

core::Result<core::Money> Limits::Discount(const core::Money& price) const {
  return price.MulRate(buy_below, core::Rounding::kFloor);
}

core::Result<core::Money> Scale(const core::Money& base, const core::Money::Rep& num,
                                const core::Money::Rep& den) {
  return base.MulFrac(num, den, core::Rounding::kCeil);
}

std::vector<std::optional<core::Money>> ItemPolicy::Price(const Situation& s) {
  std::vector<std::optional<core::Money>> out;
  out.reserve(s.items.size());
  for (const Item& item : s.items) out.push_back(Finish(item, Raw(s, item)));
  return out;
}

std::optional<core::Money> ItemPolicy::Value(const Situation& s, const Item& item) {
  std::optional<core::Money> price = Finish(item, Peek(s, item));
  if (!price) return std::nullopt;
  auto v = limits_.Discount(*price);
  if (!v.ok()) {
    Log("item " + item.id + ": " + v.status().message());
    return std::nullopt;
  }
  if (!v->is_positive()) return std::nullopt;
  return *v;
}

std::optional<core::Money> ItemPolicy::Finish(const Item& item,
                                              const core::Result<core::Money>& raw) {
  core::Result<core::Money> clamped = raw.ok() ? limits_.Clamp(item, *raw) : raw.status();
  if (!clamped.ok()) {
    Log("item " + item.id + ": " + clamped.status().message() + "; no offer");
    return std::nullopt;
  }
  if (!clamped->is_positive()) return std::nullopt;
  return *clamped;
}

void ItemPolicy::Log(const std::string& line) const {
  log_("policy " + std::string(name()) + ": " + line);
}

}  // namespace bourse::agent::internal
