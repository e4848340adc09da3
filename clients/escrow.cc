#include "clients/escrow.h"

#include "core/json_codec.h"

namespace bourse::clients {

core::Result<ledger::Rcap> SellEscrow(const nlohmann::json& market, const ledger::Rcap& from,
                                      const core::PrivateKey& me, const core::PublicKey& broker,
                                      int64_t qty) {
  BOURSE_ASSIGN_OR_RETURN(
      core::ResourceVector unit,
      core::ResourceVectorFromJson(market.value("unit", nlohmann::json()), "market.unit"));
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector res, unit.Times(qty));
  core::Interval window{.not_before = market.value("not_before", int64_t{0}),
                        .not_after = market.value("not_after", int64_t{0})};
  return ledger::Delegate(from, me, {.id = "", .holder = broker, .res = res, .interval = window});
}

}  // namespace bourse::clients
