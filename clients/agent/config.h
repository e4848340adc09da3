// The pooling agent's configuration (DESIGN §10, docs/agent.md "Configuration"):
// `key = value` lines like the node guard's, `#` comments and blank lines ignored.
//
//   BOURSE_ASSIGN_OR_RETURN(AgentConfig c, AgentConfig::Load("/etc/bourse/agent.conf"));
//   BOURSE_ASSIGN_OR_RETURN(core::Money ask, BasePrice(c, market_unit, t0, t1));
//
// Thread safety: a value type.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::agent {

struct AgentConfig {
  std::string broker_url;            // required
  std::string key;                   // PEM path of the agent's key, required
  std::string state_dir;             // required (log file, command policy scratch, status cache)
  std::vector<std::string> sites;    // comma list; may be empty when markets are listed
  std::vector<std::string> markets;  // comma list of market ids, or {"auto"} (the default)
  std::string policy = "fixed";      // fixed | utilisation | demand | decay | command
  core::Money price;                 // credits per hour for one `unit` (required except command)
  core::ResourceVector unit;         // DESIGN §8 resource syntax, required
  std::optional<core::Money> floor, ceiling;  // per unit-hour, optional
  std::string command;                        // command policy: executable (+ args split on spaces)
  int64_t command_timeout_ms = 2000;
  int64_t reprice_period_s = 10;
  bool rfq = true;                        // answer RFQs
  bool buy = false;                       // buy on the markets under the policy's value
  std::optional<core::Money> buy_budget;  // most credits it spends buying, in total
  // Policy parameters (docs/agent.md "Policies"), validated by Parse, absent = default:
  // utilisation_k, demand_step, demand_window_s, demand_min, demand_max, decay_horizon_s,
  // decay_min, buy_below. Any of them may be set whatever the policy (so that switching policy
  // is one line); the chosen policy reads its own.
  std::map<std::string, std::string> params;

  // Errors: invalid_argument "config line N: <key>: ..." for a bad value, a key set twice or an
  // unknown key; "config: <key>: missing" for a missing required key.
  static core::Result<AgentConfig> Parse(std::string_view text);
  // Errors: not_found when unreadable, else as Parse (prefixed with the path).
  static core::Result<AgentConfig> Load(const std::string& path);
};

// Policy parameter `name` from c.params, or its default when unset: DecimalParam for the
// fractions (utilisation_k, demand_step, demand_min, demand_max, decay_min, buy_below),
// IntParam for the periods (demand_window_s, decay_horizon_s). Errors: invalid_argument naming
// the parameter when its value is bad or it is not a parameter of that type.
core::Result<core::Money> DecimalParam(const AgentConfig& c, std::string_view name);
core::Result<int64_t> IntParam(const AgentConfig& c, std::string_view name);

// The size of `res` in config units: the largest res_i / unit_i over the quantities (cpu, mem,
// disk, net_min) with unit_i > 0, an exact rational. net_max_kbps is a ceiling, not a quantity,
// and does not count. The price of `res` over [not_before, not_after) at `per_unit_hour`:
// per_unit_hour x hours x size, rounded UP to the nano-credit (never below the policy).
// Errors: invalid_argument when not_after <= not_before, the unit has no quantity, or overflow.
core::Result<core::Money> ScalePrice(const core::Money& per_unit_hour,
                                     const core::ResourceVector& unit,
                                     const core::ResourceVector& res, int64_t not_before,
                                     int64_t not_after);
// ScalePrice at the configured `price`.
core::Result<core::Money> BasePrice(const AgentConfig& c, const core::ResourceVector& res,
                                    int64_t not_before, int64_t not_after);

}  // namespace bourse::agent
