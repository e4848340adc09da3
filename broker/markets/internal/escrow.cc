// Capacity escrow shared by sell orders and RFQ quotes (escrow.h).
#include "broker/markets/internal/escrow.h"

#include <span>
#include <vector>

#include "broker/markets/markets.h"
#include "ledger/accounts.h"

namespace bourse::markets::internal {

core::Status CheckSignedEscrow(const ledger::Rcap& e, const std::string& caller,
                               const std::string& broker_text, std::string_view field) {
  const std::string f(field);
  if (e.issuer.ToText() != caller) {
    return core::InvalidArgument(f + ".issuer: must be the caller (the seller signs it)");
  }
  if (e.holder.ToText() != broker_text) {
    return core::InvalidArgument(f + ".holder: must be the broker's key " + broker_text);
  }
  if (!e.parent) return core::InvalidArgument(f + ".parent: must be an rcap the seller holds");
  if (!e.CheckSignature().ok()) {
    return core::PermissionDenied(f + ".sig: bad_signature: does not verify under the issuer");
  }
  return core::Status::Ok();
}

core::Status RecordSignedEscrow(Host& host, ledger::Txn& txn, const ledger::Rcap& e,
                                const std::string& caller, std::string_view field) {
  const std::string f(field);
  if (ledger::CapacityLog::Get(txn.db(), e.id).ok()) {
    return core::AlreadyExists(f + ".id: rcap " + e.id + " is already recorded");
  }
  // DESIGN 4.1: only the holder offers an rcap (403 before the link rules
  // would call it a broken link).
  auto from = ledger::CapacityLog::Get(txn.db(), *e.parent);
  if (from.ok()) {
    BOURSE_RETURN_IF_ERROR(ledger::RequireHolder(*from, caller, f + ".parent"));
    auto chain = ledger::CapacityLog::ChainOf(txn.db(), *e.parent);
    if (!chain.ok() || chain->size() + 1 > kMaxEscrowLink) {
      return core::FailedPrecondition(
          f + ": chain_too_long: rcap " + *e.parent + " is " +
          (chain.ok() ? "link " + std::to_string(chain->size()) : "deeper than a node accepts") +
          " of its chain; a sale adds up to 3 links and a node accepts at most " +
          std::to_string(ledger::kMaxChainLength) + ", so only rcaps of at most " +
          std::to_string(kMaxEscrowLink - 1) + " links can be sold");
    }
  }
  return host.RecordRcapIfNew(txn, e).WithContext(f);
}

core::Result<ledger::Rcap> PoolSource(ledger::Txn& txn, const core::Principal& caller,
                                      const std::string& id, std::string_view field,
                                      std::string_view what) {
  if (caller.kind != core::PrincipalKind::kAdmin) {
    return core::PermissionDenied(std::string(field) + ": only an admin " + std::string(what) +
                                  " from the broker's pool");
  }
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap src, ledger::CapacityLog::Get(txn.db(), id));
  BOURSE_RETURN_IF_ERROR(Markets::RequireUncommitted(txn, id, field));
  return src;
}

core::Result<std::string> ReturnEscrow(Host& host, ledger::Txn& txn, const std::string& escrow,
                                       const std::string& seller, const core::ResourceVector& res,
                                       const core::Interval& interval) {
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey key, core::PublicKey::FromText(seller));
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap e, ledger::CapacityLog::Get(txn.db(), escrow));
  if (e.parent && e.res == res && e.interval == interval) {
    BOURSE_ASSIGN_OR_RETURN(bool used, ledger::CapacityLog::InUse(txn.db(), e.id));
    auto parent = ledger::CapacityLog::Get(txn.db(), *e.parent);
    if (!used && parent.ok() && parent->holder == key) {
      BOURSE_RETURN_IF_ERROR(host.ReleaseHeld(txn, e.id));
      return parent->id;
    }
  }
  ledger::ChildSpec spec{.id = "", .holder = key, .res = res, .interval = interval};
  BOURSE_ASSIGN_OR_RETURN(
      std::vector<ledger::Rcap> kids,
      host.SplitHeld(txn, escrow, std::span<const ledger::ChildSpec>(&spec, 1)));
  return kids[0].id;
}

}  // namespace bourse::markets::internal
