// Capacity escrow shared by sell orders (orders.cc) and RFQ quotes
// (rfqs.cc): DESIGN 4.1's "offer" of an rcap to the broker.
//
// A principal offering capacity it holds signs a child E of its rcap with
// holder = the broker's key and submits it; the broker records E under the
// capacity rule. An admin offering capacity of the broker's own pool names a
// pool rcap instead, and the broker splits E off it. Either way E, held by
// the broker, is what a later fill or award splits for the buyer, and what
// goes back to the seller (ReturnEscrow) when it is not sold.
//
//   BOURSE_RETURN_IF_ERROR(CheckSignedEscrow(e, caller, broker_text, "escrow"));   // no txn
//   // inside the Mutate fn:
//   BOURSE_RETURN_IF_ERROR(RecordSignedEscrow(host, txn, e, caller, "escrow"));
//
// Thread safety: free functions; the Txn ones run inside a Mutate fn.
#pragma once

#include <string>
#include <string_view>

#include "broker/markets/host.h"
#include "core/principal.h"
#include "ledger/rcap.h"
#include "ledger/store.h"

namespace bourse::markets::internal {

// The checks of a seller-signed escrow E that need no transaction: issued
// (signed) by `caller`, held by the broker (`broker_text`), a child (it has
// a parent), and its signature verifies. Errors name `field`
// ("<field>.issuer: ..."): invalid_argument, or permission_denied for a bad
// signature.
core::Status CheckSignedEscrow(const ledger::Rcap& e, const std::string& caller,
                               const std::string& broker_text, std::string_view field);

// The deepest link an escrow may be: a sale adds up to two links below it (a
// fill the broker holds, and the buyer's narrowed delegation, as acquire
// makes), and a node accepts at most ledger::kMaxChainLength.
inline constexpr size_t kMaxEscrowLink = ledger::kMaxChainLength - 2;

// Records E in the transaction: its id is new (already_exists otherwise),
// the caller holds its parent (permission_denied, before the link rules
// would call it a broken link), E is at most link kMaxEscrowLink of its chain
// (failed_precondition "chain_too_long"), and the capacity rule accepts it
// (Host::RecordRcapIfNew: failed_precondition "oversubscribed" when the
// parent's capacity is already used). Errors name `field`.
core::Status RecordSignedEscrow(Host& host, ledger::Txn& txn, const ledger::Rcap& e,
                                const std::string& caller, std::string_view field);

// The pool rcap `id` an admin escrows from: the caller is an admin
// (permission_denied "<field>: only an admin <what> from the broker's
// pool"), the rcap is recorded (not_found) and not committed to a resting
// order, an open round or an open quote (Markets::RequireUncommitted).
core::Result<ledger::Rcap> PoolSource(ledger::Txn& txn, const core::Principal& caller,
                                      const std::string& id, std::string_view field,
                                      std::string_view what);

// Gives `res` over `interval` of escrow `escrow` (an rcap the broker holds)
// back to `seller`. When that is all of it, nothing of it was used (no
// child, not bound) and the seller holds its parent, the escrow is released
// (rcap_released) and the parent is free again with no extra link: returns
// the parent's id. Otherwise (a partly sold escrow) one child of it with
// `res` over `interval`, signed by the broker, goes to the seller: returns
// the child's id.
core::Result<std::string> ReturnEscrow(Host& host, ledger::Txn& txn, const std::string& escrow,
                                       const std::string& seller, const core::ResourceVector& res,
                                       const core::Interval& interval);

}  // namespace bourse::markets::internal
