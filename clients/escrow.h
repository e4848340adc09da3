// The capacity escrow of a sell order (docs/markets.md "Escrow"): the seller
// pre-delegates a child E of an rcap it holds to the broker, `unit x qty`
// over the market's window on the rcap's node, signed by the seller's key.
// `bourse sell` and `bourse-agent` both build it here; RfqEscrow is the same
// for one node of a quote on a request for quote.
//
//   BOURSE_ASSIGN_OR_RETURN(ledger::Rcap e,
//       SellEscrow(market_json, held, my_key, broker_key, /*qty=*/3));
//   body["escrow"] = e.ToJson();
//
// Thread safety: a pure function.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/keys.h"
#include "core/status.h"
#include "ledger/rcap.h"

namespace bourse::clients {

// `market` is a market object as GET /v1/markets/{m} returns under "market"
// (its "unit", "not_before", "not_after"). Errors: invalid_argument naming a
// bad market field or qty; permission_denied when `me` does not hold `from`.
core::Result<ledger::Rcap> SellEscrow(const nlohmann::json& market, const ledger::Rcap& from,
                                      const core::PrivateKey& me, const core::PublicKey& broker,
                                      int64_t qty);

// One piece of a quote on an RFQ (DESIGN §10): a child of `from` holding the
// RFQ's `res` over its [not_before, not_after), delegated to the broker and
// signed by `me`. `rfq` is an RFQ object as GET /v1/rfqs returns it.
// Errors: as SellEscrow, naming the bad rfq field.
core::Result<ledger::Rcap> RfqEscrow(const nlohmann::json& rfq, const ledger::Rcap& from,
                                     const core::PrivateKey& me, const core::PublicKey& broker);

}  // namespace bourse::clients
