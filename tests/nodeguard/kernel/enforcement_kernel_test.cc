// The enforcement backends against the real kernel (root): cgroup v1/v2 CPU
// shares and caps, HTB + nftables uid classification on a veth pair between
// two network namespaces, loop-mounted per-sliver filesystems, teardown.
// These tests measure CPU time and bandwidth, so ctest runs them RUN_SERIAL.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/clock.h"
#include "nodeguard/enforcement.h"
#include "nodeguard/guard.h"
#include "tests/nodeguard/chain_util.h"
#include "tests/nodeguard/kernel/kernel_util.h"

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;
using testing::NowSec;
using testing::Reap;

std::string Tag() { return std::to_string(getpid() % 100000); }

class KernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (real cgroups, tc, mounts)";
    auto cg = CgroupOptions::Detect("/sys/fs/cgroup", "bourse_test_" + Tag());
    if (!cg.ok()) GTEST_SKIP() << "no cgroup cpu controller: " << cg.status().ToString();
    char tmpl[] = "/tmp/ng_kernel_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    opts_.cgroup = *cg;
    opts_.disk_root = (dir_ / "disk").string();
    opts_.run_dir = (dir_ / "run").string();
    opts_.launch = true;
  }
  void TearDown() override {
    if (guard_) {
      Status s = guard_->enforcer().TearDownAll();
      EXPECT_TRUE(s.ok()) << s.ToString();
      guard_.reset();
    }
    if (enforcer_) {
      Status s = enforcer_->TearDownAll();
      EXPECT_TRUE(s.ok()) << s.ToString();
      enforcer_.reset();
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  using Status = core::Status;

  void Start() {
    auto e = Enforcer::Create(opts_);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    enforcer_ = std::move(*e);
    // The machine is shared: weight our test subtree well above other tenants'
    // tasks so a loaded machine does not starve the measurements. (Ratios
    // between slivers inside the subtree are what the CPU tests check.)
    std::string top = opts_.cgroup.cpu_root + "/" + opts_.cgroup.prefix;
    if (opts_.cgroup.mode == CgroupMode::kV1) {
      std::ofstream(top + "/cpu.shares") << 20480;
    } else {
      std::ofstream(top + "/cpu.weight") << 2000;
    }
  }

  static SliverSpec Busy(const std::string& name, uint32_t uid, uint32_t minor, int64_t mcores) {
    SliverSpec s;
    s.name = name;
    s.uid = uid;
    s.class_minor = minor;
    s.res.cpu_mcores = mcores;
    s.res.mem_mib = 64;
    s.boot_script = "while :; do :; done\n";
    return s;
  }


  fs::path dir_;
  EnforcerOptions opts_;
  std::unique_ptr<Enforcer> enforcer_;
  std::unique_ptr<Guard> guard_;  // owns its enforcer; torn down the same way
};

TEST_F(KernelTest, CpuSplitFollowsMcoresOnOneCpu) {
  Start();
  SliverSpec a = Busy("cpu_a", 2100001, 2, 250);
  SliverSpec b = Busy("cpu_b", 2100002, 3, 750);
  auto st = enforcer_->Reconcile({a, b});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->launched, 2);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  for (const auto& n : {"cpu_a", "cpu_b"}) {
    std::vector<int> pids = testing::WaitPids(*enforcer_, n);
    ASSERT_FALSE(pids.empty()) << n << " boot script did not start";
    for (int p : pids) {
      ASSERT_EQ(sched_setaffinity(p, sizeof one, &one), 0);
      // Runs as the sliver's uid (the script and its logger; the logger is
      // not dumpable, so its /proc entry is root's: read its Uid line).
      std::string status =
          internal::ReadFileText("/proc/" + std::to_string(p) + "/status").value_or("");
      uint32_t want = std::string(n) == "cpu_a" ? a.uid : b.uid;
      EXPECT_NE(status.find("\nUid:\t" + std::to_string(want) + "\t"), std::string::npos)
          << "pid " << p << ": " << status.substr(0, 300);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto u0 = enforcer_->Usage();
  std::this_thread::sleep_for(std::chrono::seconds(5));
  auto u1 = enforcer_->Usage();
  double da = static_cast<double>(u1["cpu_a"].cpu_usec - u0["cpu_a"].cpu_usec);
  double db = static_cast<double>(u1["cpu_b"].cpu_usec - u0["cpu_b"].cpu_usec);
  ASSERT_GT(da, 0);
  double ratio = db / da;
  std::printf("cpu split over 5 s on CPU 0: a=%.3f s b=%.3f s ratio b/a=%.3f (want 3)\n", da / 1e6,
              db / 1e6, ratio);
  EXPECT_NEAR(ratio, 3.0, 3.0 * 0.05);

  // Teardown kills the processes and removes the cgroups.
  std::vector<int> pa = enforcer_->Pids("cpu_a");
  auto gone = enforcer_->Reconcile({});
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(gone->removed, 2);
  for (int p : pa) EXPECT_TRUE(testing::DeadOrZombie(p)) << "pid " << p << " survived teardown";
  EXPECT_FALSE(fs::exists(opts_.cgroup.cpu_root + "/" + opts_.cgroup.prefix + "/cpu_a"));
  EXPECT_FALSE(fs::exists(opts_.cgroup.memory_root + "/" + opts_.cgroup.prefix + "/cpu_a"));
}

TEST_F(KernelTest, CapLimitsAnUncontendedSliver) {
  Start();
  SliverSpec c = Busy("cap_c", 2100003, 4, 300);
  c.cpu_cap_mcores = 300;
  ASSERT_TRUE(enforcer_->Reconcile({c}).ok());
  ASSERT_FALSE(testing::WaitPids(*enforcer_, "cap_c").empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto u0 = enforcer_->Usage();
  double t0 = NowSec();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  auto u1 = enforcer_->Usage();
  double secs = NowSec() - t0;
  double got = static_cast<double>(u1["cap_c"].cpu_usec - u0["cap_c"].cpu_usec) / 1e6 / secs;
  std::printf("capped sliver: %.3f CPUs (cap 0.300)\n", got);
  EXPECT_NEAR(got, 0.300, 0.030);
}

TEST_F(KernelTest, RestartDoesNotDisturbRunningSlivers) {
  Start();
  SliverSpec a = Busy("keep_a", 2100004, 5, 100);
  ASSERT_TRUE(enforcer_->Reconcile({a}).ok());
  std::vector<int> before = testing::WaitPids(*enforcer_, "keep_a");
  ASSERT_FALSE(before.empty());
  enforcer_.reset();  // the guard exits; slivers keep running
  Start();            // and comes back
  auto st = enforcer_->Reconcile({a});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->created, 0);
  EXPECT_EQ(st->updated, 0);
  EXPECT_EQ(st->launched, 0);
  EXPECT_EQ(enforcer_->Pids("keep_a"), before);
  // A changed guarantee is applied in place.
  a.res.cpu_mcores = 400;
  st = enforcer_->Reconcile({a});
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->updated, 1);
  EXPECT_EQ(enforcer_->Pids("keep_a"), before);
  std::ifstream in(opts_.cgroup.cpu_root + "/" + opts_.cgroup.prefix + "/keep_a/cpu.shares");
  int shares = 0;
  in >> shares;
  EXPECT_EQ(shares, CpuSharesFor(400));
}

TEST_F(KernelTest, DiskLimitIsEnforcedAndUsageReported) {
  Start();
  SliverSpec d;
  d.name = "disk_d";
  d.uid = 2100005;
  d.class_minor = 6;
  d.res.disk_mib = 32;
  auto st = enforcer_->Reconcile({d});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  std::string dir = enforcer_->SliverDir("disk_d");
  struct stat s;
  ASSERT_EQ(stat(dir.c_str(), &s), 0);
  EXPECT_EQ(s.st_uid, d.uid);
  auto write_as = [&](const std::string& file, int mib) {
    pid_t pid = fork();
    if (pid == 0) {
      if (setgid(d.uid) != 0 || setuid(d.uid) != 0) _exit(3);
      FILE* f = fopen(file.c_str(), "w");
      if (f == nullptr) _exit(4);
      static char buf[1 << 20];
      for (int i = 0; i < mib; ++i) {
        if (fwrite(buf, 1, sizeof buf, f) != sizeof buf) _exit(5);
      }
      if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) _exit(6);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
  };
  EXPECT_EQ(write_as(dir + "/within", 8), 0);
  auto usage = enforcer_->Usage();
  std::printf("disk used after 8 MiB: %lld MiB\n",
              static_cast<long long>(usage["disk_d"].disk_used_mib));
  EXPECT_GE(usage["disk_d"].disk_used_mib, 8);
  EXPECT_LE(usage["disk_d"].disk_used_mib, 10);
  EXPECT_NE(write_as(dir + "/past", 40), 0) << "writing past the 32 MiB limit succeeded";
  // Another uid cannot write there.
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(2100099) != 0 || setuid(2100099) != 0) _exit(3);
    _exit(fopen((dir + "/intruder").c_str(), "w") == nullptr ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);

  ASSERT_TRUE(enforcer_->Reconcile({}).ok());
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(opts_.disk_root + "/images/disk_d.img"));
  std::ifstream mi("/proc/self/mountinfo");
  std::string all((std::istreambuf_iterator<char>(mi)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.find(dir), std::string::npos);
}

TEST_F(KernelTest, HtbGuaranteesMinimaCapsCeilingsAndLendsSpare) {
  testing::VethPair net(Tag());
  ASSERT_TRUE(net.ok()) << "could not create namespaces and veth";
  opts_.link.iface = net.dev_a();
  opts_.link.netns = net.ns_a();
  opts_.link.link_kbps = 20000;
  opts_.link.default_min_kbps = 500;
  opts_.disk_root.clear();
  Start();
  SliverSpec a, b;
  a.name = "net_a";
  a.uid = 2100011;
  a.class_minor = 0x11;
  a.res = {.cpu_mcores = 100, .net_min_kbps = 4000, .net_max_kbps = 16000};
  b = a;
  b.name = "net_b";
  b.uid = 2100012;
  b.class_minor = 0x12;
  b.res.net_min_kbps = 12000;
  auto st = enforcer_->Reconcile({a, b});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_TRUE(st->link_changed);
  // Idempotent against the kernel: a second pass reads the tree back and writes nothing.
  auto again = enforcer_->Reconcile({a, b});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->link_changed);

  testing::Receiver rx(net.ns_b());
  ASSERT_GT(rx.port(), 0);
  // Rates on the wire of each class (the kernel's HTB byte counters, headers
  // included, as HTB accounts them), over a window after TCP has ramped up;
  // the receiver's payload count must agree within header overhead.
  auto measure = [&](double warm, double window, char tag_a, char tag_b, double* ka, double* kb) {
    std::this_thread::sleep_for(std::chrono::duration<double>(warm));
    auto u0 = enforcer_->Usage();
    int64_t ra0 = rx.Bytes(tag_a), rb0 = rx.Bytes(tag_b);
    double t0 = NowSec();
    std::this_thread::sleep_for(std::chrono::duration<double>(window));
    auto u1 = enforcer_->Usage();
    double dt = NowSec() - t0;
    *ka = static_cast<double>(u1["net_a"].net_tx_bytes - u0["net_a"].net_tx_bytes) * 8 / 1000 / dt;
    *kb = static_cast<double>(u1["net_b"].net_tx_bytes - u0["net_b"].net_tx_bytes) * 8 / 1000 / dt;
    double pa = static_cast<double>(rx.Bytes(tag_a) - ra0) * 8 / 1000 / dt;
    double pb = static_cast<double>(rx.Bytes(tag_b) - rb0) * 8 / 1000 / dt;
    std::printf("  wire a=%.0f b=%.0f kbit/s; payload received a=%.0f b=%.0f kbit/s\n", *ka, *kb,
                pa, pb);
    EXPECT_NEAR(pa, *ka * 0.95, *ka * 0.06 + 50);
    EXPECT_NEAR(pb, *kb * 0.95, *kb * 0.06 + 50);
  };
  // Both send: each at least its minimum, at most its ceiling; the spare is lent.
  pid_t pa = testing::StartSender(net.ns_a(), a.uid, rx.port(), 'a', 6.5);
  pid_t pb = testing::StartSender(net.ns_a(), b.uid, rx.port(), 'b', 6.5);
  double ka = 0, kb = 0;
  measure(1.5, 4.0, 'a', 'b', &ka, &kb);
  Reap(pa);
  Reap(pb);
  std::printf("both sending: a=%.0f kbit/s (min 4000) b=%.0f kbit/s (min 12000), link 20000\n", ka,
              kb);
  EXPECT_GE(ka, 4000 * 0.9);
  EXPECT_GE(kb, 12000 * 0.9);
  EXPECT_LE(ka, 16000 * 1.1);
  EXPECT_LE(kb, 16000 * 1.1);
  EXPECT_LE(ka + kb, 20000 * 1.1);
  // Only a sends: it borrows b's idle share, up to its ceiling.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  pa = testing::StartSender(net.ns_a(), a.uid, rx.port(), 'c', 5.5);
  double kc = 0, kidle = 0;
  measure(1.5, 3.5, 'c', 'z', &kc, &kidle);
  Reap(pa);
  std::printf("a alone: %.0f kbit/s (min 4000, ceil 16000); b idle: %.0f\n", kc, kidle);
  EXPECT_GE(kc, 16000 * 0.9);
  EXPECT_LE(kc, 16000 * 1.1);
  auto usage = enforcer_->Usage();
  EXPECT_GT(usage["net_a"].net_tx_bytes, 0);
  EXPECT_GT(usage["net_b"].net_tx_bytes, 0);
  // Removing a sliver removes its class and its uid mapping.
  ASSERT_TRUE(enforcer_->Reconcile({b}).ok());
  auto classes = internal::RunCommand(
      {"ip", "netns", "exec", net.ns_a(), "tc", "class", "show", "dev", net.dev_a()});
  ASSERT_TRUE(classes.ok());
  EXPECT_EQ(classes->find("1:11 "), std::string::npos);
  EXPECT_NE(classes->find("1:12 "), std::string::npos);
  auto map = internal::RunCommand({"ip", "netns", "exec", net.ns_a(), "nft", "list", "map", "inet",
                                   "bourse_guard", "uid_class"});
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->find("2100011"), std::string::npos);
  EXPECT_NE(map->find("2100012"), std::string::npos);
  ASSERT_TRUE(enforcer_->TearDownAll().ok());
  enforcer_.reset();
}

// A sliver that bought net_min_kbps = 0 still gets its ceiling (issue #13):
// tc refuses "rate 0kbit", which used to abort the whole tc batch, so no class
// and no uid mapping were installed and the sliver ran unlimited in the
// default class.
TEST_F(KernelTest, ZeroMinimumSliverIsHeldToItsCeiling) {
  testing::VethPair net(Tag());
  ASSERT_TRUE(net.ok()) << "could not create namespaces and veth";
  opts_.link.iface = net.dev_a();
  opts_.link.netns = net.ns_a();
  opts_.link.link_kbps = 20000;
  opts_.link.default_min_kbps = 500;
  opts_.disk_root.clear();
  Start();
  SliverSpec z, b;
  z.name = "net_zero";
  z.uid = 2100021;
  z.class_minor = 0x21;
  z.res = {.cpu_mcores = 100, .net_min_kbps = 0, .net_max_kbps = 4000};
  b = z;
  b.name = "net_other";
  b.uid = 2100022;
  b.class_minor = 0x22;
  b.res.net_min_kbps = 1000;
  b.res.net_max_kbps = 8000;
  // tc shows 1234567kbit as 1234Mbit: still idempotent, not a failure.
  SliverSpec odd = b;
  odd.name = "net_odd";
  odd.uid = 2100023;
  odd.class_minor = 0x23;
  odd.res.net_max_kbps = 1234567;
  auto st = enforcer_->Reconcile({z, b, odd});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_TRUE(enforcer_->Failures().empty());
  auto cls = internal::RunCommand(
      {"ip", "netns", "exec", net.ns_a(), "tc", "class", "show", "dev", net.dev_a()});
  ASSERT_TRUE(cls.ok());
  size_t at = cls->find("class htb 1:21 ");
  ASSERT_NE(at, std::string::npos) << *cls;
  std::string line = cls->substr(at, cls->find('\n', at) - at);
  EXPECT_NE(line.find("ceil 4Mbit"), std::string::npos) << line;
  EXPECT_NE(cls->find("class htb 1:22 "), std::string::npos) << *cls;
  auto map = internal::RunCommand({"ip", "netns", "exec", net.ns_a(), "nft", "list", "map", "inet",
                                   "bourse_guard", "uid_class"});
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_NE(map->find("2100021"), std::string::npos) << *map;
  EXPECT_NE(map->find("2100022"), std::string::npos) << *map;
  // Idempotent: the 8bit rate reads back as the 0 that was bought.
  auto again = enforcer_->Reconcile({z, b, odd});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->link_changed);
  EXPECT_TRUE(enforcer_->Failures().empty());

  // On an idle 20 Mbit/s link the sliver is held to its 4 Mbit/s ceiling.
  testing::Receiver rx(net.ns_b());
  ASSERT_GT(rx.port(), 0);
  pid_t pz = testing::StartSender(net.ns_a(), z.uid, rx.port(), 'z', 5.5);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  int64_t r0 = rx.Bytes('z');
  auto u0 = enforcer_->Usage();
  double t0 = NowSec();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  int64_t r1 = rx.Bytes('z');
  auto u1 = enforcer_->Usage();
  double dt = NowSec() - t0;
  Reap(pz);
  double wire = static_cast<double>(u1["net_zero"].net_tx_bytes - u0["net_zero"].net_tx_bytes) * 8 /
                1000 / dt;
  double payload = static_cast<double>(r1 - r0) * 8 / 1000 / dt;
  std::printf("zero-minimum sliver alone: wire %.0f kbit/s, payload %.0f kbit/s (ceil 4000)\n",
              wire, payload);
  EXPECT_GE(payload, 4000 * 0.8);
  EXPECT_LE(payload, 4000 * 1.1);
  EXPECT_LE(wire, 4000 * 1.1);
}

// The boot log (issue #20): a script printing 8 MB and then waiting leaves
// at most kBootLogMaxBytes on disk, ending with its last line; its logger
// runs in the sliver's cgroup as the sliver's uid and goes with the sliver.
TEST_F(KernelTest, BootLogIsBoundedAndItsLoggerGoesWithTheSliver) {
  Start();
  SliverSpec s;
  s.name = "log_l";
  s.uid = 2100041;
  s.class_minor = 0x41;
  s.res = {.cpu_mcores = 100, .mem_mib = 64};
  s.boot_script =
      "yes 'a line the sliver prints again and again' | head -c 8000000\n"
      "echo last line\nexec sleep 600\n";
  auto st = enforcer_->Reconcile({s});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_EQ(st->booted, std::vector<std::string>{"log_l"});
  std::string log = enforcer_->BootLogPath("log_l");
  ASSERT_EQ(log, opts_.run_dir + "/log_l.log");
  for (int i = 0; i < 1000; ++i) {
    if (internal::ReadFileText(log).value_or("").ends_with("last line\n")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string text = internal::ReadFileText(log).value_or("");
  EXPECT_TRUE(text.ends_with("last line\n")) << text.size();
  EXPECT_LE(text.size(), static_cast<size_t>(kBootLogMaxBytes));
  EXPECT_GE(text.size(), static_cast<size_t>(kBootLogMaxBytes / 2 - 8192));
  EXPECT_EQ(text.rfind("a line the sliver prints", 0), 0u) << text.substr(0, 60);  // a line start
  // sleep and the logger, both the sliver's uid, both in its cgroup.
  std::vector<int> pids = enforcer_->Pids("log_l");
  ASSERT_EQ(pids.size(), 2u);
  for (int p : pids) {
    std::string status =
        internal::ReadFileText("/proc/" + std::to_string(p) + "/status").value_or("");
    EXPECT_NE(status.find("\nUid:\t" + std::to_string(s.uid) + "\t"), std::string::npos)
        << status.substr(0, 200);
  }
  auto gone = enforcer_->Reconcile({});
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  for (int p : pids) EXPECT_TRUE(testing::DeadOrZombie(p)) << "pid " << p << " survived teardown";
  EXPECT_FALSE(fs::exists(log));
}

// The boot script runs for real (issue #13): with the guard's default layout
// (run_dir and disk_root inside the 0700 state directory) it runs as the
// sliver's uid, inside the sliver's cgroup, in its own directory.
TEST_F(KernelTest, BootScriptRunsAsTheSliverInItsCgroupAndDirectory) {
  fs::path state = dir_ / "state";
  ASSERT_EQ(mkdir(state.c_str(), 0700), 0);
  opts_.run_dir = (state / "run").string();
  opts_.disk_root = (state / "disk").string();
  Start();
  SliverSpec s;
  s.name = "boot_b";
  s.uid = 2100031;
  s.class_minor = 0x31;
  s.res = {.cpu_mcores = 100, .mem_mib = 64, .disk_mib = 16};
  s.boot_script =
      "id -u > out.tmp\ncat /proc/self/cgroup >> out.tmp\npwd >> out.tmp\nmv out.tmp out\n";
  auto st = enforcer_->Reconcile({s});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->launched, 1);
  EXPECT_TRUE(enforcer_->Failures().empty());
  std::string dir = enforcer_->SliverDir("boot_b");
  std::string out = dir + "/out";
  for (int i = 0; i < 500 && !fs::exists(out); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(out))
      << "the boot script did not run; log: "
      << internal::ReadFileText(opts_.run_dir + "/boot_b.log").value_or("(none)");
  struct stat sb;
  ASSERT_EQ(stat(out.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_uid, s.uid);
  std::string text = internal::ReadFileText(out).value_or("");
  EXPECT_EQ(text.substr(0, text.find('\n')), std::to_string(s.uid)) << text;
  EXPECT_NE(text.find("/" + opts_.cgroup.prefix + "/boot_b\n"), std::string::npos) << text;
  EXPECT_NE(text.find(dir + "\n"), std::string::npos) << text;
  // Started once: the next pass does not start it again, nor does a guard
  // restarted in the same boot (a new Enforcer over the same run_dir).
  auto again = enforcer_->Reconcile({s});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->launched, 0);
  std::string marker = opts_.run_dir + "/boot_b.booted";
  std::string boot_id = internal::ReadFileText("/proc/sys/kernel/random/boot_id").value_or("");
  boot_id = boot_id.substr(0, boot_id.find('\n'));
  EXPECT_EQ(internal::ReadFileText(marker).value_or(""),
            std::to_string(s.uid) + " " + boot_id + "\n");
  Start();
  again = enforcer_->Reconcile({s});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->launched, 0);
  // After a reboot the marker names another boot: the script starts again.
  fs::remove(out);
  std::ofstream(marker) << s.uid << " 00000000-0000-4000-8000-000000000000\n";
  Start();
  again = enforcer_->Reconcile({s});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->launched, 1);
  for (int i = 0; i < 500 && !fs::exists(out); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(fs::exists(out)) << "the boot script did not run again after the reboot";
  EXPECT_EQ(internal::ReadFileText(marker).value_or(""),
            std::to_string(s.uid) + " " + boot_id + "\n");
}

// A boot script that cannot be started is a failure of the sliver (not
// "booted"), retried on the next passes at most kMaxEnforceAttempts times.
TEST_F(KernelTest, FailedBootIsRecordedAndRetriedBounded) {
  opts_.netns = "ng_missing_" + Tag();  // setns fails in the child
  Start();
  SliverSpec s;
  s.name = "boot_f";
  s.uid = 2100032;
  s.class_minor = 0x32;
  s.res = {.cpu_mcores = 100, .mem_mib = 64, .disk_mib = 8};
  s.boot_script = "id -u > out\n";
  for (int pass = 1; pass <= kMaxEnforceAttempts + 1; ++pass) {
    auto st = enforcer_->Reconcile({s}, /*verify_kernel=*/false);
    EXPECT_FALSE(st.ok()) << "pass " << pass;
    auto f = enforcer_->Failures();
    ASSERT_EQ(f.count("boot_f"), 1u) << "pass " << pass;
    EXPECT_EQ(f["boot_f"].step, "boot");
    EXPECT_EQ(f["boot_f"].attempts, std::min(pass, kMaxEnforceAttempts));
    EXPECT_NE(f["boot_f"].message.find("enter netns"), std::string::npos) << f["boot_f"].message;
    if (pass > kMaxEnforceAttempts) {
      EXPECT_NE(f["boot_f"].message.find("gave up"), std::string::npos) << f["boot_f"].message;
    }
  }
  EXPECT_FALSE(fs::exists(opts_.run_dir + "/boot_f.booted"));
  EXPECT_FALSE(fs::exists(enforcer_->SliverDir("boot_f") + "/out"));
  // Removing the sliver forgets the failure.
  ASSERT_TRUE(enforcer_->Reconcile({}).ok());
  EXPECT_TRUE(enforcer_->Failures().empty());
}

// Through the guard, on the real kernel: a boot script that cannot start is an
// error of the sliver in the status API, never "active"; after
// kMaxEnforceAttempts passes the rcap is refused (enforcement_failed) and the
// sliver is torn down (issue #13).
TEST_F(KernelTest, GuardShowsAFailedBootAndRefusesItsRcap) {
  opts_.netns = "ng_missing_" + Tag();  // the boot script cannot enter it
  auto e = Enforcer::Create(opts_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  Enforcer* enf = e->get();
  testing::Principals p;
  int64_t now = core::SystemClock::Get().NowSeconds();
  auto root = testing::Root(p, "n1", now - 60, now + 3600);
  auto leaf = testing::Child(root, p.broker, p.alice.public_key(),
                             testing::Res(200, 64, 8, 0, 5000), now - 1, now + 600);
  fs::create_directories(dir_ / "state/spool");
  std::ofstream(dir_ / "trust") << p.site.public_key().ToText() << "\n";
  nlohmann::json in = {{"slice", "site_fb"},
                       {"boot_script", "id -u > out\n"},
                       {"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{root, leaf})}};
  std::ofstream(dir_ / "state/spool/fb.json") << in.dump();
  auto cfg =
      GuardConfig::Parse("node_id = n1\ntrust_file = " + (dir_ / "trust").string() +
                         "\nstate_dir = " + (dir_ / "state").string() + "\nuid_base = 2100200\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  core::ManualClock clock(now * 1000);
  auto created = Guard::Create(*cfg, &clock, std::move(*e));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  guard_ = std::move(*created);
  Guard* g = guard_.get();
  std::string cg = opts_.cgroup.cpu_root + "/" + opts_.cgroup.prefix + "/site_fb";
  for (int pass = 1; pass <= kMaxEnforceAttempts; ++pass) {
    auto st = g->ReconcileOnce();
    EXPECT_FALSE(st.ok()) << "pass " << pass;
    nlohmann::json status = g->StatusJson();
    EXPECT_EQ(status["enforcement"]["ok"], false);
    ASSERT_EQ(status["slivers"].size(), 1u) << status.dump();
    const nlohmann::json& s = status["slivers"][0];
    EXPECT_EQ(s["state"], "error") << s.dump();
    EXPECT_EQ(s["error"]["step"], "boot");
    EXPECT_EQ(s["error"]["attempts"], pass);
    EXPECT_NE(s["error"]["message"].get<std::string>().find("enter netns"), std::string::npos);
    EXPECT_TRUE(fs::exists(cg));
    clock.AdvanceSeconds(5);
  }
  // The last failed start refused the rcap; the next pass tears the sliver down.
  nlohmann::json status = g->StatusJson();
  bool refused = false;
  for (const auto& r : status["refusals"]) {
    if (r["rcap"] == leaf.id && r["reason"] == "enforcement_failed") refused = true;
  }
  EXPECT_TRUE(refused) << status.dump();
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->enforce.removed, 1);
  EXPECT_FALSE(fs::exists(cg));
  EXPECT_FALSE(fs::exists(enf->SliverDir("site_fb")));
  status = g->StatusJson();
  EXPECT_EQ(status["slivers"].size(), 0u) << status.dump();
  EXPECT_EQ(status["enforcement"]["ok"], true);
}

TEST_F(KernelTest, ExpiredRcapIsTornDown) {
  testing::VethPair net(Tag());
  ASSERT_TRUE(net.ok()) << "could not create namespaces and veth";
  opts_.link.iface = net.dev_a();
  opts_.link.netns = net.ns_a();
  opts_.link.link_kbps = 100000;
  auto e = Enforcer::Create(opts_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  Enforcer* enf = e->get();

  testing::Principals p;
  int64_t now = core::SystemClock::Get().NowSeconds();
  auto root = testing::Root(p, "n1", now - 60, now + 3600);
  auto leaf = testing::Child(root, p.broker, p.alice.public_key(),
                             testing::Res(200, 64, 16, 1000, 5000), now - 1, now + 60);
  fs::create_directories(dir_ / "state/spool");
  std::ofstream(dir_ / "trust") << p.site.public_key().ToText() << "\n";
  nlohmann::json in = {{"slice", "site_exp"},
                       {"boot_script", "while :; do sleep 1; done\n"},
                       {"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{root, leaf})}};
  std::ofstream(dir_ / "state/spool/exp.json") << in.dump();
  auto cfg =
      GuardConfig::Parse("node_id = n1\ntrust_file = " + (dir_ / "trust").string() +
                         "\nstate_dir = " + (dir_ / "state").string() + "\nuid_base = 2100100\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  core::ManualClock clock(now * 1000);
  auto created = Guard::Create(*cfg, &clock, std::move(*e));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  guard_ = std::move(*created);
  Guard* g = guard_.get();
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_EQ(st->redeemed, 1);
  EXPECT_EQ(st->enforce.launched, 1);
  std::vector<int> pids;
  for (int i = 0; i < 400 && pids.empty(); ++i) {
    pids = enf->Pids("site_exp");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(pids.empty());
  std::string cg = opts_.cgroup.cpu_root + "/" + opts_.cgroup.prefix + "/site_exp";
  std::string dir = enf->SliverDir("site_exp");
  EXPECT_TRUE(fs::exists(cg));
  EXPECT_TRUE(fs::exists(dir));
  auto cls = internal::RunCommand(
      {"ip", "netns", "exec", net.ns_a(), "tc", "class", "show", "dev", net.dev_a()});
  ASSERT_TRUE(cls.ok());
  EXPECT_NE(cls->find("class htb 1:3 "), std::string::npos) << *cls;  // slot 1 -> 1:3

  clock.SetSeconds(now + 61);  // the rcap expires
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->enforce.removed, 1);
  for (int p : pids) EXPECT_TRUE(testing::DeadOrZombie(p)) << "pid " << p;
  EXPECT_FALSE(fs::exists(cg));
  EXPECT_FALSE(fs::exists(opts_.cgroup.memory_root + "/" + opts_.cgroup.prefix + "/site_exp"));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(opts_.disk_root + "/images/site_exp.img"));
  cls = internal::RunCommand(
      {"ip", "netns", "exec", net.ns_a(), "tc", "class", "show", "dev", net.dev_a()});
  ASSERT_TRUE(cls.ok());
  EXPECT_EQ(cls->find("class htb 1:3 "), std::string::npos) << *cls;
  EXPECT_EQ(g->StatusJson()["slivers"].size(), 0u);
}

}  // namespace
}  // namespace bourse::nodeguard
