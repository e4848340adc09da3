// Best-effort slivers against the real kernel (root, issue #20): the guard
// holds, in its own database, the broker's list of slices instantiated on the
// node (meta "best_effort", what a pass keeps from GET /v1/nodes/{node}/
// bindings), as a node rebooted with the broker down starts from it.
//   * A slice instantiated without any rcap gets a sliver: its boot script
//     runs as the sliver's uid inside the sliver's cgroups, with the default
//     share (all of an otherwise idle node's weight), its memory limit and
//     its loop-mounted disk.
//   * Two best-effort slices (shares 1 and 3) and a third with an rcap for
//     400 of the node's 1000 mcores, all busy on one CPU: measured by the
//     kernel's own CPU accounting (cpuacct.usage / cpu.stat usage_usec), the
//     rcap holder gets at least its 40% and the other two split the rest 1:3
//     (within 10%).
// These tests measure CPU time, so ctest runs them RUN_SERIAL.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/clock.h"
#include "nodeguard/best_effort.h"
#include "nodeguard/enforcement.h"
#include "nodeguard/guard.h"
#include "nodeguard/state_store.h"
#include "tests/nodeguard/chain_util.h"
#include "tests/nodeguard/kernel/kernel_util.h"

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;

std::string Tag() { return std::to_string(getpid() % 100000); }

class BestEffortKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (real cgroups, mounts)";
    auto cg = CgroupOptions::Detect("/sys/fs/cgroup", "bourse_be_" + Tag());
    if (!cg.ok()) GTEST_SKIP() << "no cgroup cpu controller: " << cg.status().ToString();
    char tmpl[] = "/tmp/ng_be_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    opts_.cgroup = *cg;
    opts_.disk_root = (dir_ / "disk").string();
    opts_.run_dir = (dir_ / "state/run").string();
    opts_.launch = true;
    fs::create_directories(dir_ / "state/spool");
    std::ofstream(dir_ / "trust") << p_.site.public_key().ToText() << "\n";
    now_ = core::SystemClock::Get().NowSeconds();
    clock_.SetSeconds(now_);
  }
  void TearDown() override {
    if (guard_) {
      core::Status s = guard_->enforcer().TearDownAll();
      EXPECT_TRUE(s.ok()) << s.ToString();
      guard_.reset();
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // The guard of a one-CPU node (cpu_mcores = 1000) whose database holds
  // `slices` as the broker's last list of slices instantiated on it.
  void StartGuard(const std::vector<BestEffortSlice>& slices) {
    {
      auto store = StateStore::Open((dir_ / "state").string());
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      ASSERT_TRUE((*store)->PutMeta("best_effort", BestEffortToJson(slices).dump()).ok());
    }
    auto e = Enforcer::Create(opts_);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    // The machine is shared: weight the test subtree well above other
    // tenants' tasks (the ratios inside it are what is checked).
    std::string top = opts_.cgroup.cpu_root + "/" + opts_.cgroup.prefix;
    if (opts_.cgroup.mode == CgroupMode::kV1) {
      std::ofstream(top + "/cpu.shares") << 20480;
    } else {
      std::ofstream(top + "/cpu.weight") << 2000;
    }
    auto cfg = GuardConfig::Parse("node_id = n1\ntrust_file = " + (dir_ / "trust").string() +
                                  "\nstate_dir = " + (dir_ / "state").string() +
                                  "\nuid_base = 2100300\ncpu_mcores = 1000\n");
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    auto g = Guard::Create(*cfg, &clock_, std::move(*e));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    guard_ = std::move(*g);
  }
  BestEffortSlice Instantiated(const std::string& slice, int64_t share, const std::string& script) {
    return {.slice = slice,
            .expires = now_ + 3600,
            .boot_script = script,
            .share = share,
            .disk_mib = 64,
            .mem_mib = 256};
  }
  // The sliver's pids once one of them runs `comm` (empty if not within 2 s).
  std::vector<int> WaitForComm(const std::string& name, const std::string& comm) {
    for (int i = 0; i < 400; ++i) {
      std::vector<int> p = guard_->enforcer().Pids(name);
      for (int pid : p) {
        if (internal::ReadFileText("/proc/" + std::to_string(pid) + "/comm").value_or("") ==
            comm + "\n") {
          return p;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return {};
  }
  nlohmann::json Sliver(const std::string& slice) {
    nlohmann::json status = guard_->StatusJson();  // kept: the loop reads into it
    for (auto& s : status["slivers"]) {
      if (s["slice"] == slice) return s;
    }
    return nullptr;
  }
  std::string CgroupFile(const std::string& root, const std::string& slice, const char* file) {
    auto t = internal::ReadFileText(root + "/" + opts_.cgroup.prefix + "/" + slice + "/" + file);
    return t.ok() ? *t : "";
  }

  fs::path dir_;
  EnforcerOptions opts_;
  testing::Principals p_;
  int64_t now_ = 0;
  core::ManualClock clock_{0};
  std::unique_ptr<Guard> guard_;
};

TEST_F(BestEffortKernelTest, SliceWithoutAnRcapGetsASliverWithTheDefaultShare) {
  // The defaults set_resources starts from: share 1, 64 MiB disk, 256 MiB memory.
  StartGuard(
      {Instantiated("mit_free", 1, "cat /proc/self/cgroup > cg; id -u > uid; exec sleep 600\n")});
  auto st = guard_->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->enforce.created, 1);
  EXPECT_EQ(st->enforce.launched, 1);
  ASSERT_FALSE(testing::WaitPids(guard_->enforcer(), "mit_free").empty()) << "the boot script did not start";
  // The script's `cat` and `id` run in the sliver too, and an exiting one
  // already reads as in the root cgroup: look once the script has reached its
  // `exec sleep`, when the shell has reaped them.
  std::vector<int> pids = WaitForComm("mit_free", "sleep");
  ASSERT_FALSE(pids.empty()) << "the boot script did not reach its sleep";
  nlohmann::json s = Sliver("mit_free");
  ASSERT_TRUE(s.is_object()) << guard_->StatusJson().dump();
  const int64_t uid = s["uid"];
  EXPECT_EQ(uid, 2100301);
  for (int p : pids) {
    struct stat ps;
    ASSERT_EQ(stat(("/proc/" + std::to_string(p)).c_str(), &ps), 0);
    EXPECT_EQ(static_cast<int64_t>(ps.st_uid), uid);
    auto cg = internal::ReadFileText("/proc/" + std::to_string(p) + "/cgroup");
    ASSERT_TRUE(cg.ok());
    EXPECT_NE(cg->find("/" + opts_.cgroup.prefix + "/mit_free\n"), std::string::npos) << *cg;
  }
  // The only sliver: the whole spare CPU (1000 mcores), nothing bought.
  EXPECT_EQ(s["effective"]["cpu_mcores"], 0);
  EXPECT_EQ(s["enforced"]["cpu_mcores"], 1000);
  EXPECT_EQ(s["best_effort"]["share"], 1);
  if (opts_.cgroup.mode == CgroupMode::kV1) {
    EXPECT_EQ(std::stoll(CgroupFile(opts_.cgroup.cpu_root, "mit_free", "cpu.shares")), 1024);
    EXPECT_EQ(std::stoll(CgroupFile(opts_.cgroup.memory_root, "mit_free", "memory.limit_in_bytes")),
              256LL << 20);
  } else {
    EXPECT_EQ(std::stoll(CgroupFile(opts_.cgroup.cpu_root, "mit_free", "cpu.weight")), 100);
    EXPECT_EQ(std::stoll(CgroupFile(opts_.cgroup.memory_root, "mit_free", "memory.max")),
              256LL << 20);
  }
  // Its disk is mounted, owned by its uid; the kernel agrees with the guard.
  std::string dir = guard_->enforcer().SliverDir("mit_free");
  struct stat ds;
  ASSERT_EQ(stat(dir.c_str(), &ds), 0);
  EXPECT_EQ(static_cast<int64_t>(ds.st_uid), uid);
  EXPECT_EQ(s["kernel"]["disk_mib"], 64) << s.dump();
  EXPECT_EQ(s["kernel"]["differences"], nlohmann::json::array()) << s.dump();
  core::Result<std::string> uid_text = std::string();
  for (int i = 0; i < 400; ++i) {
    uid_text = internal::ReadFileText(dir + "/uid");
    if (uid_text.ok() && !uid_text->empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(uid_text.ok() && !uid_text->empty());
  EXPECT_EQ(std::stoll(*uid_text), uid);

  // The slice expires: the next pass tears the sliver down.
  clock_.SetSeconds(now_ + 3601);
  st = guard_->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->enforce.removed, 1);
  for (int p : pids) EXPECT_TRUE(testing::DeadOrZombie(p)) << "pid " << p;
  EXPECT_FALSE(fs::exists(opts_.cgroup.cpu_root + "/" + opts_.cgroup.prefix + "/mit_free"));
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(BestEffortKernelTest, RcapHolderGetsWhatItBoughtAndBestEffortSplitsTheRestByShare) {
  const std::string busy = "exec /bin/sh -c 'while :; do :; done'\n";
  // mit_paid holds an rcap for 400 of the node's 1000 mcores and is
  // instantiated too (share 1): 400 + 600/5 = 520; mit_one 120; mit_three 360.
  auto root = testing::Root(p_, "n1", now_ - 60, now_ + 3600);
  auto leaf = testing::Child(root, p_.broker, p_.alice.public_key(), testing::Res(400, 64, 0, 0, 0),
                             now_ - 1, now_ + 3600);
  nlohmann::json in = {{"slice", "mit_paid"},
                       {"boot_script", busy},
                       {"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{root, leaf})}};
  std::ofstream(dir_ / "state/spool/paid.json") << in.dump();
  StartGuard({Instantiated("mit_one", 1, busy), Instantiated("mit_three", 3, busy),
              Instantiated("mit_paid", 1, busy)});
  auto st = guard_->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_EQ(st->redeemed, 1);
  EXPECT_EQ(st->enforce.launched, 3);
  EXPECT_EQ(Sliver("mit_paid")["enforced"]["cpu_mcores"], 520);
  EXPECT_EQ(Sliver("mit_one")["enforced"]["cpu_mcores"], 120);
  EXPECT_EQ(Sliver("mit_three")["enforced"]["cpu_mcores"], 360);
  // Everything on one CPU, so the three contend for it fully.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  for (const char* n : {"mit_paid", "mit_one", "mit_three"}) {
    std::vector<int> pids = testing::WaitPids(guard_->enforcer(), n);
    ASSERT_FALSE(pids.empty()) << n << ": the boot script did not start";
    for (int p : pids) ASSERT_EQ(sched_setaffinity(p, sizeof one, &one), 0) << n;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto u0 = guard_->enforcer().Usage();
  std::this_thread::sleep_for(std::chrono::seconds(6));
  auto u1 = guard_->enforcer().Usage();
  auto used = [&](const char* n) { return static_cast<double>(u1[n].cpu_usec - u0[n].cpu_usec); };
  double paid = used("mit_paid"), a = used("mit_one"), b = used("mit_three");
  double total = paid + a + b;
  ASSERT_GT(a, 0);
  std::printf(
      "kernel CPU over 6 s on CPU 0: paid=%.3f s one=%.3f s three=%.3f s; paid %.1f%% "
      "(bought 40%%), three/one=%.3f (want 3)\n",
      paid / 1e6, a / 1e6, b / 1e6, 100 * paid / total, b / a);
  EXPECT_GE(paid / total, 0.40);
  EXPECT_NEAR(b / a, 3.0, 0.3);
}

}  // namespace
}  // namespace bourse::nodeguard
