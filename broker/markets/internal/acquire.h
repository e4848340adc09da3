// Private pieces of acquire(rspec) (acquire.cc): the decoded rspec, how a
// market's unit covers it, and the texts of its refusals and of its rounding
// note (acquire_explain.cc), which are pure functions of what acquire found.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "broker/markets/internal/market_state.h"
#include "core/interval.h"
#include "core/money.h"
#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::markets::internal {

struct Rspec {
  core::ResourceVector res;
  int64_t nodes = 1;
  int64_t min_sites = 0;
  core::Interval interval;
};

// The whole units of `unit` whose quantities cover res's (the largest
// ceil(res_i / unit_i) over the quantities res asks for, at least 1), or 0
// when the unit cannot serve res: a quantity res asks for that the unit does
// not have, a higher net_max_kbps than the unit's (a ceiling: a lower one is
// served by narrowing), or unit x k overflowing.
int64_t UnitsCovering(const core::ResourceVector& res, const core::ResourceVector& unit);

// An open node market as acquire's refusals describe it.
struct MarketView {
  std::string node, site;
  core::ResourceVector unit;
  core::Interval window;
};

// A node's cheapest market that fills the rspec now.
struct Candidate {
  MarketState* ms = nullptr;
  int64_t units = 0;
  Int128 cost = 0;  // nano-credits
};

// A node with a fitting market whose asks (without the buyer's own) fall short.
struct Unfilled {
  std::string node, site;
  int64_t offered = 0, needed = 0;  // units, on its best market
};

// "res=..." without the zero members, as the CLI writes resources:
// "cpu_mcores=500,net_max_kbps=1000".
std::string ShortRes(const core::ResourceVector& r);

// The refusal when no open node market serves the rspec (none given
// `open`, the open node markets): no window covers the interval, or which
// resource no covering market offers. failed_precondition.
core::Status NoMarketServes(const Rspec& rs, const std::vector<MarketView>& open);
// The refusal when too few nodes (or sites) can fill: which can, how many are
// needed and what is short, and the nodes whose asks fall short.
// failed_precondition.
core::Status TooFewNodes(const Rspec& rs, const std::vector<Candidate>& cands,
                         const std::vector<Unfilled>& unfilled);
// The refusal when the cheapest choice costs more than max_price.
core::Status OverMaxPrice(const Rspec& rs, const core::Money& cost, const core::Money& max_price);
// The refusal when the caller's free balance is below the cost:
// insufficient_funds (402, DESIGN 4.1: nothing is written).
core::Status ShortOfFunds(const core::Money& cost, const std::string& account,
                          const core::Money& available);

// One chosen node as the reply reports it when what is bought differs from
// what was asked (more of a quantity, or a wider window).
struct Rounding {
  std::string node, market;
  int64_t units = 0;
  core::ResourceVector unit, asked;
  core::Interval window, asked_window;
};
// Whether `r` bought more than was asked (units or window).
bool IsRounded(const Rounding& r);
// {"node","market","units","unit","bought","asked","window":{...},"asked_window":{...}}.
nlohmann::json RoundingToJson(const Rounding& r);
// The human note over all rounded nodes ("" when none).
std::string RoundingNote(const std::vector<Rounding>& rounded);

}  // namespace bourse::markets::internal
