// SliverLogs: the node guard's per-sliver events and boot-log tails
// (docs/nodeguard.md "Sliver events and logs", issue #20).
//
// After each reconcile the guard hands the pass to RecordPass, which turns
// what changed into events kept in the StateStore (bounded per sliver,
// surviving restarts): started, boot, restarted, error, torn_down,
// disk_resized and disk_resize_held (a set_resources disk change), and from
// the kernel's counters and the disks oom, cpu_throttled, net_dropped and
// disk_full. ReportBody builds the body of
// the node-signed POST /v1/nodes/{node}/logs: per sliver its newest events
// and the tail of its boot log (Enforcer::BootLogPath, a file the logger
// keeps under kBootLogMaxBytes), within the broker's bounds.
//
//   SliverLogs logs(store, enforcer, clock);
//   logs.RecordPass(desired, stats, enforcer->Failures(), /*read_limits=*/verify);
//   nlohmann::json body = logs.ReportBody();   // send when it changed
//
// Thread safety: one thread (the guard's pass).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "nodeguard/enforcement.h"
#include "nodeguard/state_store.h"

namespace bourse::nodeguard {

// Bounds of a logs report, the broker's (docs/broker.md "Sliver logs").
inline constexpr size_t kMaxLogReportBytes = 512 * 1024;
inline constexpr size_t kMaxLogReportSlivers = 500;
inline constexpr size_t kLogTailBytes = 2048;    // of each sliver's boot log
inline constexpr int kReportedEvents = 10;       // newest events per sliver
inline constexpr size_t kMaxEventMessage = 300;  // bytes of an event's message

// `text` with every byte that is not printable UTF-8, a newline or a tab
// replaced by '?', so that it is valid JSON text whatever a script printed.
std::string CleanLogText(std::string_view text);

// The last `max_bytes` of the file at `path`, from its first line start
// when that is not the file's start, cleaned (CleanLogText); *size is the
// file's size (-1 and "" when it cannot be read).
std::string ReadLogTail(const std::string& path, size_t max_bytes, int64_t* size);

class SliverLogs {
 public:
  SliverLogs(StateStore* store, Enforcer* enforcer, const core::Clock* clock)
      : store_(store), enforcer_(enforcer), clock_(clock) {}

  // Records the events of one pass: `desired` was reconciled with `stats`
  // and `failures`; with read_limits the kernel's limit counters are read
  // and their growth since the last reading is an event. Errors: the
  // state database's.
  core::Status RecordPass(const std::vector<SliverSpec>& desired, const ReconcileStats& stats,
                          const std::map<std::string, SliverFailure>& failures, bool read_limits);

  // {"slivers":[{"slice","events":[...],"log":{"tail","size","max_bytes"}|null}]}:
  // the slivers of the last pass and those torn down whose events are kept,
  // at most kMaxLogReportBytes (tails and events shortened to fit).
  nlohmann::json ReportBody();

 private:
  core::Status Add(const std::string& slice, const std::string& kind, std::string message);
  // disk_resized, or disk_resize_held when its message differs from the
  // last one said for the sliver.
  core::Status RecordResize(const std::string& name, const DiskResize& r);
  nlohmann::json Build(size_t tail_bytes, int events);

  StateStore* store_;
  Enforcer* enforcer_;
  const core::Clock* clock_;
  bool loaded_ = false;
  std::set<std::string> known_;    // slivers set up by an earlier pass (meta "sliver_names")
  std::vector<std::string> live_;  // the last pass's slivers
  std::map<std::string, LimitCounters> limits_;  // the last reading
  std::map<std::string, std::string> held_;      // the last disk_resize_held message said
  int64_t passes_ = 0;
};

}  // namespace bourse::nodeguard
