// Ledger audit: replays a whole ledger from any source (a store file, or
// entries and heads fetched over HTTP) and checks every invariant of DESIGN §4.
//
//   LedgerAuditor auditor(ledger_pub);
//   for (const std::string& text : entry_texts) if (!auditor.AddEntryText(text)) break;
//   auditor.AddHead(head);          // checked when the replay reaches head.size
//   if (!auditor.Finish()) puts(auditor.violation()->ToString().c_str());
//   // or, for a store file:
//   BOURSE_ASSIGN_OR_RETURN(AuditReport rep, AuditStore("bourse.db", std::nullopt));
//
// Checks, in replay order: each entry is canonical JSON of the entry format
// (entry.h) with seq == its index, prev == the previous leaf hash, ts never
// decreasing; every tree head's signature by the ledger key and its root ==
// the root of the first head.size leaves; credit entries obey the account
// rules (admin-only mint and admin_added, amounts > 0, no negative balance or
// escrow, escrow ids new); rcap entries: signatures, links (CheckLink), ids
// unique, children of one rcap never above it at any instant, bound/redeemed/
// expired only for recorded rcaps, released (rcap_released) only for a
// recorded, unused child the broker (the ledger key) holds, once, and never
// used after, redeemed leaves never double-redeemed nor
// oversubscribed (RedemptionBook); node_key_changed / site_pi_changed obey
// the key-change rule (key_changes.h: by an admin or the site's PI key at
// that point, never the node itself; from the current key; to a key never
// registered), each site's PI and node's key tracked from site_added,
// node_added, principal_added and admin_added; at the end sum(balances) + sum(escrow) ==
// sum(mints) and the last head covers every entry. Entry types it does not
// know (other components' state changes) are hash-checked only.
//
// Thread safety: a LedgerAuditor is used by one thread; AuditStore is safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/keys.h"
#include "core/money.h"
#include "core/status.h"
#include "ledger/entry.h"

namespace bourse::ledger {

struct Violation {
  // "entry" (seq is the entry's), "head" (seq is the head's size), "final".
  std::string where;
  uint64_t seq = 0;
  // Short rule name: "hash_chain", "entry_format", "tree_head", "conservation",
  // "negative_balance", "mint_not_admin", "capacity", "rcap", "escrow", ...
  std::string rule;
  std::string detail;
  // "seq 17: negative_balance: transfer from alice: balance 3 < 5".
  std::string ToString() const;
};

struct AuditSummary {
  uint64_t entries = 0;
  uint64_t heads = 0;
  uint64_t accounts = 0;
  uint64_t rcaps = 0;
  core::Money minted;
  core::Money balances;
  core::Money escrowed;
  std::map<std::string, uint64_t> types;  // entries per type
};

struct AuditOptions {
  // Verify every rcap's Ed25519 signature (the costliest check).
  bool check_rcap_signatures = true;
  // Threads that verify rcap signatures beside the replay (0: inline). The
  // first violation reported is still the one with the lowest seq.
  int signature_threads = 1;
};

class LedgerAuditor {
 public:
  explicit LedgerAuditor(core::PublicKey ledger_key, AuditOptions options = {});
  ~LedgerAuditor();
  LedgerAuditor(const LedgerAuditor&) = delete;
  LedgerAuditor& operator=(const LedgerAuditor&) = delete;

  // The next entry as its canonical JSON text (the leaf data). False once a
  // violation has been found (this or an earlier one).
  bool AddEntryText(std::string_view text);
  bool AddEntry(const Entry& entry);
  // As AddEntryText when the caller already holds leaf == LeafHash(text).
  bool AddEntryTextWithLeaf(std::string_view text, const Hash& leaf);
  // A signed head; checked now if head.size == entries so far, else when the
  // replay reaches it. A head below the current count is checked against the
  // roots seen (only sizes that were head sizes or the current one are kept,
  // so feed heads in order). False once a violation has been found.
  bool AddHead(const TreeHead& head);
  // Final checks (pending heads, conservation, at least one head covering all
  // entries, and every signature checked in the background). True iff no
  // violation. Call it for the final verdict: before it, a signature failure
  // may still be pending.
  bool Finish();
  // Records a violation the caller found itself (e.g. at the storage level);
  // whichever violation has the lower seq is kept. Returns false.
  bool AddViolation(Violation v);

  bool ok() const;
  const std::optional<Violation>& violation() const;
  const AuditSummary& summary() const;
  // Root of the entries replayed so far.
  Hash CurrentRoot() const;

  struct Impl;

 private:
  friend core::Result<struct AuditReport> AuditStore(const std::string&,
                                                     const std::optional<core::PublicKey>&,
                                                     AuditOptions);
  std::unique_ptr<Impl> impl_;
};

struct AuditReport {
  std::optional<Violation> violation;  // none iff everything holds
  AuditSummary summary;
  std::string key;  // the ledger key used ("ed25519:...")
  bool ok() const { return !violation.has_value(); }
};

// Audits a store file without trusting anything in it but the ledger key:
// `expected_key` when given, else the key recorded in the file. It reads the
// tables directly (no Store::Open), so a broken store is reported with where
// it breaks. Errors (not violations): not_found / unavailable when the file
// cannot be read as a ledger store.
core::Result<AuditReport> AuditStore(const std::string& path,
                                     const std::optional<core::PublicKey>& expected_key,
                                     AuditOptions options = {});

}  // namespace bourse::ledger
