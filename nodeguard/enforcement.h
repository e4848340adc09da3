// Enforcement backends of the node guard (DESIGN §6) and the idempotent
// reconciler that drives them.
//
// Desired state is a list of SliverSpec; Enforcer::Reconcile applies only the
// differences between it and what the kernel (or the dry-run scratch root)
// already holds, tears down what is no longer desired, and starts a sliver's
// boot script once, when the sliver is first set up:
//
//   EnforcerOptions o;                       // or DryRunOptions("/tmp/scratch")
//   o.cgroup = CgroupOptions::Detect("/sys/fs/cgroup", "bourse").value();
//   o.link = LinkOptions{.iface = "eth0", .link_kbps = 1000000};
//   o.disk_root = "/var/lib/bourse/disk";
//   o.run_dir = "/var/lib/bourse/run";
//   BOURSE_ASSIGN_OR_RETURN(std::unique_ptr<Enforcer> e, Enforcer::Create(o));
//   SliverSpec s{.name = "princeton_codeen", .uid = 200001, .class_minor = 0x11,
//                .res = {.cpu_mcores = 500, .mem_mib = 256, .disk_mib = 64,
//                        .net_min_kbps = 1000, .net_max_kbps = 10000},
//                .boot_script = "#!/bin/sh\nexec ./server\n"};
//   BOURSE_ASSIGN_OR_RETURN(ReconcileStats st, e->Reconcile({s}));
//
// Settings written per sliver:
//   cgroup v1: cpu.shares = clamp(cpu_mcores * 1024 / 1000, 2, 262144);
//              cpu.cfs_period_us = 100000, cpu.cfs_quota_us = cap * 100 or -1;
//              memory.limit_in_bytes = mem_mib MiB (or -1 when mem_mib = 0).
//   cgroup v2: cpu.weight = clamp(shares * 100 / 1024, 1, 10000) (linear, so
//              ratios hold); cpu.max = "<cap*100> 100000" or "max 100000";
//              memory.max = bytes or "max".
//   link:      HTB class 1:<class_minor> under 1:1 with rate = net_min_kbps,
//              ceil = net_max_kbps, quantum proportional to rate (tc refuses a
//              rate of 0, so 0 is written as 8bit, tc's smallest: a sliver that
//              bought no minimum still gets its ceiling); packets are
//              classified by the socket owner's uid (nftables map uid ->
//              classid setting skb->priority, which HTB uses directly).
//   disk:      a loop-mounted ext4 image of disk_mib MiB at
//              <disk_root>/slivers/<name>, its root owned by the sliver uid.
//              A new size is applied to the existing disk, its files kept:
//              grown online (image, LOOP_SET_CAPACITY, resize2fs on the
//              mounted filesystem) when the guard has CAP_SYS_RESOURCE;
//              shrunk, or grown without it, unmounted (e2fsck -f, resize2fs)
//              while no process of the sliver runs and the files fit; else
//              held (ReconcileStats::disk_resizes says why) and tried again
//              every pass. Each step leaves a whole, mountable filesystem.
//   boot:      the script is handed to /bin/sh as a memfd opened by root, so
//              it runs whatever the modes of run_dir and disk_root; the child
//              joins the sliver's cgroups, enters its directory (chdir before
//              dropping privileges, so a 0700 state directory above it does
//              not matter) and becomes the sliver's uid. A start that fails is
//              not marked booted and is retried on every pass, at most
//              kMaxEnforceAttempts times. Its stdout and stderr go through a
//              pipe to a small logger process (forked with it, in the
//              sliver's cgroups, as the sliver's uid, not dumpable) that
//              appends to <run_dir>/<name>.log and keeps that file at most
//              kBootLogMaxBytes: when a write would pass the bound it keeps
//              the last half, from a line start, and goes on. Both outlive a
//              restart of the guard; the logger ends when the script's last
//              process closes its output.
//
// Read-back (Enforcer::ReadBack): per sliver, what the kernel holds right now,
// read from the same files and the same `tc class show` parse the reconcile
// uses to decide what to write (so the dry-run backend reads its own files
// through the same code), converted back to resource units: cpu_mcores is the
// smallest amount that writes the share (v1) or weight (v2) found (exact in
// v1, a multiple of ~10 mcores in v2), the cap from the CFS quota, the memory
// limit in MiB, the HTB class's rate and ceil as tc shows them, and the disk
// as the size the superblock of the filesystem mounted at the sliver's
// directory records (the statvfs size, smaller by ext4's metadata, beside it).
//
// Every step that fails for a sliver (cgroup, disk, link, boot) is kept in
// Failures() until a pass applies it; the link is read back from the kernel
// after each change, so a class or uid mapping tc/nft did not install is a
// failure of that sliver, not only of the batch. One bad class never stops
// the others: tc runs with -force and nft runs whatever tc said.
//
// Thread safety: an Enforcer is not thread-safe; one thread reconciles.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::nodeguard {

// What one sliver should have on this node.
struct SliverSpec {
  std::string name;            // slice name, [A-Za-z0-9_.-]{1,64}; names cgroup, class, dir
  uint32_t uid = 0;            // the sliver's unprivileged uid (no passwd entry needed)
  uint32_t class_minor = 0;    // HTB class 1:<minor>, 2..0xfffd, unique per sliver
  core::ResourceVector res;    // effective resources
  int64_t cpu_cap_mcores = 0;  // 0 = no cap (spare CPU is lent); else cfs quota
  std::string boot_script;     // run once at sliver start; empty = none

  friend bool operator==(const SliverSpec&, const SliverSpec&) = default;
};

// Errors: invalid_argument naming the field.
core::Status ValidateSliverSpec(const SliverSpec& s);

// cpu.shares for a guaranteed amount of CPU (v1), and the linear v2 weight.
int64_t CpuSharesFor(int64_t cpu_mcores);
int64_t CpuWeightFromShares(int64_t shares);

enum class CgroupMode { kV1, kV2 };

struct CgroupOptions {
  CgroupMode mode = CgroupMode::kV1;
  // v1: the per-controller hierarchies; v2: all three are the unified root.
  std::string cpu_root;           // e.g. /sys/fs/cgroup/cpu
  std::string cpuacct_root;       // e.g. /sys/fs/cgroup/cpuacct (may equal cpu_root)
  std::string memory_root;        // e.g. /sys/fs/cgroup/memory
  std::string prefix = "bourse";  // our subtree under each root
  bool dry_run = false;           // directories and files are created by us

  // Picks v1 when <root>/cpu/cpu.shares exists, else v2 when <root> or
  // <root>/unified lists "cpu" in cgroup.controllers. Errors:
  // failed_precondition when neither offers a cpu controller.
  static core::Result<CgroupOptions> Detect(const std::string& root, const std::string& prefix);
  // The same layout under a scratch directory (dry run).
  static CgroupOptions DryRun(const std::string& scratch, CgroupMode mode);
};

// The cgroup.procs files of sliver `name`, one per hierarchy (v1: cpu,
// cpuacct when mounted apart, memory; v2: one): what a process writes its pid
// into to join the sliver (boot scripts, the login helper).
std::vector<std::string> CgroupProcsFiles(const CgroupOptions& o, const std::string& name);

struct LinkOptions {
  std::string iface;                // the guarded interface; empty = no link enforcement
  std::string netns;                // run tc/nft inside `ip netns exec <netns>` when set
  int64_t link_kbps = 1000000;      // capacity of the root class 1:1
  int64_t default_min_kbps = 1000;  // rate of the default class 1:fffe (everything else)
  std::string dry_run_dir;          // set = write commands and state here, run nothing
};

struct EnforcerOptions {
  CgroupOptions cgroup;
  LinkOptions link;
  std::string disk_root;      // images/ and slivers/ below it
  bool disk_dry_run = false;  // plain directories, size recorded, no loop mount
  std::string run_dir;        // boot markers and boot logs (root-owned)
  bool launch = true;         // start boot scripts
  std::string netns;          // boot scripts enter /run/netns/<netns> when set
};

EnforcerOptions DryRunOptions(const std::string& scratch);

// A change of an existing sliver's disk size this pass (docs/nodeguard.md
// "Disk"): done, or held with the reason (the disk keeps its old size and
// stays usable; the next pass tries again). Growing is done online (the
// image, its loop device, then resize2fs on the mounted filesystem; that
// needs CAP_SYS_RESOURCE); shrinking, and growing without that capability,
// only while no process of the sliver runs, with the filesystem unmounted.
struct DiskResize {
  int64_t from_mib = 0;  // the filesystem's size before
  int64_t to_mib = 0;    // the size asked (SliverSpec res.disk_mib)
  bool done = false;
  bool online = false;  // done while mounted, its processes running
  std::string why;      // not done: the reason, for a person
  friend bool operator==(const DiskResize&, const DiskResize&) = default;
};

struct ReconcileStats {
  int created = 0;    // slivers set up from nothing
  int updated = 0;    // slivers whose settings changed
  int unchanged = 0;  // slivers already as desired
  int removed = 0;    // slivers torn down
  int launched = 0;   // boot scripts started
  bool link_changed = false;
  std::vector<std::string> booted;  // the slivers whose boot script started this pass
  std::map<std::string, DiskResize> disk_resizes;  // disks resized or held this pass
};

// The bound of a sliver's boot log file (<run_dir>/<name>.log).
inline constexpr int64_t kBootLogMaxBytes = 64 * 1024;

// Counters the kernel keeps of a sliver hitting its limits, cumulative since
// its cgroup (HTB class) was made (missing figures are 0): memory.events "oom"
// and "oom_kill" (v2) or memory.oom_control "oom_kill" and memory.failcnt
// (v1), cpu.stat "nr_throttled" (periods its CPU cap throttled it), and the
// packets its HTB class dropped (`tc -s class show`); and the state of its
// disk (statvfs of its mounted filesystem), which the kernel does not count.
struct LimitCounters {
  int64_t mem_oom = 0;           // times memory.max was reached and reclaim failed (v2 "oom")
  int64_t mem_oom_kill = 0;      // processes the OOM killer killed in the sliver
  int64_t cpu_throttled = 0;     // CFS periods throttled by the cap
  int64_t net_dropped = 0;       // packets its HTB class's queue dropped (over its ceiling)
  bool disk_full = false;        // DiskIsFull(disk_avail_bytes, disk_size_bytes)
  int64_t disk_avail_bytes = 0;  // free to the sliver's uid (statvfs f_bavail)
  int64_t disk_size_bytes = 0;   // the filesystem's size (statvfs f_blocks)
  friend bool operator==(const LimitCounters&, const LimitCounters&) = default;
};

// A sliver's disk counts as full when what its uid may still write is under
// 1 MiB or under 1% of the filesystem, whichever is larger (ext4 keeps a few
// blocks it cannot hand out, so exactly 0 is not always reached).
bool DiskIsFull(int64_t avail_bytes, int64_t size_bytes);

// Passes in a row a sliver's enforcement may fail (and a boot script may be
// retried) before the guard refuses the sliver's rcaps (enforcement_failed).
inline constexpr int kMaxEnforceAttempts = 3;

// Why a sliver is not enforced as desired.
struct SliverFailure {
  std::string step;     // cgroup | disk | link | boot
  std::string message;  // the kernel's or the command's error
  int attempts = 0;     // consecutive passes that failed (boot: failed starts)
  friend bool operator==(const SliverFailure&, const SliverFailure&) = default;
};

// Measured consumption of one sliver.
struct SliverUsage {
  int64_t cpu_usec = 0;       // cpuacct.usage / cpu.stat usage_usec
  int64_t net_tx_bytes = 0;   // HTB class "Sent N bytes"
  int64_t disk_used_mib = 0;  // statvfs of its filesystem
};

// What the kernel (or the dry-run scratch root) holds for one sliver, read
// back and converted to resource units (see the file comment). A figure that
// could not be read is nullopt, with the reason in `problems`.
struct KernelReadback {
  std::optional<int64_t> cpu_shares;      // v1 cpu.shares
  std::optional<int64_t> cpu_weight;      // v2 cpu.weight
  std::optional<int64_t> cpu_mcores;      // from the share or weight
  std::optional<int64_t> cpu_cap_mcores;  // from the CFS quota; 0 = no cap
  std::optional<int64_t> mem_mib;         // memory limit; 0 = unlimited
  std::optional<int64_t> net_min_kbps;    // HTB rate (nullopt: no link enforced)
  std::optional<int64_t> net_max_kbps;    // HTB ceil
  std::optional<bool> net_classified;     // the sliver's uid is mapped to its class
  std::optional<int64_t> disk_mib;        // size of its filesystem; 0 = no disk bought
  std::optional<int64_t> disk_fs_mib;     // statvfs size of its mounted filesystem
  std::vector<std::string> problems;      // what could not be read, and why
  bool link = false;                      // the node enforces a link (net_* expected)
  bool disk = false;                      // the node enforces disks (disk_mib expected)

  // {"cpu_mcores":..,"cpu_shares"|"cpu_weight":..,..,"problems":[..]}; nulls
  // for figures not read.
  nlohmann::json ToJson() const;
  friend bool operator==(const KernelReadback&, const KernelReadback&) = default;
};

// Where `kernel` differs from what Reconcile writes for `spec` (empty: it
// holds exactly that). Compares the raw settings (share or weight, quota,
// limit, the rate and ceil as tc shows them, disk size), not the converted
// figures, so a v2 weight's rounding is not a difference.
std::vector<std::string> ReadbackDifferences(const SliverSpec& spec, const KernelReadback& kernel);

class Enforcer {
 public:
  // Errors: failed_precondition when a facility is missing (e.g. tc/nft), internal on I/O.
  static core::Result<std::unique_ptr<Enforcer>> Create(const EnforcerOptions& options);
  virtual ~Enforcer() = default;

  // Makes the node match `desired` (see the file comment). With
  // verify_kernel = false, slivers whose spec equals the last applied one in
  // this process are not re-read from the kernel (the cheap periodic pass).
  // Errors: invalid_argument for a bad spec (nothing applied), internal on
  // kernel errors (other slivers are still applied; the first error returned).
  virtual core::Result<ReconcileStats> Reconcile(const std::vector<SliverSpec>& desired,
                                                 bool verify_kernel = true) = 0;
  // Names of slivers present on the node (cgroups, disks or boot markers).
  virtual core::Result<std::vector<std::string>> ListPresent() = 0;
  // Consumption per present sliver (missing figures are 0).
  virtual std::map<std::string, SliverUsage> Usage() = 0;
  // What the kernel holds for each of `slivers` right now (their name, uid
  // and class_minor locate it; the rest is ignored). Reads only: nothing is
  // written. See KernelReadback.
  virtual std::map<std::string, KernelReadback> ReadBack(
      const std::vector<SliverSpec>& slivers) = 0;
  // The sliver's working directory.
  virtual std::string SliverDir(const std::string& name) const = 0;
  // The file its boot script's output goes to ("" when this backend runs no
  // boot scripts); bounded by kBootLogMaxBytes, removed with the sliver.
  virtual std::string BootLogPath(const std::string& /*name*/) const { return ""; }
  // The limit counters of each of `names` that is present (see LimitCounters);
  // the HTB drops of the slivers of the last Reconcile.
  virtual std::map<std::string, LimitCounters> Limits(const std::vector<std::string>& /*names*/) {
    return {};
  }
  // Pids in the sliver's cgroup.
  virtual std::vector<int> Pids(const std::string& name) = 0;
  // Removes every sliver and the link setup (root qdisc, nft table).
  virtual core::Status TearDownAll() = 0;
  // Slivers of the last Reconcile that are not enforced as desired (see the
  // file comment); empty when everything holds.
  virtual std::map<std::string, SliverFailure> Failures() const = 0;
};

}  // namespace bourse::nodeguard
