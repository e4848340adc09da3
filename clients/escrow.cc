#include "clients/escrow.h"

#include "core/json_codec.h"

namespace bourse::clients {

namespace {

// `res` over the [not_before, not_after) of `j` (a market or an rfq), from `from` to the broker.
core::Result<ledger::Rcap> EscrowOver(const nlohmann::json& j, const ledger::Rcap& from,
                                      const core::PrivateKey& me, const core::PublicKey& broker,
                                      const core::ResourceVector& res) {
  core::Interval window{.not_before = j.value("not_before", int64_t{0}),
                        .not_after = j.value("not_after", int64_t{0})};
  return ledger::Delegate(from, me, {.id = "", .holder = broker, .res = res, .interval = window});
}

}  // namespace

core::Result<ledger::Rcap> SellEscrow(const nlohmann::json& market, const ledger::Rcap& from,
                                      const core::PrivateKey& me, const core::PublicKey& broker,
                                      int64_t qty) {
  BOURSE_ASSIGN_OR_RETURN(
      core::ResourceVector unit,
      core::ResourceVectorFromJson(market.value("unit", nlohmann::json()), "market.unit"));
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector res, unit.Times(qty));
  return EscrowOver(market, from, me, broker, res);
}

core::Result<ledger::Rcap> RfqEscrow(const nlohmann::json& rfq, const ledger::Rcap& from,
                                     const core::PrivateKey& me, const core::PublicKey& broker) {
  BOURSE_ASSIGN_OR_RETURN(
      core::ResourceVector res,
      core::ResourceVectorFromJson(rfq.value("res", nlohmann::json()), "rfq.res"));
  return EscrowOver(rfq, from, me, broker, res);
}

}  // namespace bourse::clients
