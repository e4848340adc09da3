// What the pricing policies share (not part of the agent's interface): clamping to the
// configured floor and ceiling scaled to an item, the buying discount, and the Policy skeleton
// for policies that price each item on its own. One factory per policy, for MakePolicy.
//
// Thread safety: as Policy (one caller at a time).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "clients/agent/config.h"
#include "clients/agent/policy.h"
#include "core/money.h"
#include "core/status.h"

namespace bourse::agent::internal {

// The configured limits and discount, read once from the config.
struct Limits {
  core::ResourceVector unit;
  std::optional<core::Money> floor, ceiling;  // per unit-hour
  core::Money buy_below;                      // a decimal fraction (nanos / 10^9)

  // Errors: invalid_argument naming buy_below when it is bad.
  static core::Result<Limits> FromConfig(const AgentConfig& c);
  // `price` within [floor, ceiling] scaled to the item (hours x size x count). Errors: as
  // ScalePrice, or overflow.
  core::Result<core::Money> Clamp(const Item& item, const core::Money& price) const;
  // price x buy_below, rounded down (it never pays more than it said).
  core::Result<core::Money> Discount(const core::Money& price) const;
};

// A policy that prices each item on its own from Raw(); Price clamps and drops what is not
// positive; Value is the clamped Peek() x buy_below. Problems (overflow, a bad window) are
// logged once per item and give nullopt.
class ItemPolicy : public Policy {
 public:
  ItemPolicy(Limits limits, PolicyLog log) : limits_(std::move(limits)), log_(std::move(log)) {}
  std::vector<std::optional<core::Money>> Price(const Situation& s) override;
  std::optional<core::Money> Value(const Situation& s, const Item& item) override;

 protected:
  // The unclamped price of `item`; may update the policy's state.
  virtual core::Result<core::Money> Raw(const Situation& s, const Item& item) = 0;
  // As Raw without changing any state (for Value).
  virtual core::Result<core::Money> Peek(const Situation& s, const Item& item) {
    return Raw(s, item);
  }
  // Raw's answer clamped; nullopt (and a log line for errors) when there is no price.
  std::optional<core::Money> Finish(const Item& item, const core::Result<core::Money>& raw);
  void Log(const std::string& line) const;

  Limits limits_;
  PolicyLog log_;
};

// base x num / den rounded up (exact; never below what the policy says).
core::Result<core::Money> Scale(const core::Money& base, const core::Money::Rep& num,
                                const core::Money::Rep& den);

core::Result<std::unique_ptr<Policy>> MakeFixedPolicy(const AgentConfig& c, PolicyLog log);
core::Result<std::unique_ptr<Policy>> MakeUtilisationPolicy(const AgentConfig& c, PolicyLog log);
core::Result<std::unique_ptr<Policy>> MakeDemandPolicy(const AgentConfig& c, PolicyLog log);
core::Result<std::unique_ptr<Policy>> MakeDecayPolicy(const AgentConfig& c, PolicyLog log);
core::Result<std::unique_ptr<Policy>> MakeCommandPolicy(const AgentConfig& c, PolicyLog log);

}  // namespace bourse::agent::internal
