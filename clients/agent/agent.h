// bourse-agent's engine (DESIGN §10, docs/agent.md): a pooling agent that
// sells what it holds on its sites' node and site markets, reprices its asks
// with its policy, pools again what comes back to it and buys under its
// policy's value. It keeps no local truth: every pass reads its state from
// the broker (BrokerReader), so a restart, even after kill -9, goes on from
// where the broker is.
//
//   BOURSE_ASSIGN_OR_RETURN(AgentConfig cfg, AgentConfig::Load("agent.conf"));
//   BOURSE_ASSIGN_OR_RETURN(std::unique_ptr<Agent> a, Agent::Create(cfg));
//   a->Run(stop);                  // until stop is set
//   nlohmann::json s = a->StatusJson().value();
//
// A refusal by the broker (409, 402, ...) is logged once and that action is
// not tried again until what it was computed from changes (its key names the
// market, the rcap, the quantity or price). When the broker cannot be reached
// the agent backs off (1 s doubling to 30 s).
//
// Thread safety: one thread runs an Agent; Run's `stop` may be set from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "clients/agent/action_log.h"
#include "clients/agent/book_ops.h"
#include "clients/agent/broker_view.h"
#include "clients/agent/config.h"
#include "clients/agent/policy.h"
#include "clients/client.h"
#include "core/keys.h"
#include "core/status.h"

namespace bourse::agent {

class Agent {
 public:
  // Loads the key, opens <state_dir>/agent.log (log_to_file) and makes the
  // policy. Errors: invalid_argument naming the config key (key file,
  // policy parameters).
  static core::Result<std::unique_ptr<Agent>> Create(AgentConfig config, bool log_to_file = true);

  // One pass: read, price, act. Errors: unavailable when the broker cannot be
  // reached (nothing half-done is assumed: the next pass reads again).
  core::Status Pass();
  // Passes every reprice_period_s, sooner (>= 1 s apart) when the ledger
  // grew since the last pass, until `stop`.
  void Run(const std::atomic<bool>& stop);
  // What `bourse-agent status` prints. Errors: as Pass.
  core::Result<nlohmann::json> StatusJson();

 private:
  Agent(AgentConfig config, core::PrivateKey key, std::unique_ptr<ActionLog> log);
  struct Plan;
  Situation BuildSituation(const View& v, int64_t now_s) const;
  void PlanMarket(View& v, const MarketView& m, const std::optional<core::Money>& price,
                  Plan& plan);
  void PlanBuy(const View& v, const Situation& s, size_t i, Plan& plan);
  void Apply(const Plan& plan);
  core::Result<int64_t> LedgerSize();
  void Log(const std::string& line) { log_->Line(line); }

  AgentConfig config_;
  core::PrivateKey key_;
  std::string me_;
  std::unique_ptr<ActionLog> log_;
  clients::Client client_;
  BrokerReader reader_;
  std::unique_ptr<Policy> policy_;
  std::optional<core::PublicKey> broker_key_;
  std::set<std::string> refused_;  // actions the broker refused, by key
};

// Size of `res` in units of `unit` times the hours of `iv`, rounded down:
// max over unit's non-zero quantities of res_i / unit_i, x seconds / 3600.
int64_t UnitHours(const core::ResourceVector& res, const core::ResourceVector& unit,
                  const core::Interval& iv);

}  // namespace bourse::agent
