// bourse-agent's engine (DESIGN §10, docs/agent.md): a pooling agent that
// sells what it holds on its sites' node and site markets, reprices its asks
// with its policy, answers open RFQs with quotes (agent_rfq.cc), pools again
// what comes back to it and buys under its policy's value. It keeps no local truth: every pass reads its state from
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
// market, the rcap, the quantity or price); a batch request that fails as a
// whole is not a refusal of its ops (they are sent again next pass). A policy
// that fails for an item (Policy::Failed) leaves the agent's offers for it as
// they are. When the broker cannot be reached the agent backs off (1 s
// doubling to 30 s).
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

// A quote to send or withdraw (POST /v1/rfqs/{id}/quotes, DELETE .../quotes/{q}).
struct RfqAction {
  std::string rfq, quote;  // quote: the one to withdraw ("" for a new quote)
  nlohmann::json body;     // a new quote's {"price", "rcaps"}
  std::string what, key;   // for the log; the key a refusal is remembered by
};

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
  struct Plan {
    std::vector<BookOp> ops;
    std::vector<RfqAction> rfq;  // quotes and withdrawals (agent_rfq.cc)
  };
  Situation BuildSituation(const View& v, int64_t now_s) const;
  void PlanMarket(View& v, const MarketView& m, const std::optional<core::Money>& price,
                  bool failed, Plan& plan);
  void PlanBuy(const View& v, const Situation& s, size_t i, Plan& plan);
  void Apply(const Plan& plan);
  // RFQs (agent_rfq.cc): one "rfq" item per open RFQ it may answer, after the market items.
  void AddRfqItems(const View& v, Situation& s) const;
  void PlanRfqs(View& v, const Situation& s, const std::vector<std::optional<core::Money>>& prices,
                const std::vector<bool>& failed, Plan& plan);
  void PlanQuote(View& v, const nlohmann::json& rfq, const core::Money& price, Plan& plan);
  void ApplyRfqs(const Plan& plan);
  // Its quotes on the open RFQs, as `status` shows them.
  nlohmann::json QuoteRows(const View& v) const;
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
  std::set<std::string> told_;     // problems of the read already logged
};

// What the agent does on an open RFQ it may answer (docs/agent.md "Answering RFQs"), from its
// own quotes in the RFQ's `quotes` and whether its policy refuses the RFQ now (no price, or
// above max_price). kKeep: nothing (its open quote stands, or it refuses and has none open, or
// it has a quote lost/won). kWithdraw: its open quote. kQuote: quote (again, after a withdrawn
// quote) while it has sent fewer than kMaxQuotesPerRfq quotes on it. kAtBound: it would quote
// but already sent kMaxQuotesPerRfq.
enum class RfqStep { kKeep, kWithdraw, kQuote, kAtBound };
inline constexpr int64_t kMaxQuotesPerRfq = 5;  // any state; the broker allows 20 (429 above)
RfqStep NextRfqStep(const nlohmann::json& rfq, const std::string& me, bool refuses);

// Where an RFQ's rspec goes (docs/agent.md "Answering RFQs"): `nodes` distinct nodes whose free
// capacity over `window` covers `res`, one holding each, spread over the sites round-robin (fewest
// nodes per site first), within a site and between sites the tightest fit first (the holding
// with the fewest spare `unit`s: the cheapest for it, big free blocks stay whole for the markets).
// Empty when it cannot cover the rspec on >= min_sites sites. Pointers into `holdings`.
std::vector<Held*> PlaceRspec(std::vector<Held>& holdings, const core::ResourceVector& res,
                              int64_t nodes, int64_t min_sites, const core::Interval& window,
                              const core::ResourceVector& unit);

// Size of `res` in units of `unit` times the hours of `iv`, rounded down:
// max over unit's non-zero quantities of res_i / unit_i, x seconds / 3600.
int64_t UnitHours(const core::ResourceVector& res, const core::ResourceVector& unit,
                  const core::Interval& iv);

}  // namespace bourse::agent
