#include "nodeguard/enforcement.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/loop.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "nodeguard/internal/exec.h"
#include "nodeguard/internal/kernel_stats.h"

namespace bourse::nodeguard {
namespace {

using core::Result;
using core::Status;
using internal::ReadFileText;
using internal::RunCommand;
using internal::WriteFileText;

constexpr int64_t kMiB = 1024 * 1024;
constexpr int64_t kCfsPeriodUs = 100000;
constexpr uint32_t kDefaultMinor = 0xfffe;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

Status MkdirP(const std::string& path, mode_t mode = 0755) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "";
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    if (!cur.empty() && mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return core::Internal(Errno("mkdir " + cur));
    }
    pos = next + 1;
  }
  return Status::Ok();
}

std::vector<std::string> ListDirs(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_type != DT_DIR) continue;
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Removes a directory tree that holds only plain files (dry-run cgroups).
void RemoveTree(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (d != nullptr) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      std::string p = path + "/" + n;
      if (e->d_type == DT_DIR) {
        RemoveTree(p);
      } else {
        unlink(p.c_str());
      }
    }
    closedir(d);
  }
  rmdir(path.c_str());
}

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
  for (char c : n) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

// The smallest cpu_mcores m with f(m) >= target, f non-decreasing (the
// inverse of the share and weight mappings: f(m) == target whenever some
// amount writes `target`).
int64_t SmallestMcores(int64_t target, int64_t (*f)(int64_t)) {
  int64_t lo = 0, hi = 262144 * 1000 / 1024 + 1;  // f(hi) is at its clamp
  if (f(hi) < target) return hi;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (f(mid) >= target) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}
int64_t WeightFor(int64_t mcores) { return CpuWeightFromShares(CpuSharesFor(mcores)); }
int64_t McoresForShares(int64_t shares) { return SmallestMcores(shares, &CpuSharesFor); }
int64_t McoresForWeight(int64_t weight) { return SmallestMcores(weight, &WeightFor); }

// ---------------------------------------------------------------- cgroups
// The hierarchies a sliver has a cgroup in.
std::vector<std::string> CgroupRoots(const CgroupOptions& o) {
  std::vector<std::string> r{o.cpu_root};
  if (o.mode == CgroupMode::kV1) {
    if (o.cpuacct_root != o.cpu_root) r.push_back(o.cpuacct_root);
    r.push_back(o.memory_root);
  }
  return r;
}

class Cgroups {
 public:
  explicit Cgroups(CgroupOptions o) : o_(std::move(o)) {}

  Status Init() {
    for (const std::string& r : Roots()) BOURSE_RETURN_IF_ERROR(MkdirP(r + "/" + o_.prefix));
    if (o_.mode == CgroupMode::kV2) {
      // Controllers must be enabled down to our subtree.
      BOURSE_RETURN_IF_ERROR(EnableControllers(o_.cpu_root));
      BOURSE_RETURN_IF_ERROR(EnableControllers(o_.cpu_root + "/" + o_.prefix));
    }
    return Status::Ok();
  }

  std::string Dir(const std::string& root, const std::string& name) const {
    return root + "/" + o_.prefix + "/" + name;
  }
  std::vector<std::string> Roots() const { return CgroupRoots(o_); }

  // The files a sliver's settings live in; Ensure writes them and ReadBack
  // reads them, so both follow one layout.
  enum class Setting { kCpuShares, kCpuPeriod, kCpuQuota, kMemLimit, kCpuWeight, kCpuMax, kMemMax };
  std::vector<Setting> Settings() const {
    if (o_.mode == CgroupMode::kV1) {
      return {Setting::kCpuShares, Setting::kCpuPeriod, Setting::kCpuQuota, Setting::kMemLimit};
    }
    return {Setting::kCpuWeight, Setting::kCpuMax, Setting::kMemMax};
  }
  std::string File(Setting k, const std::string& name) const {
    std::string cpu = Dir(o_.cpu_root, name);
    switch (k) {
      case Setting::kCpuShares:
        return cpu + "/cpu.shares";
      case Setting::kCpuPeriod:
        return cpu + "/cpu.cfs_period_us";
      case Setting::kCpuQuota:
        return cpu + "/cpu.cfs_quota_us";
      case Setting::kMemLimit:
        return Dir(o_.memory_root, name) + "/memory.limit_in_bytes";
      case Setting::kCpuWeight:
        return cpu + "/cpu.weight";
      case Setting::kCpuMax:
        return cpu + "/cpu.max";
      case Setting::kMemMax:
        return cpu + "/memory.max";
    }
    return "";
  }
  // The value Ensure writes for setting `k` of `s`.
  std::string Value(Setting k, const SliverSpec& s) const {
    int64_t shares = CpuSharesFor(s.res.cpu_mcores);
    std::string quota = s.cpu_cap_mcores > 0
                            ? std::to_string(s.cpu_cap_mcores * kCfsPeriodUs / 1000)
                            : std::string("-1");
    int64_t mem = s.res.mem_mib * kMiB;
    switch (k) {
      case Setting::kCpuShares:
        return std::to_string(shares);
      case Setting::kCpuPeriod:
        return std::to_string(kCfsPeriodUs);
      case Setting::kCpuQuota:
        return quota;
      case Setting::kMemLimit:
        return mem > 0 ? std::to_string(mem) : "-1";
      case Setting::kCpuWeight:
        return std::to_string(CpuWeightFromShares(shares));
      case Setting::kCpuMax:
        return (s.cpu_cap_mcores > 0 ? quota : std::string("max")) + " " +
               std::to_string(kCfsPeriodUs);
      case Setting::kMemMax:
        return mem > 0 ? std::to_string(mem) : "max";
    }
    return "";
  }

  // Writes each setting whose current value differs. Sets *existed when the
  // cgroup was already there, *changed when a value was written.
  Status Ensure(const SliverSpec& s, bool* existed, bool* changed) {
    *existed = Exists(Dir(o_.cpu_root, s.name));
    fresh_ = !*existed;
    *changed = false;
    for (const std::string& r : Roots()) {
      std::string d = Dir(r, s.name);
      if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST)
        return core::Internal(Errno("mkdir " + d));
    }
    for (Setting k : Settings()) {
      BOURSE_RETURN_IF_ERROR(Set(File(k, s.name), Value(k, s), changed));
    }
    return Status::Ok();
  }

  // The settings of sliver `name` as the kernel holds them, into *k.
  void ReadBack(const std::string& name, KernelReadback* k) const {
    std::map<Setting, std::string> v;
    for (Setting s : Settings()) {
      auto t = ReadSetting(File(s, name));
      if (t.ok()) {
        v[s] = *t;
      } else {
        k->problems.push_back(t.status().message());
      }
    }
    auto num = [&](Setting s) -> std::optional<int64_t> {
      auto it = v.find(s);
      if (it == v.end()) return std::nullopt;
      char* end = nullptr;
      long long n = std::strtoll(it->second.c_str(), &end, 10);
      if (end == it->second.c_str()) {
        k->problems.push_back(File(s, name) + ": not a number: " + it->second.substr(0, 40));
        return std::nullopt;
      }
      return n;
    };
    // A quota and period (us) as mcores; a negative quota is no cap.
    auto cap = [](int64_t quota, int64_t period) -> int64_t {
      return quota < 0 || period <= 0 ? 0 : quota * 1000 / period;
    };
    auto mib = [](int64_t bytes) -> int64_t {
      // Unlimited reads as -1 (written) or a page-rounded LLONG_MAX (v1's default).
      return bytes < 0 || bytes >= (1LL << 62) ? 0 : bytes / kMiB;
    };
    if (o_.mode == CgroupMode::kV1) {
      k->cpu_shares = num(Setting::kCpuShares);
      if (k->cpu_shares) k->cpu_mcores = McoresForShares(*k->cpu_shares);
      auto quota = num(Setting::kCpuQuota), period = num(Setting::kCpuPeriod);
      if (quota && period) k->cpu_cap_mcores = cap(*quota, *period);
      if (auto m = num(Setting::kMemLimit)) k->mem_mib = mib(*m);
      return;
    }
    k->cpu_weight = num(Setting::kCpuWeight);
    if (k->cpu_weight) k->cpu_mcores = McoresForWeight(*k->cpu_weight);
    if (v.count(Setting::kCpuMax)) {
      std::istringstream in(v[Setting::kCpuMax]);
      std::string quota;
      int64_t period = 0;
      if (in >> quota >> period) {
        k->cpu_cap_mcores =
            quota == "max" ? 0 : cap(std::strtoll(quota.c_str(), nullptr, 10), period);
      } else {
        k->problems.push_back(File(Setting::kCpuMax, name) + ": not \"<quota> <period>\"");
      }
    }
    if (v.count(Setting::kMemMax)) {
      if (v[Setting::kMemMax] == "max") {
        k->mem_mib = 0;
      } else if (auto m = num(Setting::kMemMax)) {
        k->mem_mib = mib(*m);
      }
    }
  }

  std::vector<std::string> List() const { return ListDirs(o_.cpu_root + "/" + o_.prefix); }

  std::vector<std::string> ProcsFiles(const std::string& name) const {
    return CgroupProcsFiles(o_, name);
  }

  std::vector<int> Pids(const std::string& name) const {
    std::vector<int> pids;
    auto t = ReadFileText(Dir(o_.cpu_root, name) + "/cgroup.procs");
    if (!t.ok()) return pids;
    std::istringstream in(*t);
    int p;
    while (in >> p) pids.push_back(p);
    return pids;
  }

  // Kills every process of the sliver, then removes its cgroups.
  Status Remove(const std::string& name) {
    if (!o_.dry_run) {
      for (int i = 0; i < 400; ++i) {
        std::vector<int> pids = Pids(name);
        if (pids.empty()) break;
        for (int p : pids) kill(p, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    Status st;
    for (const std::string& r : Roots()) {
      std::string d = Dir(r, name);
      if (o_.dry_run) {
        RemoveTree(d);
        continue;
      }
      int tries = 0;
      while (rmdir(d.c_str()) != 0 && errno != ENOENT) {
        if (errno != EBUSY || ++tries > 400) {
          st = core::Internal(Errno("rmdir " + d));
          break;
        }
        for (int p : Pids(name)) kill(p, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    return st;
  }

  int64_t CpuUsec(const std::string& name) const {
    if (o_.mode == CgroupMode::kV1) {
      auto t = ReadFileText(Dir(o_.cpuacct_root, name) + "/cpuacct.usage");
      if (!t.ok()) return 0;
      return std::strtoll(t->c_str(), nullptr, 10) / 1000;
    }
    auto t = ReadFileText(Dir(o_.cpu_root, name) + "/cpu.stat");
    if (!t.ok()) return 0;
    size_t p = t->find("usage_usec ");
    return p == std::string::npos ? 0 : std::strtoll(t->c_str() + p + 11, nullptr, 10);
  }

  // The kernel's counters of the sliver hitting its limits (LimitCounters).
  LimitCounters Limits(const std::string& name) const {
    LimitCounters c;
    // "<key> <n>" lines of a flat-keyed cgroup file.
    auto field = [](const std::string& path, const char* key) -> int64_t {
      auto t = ReadFileText(path);
      if (!t.ok()) return 0;
      std::istringstream in(*t);
      std::string k;
      int64_t v = 0;
      while (in >> k >> v) {
        if (k == key) return v;
      }
      return 0;
    };
    c.cpu_throttled = field(Dir(o_.cpu_root, name) + "/cpu.stat", "nr_throttled");
    if (o_.mode == CgroupMode::kV1) {
      std::string mem = Dir(o_.memory_root, name);
      c.mem_oom_kill = field(mem + "/memory.oom_control", "oom_kill");
      auto t = ReadFileText(mem + "/memory.failcnt");
      if (t.ok()) c.mem_oom = std::strtoll(t->c_str(), nullptr, 10);
      return c;
    }
    std::string ev = Dir(o_.cpu_root, name) + "/memory.events";
    c.mem_oom = field(ev, "oom");
    c.mem_oom_kill = field(ev, "oom_kill");
    return c;
  }

  const CgroupOptions& options() const { return o_; }

 private:
  Status EnableControllers(const std::string& dir) {
    std::string f = dir + "/cgroup.subtree_control";
    auto cur = ReadFileText(f);
    if (cur.ok() && cur->find("cpu") != std::string::npos &&
        cur->find("memory") != std::string::npos) {
      return Status::Ok();
    }
    if (o_.dry_run) return WriteFileText(f, "cpu memory\n");
    return WriteFileText(f, "+cpu +memory");
  }

  // Same value? v1 reads unlimited as a huge number.
  static bool Same(const std::string& cur, const std::string& want) {
    if (cur == want) return true;
    if (want == "-1") {
      long long v = std::strtoll(cur.c_str(), nullptr, 10);
      return v >= (1LL << 62) || v == -1;
    }
    return false;
  }

  // A setting's current value, as Set compares it and ReadBack reports it.
  static Result<std::string> ReadSetting(const std::string& path) {
    BOURSE_ASSIGN_OR_RETURN(std::string t, ReadFileText(path));
    return Trim(t);
  }

  Status Set(const std::string& path, const std::string& value, bool* changed) {
    if (fresh_ && !o_.dry_run) {
      // A cgroup we just made holds the kernel defaults: write only what differs.
      static const char* kDefaults[][2] = {
          {"/cpu.cfs_period_us", "100000"}, {"/cpu.cfs_quota_us", "-1"},
          {"/memory.limit_in_bytes", "-1"}, {"/cpu.max", "max 100000"},
          {"/memory.max", "max"},           {"/cpu.weight", "100"}};
      for (const auto& d : kDefaults) {
        size_t n = strlen(d[0]);
        if (path.size() >= n && path.compare(path.size() - n, n, d[0]) == 0 && value == d[1]) {
          return Status::Ok();
        }
      }
      *changed = true;
      return WriteFileText(path, value);
    }
    auto cur = ReadSetting(path);
    if (cur.ok() && Same(*cur, value)) return Status::Ok();
    *changed = true;
    return WriteFileText(path, o_.dry_run ? value + "\n" : value);
  }

  CgroupOptions o_;
  bool fresh_ = false;  // the cgroup being ensured was just created
};

// ---------------------------------------------------------------- link
struct LinkClass {
  uint32_t minor = 0;
  uint32_t uid = 0;
  int64_t rate_kbps = 0;
  int64_t ceil_kbps = 0;
  friend bool operator==(const LinkClass&, const LinkClass&) = default;
};

std::string Hex(uint32_t v) {
  char b[16];
  snprintf(b, sizeof b, "%x", v);
  return b;
}

// A rate for tc: tc refuses "rate 0kbit" ("rate" is required), so 0 is
// written as 8bit (one byte a second, tc's smallest), which tc reads back as
// "8bit" and ParseRateKbit as 0: the class stays idempotent.
std::string TcRate(int64_t kbps) { return kbps > 0 ? std::to_string(kbps) + "kbit" : "8bit"; }

// "8Mbit" / "8001Kbit" / "1.5Gbit" -> kbit.
int64_t ParseRateKbit(const std::string& t) {
  size_t i = 0;
  while (i < t.size() && (isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.')) ++i;
  double v = std::strtod(t.substr(0, i).c_str(), nullptr);
  std::string u = t.substr(i);
  double mult = 0.001;
  if (u == "Kbit") mult = 1;
  if (u == "Mbit") mult = 1000;
  if (u == "Gbit") mult = 1000000;
  if (u == "Tbit") mult = 1000000000;
  return static_cast<int64_t>(v * mult + 0.5);
}

// What `tc class show` gives back for a rate written as TcRate(kbps), in kbit:
// tc prints the largest unit that keeps the number exact, and once it is at
// least 1000 of a unit it divides on, dropping the remainder (1234567kbit is
// shown as 1234Mbit). Comparing with this keeps large odd rates idempotent.
int64_t ShownKbit(int64_t kbps) {
  if (kbps <= 0) return 0;  // written as 8bit, shown as 8bit
  static const char* kUnits[] = {"", "K", "M", "G", "T"};
  uint64_t rate = static_cast<uint64_t>(kbps) * 1000;
  int i = 0;
  for (; i < 4; ++i) {
    if (rate < 1000) break;
    if (rate % 1000 != 0 && rate < 1000 * 1000) break;
    rate /= 1000;
  }
  return ParseRateKbit(std::to_string(rate) + kUnits[i] + "bit");
}

class Link {
 public:
  explicit Link(LinkOptions o) : o_(std::move(o)) {
    int64_t link_bps = o_.link_kbps * 125;
    r2q_ = std::max<int64_t>(1, (link_bps + 199999) / 200000);
  }
  bool enabled() const { return !o_.iface.empty(); }
  bool dry() const { return !o_.dry_run_dir.empty(); }

  int64_t Quantum(int64_t rate_kbps) const {
    return std::clamp<int64_t>(rate_kbps * 125 / r2q_, 1600, 200000);
  }

  // Bucket depth: 20 ms at the rate, but at least one 64 KiB GSO packet plus
  // headers, so segmentation offload does not starve a class below its rate.
  static int64_t Burst(int64_t kbps) { return std::max<int64_t>(kbps * 125 / 50, 70000); }

  Result<std::string> Run(std::vector<std::string> argv, const std::string& in = "") {
    if (!o_.netns.empty()) argv.insert(argv.begin(), {"ip", "netns", "exec", o_.netns});
    return RunCommand(argv, in);
  }

  // Observed classes (minor -> class) and uid map; false when there is no
  // HTB root yet.
  Status Observe(bool* has_root, std::map<uint32_t, LinkClass>* classes,
                 std::map<uint32_t, uint32_t>* uidmap, bool* has_table) {
    classes->clear();
    uidmap->clear();
    if (dry()) {
      *has_root = Exists(o_.dry_run_dir + "/classes");
      *has_table = *has_root;
      auto t = ReadFileText(o_.dry_run_dir + "/classes");
      if (t.ok()) {
        std::istringstream in(*t);
        LinkClass c;
        while (in >> c.minor >> c.uid >> c.rate_kbps >> c.ceil_kbps) {
          (*classes)[c.minor] = c;
          if (c.minor != 1 && c.minor != kDefaultMinor) (*uidmap)[c.uid] = c.minor;
        }
      }
      return Status::Ok();
    }
    BOURSE_ASSIGN_OR_RETURN(std::string q, Run({"tc", "qdisc", "show", "dev", o_.iface}));
    *has_root = q.find("qdisc htb 1: root") != std::string::npos;
    if (*has_root) {
      BOURSE_ASSIGN_OR_RETURN(std::string cl, Run({"tc", "class", "show", "dev", o_.iface}));
      std::istringstream in(cl);
      std::string line;
      while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::vector<std::string> tok;
        std::string w;
        while (ls >> w) tok.push_back(w);
        if (tok.size() < 3 || tok[0] != "class" || tok[1] != "htb") continue;
        size_t colon = tok[2].find(':');
        if (colon == std::string::npos || tok[2].substr(0, colon) != "1") continue;
        LinkClass c;
        c.minor = static_cast<uint32_t>(std::strtoul(tok[2].c_str() + colon + 1, nullptr, 16));
        for (size_t i = 3; i + 1 < tok.size(); ++i) {
          if (tok[i] == "rate") c.rate_kbps = ParseRateKbit(tok[i + 1]);
          if (tok[i] == "ceil") c.ceil_kbps = ParseRateKbit(tok[i + 1]);
        }
        (*classes)[c.minor] = c;
      }
    }
    auto m = Run({"nft", "list", "map", "inet", "bourse_guard", "uid_class"});
    *has_table = m.ok();
    if (m.ok()) {
      size_t p = m->find("elements = {");
      if (p != std::string::npos) {
        size_t e = m->find('}', p);
        std::string body = m->substr(p + 12, e - p - 12);
        for (char& ch : body) {
          if (ch == ',' || ch == '\n' || ch == '\t') ch = ' ';
        }
        std::istringstream in(body);
        std::string uid, colon, cls;
        while (in >> uid >> colon >> cls) {
          size_t c = cls.find(':');
          if (c == std::string::npos) continue;
          (*uidmap)[static_cast<uint32_t>(std::strtoul(uid.c_str(), nullptr, 10))] =
              static_cast<uint32_t>(std::strtoul(cls.c_str() + c + 1, nullptr, 16));
        }
      }
    }
    return Status::Ok();
  }

  // Makes the HTB tree and the uid map equal to `want`; one tc -batch (with
  // -force: a class tc refuses does not stop the others) and at most one nft
  // transaction, run whatever tc said. *changed when anything was written.
  // After a change the tree and the map are read back: each wanted class
  // that is not as desired lands in *bad (minor -> why).
  Status Sync(const std::vector<LinkClass>& want, bool* changed,
              std::map<uint32_t, std::string>* bad) {
    *changed = false;
    bad->clear();
    if (!enabled()) return Status::Ok();
    auto all_bad = [&](const Status& why) {
      for (const LinkClass& c : want) (*bad)[c.minor] = why.message();
      return why;
    };
    bool has_root = false, has_table = false;
    std::map<uint32_t, LinkClass> have;
    std::map<uint32_t, uint32_t> have_uids;
    Status seen = Observe(&has_root, &have, &have_uids, &has_table);
    if (!seen.ok()) return all_bad(seen.WithContext("reading the link setup of " + o_.iface));
    std::string dev = " dev " + o_.iface;
    std::string batch;
    if (!has_root) {
      batch += "qdisc replace" + dev + " root handle 1: htb default " + Hex(kDefaultMinor) +
               " r2q " + std::to_string(r2q_) + "\n";
      have.clear();
    }
    auto root_ok = [&](uint32_t minor, int64_t rate, int64_t ceil) {
      auto it = have.find(minor);
      return it != have.end() && it->second.rate_kbps == ShownKbit(rate) &&
             it->second.ceil_kbps == ShownKbit(ceil);
    };
    if (!root_ok(1, o_.link_kbps, o_.link_kbps)) {
      batch += "class replace" + dev + " parent 1: classid 1:1 htb rate " +
               std::to_string(o_.link_kbps) + "kbit ceil " + std::to_string(o_.link_kbps) +
               "kbit burst " + std::to_string(Burst(o_.link_kbps)) + "b cburst " +
               std::to_string(Burst(o_.link_kbps)) + "b\n";
    }
    if (!root_ok(kDefaultMinor, o_.default_min_kbps, o_.link_kbps)) {
      batch += "class replace" + dev + " parent 1:1 classid 1:" + Hex(kDefaultMinor) +
               " htb rate " + std::to_string(o_.default_min_kbps) + "kbit ceil " +
               std::to_string(o_.link_kbps) + "kbit quantum " +
               std::to_string(Quantum(o_.default_min_kbps)) + " burst " +
               std::to_string(Burst(o_.default_min_kbps)) + "b cburst " +
               std::to_string(Burst(o_.link_kbps)) + "b\n";
    }
    std::set<uint32_t> wanted;
    std::map<uint32_t, uint32_t> want_uids;
    for (const LinkClass& c : want) {
      wanted.insert(c.minor);
      want_uids[c.uid] = c.minor;
      if (root_ok(c.minor, c.rate_kbps, c.ceil_kbps)) continue;
      batch += "class replace" + dev + " parent 1:1 classid 1:" + Hex(c.minor) + " htb rate " +
               TcRate(c.rate_kbps) + " ceil " + TcRate(c.ceil_kbps) + " quantum " +
               std::to_string(Quantum(c.rate_kbps)) + " burst " +
               std::to_string(Burst(c.rate_kbps)) + "b cburst " +
               std::to_string(Burst(c.ceil_kbps)) + "b\n";
    }
    for (const auto& [minor, c] : have) {
      if (minor == 1 || minor == kDefaultMinor || wanted.count(minor)) continue;
      batch += "class del" + dev + " classid 1:" + Hex(minor) + "\n";
    }
    std::string nft;
    if (!has_table) {
      nft +=
          "add table inet bourse_guard\ndelete table inet bourse_guard\n"
          "table inet bourse_guard {\n  map uid_class { type uid : classid; }\n"
          "  chain out { type filter hook output priority 0; policy accept; oifname \"" +
          o_.iface + "\" meta priority set meta skuid map @uid_class; }\n}\n";
      have_uids.clear();
    }
    if (want_uids != have_uids) {
      nft += "flush map inet bourse_guard uid_class\n";
      if (!want_uids.empty()) {
        nft += "add element inet bourse_guard uid_class { ";
        bool first = true;
        for (const auto& [uid, minor] : want_uids) {
          if (!first) nft += ", ";
          first = false;
          nft += std::to_string(uid) + " : 1:" + Hex(minor);
        }
        nft += " }\n";
      }
    }
    if (batch.empty() && nft.empty()) return Status::Ok();
    *changed = true;
    if (dry()) {
      Status w = MkdirP(o_.dry_run_dir);
      std::string log;
      auto prev = ReadFileText(o_.dry_run_dir + "/commands.log");
      if (prev.ok()) log = *prev;
      log += "# tc -batch\n" + batch + "# nft -f\n" + nft;
      if (w.ok()) w = WriteFileText(o_.dry_run_dir + "/commands.log", log);
      if (!w.ok()) return all_bad(w);
      // The classes as tc would show them back.
      auto shown = [](int64_t k) { return std::to_string(ShownKbit(k)); };
      std::string st = "1 0 " + shown(o_.link_kbps) + " " + shown(o_.link_kbps) + "\n" +
                       std::to_string(kDefaultMinor) + " 0 " + shown(o_.default_min_kbps) + " " +
                       shown(o_.link_kbps) + "\n";
      for (const LinkClass& c : want) {
        st += std::to_string(c.minor) + " " + std::to_string(c.uid) + " " + shown(c.rate_kbps) +
              " " + shown(c.ceil_kbps) + "\n";
      }
      w = WriteFileText(o_.dry_run_dir + "/classes", st);
      if (!w.ok()) return all_bad(w);
      return Verify(want, Status::Ok(), bad);
    }
    Status first;
    if (!batch.empty()) {
      auto r = Run({"tc", "-force", "-batch", "-"}, batch);
      if (!r.ok()) first = r.status().WithContext("tc -batch on " + o_.iface);
    }
    if (!nft.empty()) {
      auto r = Run({"nft", "-f", "-"}, nft);
      if (!r.ok() && first.ok()) first = r.status().WithContext("nft");
    }
    return Verify(want, first, bad);
  }

  // Reads the link back and names every wanted class that is not installed
  // with its rate and ceil, or whose uid is not mapped to it. `cause` (the
  // batch's error, if any) is returned, else the first mismatch.
  Status Verify(const std::vector<LinkClass>& want, Status cause,
                std::map<uint32_t, std::string>* bad) {
    bool has_root = false, has_table = false;
    std::map<uint32_t, LinkClass> have;
    std::map<uint32_t, uint32_t> uids;
    Status seen = Observe(&has_root, &have, &uids, &has_table);
    if (!seen.ok()) {
      for (const LinkClass& c : want) (*bad)[c.minor] = seen.message();
      return cause.ok() ? seen : cause;
    }
    std::string why = cause.ok() ? "" : " (" + cause.message() + ")";
    for (const LinkClass& c : want) {
      auto it = have.find(c.minor);
      std::string cls = "HTB class 1:" + Hex(c.minor);
      if (!has_root || it == have.end()) {
        (*bad)[c.minor] = cls + " is not installed on " + o_.iface + why;
      } else if (it->second.rate_kbps != ShownKbit(c.rate_kbps) ||
                 it->second.ceil_kbps != ShownKbit(c.ceil_kbps)) {
        (*bad)[c.minor] = cls + " has rate " + std::to_string(it->second.rate_kbps) + " ceil " +
                          std::to_string(it->second.ceil_kbps) + " kbit, not " +
                          std::to_string(c.rate_kbps) + " / " + std::to_string(c.ceil_kbps) + why;
      } else if (!has_table || !uids.count(c.uid) || uids[c.uid] != c.minor) {
        (*bad)[c.minor] = "uid " + std::to_string(c.uid) + " is not classified into " + cls + why;
      }
    }
    if (!cause.ok()) return cause;
    if (!bad->empty()) return core::Internal("link " + o_.iface + ": " + bad->begin()->second);
    return Status::Ok();
  }

  // Bytes sent and packets dropped per class minor.
  std::map<uint32_t, internal::HtbClassStats> ClassStats() {
    if (!enabled() || dry()) return {};
    auto t = Run({"tc", "-s", "class", "show", "dev", o_.iface});
    if (!t.ok()) return {};
    return internal::ParseHtbClassStats(*t);
  }

  Status TearDown() {
    if (!enabled()) return Status::Ok();
    if (dry()) {
      unlink((o_.dry_run_dir + "/classes").c_str());
      return Status::Ok();
    }
    Run({"tc", "qdisc", "del", "dev", o_.iface, "root"}).status().IgnoreError();
    Run({"nft", "delete", "table", "inet", "bourse_guard"}).status().IgnoreError();
    return Status::Ok();
  }

 private:
  LinkOptions o_;
  int64_t r2q_;
};

// ---------------------------------------------------------------- disk
struct MountInfo {
  std::string dev;     // "major:minor"
  std::string source;  // e.g. /dev/loop3
};

// Mount point -> what is mounted there, from mountinfo (the last mount on a
// point is the one seen).
std::map<std::string, MountInfo> Mounts() {
  std::map<std::string, MountInfo> out;
  auto t = ReadFileText("/proc/self/mountinfo");
  if (!t.ok()) return out;
  std::istringstream in(*t);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mp, w, fstype, source;
    ls >> id >> parent >> dev >> root >> mp;
    while (ls >> w && w != "-") {
    }
    ls >> fstype >> source;
    out[mp] = {dev, source};
  }
  return out;
}

std::set<std::string> MountPoints() {
  std::set<std::string> out;
  for (const auto& [mp, m] : Mounts()) out.insert(mp);
  return out;
}

// The size the ext4 superblock of `path` (an image, or the loop device of a
// mounted one: its superblock buffer is the one the kernel updates) records.
Result<int64_t> Ext4Size(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return core::Internal(Errno("open " + path));
  char sb[internal::kExt4SuperblockBytes];
  ssize_t r = pread(fd, sb, sizeof sb, 1024);
  int e = errno;
  close(fd);
  if (r != static_cast<ssize_t>(sizeof sb)) {
    return core::Internal(path + ": reading its superblock: " + (r < 0 ? strerror(e) : "short"));
  }
  std::optional<int64_t> b = internal::Ext4SizeBytes({sb, sizeof sb});
  if (!b) return core::Internal(path + ": no ext4 superblock");
  return *b;
}

// Growing a mounted ext4 (its resize ioctl) needs CAP_SYS_RESOURCE.
bool HasCapSysResource() {
  auto t = ReadFileText("/proc/self/status");
  if (!t.ok()) return false;
  size_t p = t->find("CapEff:");
  if (p == std::string::npos) return false;
  uint64_t caps = std::strtoull(t->c_str() + p + 7, nullptr, 16);
  return (caps >> 24) & 1;  // CAP_SYS_RESOURCE
}

// The last non-empty line of a command's error ("resize2fs exited 1: ...").
std::string LastLine(const std::string& s) {
  std::string t = Trim(s);
  size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

std::string Mib(int64_t bytes) { return std::to_string(bytes / kMiB) + " MiB"; }

class Disk {
 public:
  Disk(std::string root, bool dry) : root_(std::move(root)), dry_(dry) {}
  Status Init() {
    if (root_.empty()) return Status::Ok();
    online_resize_ = !dry_ && HasCapSysResource();
    BOURSE_RETURN_IF_ERROR(MkdirP(root_, 0755));
    BOURSE_RETURN_IF_ERROR(MkdirP(root_ + "/images", 0700));
    return MkdirP(root_ + "/slivers", 0755);
  }
  bool enabled() const { return !root_.empty(); }
  std::string Path(const std::string& name) const { return root_ + "/slivers/" + name; }
  std::string Image(const std::string& name) const { return root_ + "/images/" + name + ".img"; }

  // Makes the sliver's disk exist, mounted, at the size asked. A disk of
  // another size is resized (docs/nodeguard.md "Disk"): into *resize goes
  // what was done or why it is held; a held resize is no error (the disk
  // keeps its size and its files). `idle` says whether no process of the
  // sliver runs (asked before unmounting). Errors: internal when the disk
  // cannot be made or mounted.
  Status Ensure(const SliverSpec& s, const std::function<bool()>& idle, bool* changed,
                std::optional<DiskResize>* resize) {
    if (!enabled()) return Status::Ok();
    std::string mp = Path(s.name);
    bool had_dir = Exists(mp);
    if (!had_dir && mkdir(mp.c_str(), 0755) != 0 && errno != EEXIST) {
      return core::Internal(Errno("mkdir " + mp));
    }
    if (dry_) return EnsureDry(s, had_dir, changed, resize);
    if (!mounts_valid_) {
      mounts_ = Mounts();
      mounts_valid_ = true;
    }
    auto m = mounts_.find(mp);
    if (s.res.disk_mib <= 0) {
      if (m != mounts_.end()) {
        // The disk was bought away: its files are kept until the sliver goes.
        auto have = Ext4Size(m->second.source);
        *resize = DiskResize{.from_mib = have.ok() ? *have / kMiB : 0,
                             .to_mib = 0,
                             .why =
                                 "a sliver's disk is not removed while the sliver lives "
                                 "(its files would be lost); it goes with the sliver"};
      } else if (!had_dir) {
        // Nothing bought: a read-only empty directory.
        chmod(mp.c_str(), 0555);
        *changed = true;
      }
      return Status::Ok();
    }
    if (m == mounts_.end()) {
      *changed = true;
      return MountImage(s, resize);
    }
    return Resize(s, m->second, idle, changed, resize);
  }

  Status Remove(const std::string& name) {
    if (!enabled()) return Status::Ok();
    std::string mp = Path(name);
    if (!dry_ && MountPoints().count(mp)) {
      int tries = 0;
      while (umount2(mp.c_str(), 0) != 0) {
        if (errno != EBUSY || ++tries > 100) {
          umount2(mp.c_str(), MNT_DETACH);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      mounts_.erase(mp);
    }
    if (rmdir(mp.c_str()) != 0 && errno != ENOENT) {
      if (dry_) {
        RemoveTree(mp);
      } else {
        return core::Internal(Errno("rmdir " + mp));
      }
    }
    unlink(Image(name).c_str());
    refused_.erase(name);
    return Status::Ok();
  }

  std::vector<std::string> List() const {
    return enabled() ? ListDirs(root_ + "/slivers") : std::vector<std::string>{};
  }

  int64_t UsedMib(const std::string& name) const {
    if (!enabled()) return 0;
    struct statvfs v;
    if (dry_ || statvfs(Path(name).c_str(), &v) != 0) return 0;
    int64_t used = static_cast<int64_t>(v.f_blocks - v.f_bfree) * static_cast<int64_t>(v.f_frsize);
    return (used + kMiB / 2) / kMiB;
  }

  // The free space of the sliver's mounted disk into *c (nothing for a
  // sliver without one, or in a dry run).
  void Fullness(const std::string& name, const std::set<std::string>& mounted,
                LimitCounters* c) const {
    if (!enabled() || dry_ || !mounted.count(Path(name))) return;
    struct statvfs v;
    if (statvfs(Path(name).c_str(), &v) != 0) return;
    c->disk_avail_bytes = static_cast<int64_t>(v.f_bavail) * static_cast<int64_t>(v.f_frsize);
    c->disk_size_bytes = static_cast<int64_t>(v.f_blocks) * static_cast<int64_t>(v.f_frsize);
    c->disk_full = DiskIsFull(c->disk_avail_bytes, c->disk_size_bytes);
  }

  // The size of the sliver's disk into *k: the recorded size (dry run), or
  // the size the superblock of the filesystem mounted at its directory
  // records and the statvfs size of that filesystem; 0 when nothing is
  // mounted (no disk bought).
  void ReadBack(const std::string& name, KernelReadback* k) const {
    if (!enabled()) return;
    std::string mp = Path(name);
    if (!Exists(mp)) {
      k->problems.push_back(mp + ": no such directory");
      return;
    }
    if (dry_) {
      auto t = ReadFileText(Image(name));
      k->disk_mib = t.ok() ? std::strtoll(t->c_str(), nullptr, 10) : 0;
      return;
    }
    auto mounts = Mounts();
    auto it = mounts.find(mp);
    if (it == mounts.end()) {
      k->disk_mib = 0;
      return;
    }
    auto size = Ext4Size(it->second.source);
    if (size.ok()) {
      k->disk_mib = *size / kMiB;
    } else {
      k->problems.push_back("size of the filesystem mounted at " + mp + ": " +
                            size.status().message());
    }
    struct statvfs v;
    if (statvfs(mp.c_str(), &v) == 0) {
      k->disk_fs_mib = static_cast<int64_t>(v.f_blocks) * static_cast<int64_t>(v.f_frsize) / kMiB;
    } else {
      k->problems.push_back(Errno("statvfs " + mp));
    }
  }

  void InvalidateMounts() { mounts_valid_ = false; }

 private:
  Status EnsureDry(const SliverSpec& s, bool had_dir, bool* changed,
                   std::optional<DiskResize>* resize) {
    std::string mp = Path(s.name);
    if (s.res.disk_mib <= 0) {
      if (!had_dir) {
        chmod(mp.c_str(), 0555);
        *changed = true;
      }
      return Status::Ok();
    }
    std::string sz = std::to_string(s.res.disk_mib);
    auto cur = ReadFileText(Image(s.name));
    if (cur.ok() && *cur == sz) return Status::Ok();
    *changed = true;
    int64_t from = cur.ok() ? std::strtoll(cur->c_str(), nullptr, 10) : 0;
    if (from > 0) *resize = DiskResize{.from_mib = from, .to_mib = s.res.disk_mib, .done = true};
    BOURSE_RETURN_IF_ERROR(WriteFileText(Image(s.name), sz));
    // Best effort: the dry run must work without privileges.
    if (chown(mp.c_str(), s.uid, s.uid) != 0 && errno != EPERM) {
      return core::Internal(Errno("chown " + mp));
    }
    return Status::Ok();
  }

  // Creates the image if there is none, brings an existing one to the size
  // asked while it is not mounted (a reboot, a restart, an offline resize),
  // and mounts it.
  Status MountImage(const SliverSpec& s, std::optional<DiskResize>* resize) {
    std::string mp = Path(s.name);
    std::string img = Image(s.name);
    int64_t want = s.res.disk_mib * kMiB;
    if (!Exists(img)) {
      int fd = open(img.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
      if (fd < 0) return core::Internal(Errno("create " + img));
      int rc = ftruncate(fd, want);
      close(fd);
      if (rc != 0) return core::Internal(Errno("truncate " + img));
      std::string owner = std::to_string(s.uid) + ":" + std::to_string(s.uid);
      auto r = RunCommand({"mkfs.ext4", "-q", "-F", "-m", "0", "-E",
                           "root_owner=" + owner + ",lazy_itable_init=1,nodiscard", img});
      if (!r.ok()) {
        unlink(img.c_str());
        return r.status();
      }
    } else if (auto have = Ext4Size(img); have.ok() && *have != want) {
      bool refused = false;
      *resize = OfflineResize(s.name, img, *have, want, &refused);
    }
    auto r = RunCommand({"mount", "-t", "ext4", "-o", "loop,nosuid,nodev", img, mp});
    if (!r.ok()) return r.status();
    // Known mounted for the rest of the pass (its device is read next pass):
    // setting up many slivers reads mountinfo once, not once per sliver.
    mounts_[mp] = MountInfo{};
    return Status::Ok();
  }

  // Resizes the filesystem in the image `img` (not mounted) from `have` to
  // `want` bytes: e2fsck -f, then for a grow the image first and resize2fs
  // after, for a shrink resize2fs first and the image cut only to what the
  // superblock then records. A step that fails stops there: the image still
  // holds a whole filesystem, of the old size or the new.
  // *refused: resize2fs would not shrink it (the files do not fit).
  DiskResize OfflineResize(const std::string& name, const std::string& img, int64_t have,
                           int64_t want, bool* refused) {
    *refused = false;
    DiskResize r{.from_mib = have / kMiB, .to_mib = want / kMiB};
    auto fsck = RunCommand({"e2fsck", "-f", "-p", img});
    // e2fsck exits 1 when it corrected errors: the filesystem is fine now.
    if (!fsck.ok() && fsck.status().message().rfind("e2fsck exited 1:", 0) != 0) {
      r.why = "e2fsck found errors it could not correct: " + LastLine(fsck.status().message());
      return r;
    }
    if (want > have) {
      struct stat st;
      if (stat(img.c_str(), &st) != 0 || (st.st_size < want && truncate(img.c_str(), want) != 0)) {
        r.why = Errno("growing " + img);
        return r;
      }
    }
    auto rs = RunCommand({"resize2fs", img, std::to_string(want / kMiB) + "M"});
    if (!rs.ok()) {
      std::string m = LastLine(rs.status().message());
      r.why = m.find("smaller than minimum") != std::string::npos
                  ? "its files and ext4's metadata do not fit in " + Mib(want) + " (" + m + ")"
                  : m;
      *refused = want < have;
      return r;
    }
    auto now = Ext4Size(img);
    if (!now.ok() || *now != want) {
      r.why = now.ok() ? "resize2fs left " + Mib(*now) : now.status().message();
      return r;
    }
    if (want < have && truncate(img.c_str(), want) != 0) {
      // The filesystem is already the new size; only the image keeps its tail.
      r.why = Errno("cutting " + img);
      return r;
    }
    refused_.erase(name);
    r.done = true;
    return r;
  }

  // Brings the mounted disk of `s` to the size asked: online when growing
  // with CAP_SYS_RESOURCE, else (or when that fails) unmounted while no
  // process of the sliver runs.
  Status Resize(const SliverSpec& s, const MountInfo& m, const std::function<bool()>& idle,
                bool* changed, std::optional<DiskResize>* resize) {
    std::string mp = Path(s.name);
    int64_t want = s.res.disk_mib * kMiB;
    auto have = Ext4Size(m.source);
    if (!have.ok()) {
      *resize = DiskResize{.to_mib = s.res.disk_mib, .why = have.status().message()};
      return Status::Ok();
    }
    if (*have == want) return Status::Ok();
    DiskResize r{.from_mib = *have / kMiB, .to_mib = s.res.disk_mib};
    if (want > *have && online_resize_) {
      DiskResize g = GrowOnline(s, m, *have, want);
      if (g.done) *changed = true;
      // An online grow that failed is done unmounted when the sliver is idle.
      if (g.done || !idle()) {
        *resize = g;
        return Status::Ok();
      }
    }
    int64_t used = UsedBytes(s.name);
    if (want < *have) {
      if (used > want) {
        r.why = "its files use " + Mib(used) + ", more than the " + Mib(want) + " asked";
        *resize = r;
        return Status::Ok();
      }
      auto f = refused_.find(s.name);
      if (f != refused_.end() && f->second.want == want && f->second.used == used) {
        r.why = f->second.why;  // nothing changed since resize2fs refused
        *resize = r;
        return Status::Ok();
      }
    }
    if (!idle()) {
      r.why = want < *have ? "ext4 shrinks only unmounted, and processes of the sliver run"
                           : "growing a mounted ext4 needs CAP_SYS_RESOURCE, which the guard "
                             "lacks, and processes of the sliver run";
      *resize = r;
      return Status::Ok();
    }
    if (umount2(mp.c_str(), 0) != 0) {
      r.why = errno == EBUSY ? "the disk is in use by a process outside the sliver"
                             : Errno("unmounting " + mp);
      *resize = r;
      return Status::Ok();
    }
    *changed = true;
    const std::string dev = m.source;  // `m` may be mounts_[mp], erased next
    mounts_.erase(mp);
    bool refused = false;
    if (!LoopReleased(dev, Image(s.name))) {
      r.why = dev + " still holds " + Image(s.name) + " 5 s after the unmount";
      *resize = r;
    } else {
      *resize = OfflineResize(s.name, Image(s.name), *have, want, &refused);
    }
    if (refused) refused_[s.name] = {want, used, resize->value().why};
    auto mt = RunCommand({"mount", "-t", "ext4", "-o", "loop,nosuid,nodev", Image(s.name), mp});
    if (!mt.ok()) return mt.status();
    mounts_[mp] = MountInfo{};
    return Status::Ok();
  }

  // True once the loop device `dev` (e.g. /dev/loop3), unmounted, no longer
  // holds the image `img`; waits up to 5 s. The kernel detaches an
  // autoclear loop device after its last close, possibly later than the
  // umount returns, and e2fsck or resize2fs on an image a loop device still
  // holds takes it for mounted ("unable to set superblock flags", "Please
  // run e2fsck -f first").
  static bool LoopReleased(const std::string& dev, const std::string& img) {
    if (dev.rfind("/dev/", 0) != 0) return true;
    const std::string file = "/sys/block/" + dev.substr(5) + "/loop/backing_file";
    char* real = realpath(img.c_str(), nullptr);
    const std::string want = real ? real : img;
    free(real);
    for (int i = 0; i < 100; ++i) {
      auto backing = ReadFileText(file);
      if (!backing.ok() || Trim(*backing) != want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Online: the image, its loop device's capacity, then resize2fs on the
  // mounted filesystem. Each step leaves a usable disk: a bigger image or
  // device under the old filesystem until resize2fs grows it.
  DiskResize GrowOnline(const SliverSpec& s, const MountInfo& m, int64_t have, int64_t want) {
    DiskResize r{.from_mib = have / kMiB, .to_mib = s.res.disk_mib, .online = true};
    std::string img = Image(s.name);
    std::string dev = m.source;
    std::string loop = dev.rfind("/dev/", 0) == 0 ? dev.substr(5) : "";
    auto backing = ReadFileText("/sys/block/" + loop + "/loop/backing_file");
    char* real = realpath(img.c_str(), nullptr);
    bool ours = backing.ok() && real != nullptr && Trim(*backing) == real;
    free(real);
    if (loop.empty() || !ours) {
      r.why = dev + " mounted at " + Path(s.name) + " is not a loop device of " + img;
      return r;
    }
    struct stat st;
    if (stat(img.c_str(), &st) != 0 || (st.st_size < want && truncate(img.c_str(), want) != 0)) {
      r.why = Errno("growing " + img);
      return r;
    }
    int fd = open(dev.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ioctl(fd, LOOP_SET_CAPACITY, 0) != 0) {
      r.why = Errno("LOOP_SET_CAPACITY on " + dev);
      if (fd >= 0) close(fd);
      return r;
    }
    close(fd);
    auto rs = RunCommand({"resize2fs", dev, std::to_string(s.res.disk_mib) + "M"});
    if (!rs.ok()) {
      r.why = LastLine(rs.status().message());
      return r;
    }
    auto now = Ext4Size(dev);
    r.done = now.ok() && *now == want;
    if (!r.done) r.why = now.ok() ? "resize2fs left " + Mib(*now) : now.status().message();
    return r;
  }

  // Bytes the files on the sliver's mounted disk take (statvfs).
  int64_t UsedBytes(const std::string& name) const {
    struct statvfs v;
    if (statvfs(Path(name).c_str(), &v) != 0) return 0;
    return static_cast<int64_t>(v.f_blocks - v.f_bfree) * static_cast<int64_t>(v.f_frsize);
  }

  // A shrink resize2fs refused, not tried again while the size asked and
  // the bytes used stay the same.
  struct Refused {
    int64_t want = 0;
    int64_t used = 0;
    std::string why;
  };

  std::string root_;
  bool dry_;
  bool online_resize_ = false;  // the guard may grow a mounted ext4 (CAP_SYS_RESOURCE)
  std::map<std::string, MountInfo> mounts_;
  bool mounts_valid_ = false;
  std::map<std::string, Refused> refused_;
};

// ---------------------------------------------------------------- boot log
// The boot script's logger (EnforcerImpl::Launch) runs these in a child of a
// fork of the guard, so they make system calls only: no allocation, no locks.

// Moves the last `keep` bytes of the file `fd` of `size` bytes, from the
// first line start among them, to its beginning; returns the new size.
off_t CompactLogTail(int fd, off_t size, off_t keep, char* buf, size_t cap) {
  off_t src = size > keep ? size - keep : 0;
  ssize_t r = pread(fd, buf, cap, src);
  if (r > 0) {
    const void* nl = memchr(buf, '\n', static_cast<size_t>(r));
    if (nl != nullptr) src += static_cast<const char*>(nl) - buf + 1;
  }
  off_t dst = 0;
  while (src < size) {
    r = pread(fd, buf, std::min<off_t>(static_cast<off_t>(cap), size - src), src);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (ssize_t done = 0; done < r;) {
      ssize_t w = pwrite(fd, buf + done, static_cast<size_t>(r - done), dst + done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return size;
      done += w;
    }
    dst += r;
    src += r;
  }
  if (ftruncate(fd, dst) != 0) return size;
  return dst;
}

// Appends what `in` carries to the file `fd` until end of file, keeping the
// file at most `max` bytes (compacted to its last half when a write would
// pass it).
void KeepBoundedLog(int in, int fd, int64_t max) {
  char buf[8192];
  char copy[8192];
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0) size = 0;
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (size + n > max) size = CompactLogTail(fd, size, max / 2, copy, sizeof copy);
    for (ssize_t done = 0; done < n;) {
      ssize_t w = pwrite(fd, buf + done, static_cast<size_t>(n - done), size);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;  // a full disk: this output is lost, the next may fit
      done += w;
      size += w;
    }
  }
}

// ---------------------------------------------------------------- enforcer
class EnforcerImpl final : public Enforcer {
 public:
  explicit EnforcerImpl(const EnforcerOptions& o)
      : o_(o), cg_(o.cgroup), link_(o.link), disk_(o.disk_root, o.disk_dry_run) {}

  Status Init() {
    BOURSE_RETURN_IF_ERROR(cg_.Init());
    BOURSE_RETURN_IF_ERROR(disk_.Init());
    if (!o_.run_dir.empty()) BOURSE_RETURN_IF_ERROR(MkdirP(o_.run_dir, 0755));
    return Status::Ok();
  }

  Result<ReconcileStats> Reconcile(const std::vector<SliverSpec>& desired,
                                   bool verify_kernel) override {
    std::set<std::string> names;
    std::set<uint32_t> uids, minors;
    for (const SliverSpec& s : desired) {
      Status v = ValidateSliverSpec(s);
      if (!v.ok()) return v;
      if (!names.insert(s.name).second) return core::InvalidArgument("duplicate sliver " + s.name);
      if (!uids.insert(s.uid).second) {
        return core::InvalidArgument("sliver " + s.name + ": uid " + std::to_string(s.uid) +
                                     " used twice");
      }
      if (!minors.insert(s.class_minor).second) {
        return core::InvalidArgument("sliver " + s.name + ": class_minor used twice");
      }
    }
    ReconcileStats st;
    Status first;
    auto note = [&](const Status& s) {
      if (!s.ok() && first.ok()) first = s;
    };
    // This pass's failures: sliver -> (step, message).
    std::map<std::string, std::pair<std::string, std::string>> failed;
    auto fail = [&](const std::string& name, const std::string& step, const Status& s) {
      failed.try_emplace(name, step, s.message());
    };
    BOURSE_ASSIGN_OR_RETURN(std::vector<std::string> present_list, ListPresent());
    std::set<std::string> present(present_list.begin(), present_list.end());
    disk_.InvalidateMounts();
    std::vector<LinkClass> classes;
    minor_of_.clear();
    for (const SliverSpec& s : desired) {
      minor_of_[s.name] = s.class_minor;
      classes.push_back({s.class_minor, s.uid, s.res.net_min_kbps, s.res.net_max_kbps});
      auto it = applied_.find(s.name);
      if (!verify_kernel && it != applied_.end() && it->second == s && present.count(s.name)) {
        ++st.unchanged;
        continue;
      }
      bool existed = false, changed = false;
      Status a = cg_.Ensure(s, &existed, &changed);
      const char* step = "cgroup";
      std::optional<DiskResize> resize;
      if (a.ok()) {
        step = "disk";
        a = disk_.Ensure(
            s, [&] { return cg_.Pids(s.name).empty(); }, &changed, &resize);
      }
      // A held resize is no failure (the disk keeps its size and files), but
      // the sliver is not as desired: the next pass looks at it again.
      bool settled = !resize || resize->done;
      if (resize) st.disk_resizes[s.name] = *resize;
      if (!a.ok()) {
        note(a.WithContext("sliver " + s.name));
        fail(s.name, step, a);
        applied_.erase(s.name);
        continue;
      }
      if (!existed) {
        ++st.created;
      } else if (changed) {
        ++st.updated;
      } else {
        ++st.unchanged;
      }
      if (o_.launch && !s.boot_script.empty() && !o_.run_dir.empty() && !BootedThisBoot(s.name)) {
        // A start that failed is retried on the next passes, a bounded number
        // of times; until it succeeds the sliver is not booted (Failures()).
        BootTry& bt = boot_tries_[s.name];
        if (bt.attempts < kMaxEnforceAttempts) {
          Status l = Launch(s);
          if (l.ok()) {
            ++st.launched;
            st.booted.push_back(s.name);
            boot_tries_.erase(s.name);
          } else {
            ++bt.attempts;
            bt.message = l.message();
            note(l.WithContext("boot script of " + s.name));
          }
        }
        auto b = boot_tries_.find(s.name);
        if (b != boot_tries_.end()) {
          std::string m = "boot script did not start: " + b->second.message;
          if (b->second.attempts >= kMaxEnforceAttempts) {
            m += " (gave up after " + std::to_string(b->second.attempts) + " starts)";
          }
          fail(s.name, "boot", core::Internal(m));
          applied_.erase(s.name);  // not as desired: the next pass looks again
          continue;
        }
      }
      if (settled) {
        applied_[s.name] = s;
      } else {
        applied_.erase(s.name);
      }
    }
    bool link_changed = false;
    if (verify_kernel || classes != applied_link_ || !link_bad_.empty()) {
      std::map<uint32_t, std::string> bad;
      Status l = link_.Sync(classes, &link_changed, &bad);
      link_bad_.clear();
      for (const SliverSpec& s : desired) {
        auto b = bad.find(s.class_minor);
        if (b != bad.end()) link_bad_[s.name] = b->second;
      }
      if (l.ok() && bad.empty()) {
        applied_link_ = classes;
      } else {
        applied_link_.clear();
        note(l.ok() ? core::Internal("link: " + bad.begin()->second) : l);
      }
    }
    for (const auto& [name, why] : link_bad_) fail(name, "link", core::Internal(why));
    st.link_changed = link_changed;
    for (const std::string& n : present) {
      if (names.count(n)) continue;
      note(Remove(n));
      ++st.removed;
    }
    // Attempts count the passes in a row that failed (boot: the failed starts).
    std::map<std::string, SliverFailure> now;
    for (const auto& [name, f] : failed) {
      SliverFailure x{f.first, f.second, 1};
      auto prev = failures_.find(name);
      if (prev != failures_.end()) x.attempts = prev->second.attempts + 1;
      if (f.first == "boot") x.attempts = boot_tries_[name].attempts;
      now[name] = std::move(x);
    }
    failures_ = std::move(now);
    if (first.ok() && !failures_.empty()) {
      const auto& [name, f] = *failures_.begin();
      first = core::Internal("sliver " + name + ": " + f.step + ": " + f.message);
    }
    for (auto b = boot_tries_.begin(); b != boot_tries_.end();) {
      b = names.count(b->first) ? std::next(b) : boot_tries_.erase(b);
    }
    if (!first.ok()) return first;
    return st;
  }

  std::map<std::string, SliverFailure> Failures() const override { return failures_; }

  Result<std::vector<std::string>> ListPresent() override {
    std::set<std::string> all;
    for (const auto& n : cg_.List()) all.insert(n);
    for (const auto& n : disk_.List()) all.insert(n);
    if (!o_.run_dir.empty()) {
      DIR* d = opendir(o_.run_dir.c_str());
      if (d != nullptr) {
        while (dirent* e = readdir(d)) {
          std::string f = e->d_name;
          const std::string suf = ".booted";
          if (f.size() > suf.size() && f.compare(f.size() - suf.size(), suf.size(), suf) == 0) {
            all.insert(f.substr(0, f.size() - suf.size()));
          }
        }
        closedir(d);
      }
    }
    return std::vector<std::string>(all.begin(), all.end());
  }

  std::map<std::string, SliverUsage> Usage() override {
    std::map<std::string, SliverUsage> out;
    std::map<uint32_t, internal::HtbClassStats> classes = link_.ClassStats();
    auto present = ListPresent();
    if (!present.ok()) return out;
    for (const std::string& n : *present) {
      SliverUsage u;
      u.cpu_usec = cg_.CpuUsec(n);
      u.disk_used_mib = disk_.UsedMib(n);
      auto it = applied_.find(n);
      if (it != applied_.end()) {
        auto b = classes.find(it->second.class_minor);
        if (b != classes.end()) u.net_tx_bytes = b->second.sent_bytes;
      }
      out[n] = u;
    }
    return out;
  }

  std::map<std::string, KernelReadback> ReadBack(const std::vector<SliverSpec>& slivers) override {
    std::map<std::string, KernelReadback> out;
    bool has_root = false, has_table = false;
    std::map<uint32_t, LinkClass> classes;
    std::map<uint32_t, uint32_t> uids;
    Status link = Status::Ok();
    if (link_.enabled() && !slivers.empty()) {
      link = link_.Observe(&has_root, &classes, &uids, &has_table);
    }
    for (const SliverSpec& s : slivers) {
      KernelReadback& k = out[s.name];
      k.link = link_.enabled();
      k.disk = disk_.enabled();
      if (!ValidName(s.name)) {
        k.problems.push_back("sliver name \"" + s.name + "\" is not valid");
        continue;
      }
      cg_.ReadBack(s.name, &k);
      disk_.ReadBack(s.name, &k);
      if (!link_.enabled()) continue;
      std::string cls = "HTB class 1:" + Hex(s.class_minor);
      auto c = classes.find(s.class_minor);
      if (!link.ok()) {
        k.problems.push_back("link: " + link.message());
      } else if (!has_root || c == classes.end()) {
        k.problems.push_back(cls + " is not installed");
      } else {
        k.net_min_kbps = c->second.rate_kbps;
        k.net_max_kbps = c->second.ceil_kbps;
        auto u = uids.find(s.uid);
        k.net_classified = has_table && u != uids.end() && u->second == s.class_minor;
      }
    }
    return out;
  }

  std::string SliverDir(const std::string& name) const override { return disk_.Path(name); }
  std::string BootLogPath(const std::string& name) const override {
    return o_.launch && !o_.run_dir.empty() ? LogFile(name) : "";
  }
  std::map<std::string, LimitCounters> Limits(const std::vector<std::string>& names) override {
    std::map<std::string, LimitCounters> out;
    if (names.empty()) return out;
    std::map<uint32_t, internal::HtbClassStats> classes = link_.ClassStats();
    std::set<std::string> mounted = MountPoints();
    for (const std::string& n : names) {
      if (!ValidName(n)) continue;
      LimitCounters& c = out[n] = cg_.Limits(n);
      auto m = minor_of_.find(n);
      if (m != minor_of_.end()) {
        auto k = classes.find(m->second);
        if (k != classes.end()) c.net_dropped = k->second.dropped;
      }
      disk_.Fullness(n, mounted, &c);
    }
    return out;
  }
  std::vector<int> Pids(const std::string& name) override { return cg_.Pids(name); }

  Status TearDownAll() override {
    Status first;
    auto present = ListPresent();
    if (present.ok()) {
      for (const auto& n : *present) {
        Status s = Remove(n);
        if (!s.ok() && first.ok()) first = s;
      }
    }
    Status l = link_.TearDown();
    applied_link_.clear();
    link_bad_.clear();
    failures_.clear();
    boot_tries_.clear();
    if (!l.ok() && first.ok()) first = l;
    for (const std::string& r : cg_.Roots()) rmdir((r + "/" + o_.cgroup.prefix).c_str());
    return first;
  }

 private:
  std::string Marker(const std::string& n) const { return o_.run_dir + "/" + n + ".booted"; }
  std::string LogFile(const std::string& n) const { return o_.run_dir + "/" + n + ".log"; }
  // A marker says "<uid> <boot id>": the boot script was started in that boot
  // of the kernel (/proc/sys/kernel/random/boot_id). A guard restarted in the
  // same boot leaves the script running; after a reboot the markers on disk
  // are stale and every sliver's boot script starts again, as PlanetLab's
  // slivers ran their initscripts at each boot. A marker without a boot id
  // (written before the id was recorded) counts as this boot.
  bool BootedThisBoot(const std::string& name) const {
    auto text = ReadFileText(Marker(name));
    if (!text.ok()) return false;
    std::istringstream in(*text);
    std::string uid, boot;
    in >> uid >> boot;
    return boot.empty() || boot_id_.empty() || boot == boot_id_;
  }
  static std::string KernelBootId() {
    auto t = ReadFileText("/proc/sys/kernel/random/boot_id");
    if (!t.ok()) return "";
    std::string id = *t;
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    return id;
  }

  Status Remove(const std::string& name) {
    Status a = cg_.Remove(name);
    Status b = disk_.Remove(name);
    if (!o_.run_dir.empty()) {
      unlink(Marker(name).c_str());
      unlink((o_.run_dir + "/" + name + ".boot").c_str());  // written by older versions
      unlink(LogFile(name).c_str());
    }
    applied_.erase(name);
    return a.ok() ? b : a;
  }

  // Starts the boot script detached (double fork), as the sliver's uid,
  // inside its cgroups, in its directory. The script is a memfd written and
  // opened by root and handed to /bin/sh as /proc/self/fd/N, and the child
  // enters the directory before it drops privileges: neither the modes of
  // run_dir nor of the directories above the sliver's (the 0700 state
  // directory) can keep the sliver's uid from running it.
  Status Launch(const SliverSpec& s) {
    std::string log = o_.run_dir + "/" + s.name + ".log";
    std::string dir = disk_.enabled() ? disk_.Path(s.name) : std::string("/");
    std::vector<std::string> procs =
        o_.cgroup.dry_run ? std::vector<std::string>{} : cg_.ProcsFiles(s.name);
    std::string netns = o_.netns.empty() ? "" : "/run/netns/" + o_.netns;
    std::string home = "HOME=" + dir, sl = "BOURSE_SLIVER=" + s.name;
    const char* env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", home.c_str(), sl.c_str(), nullptr};
    int sfd = memfd_create(("bourse-boot-" + s.name).c_str(), 0);  // inherited by the child
    if (sfd < 0) return core::Internal(Errno("memfd_create"));
    size_t off = 0;
    while (off < s.boot_script.size()) {
      ssize_t w = write(sfd, s.boot_script.data() + off, s.boot_script.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        Status e = core::Internal(Errno("writing the boot script"));
        close(sfd);
        return e;
      }
      off += static_cast<size_t>(w);
    }
    lseek(sfd, 0, SEEK_SET);
    std::string script = "/proc/self/fd/" + std::to_string(sfd);
    const char* argv[] = {"sh", script.c_str(), nullptr};
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
      close(sfd);
      return core::Internal(Errno("pipe"));
    }
    pid_t pid = fork();
    if (pid < 0) {
      close(pfd[0]);
      close(pfd[1]);
      close(sfd);
      return core::Internal(Errno("fork"));
    }
    if (pid == 0) {
      close(pfd[0]);
      if (fork() != 0) _exit(0);
      auto fail = [&](int step) {
        int e[2] = {step, errno};
        ssize_t w = write(pfd[1], e, sizeof e);
        (void)w;
        _exit(126);
      };
      setsid();
      for (const std::string& p : procs) {
        int fd = open(p.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) fail(1);
        close(fd);
      }
      int lfd = open(log.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);  // read to compact
      int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (lfd < 0 || nfd < 0) fail(3);
      int out[2];
      if (pipe2(out, O_CLOEXEC) != 0) fail(8);
      pid_t child = fork();
      if (child < 0) fail(8);
      if (child > 0) {
        // The logger: the sliver's uid, in its cgroups, until the script's
        // last process closes its output. It never execs, so it closes every
        // descriptor of the guard (the daemon's lock file among them) but
        // the pipe (as 0) and the log (as 1), after dropping privileges: the
        // guard sees the start done (pfd closed) only once it runs as the uid.
        int in = fcntl(out[0], F_DUPFD, 3), to = fcntl(lfd, F_DUPFD, 3);  // above 0..2
        if (in < 0 || to < 0 || dup2(in, 0) < 0 || dup2(to, 1) < 0) _exit(1);
        if (chdir("/") != 0 || setgroups(0, nullptr) != 0 || setgid(s.uid) != 0 ||
            setuid(s.uid) != 0) {
          _exit(1);
        }
        prctl(PR_SET_DUMPABLE, 0);  // the sliver cannot write through its descriptors
        close_range(2, ~0U, 0);
        KeepBoundedLog(0, 1, kBootLogMaxBytes);
        _exit(0);
      }
      close(out[0]);
      close(lfd);
      if (!netns.empty()) {
        int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) fail(2);
        close(fd);
      }
      dup2(nfd, 0);
      dup2(out[1], 1);
      dup2(out[1], 2);
      if (chdir(dir.c_str()) != 0) fail(5);
      if (setgroups(0, nullptr) != 0 || setgid(s.uid) != 0 || setuid(s.uid) != 0) fail(4);
      // The sliver's uid must be able to read the script.
      if (access(script.c_str(), R_OK) != 0) fail(7);
      execve("/bin/sh", const_cast<char* const*>(argv), const_cast<char* const*>(env));
      fail(6);
    }
    close(sfd);
    close(pfd[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    int e[2] = {0, 0};
    ssize_t r;
    do {
      r = read(pfd[0], e, sizeof e);
    } while (r < 0 && errno == EINTR);
    close(pfd[0]);
    if (r == static_cast<ssize_t>(sizeof e)) {
      static const char* kStep[] = {
          "",      "join cgroup",  "enter netns",     "open log",        "drop privileges",
          "chdir", "exec /bin/sh", "read the script", "start the logger"};
      if (e[0] < 1 || e[0] > 8) e[0] = 0;
      return core::Internal(std::string(kStep[e[0]]) + ": " + strerror(e[1]));
    }
    return WriteFileText(Marker(s.name), std::to_string(s.uid) + " " + boot_id_ + "\n");
  }

  EnforcerOptions o_;
  const std::string boot_id_ = KernelBootId();
  Cgroups cg_;
  Link link_;
  Disk disk_;
  std::map<std::string, uint32_t> minor_of_;  // the last Reconcile's slivers' HTB classes
  std::map<std::string, SliverSpec> applied_;
  std::vector<LinkClass> applied_link_;
  std::map<std::string, std::string> link_bad_;  // sliver -> why its class is not as desired
  struct BootTry {
    int attempts = 0;
    std::string message;
  };
  std::map<std::string, BootTry> boot_tries_;  // failed starts, until one succeeds
  std::map<std::string, SliverFailure> failures_;
};

}  // namespace

std::vector<std::string> CgroupProcsFiles(const CgroupOptions& o, const std::string& name) {
  std::vector<std::string> out;
  for (const std::string& r : CgroupRoots(o))
    out.push_back(r + "/" + o.prefix + "/" + name + "/cgroup.procs");
  return out;
}

Status ValidateSliverSpec(const SliverSpec& s) {
  if (!ValidName(s.name)) {
    return core::InvalidArgument("sliver.name: \"" + s.name +
                                 "\" is not 1..64 chars of [A-Za-z0-9_.-]");
  }
  std::string p = "sliver " + s.name + ": ";
  if (s.uid < 1000) return core::InvalidArgument(p + "uid: must be >= 1000 (unprivileged)");
  if (s.class_minor < 2 || s.class_minor >= 0xfffe) {
    return core::InvalidArgument(p + "class_minor: must be in 2..0xfffd");
  }
  Status r = s.res.Validate();
  if (!r.ok()) return r.WithContext(p + "res");
  if (s.cpu_cap_mcores < 0) return core::InvalidArgument(p + "cpu_cap_mcores: negative");
  return Status::Ok();
}

bool DiskIsFull(int64_t avail_bytes, int64_t size_bytes) {
  if (size_bytes <= 0) return false;
  return avail_bytes < std::max<int64_t>(kMiB, size_bytes / 100);
}

int64_t CpuSharesFor(int64_t cpu_mcores) {
  return std::clamp<int64_t>(cpu_mcores * 1024 / 1000, 2, 262144);
}
int64_t CpuWeightFromShares(int64_t shares) {
  return std::clamp<int64_t>(shares * 100 / 1024, 1, 10000);
}

nlohmann::json KernelReadback::ToJson() const {
  auto opt = [](const auto& v) -> nlohmann::json {
    if (v) return *v;
    return nullptr;
  };
  nlohmann::json j = {{"cpu_mcores", opt(cpu_mcores)},
                      {"cpu_cap_mcores", opt(cpu_cap_mcores)},
                      {"mem_mib", opt(mem_mib)},
                      {"net_min_kbps", opt(net_min_kbps)},
                      {"net_max_kbps", opt(net_max_kbps)},
                      {"net_classified", opt(net_classified)},
                      {"disk_mib", opt(disk_mib)},
                      {"disk_fs_mib", opt(disk_fs_mib)},
                      {"problems", problems}};
  if (cpu_shares) j["cpu_shares"] = *cpu_shares;
  if (cpu_weight) j["cpu_weight"] = *cpu_weight;
  return j;
}

std::vector<std::string> ReadbackDifferences(const SliverSpec& spec, const KernelReadback& k) {
  std::vector<std::string> out;
  auto differ = [&](const char* what, const std::optional<int64_t>& have, int64_t want) {
    if (!have) {
      out.push_back(std::string(what) + ": not read");
    } else if (*have != want) {
      out.push_back(std::string(what) + ": kernel " + std::to_string(*have) + ", enforced " +
                    std::to_string(want));
    }
  };
  int64_t shares = CpuSharesFor(spec.res.cpu_mcores);
  if (k.cpu_weight) {
    differ("cpu_weight", k.cpu_weight, CpuWeightFromShares(shares));
  } else {
    differ("cpu_shares", k.cpu_shares, shares);
  }
  differ("cpu_cap_mcores", k.cpu_cap_mcores, spec.cpu_cap_mcores);
  differ("mem_mib", k.mem_mib, spec.res.mem_mib);
  if (k.link) {
    differ("net_min_kbps", k.net_min_kbps, ShownKbit(spec.res.net_min_kbps));
    differ("net_max_kbps", k.net_max_kbps, ShownKbit(spec.res.net_max_kbps));
    if (k.net_classified && !*k.net_classified) out.push_back("uid not classified into its class");
  }
  if (k.disk) differ("disk_mib", k.disk_mib, spec.res.disk_mib);
  return out;
}

Result<CgroupOptions> CgroupOptions::Detect(const std::string& root, const std::string& prefix) {
  CgroupOptions o;
  o.prefix = prefix;
  if (Exists(root + "/cpu/cpu.shares")) {
    o.mode = CgroupMode::kV1;
    o.cpu_root = root + "/cpu";
    o.cpuacct_root = Exists(root + "/cpuacct/cpuacct.usage") ? root + "/cpuacct" : o.cpu_root;
    o.memory_root = root + "/memory";
    if (!Exists(o.memory_root + "/memory.limit_in_bytes")) {
      return core::FailedPrecondition("cgroup v1: no memory controller at " + o.memory_root);
    }
    return o;
  }
  for (const std::string& r : {root, root + "/unified"}) {
    auto c = ReadFileText(r + "/cgroup.controllers");
    if (c.ok() && (" " + *c).find(" cpu") != std::string::npos) {
      o.mode = CgroupMode::kV2;
      o.cpu_root = o.cpuacct_root = o.memory_root = r;
      return o;
    }
  }
  return core::FailedPrecondition("no cgroup cpu controller under " + root +
                                  " (neither v1 cpu/ nor v2 cgroup.controllers with cpu)");
}

CgroupOptions CgroupOptions::DryRun(const std::string& scratch, CgroupMode mode) {
  CgroupOptions o;
  o.mode = mode;
  o.dry_run = true;
  if (mode == CgroupMode::kV1) {
    o.cpu_root = scratch + "/cpu";
    o.cpuacct_root = scratch + "/cpuacct";
    o.memory_root = scratch + "/memory";
  } else {
    o.cpu_root = o.cpuacct_root = o.memory_root = scratch + "/unified";
  }
  return o;
}

EnforcerOptions DryRunOptions(const std::string& scratch) {
  EnforcerOptions o;
  o.cgroup = CgroupOptions::DryRun(scratch + "/cgroup", CgroupMode::kV1);
  o.link.iface = "eth0";
  o.link.dry_run_dir = scratch + "/link";
  o.disk_root = scratch + "/disk";
  o.disk_dry_run = true;
  o.run_dir = scratch + "/run";
  o.launch = false;
  return o;
}

Result<std::unique_ptr<Enforcer>> Enforcer::Create(const EnforcerOptions& options) {
  if (options.cgroup.cpu_root.empty()) {
    return core::InvalidArgument("enforcer: cgroup roots not set");
  }
  auto e = std::make_unique<EnforcerImpl>(options);
  BOURSE_RETURN_IF_ERROR(e->Init());
  return std::unique_ptr<Enforcer>(std::move(e));
}

}  // namespace bourse::nodeguard
