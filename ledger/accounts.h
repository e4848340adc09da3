// Accounts (credits) and capacity (rcap) records: the ledger entry types that
// move credits and tickets, applied INSIDE a Store transaction so the caller can
// combine them with its own state changes atomically.
//
//   store->Commit([&](Txn& txn) -> core::Status {
//     BOURSE_RETURN_IF_ERROR(Accounts::EscrowHold(txn, "esc_1", "alice", price));
//     BOURSE_RETURN_IF_ERROR(CapacityLog::RecordSplit(txn, parent.id, children));
//     return txn.Exec("UPDATE orders SET state='filled' WHERE id='o1'");
//   });
//   BOURSE_ASSIGN_OR_RETURN(Money b, Accounts::Balance(*store, "alice"));
//
// Credit entry types and bodies (money as canonical decimal strings):
//   admin_added    {"admin":"ed25519:..","by":"ed25519:.."|null}   (by null only for the first)
//   mint           {"account":A,"amount":M,"by":"ed25519:<admin>"} (the one way credits appear)
//   transfer       {"amount":M,"from":A,"to":B}
//   escrow_hold    {"account":A,"amount":M,"escrow":E}              (A -> escrow E, E new)
//   escrow_release {"amount":M,"escrow":E}                          (escrow E -> its account)
//   escrow_settle  {"amount":M,"escrow":E,"to":B}                   (escrow E -> B)
// Amounts are > 0; no balance or escrow ever goes negative; always
// sum(balances) + sum(escrow remaining) == sum(mints). Account ids and escrow
// ids: 1..256 bytes of printable ASCII.
//
// Capacity entry types (each carries full rcaps so a verifier can check them):
//   rcap_issued    {"rcap":R}                    R a root (parent null), signature valid
//   rcap_delegated {"rcap":R}                    one child of a recorded rcap
//   rcap_split     {"children":[R..],"parent":P} children of recorded rcap P
//   rcap_bound     {"rcap":R,"slice":S}          R recorded
//   rcap_redeemed  {"node":N,"rcap":R}           R recorded, N == R.node
//   rcap_expired   {"node":N,"rcap":R,"slice":S} R bound to S, N == R.node, written once,
//                                                 at or after R's not_after (the end
//                                                 of a binding; older form {"rcap":R})
//   rcap_released  {"rcap":R}                    R recorded, held by the broker (the
//                                                 ledger key), a child, unused (no
//                                                 children, not bound), not released
//                                                 yet: an unsold escrow ended, its
//                                                 parent free again where R covered
//   node_added     {"node":N,"capacity":RES,...}  N's capacity (other members
//                                                 are the broker's: site, key, by)
// The capacity book (DESIGN 4.1; the rule is ledger/internal/capacity_rules.h,
// the same code the auditor replays): children must pass CheckLink (rcap.h)
// against their parent and the recorded children of one rcap never exceed it
// at any instant (same time-aware Timeline as the RedemptionBook; children not
// overlapping in time may each use all of it); a bound rcap has no children
// and an rcap with children is never bound; an rcap is bound at most once;
// a root names a registered node and the node's roots never exceed its
// capacity at any instant; a released rcap counts against nothing and never
// gets a child, a binding or a second release.
//
// State lives in tables acct_* and rcap_* of the store's file.
//
// Errors (every operation): invalid_argument for malformed ids or amounts;
// permission_denied when a non-admin mints or adds an admin;
// failed_precondition "insufficient funds: ..." / "exceeds_parent: ..." /
// "oversubscribed: ..."; not_found for unknown escrow or rcap; already_exists
// for reused escrow or rcap ids; internal for SQLite failures. On error
// nothing of the operation is applied (the Txn's savepoint also rolls back
// the caller's part when it returns the error).
//
// Thread safety: the static operations run inside a Commit fn (serialized by
// the store); the readers are safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/keys.h"
#include "core/money.h"
#include "core/status.h"
#include "ledger/rcap.h"
#include "ledger/store.h"

namespace bourse::storage {
class Connection;
}  // namespace bourse::storage

namespace bourse::ledger {

inline constexpr std::string_view kEntryAdminAdded = "admin_added";
inline constexpr std::string_view kEntryMint = "mint";
inline constexpr std::string_view kEntryTransfer = "transfer";
inline constexpr std::string_view kEntryEscrowHold = "escrow_hold";
inline constexpr std::string_view kEntryEscrowRelease = "escrow_release";
inline constexpr std::string_view kEntryEscrowSettle = "escrow_settle";
inline constexpr std::string_view kEntryEscrowTopUp = "escrow_topup";
inline constexpr std::string_view kEntryRcapIssued = "rcap_issued";
inline constexpr std::string_view kEntryRcapDelegated = "rcap_delegated";
inline constexpr std::string_view kEntryRcapSplit = "rcap_split";
inline constexpr std::string_view kEntryRcapBound = "rcap_bound";
inline constexpr std::string_view kEntryRcapRedeemed = "rcap_redeemed";
inline constexpr std::string_view kEntryRcapExpired = "rcap_expired";
inline constexpr std::string_view kEntryRcapReleased = "rcap_released";
inline constexpr std::string_view kEntryNodeAdded = "node_added";

struct EscrowState {
  std::string id;
  std::string account;
  core::Money remaining;
};

struct AccountTotals {
  core::Money minted;
  core::Money balances;
  core::Money escrowed;
};

class Accounts {
 public:
  // Makes `admin` an admin. `by` must be an admin, or null when there is none
  // yet (bootstrap). Errors: permission_denied, already_exists.
  static core::Status AddAdmin(Txn& txn, const core::PublicKey& admin, const core::PublicKey* by);
  static core::Status Mint(Txn& txn, const core::PublicKey& by, std::string_view account,
                           const core::Money& amount);
  static core::Status Transfer(Txn& txn, std::string_view from, std::string_view to,
                               const core::Money& amount);
  static core::Status EscrowHold(Txn& txn, std::string_view escrow_id, std::string_view account,
                                 const core::Money& amount);
  // Release and settle set *account (when not null) to the escrow's account.
  static core::Status EscrowRelease(Txn& txn, std::string_view escrow_id,
                                    const core::Money& amount, std::string* account = nullptr);
  static core::Status EscrowSettle(Txn& txn, std::string_view escrow_id, std::string_view to,
                                   const core::Money& amount, std::string* account = nullptr);
  // Adds `amount` from the escrow's own account to an open escrow (remaining
  // > 0): a resting buy moved to a higher price keeps its escrow. Errors:
  // not_found (no escrow, or a closed one), failed_precondition (insufficient
  // funds).
  static core::Status EscrowTopUp(Txn& txn, std::string_view escrow_id, const core::Money& amount,
                                  std::string* account = nullptr);

  // Readers: inside a Commit fn (pass txn.db()) or on a read connection
  // (Store::Read, or the Store& overloads). Unknown accounts have balance 0.
  static core::Result<core::Money> Balance(storage::Connection* db, std::string_view account);
  static core::Result<core::Money> Balance(const Store& store, std::string_view account);
  // Errors: not_found.
  static core::Result<EscrowState> Escrow(storage::Connection* db, std::string_view escrow_id);
  static core::Result<EscrowState> Escrow(const Store& store, std::string_view escrow_id);
  // The same inside a Commit fn, through the writer's statement cache.
  static core::Result<EscrowState> Escrow(Txn& txn, std::string_view escrow_id);
  // An account's escrows with something left, by id (escrows emptied by
  // release/settle are omitted). Unknown accounts have none.
  static core::Result<std::vector<EscrowState>> OpenEscrows(storage::Connection* db,
                                                            std::string_view account);
  // Creates this library's tables and indexes if missing (they are also made
  // on first use); lets a store opened by an older version gain new indexes.
  static core::Status EnsureSchema(Txn& txn);
  static core::Status EnsureSchema(storage::Connection& conn);
  static core::Result<bool> IsAdmin(storage::Connection* db, const core::PublicKey& key);
  static core::Result<AccountTotals> Totals(storage::Connection* db);
  static core::Result<AccountTotals> Totals(const Store& store);
};

class CapacityLog {
 public:
  // Registers a node and its capacity and appends `body` as its node_added
  // entry (body.node and body.capacity must be `node` and `capacity`).
  // Errors: already_exists, invalid_argument.
  static core::Status RecordNode(Txn& txn, std::string_view node,
                                 const core::ResourceVector& capacity, nlohmann::json body);
  // Errors: invalid_argument when R has a parent; permission_denied for a bad
  // signature; already_exists when the id is recorded; failed_precondition
  // "unknown_node: ..." or "oversubscribed: ..." (the node's roots would
  // exceed its capacity at some instant; names the rcap, quantity, instant).
  static core::Status RecordIssued(Txn& txn, const Rcap& root);
  // Errors: not_found (parent unknown); failed_precondition "<reason>: ..."
  // with the refusal reason of CheckLink, "bound" (the parent is bound) or
  // "oversubscribed".
  static core::Status RecordDelegated(Txn& txn, const Rcap& child);
  static core::Status RecordSplit(Txn& txn, std::string_view parent_id,
                                  std::span<const Rcap> children);
  // Errors: not_found unless R is recorded with exactly this content;
  // failed_precondition "bound: ..." (bound already) or "has_children: ...".
  static core::Status RecordBound(Txn& txn, const Rcap& rcap, std::string_view slice);
  // Ends an unused escrow R the broker (`broker`, the ledger key) holds:
  // appends rcap_released; R's parent is free again wherever R covered.
  // Errors: not_found unless R is recorded with this content;
  // failed_precondition "root: ...", "not_broker_held: ...", "released: ..."
  // (already), "bound: ..." or "has_children: ..." (capacity_rules.h).
  static core::Status RecordReleased(Txn& txn, const Rcap& rcap, const core::PublicKey& broker);
  // Whether rcap `id` was released (false for an unknown id).
  static core::Result<bool> IsReleased(storage::Connection* db, std::string_view id);
  // Whether rcap `id` is in use: it has a child (not released) or is bound.
  static core::Result<bool> InUse(storage::Connection* db, std::string_view id);
  // What of rcap `id` is free over `window`: its quantities less the peak use
  // of its children there (all zero when it is bound or released). Errors:
  // not_found.
  static core::Result<core::ResourceVector> Free(Txn& txn, std::string_view id,
                                                 const core::Interval& window);
  // The slice an rcap is bound to, if any.
  static core::Result<std::optional<std::string>> BoundTo(storage::Connection* db,
                                                          std::string_view id);
  static core::Status RecordRedeemed(Txn& txn, const Rcap& rcap, std::string_view node);
  // The binding of R to `slice` has ended with R's interval: appends
  // rcap_expired. The caller writes it once (the broker marks its binding
  // in the same transaction). Errors: not_found unless R is recorded with
  // this content; failed_precondition "not_bound: ..." unless R is bound to
  // `slice`, "not_expired: ..." before R's not_after (by the txn's clock).
  static core::Status RecordExpired(Txn& txn, const Rcap& rcap, std::string_view slice);

  // The recorded rcap. Errors: not_found.
  static core::Result<Rcap> Get(storage::Connection* db, std::string_view id);
  // The chain root first ending at `id`. Errors: not_found, failed_precondition
  // when it is longer than kMaxChainLength.
  static core::Result<std::vector<Rcap>> ChainOf(storage::Connection* db, std::string_view id);
};

}  // namespace bourse::ledger
