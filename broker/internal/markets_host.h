// The broker as the markets engine's host (broker/markets/host.h): each
// operation is the Broker's own, so a market's settlement commits, records
// the request's nonce and keeps account histories exactly as a broker route
// does.
#pragma once

#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "broker/broker.h"
#include "broker/internal/plc_tables.h"
#include "broker/markets/host.h"

namespace bourse::broker::internal {

class MarketsHost final : public markets::Host {
 public:
  explicit MarketsHost(Broker* broker) : broker_(broker) {}

  ledger::Store& store() override { return broker_->store(); }
  const core::Clock& clock() const override { return broker_->clock(); }
  const core::PublicKey& broker_key() const override { return broker_->broker_key(); }
  core::Result<ledger::CommitResult> Mutate(
      const std::function<core::Status(ledger::Txn&)>& fn) override {
    return broker_->Mutate(fn);
  }
  void MutateAsync(std::function<core::Status(ledger::Txn&)> fn,
                   std::function<void(core::Result<ledger::CommitResult>)> done) override {
    broker_->MutateAsync(std::move(fn), std::move(done));
  }
  core::Result<core::Principal> LookupPrincipal(storage::Connection* db,
                                                std::string_view key) override {
    return Broker::LookupPrincipal(db, key);
  }
  core::Result<core::Principal> LookupPrincipal(ledger::Txn& txn, std::string_view key) override {
    return Broker::LookupPrincipal(txn, key);
  }
  core::Result<std::optional<markets::NodeInfo>> FindNode(storage::Connection* db,
                                                          std::string_view node) override {
    return internal::FindNode(db, node);
  }
  core::Result<bool> SiteExists(storage::Connection* db, std::string_view site) override {
    return internal::SiteExists(db, site);
  }
  core::Result<std::optional<markets::SliceOwnership>> SliceOwners(
      storage::Connection* db, std::string_view slice) override {
    return internal::SliceOwners(db, slice);
  }
  core::Result<bool> SliceExists(storage::Connection* db, std::string_view slice) override {
    return internal::SliceExists(db, slice);
  }
  core::Status Transfer(ledger::Txn& txn, std::string_view from, std::string_view to,
                        const core::Money& amount) override {
    return broker_->Transfer(txn, from, to, amount);
  }
  core::Status EscrowHold(ledger::Txn& txn, std::string_view escrow_id, std::string_view account,
                          const core::Money& amount) override {
    return broker_->EscrowHold(txn, escrow_id, account, amount);
  }
  core::Status EscrowRelease(ledger::Txn& txn, std::string_view escrow_id,
                             const core::Money& amount) override {
    return broker_->EscrowRelease(txn, escrow_id, amount);
  }
  core::Status EscrowSettle(ledger::Txn& txn, std::string_view escrow_id, std::string_view to,
                            const core::Money& amount) override {
    return broker_->EscrowSettle(txn, escrow_id, to, amount);
  }
  core::Status EscrowTopUp(ledger::Txn& txn, std::string_view escrow_id,
                           const core::Money& amount) override {
    return broker_->EscrowTopUp(txn, escrow_id, amount);
  }
  core::Result<std::vector<ledger::Rcap>> SplitHeld(
      ledger::Txn& txn, std::string_view parent_id,
      std::span<const ledger::ChildSpec> children) override {
    return broker_->SplitHeld(txn, parent_id, children);
  }
  core::Status RecordRcapIfNew(ledger::Txn& txn, const ledger::Rcap& rcap) override {
    return broker_->RecordRcapIfNew(txn, rcap);
  }
  core::Status ReleaseHeld(ledger::Txn& txn, std::string_view id) override {
    return broker_->ReleaseHeld(txn, id);
  }
  core::Status Tick() override { return broker_->ExpireBindings(); }

 private:
  Broker* broker_;
};

}  // namespace bourse::broker::internal
