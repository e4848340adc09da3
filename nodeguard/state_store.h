// StateStore: the node guard's own SQLite database (<state_dir>/state.db):
// redeemed chains, refusals, slices and their uid slots, usage reports kept
// until the broker acknowledges them. Redemption goes through it so that the
// guard daemon and the offline `bourse-nodeguard redeem` command (two
// processes, one database) never both redeem against a stale view: each
// redemption runs in an IMMEDIATE transaction over a RedemptionBook rebuilt
// whenever another connection changed the database.
//
//   BOURSE_ASSIGN_OR_RETURN(auto store, StateStore::Open("/var/lib/bourse-nodeguard"));
//   RedeemResult r = store->Redeem(chain_json, "princeton_codeen", "", "spool",
//                                  trusted, "n1", now);
//   if (!r.verdict.ok()) puts(r.verdict.refusal().ToJson().dump().c_str());
//
// Thread safety: internally locked; one StateStore per process.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/keys.h"
#include "core/resource_vector.h"
#include "core/status.h"
#include "ledger/rcap.h"

namespace bourse::storage {
class ProcessLock;
}  // namespace bourse::storage

namespace bourse::nodeguard {

// One redeemed leaf as stored.
struct LeafRecord {
  std::string leaf_id;
  std::string slice;
  std::string source;  // spool | broker | cli
  std::string state;   // active | scheduled | expired | revoked | refused
  std::string boot_script;
  core::ResourceVector res;
  int64_t not_before = 0;
  int64_t not_after = 0;
  std::string reported_state;  // last state the broker acknowledged
};

// One event of a sliver, kept by the guard (docs/nodeguard.md "Sliver
// events and logs"): kind is started | boot | restarted | error | oom |
// cpu_throttled | torn_down. A repeat of the sliver's newest kind is counted
// on that event (count, ts_ms and message of the last) instead of added.
struct SliverEvent {
  int64_t ts_ms = 0;  // the node's clock, unix ms
  std::string kind;
  std::string message;
  int64_t count = 1;
  nlohmann::json ToJson() const;  // {"ts_ms","kind","message","count"}
  friend bool operator==(const SliverEvent&, const SliverEvent&) = default;
};

// Bounds of the events kept: per sliver, and slivers torn down (their events
// stay for the report until kGoneSliverEventsMs have passed).
inline constexpr int kMaxSliverEvents = 32;
inline constexpr int kMaxGoneSlivers = 64;
inline constexpr int64_t kGoneSliverEventsMs = 24 * 3600 * 1000;

struct SliceRecord {
  std::string slice;
  int64_t slot = 0;  // uid = uid_base + slot; HTB class minor = slot + 2
};

struct RefusalRecord {
  std::string leaf_id;  // may be empty (malformed)
  std::string slice;
  std::string reason;
  std::string detail;
  int64_t ts = 0;
  std::string chain_hash;
  bool reported = false;
};

struct UsageReport {
  std::string id, slice, rcap;
  int64_t from = 0, to = 0, cpu_usec = 0, net_tx_bytes = 0, disk_used_mib = 0;
  nlohmann::json ToJson() const;
};

struct RedeemRequest {
  std::string chain_json;
  std::string slice;
  std::string boot_script;
  std::string source;  // spool | broker | cli
};

struct UsageEntry {
  UsageReport report;
  int64_t cpu_mark = 0;  // counters now, the base of the next report
  int64_t net_mark = 0;
  bool mark_only = false;  // first sight of a slice: remember counters, report nothing
};

struct UsageMarkRecord {
  int64_t ts = 0;
  int64_t cpu_usec = 0;
  int64_t net_tx_bytes = 0;
};

struct RedeemResult {
  ledger::Verdict<ledger::EffectiveLeaf> verdict;
  bool already_redeemed = false;  // the same chain was redeemed before: nothing changed
};

class StateStore {
 public:
  // Creates the directory and schema if needed (schema versions: component
  // "nodeguard" in storage_schema). The guard daemon and `redeem` or `run
  // --once` may use one state directory at once. Errors: unavailable (cannot
  // open); failed_precondition when the database's schema is newer than this
  // program; internal.
  static core::Result<std::unique_ptr<StateStore>> Open(const std::string& state_dir);
  // The guard daemon's claim on a state directory: the process lock of its
  // state.db (storage/sqlite.h), held as long as the returned object, so a
  // second daemon on the same directory fails at start naming the holder.
  // Errors: unavailable "database DIR/state.db is in use by pid N (NAME)".
  static core::Result<std::unique_ptr<storage::ProcessLock>> LockForDaemon(
      const std::string& state_dir);
  ~StateStore();

  // Verifies `chain_json` offline and redeems it (see file comment). A
  // refusal is recorded (once per chain and reason). Re-presenting a chain
  // whose leaf is already redeemed with identical content returns the stored
  // effective leaf with already_redeemed = true. Errors (not refusals):
  // internal when the database fails.
  core::Result<RedeemResult> Redeem(std::string_view chain_json, const std::string& slice,
                                    const std::string& boot_script, const std::string& source,
                                    std::span<const core::PublicKey> trusted,
                                    const std::string& node, int64_t now_seconds);

  // Many chains in one transaction (boot, a spool scan, a bindings fetch):
  // results in order. Errors as Redeem; on error nothing is recorded.
  core::Result<std::vector<RedeemResult>> RedeemMany(std::span<const RedeemRequest> requests,
                                                     std::span<const core::PublicKey> trusted,
                                                     const std::string& node, int64_t now_seconds);

  // Leaves whose not_after <= now become "expired" and leave the book;
  // scheduled leaves whose not_before <= now become "active". Returns the
  // slices touched.
  core::Result<std::vector<std::string>> AdvanceTime(int64_t now_seconds);
  // Marks a leaf "revoked" (its binding vanished) and releases it.
  core::Status Revoke(const std::string& leaf_id);
  // Marks live leaves "refused" (the node could not enforce them), records
  // an enforcement_failed refusal for each (reported to the broker like any
  // refusal) and releases them, in one transaction. Presenting the same chain
  // again gives that refusal, with already_redeemed set. Errors: internal.
  core::Status RefuseLeaves(std::span<const std::string> leaf_ids, const std::string& detail,
                            int64_t now_seconds);

  // Leaves in state active or scheduled.
  core::Result<std::vector<LeafRecord>> LiveLeaves();
  core::Result<std::vector<LeafRecord>> AllLeaves();
  // Live leaves whose current state the broker has not acknowledged.
  core::Result<std::vector<LeafRecord>> UnreportedLeaves();
  // The slot of `slice`, allocating the lowest free one. Errors:
  // resource_exhausted past 65000 slices.
  core::Result<int64_t> SlotFor(const std::string& slice);
  // Slots of many slices, allocating missing ones in one transaction.
  core::Result<std::map<std::string, int64_t>> SlotsFor(std::span<const std::string> slices);
  // Forgets slices that have no live leaf and are not in `keep` (the
  // best-effort slivers the guard still holds); their slot becomes free.
  core::Status DropIdleSlices(const std::set<std::string>& keep = {});
  core::Result<std::vector<SliceRecord>> Slices();

  // `last` > 0: only the most recent `last`.
  core::Result<std::vector<RefusalRecord>> Refusals(bool unreported_only, int last = 0);
  core::Status MarkRefusalReported(const std::string& chain_hash, const std::string& reason);
  core::Status MarkLeafReported(const std::string& leaf_id, const std::string& state);

  // Usage: counters last seen per slice, and reports pending acknowledgement.
  core::Status AddUsageReport(const UsageReport& r, int64_t cpu_mark, int64_t net_mark);
  core::Result<std::optional<std::pair<int64_t, std::pair<int64_t, int64_t>>>> UsageMark(
      const std::string& slice);  // (ts, (cpu_usec, net_tx_bytes))
  core::Result<std::vector<UsageReport>> PendingUsage(int limit);
  core::Status AddUsageReports(std::span<const UsageEntry> entries);  // one transaction
  core::Result<std::map<std::string, UsageMarkRecord>> UsageMarks();
  core::Result<int64_t> CountPendingUsage();
  core::Status AckUsage(std::span<const std::string> ids);

  // Number of redeemed leaves in the in-memory book (after any reload).
  size_t BookSize();

  // Adds event `e` of sliver `slice` (a repeat of its newest kind is
  // counted on that one) and keeps its newest kMaxSliverEvents.
  core::Status AddSliverEvent(const std::string& slice, const SliverEvent& e);
  // The newest `last` events of `slice`, oldest first.
  core::Result<std::vector<SliverEvent>> SliverEvents(const std::string& slice, int last);
  // Every slice with events, and the time of its newest.
  core::Result<std::map<std::string, int64_t>> SliversWithEvents();
  // Forgets the events of slices not in `live` whose newest event is older
  // than `before_ms`, and of the oldest such slices beyond kMaxGoneSlivers.
  core::Status PruneSliverEvents(std::span<const std::string> live, int64_t before_ms);

  // Generic key/value (last broker contact, etc.).
  core::Status PutMeta(const std::string& key, const std::string& value);
  core::Result<std::string> GetMeta(const std::string& key);

 private:
  struct Impl;
  explicit StateStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bourse::nodeguard
