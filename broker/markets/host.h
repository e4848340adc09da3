// What the markets engine needs from the service that hosts it (the broker):
// its store and clock, its key, the atomic Mutate, principals, and the
// ledger-keeping money and capacity moves. The engine includes nothing of
// the broker; the broker implements this (its internal/markets_host.h).
// The broker's own tables (its sites, nodes and slices) are read only
// through the methods below, in the connection (txn.db() inside a Mutate
// fn) the caller runs in.
//
//   BOURSE_ASSIGN_OR_RETURN(auto m, markets::Markets::Open(&host, ledger_key, options));
//   // inside the engine, one settlement:
//   host.Mutate([&](ledger::Txn& txn) -> core::Status {
//     BOURSE_RETURN_IF_ERROR(host.EscrowSettle(txn, escrow, seller, amount));
//     return txn.Append("trade", body).status();
//   });
//
// Thread safety: every method must be safe from any thread; the Txn helpers
// run inside a Mutate fn, on the store's writer.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/keys.h"
#include "core/money.h"
#include "core/principal.h"
#include "core/status.h"
#include "ledger/rcap.h"
#include "ledger/store.h"
#include "storage/sqlite.h"

namespace bourse::markets {

// A registered node as the markets see it.
struct NodeInfo {
  std::string site;
  std::string site_pi;       // the key text of its site's PI; empty if the site is not registered
  int64_t net_max_kbps = 0;  // its capacity's net_max_kbps, 0 if it has none
};

// Who may bid for a slice: its creator and its owners (key texts).
struct SliceOwnership {
  std::string creator;
  std::vector<std::string> owners;
};

class Host {
 public:
  virtual ~Host() = default;

  virtual ledger::Store& store() = 0;
  virtual const core::Clock& clock() const = 0;
  // The broker's key: it holds escrowed capacity and signs what it splits.
  virtual const core::PublicKey& broker_key() const = 0;

  // One atomic unit: fn's rows and ledger entries commit together or not at
  // all (and, inside a signed request, with that request's nonce).
  virtual core::Result<ledger::CommitResult> Mutate(
      const std::function<core::Status(ledger::Txn&)>& fn) = 0;
  // The same without waiting: `done` runs on the store's syncer thread once
  // the commit is durable or has failed, so it must only hand it on.
  virtual void MutateAsync(std::function<core::Status(ledger::Txn&)> fn,
                           std::function<void(core::Result<ledger::CommitResult>)> done) = 0;

  // A registered principal. Errors: permission_denied when `key` is none.
  virtual core::Result<core::Principal> LookupPrincipal(storage::Connection* db,
                                                        std::string_view key) = 0;
  virtual core::Result<core::Principal> LookupPrincipal(ledger::Txn& txn, std::string_view key) = 0;

  // The broker's PLC tables, read in `db`: nullopt / false when the row is
  // not there, errors only from the store.
  virtual core::Result<std::optional<NodeInfo>> FindNode(storage::Connection* db,
                                                         std::string_view node) = 0;
  virtual core::Result<bool> SiteExists(storage::Connection* db, std::string_view site) = 0;
  virtual core::Result<std::optional<SliceOwnership>> SliceOwners(storage::Connection* db,
                                                                  std::string_view slice) = 0;
  virtual core::Result<bool> SliceExists(storage::Connection* db, std::string_view slice) = 0;

  // Credits (ledger/accounts.h), each with its account history kept.
  virtual core::Status Transfer(ledger::Txn& txn, std::string_view from, std::string_view to,
                                const core::Money& amount) = 0;
  virtual core::Status EscrowHold(ledger::Txn& txn, std::string_view escrow_id,
                                  std::string_view account, const core::Money& amount) = 0;
  virtual core::Status EscrowRelease(ledger::Txn& txn, std::string_view escrow_id,
                                     const core::Money& amount) = 0;
  virtual core::Status EscrowSettle(ledger::Txn& txn, std::string_view escrow_id,
                                    std::string_view to, const core::Money& amount) = 0;
  virtual core::Status EscrowTopUp(ledger::Txn& txn, std::string_view escrow_id,
                                   const core::Money& amount) = 0;

  // Capacity: splits an rcap the broker holds into children it signs, and
  // records an rcap signed by someone else (unless already recorded).
  virtual core::Result<std::vector<ledger::Rcap>> SplitHeld(
      ledger::Txn& txn, std::string_view parent_id,
      std::span<const ledger::ChildSpec> children) = 0;
  virtual core::Status RecordRcapIfNew(ledger::Txn& txn, const ledger::Rcap& rcap) = 0;
  // Ends an unused rcap the broker holds (an unsold escrow): rcap_released,
  // its parent free again; it leaves the host's lists of rcaps. Errors as
  // ledger::CapacityLog::RecordReleased.
  virtual core::Status ReleaseHeld(ledger::Txn& txn, std::string_view id) = 0;

  // The host's own periodic work, run by the engine's Tick() after its own
  // steps (on the engine's background thread, or by whoever calls Tick()):
  // the broker writes the ends of bindings whose rcap has expired.
  virtual core::Status Tick() { return core::Status::Ok(); }
};

}  // namespace bourse::markets
