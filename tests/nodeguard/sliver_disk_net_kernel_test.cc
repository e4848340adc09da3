// A sliver's disk resized and its limits hit, on the real kernel (root;
// skipped otherwise): loop-mounted ext4 images grown while the sliver runs
// (online with CAP_SYS_RESOURCE; without it, as in this sandbox, held with
// an event until no process of the sliver runs, then grown unmounted) and
// written past their old size; a shrink refused while the files do not fit;
// a resize2fs that fails half way leaves the disk mounted, its file intact
// and writable; a disk filled to ENOSPC is a disk_full event; an HTB class
// that drops packets (UDP from the sliver's uid on a veth pair between two
// namespaces the test makes) is a net_dropped event. Events go through the
// guard's SliverLogs into a real state database. Everything (cgroups,
// mounts, images, namespaces, the PATH) is put back in TearDown and the
// helpers' destructors, also when a test fails. No edits of kernel_util.h:
// its VethPair is reused as it is.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/clock.h"
#include "nodeguard/enforcement.h"
#include "nodeguard/internal/exec.h"
#include "nodeguard/sliver_logs.h"
#include "nodeguard/state_store.h"
#include "tests/nodeguard/kernel/kernel_util.h"

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;

std::string Tag() { return "dn" + std::to_string(getpid() % 100000); }

bool HasCapSysResource() {
  std::string st = internal::ReadFileText("/proc/self/status").value_or("");
  size_t p = st.find("CapEff:");
  return p != std::string::npos && ((std::strtoull(st.c_str() + p + 7, nullptr, 16) >> 24) & 1);
}

// Runs `fn` in a child as `uid` (no groups) and returns its exit status.
template <typename Fn>
int AsUid(uid_t uid, Fn fn) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) _exit(90);
    _exit(fn());
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Writes `mib` MiB to `path` as `uid`: 0 when all went, 28 (ENOSPC) when the disk filled.
int WriteMib(uid_t uid, const std::string& path, int64_t mib) {
  return AsUid(uid, [&] {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return 91;
    std::string buf(1 << 20, 'x');
    for (int64_t i = 0; i < mib; ++i) {
      if (write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) {
        int e = errno;
        close(fd);
        return e == ENOSPC ? 28 : 92;
      }
    }
    return fsync(fd) == 0 && close(fd) == 0 ? 0 : 93;
  });
}

class SliverDiskNetKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (real cgroups, loop mounts, tc)";
    auto cg = CgroupOptions::Detect("/sys/fs/cgroup", "bourse_test_" + Tag());
    if (!cg.ok()) GTEST_SKIP() << "no cgroup cpu controller: " << cg.status().ToString();
    char tmpl[] = "/tmp/ng_dn_kernel_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    opts_.cgroup = *cg;
    opts_.disk_root = (dir_ / "disk").string();
    opts_.run_dir = (dir_ / "run").string();
    opts_.launch = true;
    path_ = getenv("PATH") ? getenv("PATH") : "/usr/sbin:/usr/bin:/sbin:/bin";
  }
  void TearDown() override {
    setenv("PATH", path_.c_str(), 1);
    logs_.reset();
    store_.reset();
    if (enforcer_) {
      core::Status s = enforcer_->TearDownAll();
      EXPECT_TRUE(s.ok()) << s.ToString();
      enforcer_.reset();
    }
    net_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void Start() {
    auto e = Enforcer::Create(opts_);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    enforcer_ = std::move(*e);
    auto s = StateStore::Open((dir_ / "state").string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    logs_ = std::make_unique<SliverLogs>(store_.get(), enforcer_.get(), &clock_);
  }

  // One pass as the guard runs it: reconcile, then the events.
  ReconcileStats Pass(const std::vector<SliverSpec>& desired, bool read_limits = false) {
    auto st = enforcer_->Reconcile(desired, true);
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    if (!st.ok()) return {};
    EXPECT_TRUE(enforcer_->Failures().empty());
    EXPECT_TRUE(logs_->RecordPass(desired, *st, enforcer_->Failures(), read_limits).ok());
    clock_.AdvanceMillis(1000);
    return *st;
  }

  std::vector<SliverEvent> Events(const std::string& name) {
    return store_->SliverEvents(name, 100).value_or(std::vector<SliverEvent>{});
  }
  std::vector<SliverEvent> EventsOf(const std::string& name, const std::string& kind) {
    std::vector<SliverEvent> out;
    for (const SliverEvent& e : Events(name)) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }

  int64_t DiskMib(const SliverSpec& s) {
    KernelReadback k = enforcer_->ReadBack({s})[s.name];
    EXPECT_TRUE(k.problems.empty()) << k.ToJson().dump();
    return k.disk_mib.value_or(-1);
  }
  std::string Dir(const std::string& name) const { return opts_.disk_root + "/slivers/" + name; }
  std::string Read(const std::string& path) {
    return internal::ReadFileText(path).value_or("<unreadable>");
  }

  void KillAll(const std::string& name) {
    for (int i = 0; i < 400 && !enforcer_->Pids(name).empty(); ++i) {
      for (int p : enforcer_->Pids(name)) kill(p, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  static SliverSpec Disk(const std::string& name, uint32_t uid, int64_t mib) {
    SliverSpec s;
    s.name = name;
    s.uid = uid;
    s.class_minor = uid % 1000 + 2;
    s.res.cpu_mcores = 100;
    s.res.mem_mib = 64;
    s.res.disk_mib = mib;
    return s;
  }

  fs::path dir_;
  std::string path_;
  EnforcerOptions opts_;
  core::ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<testing::VethPair> net_;
  std::unique_ptr<Enforcer> enforcer_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<SliverLogs> logs_;
};

TEST_F(SliverDiskNetKernelTest, DiskGrowsWhileTheSliverRunsAndTakesWritesPastItsOldSize) {
  Start();
  SliverSpec s = Disk("dn_grow", 2100101, 16);
  // The script keeps a file on the disk and its cwd there: the disk is busy.
  s.boot_script = "echo kept > kept.txt\nexec sleep 100000\n";
  Pass({s});
  ASSERT_GE(testing::WaitPids(*enforcer_, s.name, 2, 2000).size(), 1u) << "the boot script did not start";
  // The shell creates the file before it writes the line: wait for the line.
  for (int i = 0; i < 2000 && Read(Dir(s.name) + "/kept.txt") != "kept\n"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(Read(Dir(s.name) + "/kept.txt"), "kept\n");
  EXPECT_EQ(DiskMib(s), 16);

  s.res.disk_mib = 48;  // set_resources raised the slice's disk
  ReconcileStats st = Pass({s});
  ASSERT_EQ(st.disk_resizes.count(s.name), 1u);
  DiskResize r = st.disk_resizes[s.name];
  EXPECT_EQ(r.from_mib, 16);
  EXPECT_EQ(r.to_mib, 48);
  if (HasCapSysResource()) {
    EXPECT_TRUE(r.done) << r.why;
    EXPECT_TRUE(r.online);
    EXPECT_FALSE(enforcer_->Pids(s.name).empty());  // it ran all along
  } else {
    // ext4 grows a mounted filesystem only for CAP_SYS_RESOURCE: held, and
    // said, while the sliver runs; its disk and file untouched.
    EXPECT_FALSE(r.done);
    EXPECT_NE(r.why.find("CAP_SYS_RESOURCE"), std::string::npos) << r.why;
    EXPECT_EQ(DiskMib(s), 16);
    EXPECT_EQ(Read(Dir(s.name) + "/kept.txt"), "kept\n");
    ASSERT_EQ(EventsOf(s.name, "disk_resize_held").size(), 1u);
    Pass({s});
    EXPECT_EQ(EventsOf(s.name, "disk_resize_held")[0].count, 1);  // said once
    // Its processes end: the next pass grows it unmounted.
    KillAll(s.name);
    st = Pass({s});
    ASSERT_EQ(st.disk_resizes.count(s.name), 1u);
    r = st.disk_resizes[s.name];
    EXPECT_TRUE(r.done) << r.why;
    EXPECT_FALSE(r.online);
  }
  EXPECT_EQ(DiskMib(s), 48);
  ASSERT_EQ(EventsOf(s.name, "disk_resized").size(), 1u);
  EXPECT_EQ(EventsOf(s.name, "disk_resized")[0].message.rfind("disk grown from 16 to 48 MiB", 0),
            0u);
  EXPECT_EQ(Read(Dir(s.name) + "/kept.txt"), "kept\n");
  // Past the old size, as the sliver's uid.
  EXPECT_EQ(WriteMib(s.uid, Dir(s.name) + "/big", 24), 0);
  struct stat big;
  ASSERT_EQ(stat((Dir(s.name) + "/big").c_str(), &big), 0);
  EXPECT_EQ(big.st_size, 24LL << 20);
  // Settled: the next pass changes nothing and says nothing.
  size_t n = Events(s.name).size();
  st = Pass({s});
  EXPECT_TRUE(st.disk_resizes.empty());
  EXPECT_EQ(Events(s.name).size(), n);
}

TEST_F(SliverDiskNetKernelTest, AResize2fsThatFailsLeavesAUsableDisk) {
  Start();
  SliverSpec s = Disk("dn_fail", 2100102, 16);
  Pass({s});
  ASSERT_EQ(WriteMib(s.uid, Dir(s.name) + "/data", 4), 0);
  // A resize2fs that fails (first in PATH): after the image (and, online,
  // the loop device) grew, before the filesystem did.
  fs::path bin = dir_ / "failbin";
  fs::create_directories(bin);
  std::ofstream(bin / "resize2fs") << "#!/bin/sh\necho 'resize2fs: injected failure' >&2\nexit 1\n";
  fs::permissions(bin / "resize2fs", fs::perms::owner_all);
  setenv("PATH", (bin.string() + ":" + path_).c_str(), 1);
  s.res.disk_mib = 40;
  ReconcileStats st = Pass({s});
  ASSERT_EQ(st.disk_resizes.count(s.name), 1u);
  EXPECT_FALSE(st.disk_resizes[s.name].done);
  EXPECT_NE(st.disk_resizes[s.name].why.find("injected failure"), std::string::npos)
      << st.disk_resizes[s.name].why;
  ASSERT_EQ(EventsOf(s.name, "disk_resize_held").size(), 1u);
  // Mounted, the old size, the file intact, and writable.
  EXPECT_EQ(DiskMib(s), 16);
  struct stat data;
  ASSERT_EQ(stat((Dir(s.name) + "/data").c_str(), &data), 0);
  EXPECT_EQ(data.st_size, 4LL << 20);
  EXPECT_EQ(WriteMib(s.uid, Dir(s.name) + "/more", 2), 0);
  // The tool is back: the next pass finishes the grow.
  setenv("PATH", path_.c_str(), 1);
  st = Pass({s});
  ASSERT_EQ(st.disk_resizes.count(s.name), 1u);
  EXPECT_TRUE(st.disk_resizes[s.name].done) << st.disk_resizes[s.name].why;
  EXPECT_EQ(DiskMib(s), 40);
  ASSERT_EQ(stat((Dir(s.name) + "/data").c_str(), &data), 0);
  EXPECT_EQ(data.st_size, 4LL << 20);
  EXPECT_EQ(WriteMib(s.uid, Dir(s.name) + "/past", 20), 0);
}

TEST_F(SliverDiskNetKernelTest, AShrinkIsHeldWhileTheFilesDoNotFitOrTheSliverRuns) {
  Start();
  SliverSpec s = Disk("dn_shrink", 2100103, 32);
  Pass({s});
  ASSERT_EQ(WriteMib(s.uid, Dir(s.name) + "/f20", 20), 0);
  s.res.disk_mib = 16;
  ReconcileStats st = Pass({s});
  ASSERT_EQ(st.disk_resizes.count(s.name), 1u);
  EXPECT_FALSE(st.disk_resizes[s.name].done);
  std::vector<SliverEvent> held = EventsOf(s.name, "disk_resize_held");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].message.rfind("disk kept at 32 MiB, 16 MiB asked: its files use 20 MiB, more "
                                  "than the 16 MiB asked",
                                  0),
            0u)
      << held[0].message;
  EXPECT_EQ(DiskMib(s), 32);
  Pass({s});  // retried, and not said again
  EXPECT_EQ(EventsOf(s.name, "disk_resize_held")[0].count, 1);

  // 14 MiB fit in 16 by the files' count, not with ext4's metadata: resize2fs
  // refuses (the disk was unmounted and comes back whole), and is not asked
  // again while nothing changes.
  fs::remove(Dir(s.name) + "/f20");
  ASSERT_EQ(WriteMib(s.uid, Dir(s.name) + "/f14", 14), 0);
  st = Pass({s});
  ASSERT_EQ(st.disk_resizes.count(s.name), 1u);
  EXPECT_FALSE(st.disk_resizes[s.name].done);
  EXPECT_NE(st.disk_resizes[s.name].why.find("do not fit in 16 MiB"), std::string::npos)
      << st.disk_resizes[s.name].why;
  EXPECT_EQ(DiskMib(s), 32);
  struct stat f;
  ASSERT_EQ(stat((Dir(s.name) + "/f14").c_str(), &f), 0);
  EXPECT_EQ(f.st_size, 14LL << 20);
  st = Pass({s});
  EXPECT_NE(st.disk_resizes[s.name].why.find("do not fit in 16 MiB"), std::string::npos);

  // Small files, but a process of the sliver runs: held.
  fs::remove(Dir(s.name) + "/f14");
  std::ofstream(Dir(s.name) + "/small.txt") << "small\n";
  pid_t p = fork();
  if (p == 0) {
    for (const std::string& procs : CgroupProcsFiles(opts_.cgroup, s.name)) {
      std::ofstream(procs) << getpid();
    }
    execl("/bin/sleep", "sleep", "100000", nullptr);
    _exit(1);
  }
  for (int i = 0; i < 2000 && enforcer_->Pids(s.name).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  st = Pass({s});
  EXPECT_FALSE(st.disk_resizes[s.name].done);
  EXPECT_NE(st.disk_resizes[s.name].why.find("processes of the sliver run"), std::string::npos)
      << st.disk_resizes[s.name].why;
  testing::Reap(p);
  KillAll(s.name);
  // None runs: shrunk, unmounted, the file kept.
  st = Pass({s});
  ASSERT_EQ(st.disk_resizes.count(s.name), 1u);
  EXPECT_TRUE(st.disk_resizes[s.name].done) << st.disk_resizes[s.name].why;
  EXPECT_EQ(DiskMib(s), 16);
  EXPECT_EQ(fs::file_size(opts_.disk_root + "/images/dn_shrink.img"), 16u << 20);
  EXPECT_EQ(Read(Dir(s.name) + "/small.txt"), "small\n");
  ASSERT_EQ(EventsOf(s.name, "disk_resized").size(), 1u);
  EXPECT_EQ(EventsOf(s.name, "disk_resized")[0].message,
            "disk shrunk from 32 to 16 MiB while unmounted (no process of it ran)");
}

TEST_F(SliverDiskNetKernelTest, AFullDiskIsADiskFullEvent) {
  Start();
  SliverSpec s = Disk("dn_full", 2100104, 16);
  Pass({s}, /*read_limits=*/true);  // the baseline
  Pass({s}, true);
  EXPECT_TRUE(EventsOf(s.name, "disk_full").empty());
  EXPECT_EQ(WriteMib(s.uid, Dir(s.name) + "/fill", 64), 28);  // ENOSPC
  Pass({s}, true);
  std::vector<SliverEvent> full = EventsOf(s.name, "disk_full");
  ASSERT_EQ(full.size(), 1u);
  EXPECT_NE(full[0].message.find("MiB; writes fail with ENOSPC"), std::string::npos)
      << full[0].message;
  Pass({s}, true);  // still full: nothing new
  EXPECT_EQ(EventsOf(s.name, "disk_full").size(), 1u);
  EXPECT_EQ(EventsOf(s.name, "disk_full")[0].count, 1);
}

TEST_F(SliverDiskNetKernelTest, PacketsTheHtbClassDropsAreANetDroppedEvent) {
  net_ = std::make_unique<testing::VethPair>(Tag());
  ASSERT_TRUE(net_->ok()) << "could not create namespaces and veth";
  opts_.link.iface = net_->dev_a();
  opts_.link.netns = net_->ns_a();
  opts_.link.link_kbps = 20000;
  opts_.link.default_min_kbps = 500;
  Start();
  SliverSpec s = Disk("dn_net", 2100105, 0);
  s.res.net_min_kbps = 0;
  s.res.net_max_kbps = 100;
  Pass({s}, true);  // the baseline
  EXPECT_TRUE(EventsOf(s.name, "net_dropped").empty());
  // Datagrams of 1400 bytes from the sliver's uid, from 64 sockets at once
  // (each holds about 90 in flight before its send buffer says EAGAIN): far
  // more than its 100 kbit/s ceiling drains and its queue (1000 packets) holds.
  std::string ns = "/run/netns/" + net_->ns_a();
  pid_t p = fork();
  if (p == 0) {
    int nsfd = open(ns.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) _exit(2);
    if (setgroups(0, nullptr) != 0 || setgid(s.uid) != 0 || setuid(s.uid) != 0) _exit(3);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(9);
    inet_pton(AF_INET, "10.77.0.2", &a.sin_addr);
    char buf[1400] = {};
    for (int k = 0; k < 64; ++k) {
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) _exit(4);
      for (int i = 0; i < 200; ++i) {
        if (sendto(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&a), sizeof a) <
                0 &&
            errno == EAGAIN) {
          break;
        }
      }
    }
    _exit(0);
  }
  int st = 0;
  waitpid(p, &st, 0);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  Pass({s}, true);
  std::vector<SliverEvent> dropped = EventsOf(s.name, "net_dropped");
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].message.rfind("its link class dropped ", 0), 0u) << dropped[0].message;
  Pass({s}, true);  // no new drops: nothing new (the queue still drains)
  EXPECT_EQ(EventsOf(s.name, "net_dropped")[0].count, 1);
}

}  // namespace
}  // namespace bourse::nodeguard
