// Enforcer::ReadBack against the real kernel (root): cgroups (v1 or v2, as
// the machine mounts them), HTB classes and the nft uid map on a veth pair
// between two network namespaces the test creates, loop-mounted ext4 disks.
// What ReadBack reports equals what Reconcile enforced; a setting changed
// behind the guard's back shows in the read-back until a verifying pass puts
// it right. Everything is removed even on failure (TearDownAll, VethPair).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "nodeguard/enforcement.h"
#include "nodeguard/internal/exec.h"
#include "tests/nodeguard/kernel/kernel_util.h"

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;

std::string Tag() { return "rb" + std::to_string(getpid() % 100000); }

class ReadBackKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (real cgroups, tc, mounts)";
    auto cg = CgroupOptions::Detect("/sys/fs/cgroup", "bourse_test_" + Tag());
    if (!cg.ok()) GTEST_SKIP() << "no cgroup cpu controller: " << cg.status().ToString();
    net_ = std::make_unique<testing::VethPair>(Tag());
    ASSERT_TRUE(net_->ok()) << "could not create namespaces and veth";
    char tmpl[] = "/tmp/ng_rb_kernel_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    EnforcerOptions o;
    o.cgroup = *cg;
    o.link.iface = net_->dev_a();
    o.link.netns = net_->ns_a();
    o.link.link_kbps = 20000;
    o.link.default_min_kbps = 500;
    o.disk_root = (dir_ / "disk").string();
    o.run_dir = (dir_ / "run").string();
    o.launch = false;
    opts_ = o;
    auto e = Enforcer::Create(o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    enforcer_ = std::move(*e);
  }
  void TearDown() override {
    if (enforcer_) {
      core::Status s = enforcer_->TearDownAll();
      EXPECT_TRUE(s.ok()) << s.ToString();
      enforcer_.reset();
    }
    net_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string CgroupFile(const std::string& sliver, const std::string& file) const {
    return opts_.cgroup.cpu_root + "/" + opts_.cgroup.prefix + "/" + sliver + "/" + file;
  }

  EnforcerOptions opts_;
  std::unique_ptr<testing::VethPair> net_;
  fs::path dir_;
  std::unique_ptr<Enforcer> enforcer_;
};

TEST_F(ReadBackKernelTest, ReadBackEqualsWhatWasEnforced) {
  SliverSpec a;
  a.name = "rb_a";
  a.uid = 2100021;
  a.class_minor = 0x21;
  a.res = {.cpu_mcores = 700,
           .mem_mib = 96,
           .disk_mib = 32,
           .net_min_kbps = 3000,
           .net_max_kbps = 12000};
  a.cpu_cap_mcores = 1500;
  SliverSpec b;
  b.name = "rb_b";
  b.uid = 2100022;
  b.class_minor = 0x22;
  b.res = {.cpu_mcores = 250, .mem_mib = 0, .disk_mib = 0, .net_min_kbps = 0, .net_max_kbps = 5000};
  auto st = enforcer_->Reconcile({a, b});
  ASSERT_TRUE(st.ok()) << st.status().ToString();

  auto k = enforcer_->ReadBack({a, b});
  const KernelReadback& ka = k["rb_a"];
  EXPECT_TRUE(ka.problems.empty()) << ka.ToJson().dump();
  if (opts_.cgroup.mode == CgroupMode::kV1) {
    EXPECT_EQ(ka.cpu_shares, CpuSharesFor(700));
    EXPECT_EQ(ka.cpu_mcores, 700);
  } else {
    EXPECT_EQ(ka.cpu_weight, CpuWeightFromShares(CpuSharesFor(700)));
    EXPECT_EQ(ka.cpu_mcores, 700);  // weight 70: 700..709
  }
  EXPECT_EQ(ka.cpu_cap_mcores, 1500);
  EXPECT_EQ(ka.mem_mib, 96);
  EXPECT_EQ(ka.net_min_kbps, 3000);
  EXPECT_EQ(ka.net_max_kbps, 12000);
  EXPECT_EQ(ka.net_classified, true);
  EXPECT_EQ(ka.disk_mib, 32);  // the loop device's size
  ASSERT_TRUE(ka.disk_fs_mib.has_value());
  EXPECT_GT(*ka.disk_fs_mib, 0);
  EXPECT_LE(*ka.disk_fs_mib, 32);  // ext4's metadata comes off the top
  EXPECT_TRUE(ReadbackDifferences(a, ka).empty()) << ka.ToJson().dump();

  const KernelReadback& kb = k["rb_b"];
  EXPECT_TRUE(kb.problems.empty()) << kb.ToJson().dump();
  EXPECT_EQ(kb.cpu_mcores, 250);
  EXPECT_EQ(kb.cpu_cap_mcores, 0);  // no quota
  EXPECT_EQ(kb.mem_mib, 0);         // unlimited
  EXPECT_EQ(kb.net_min_kbps, 0);    // tc's 8bit
  EXPECT_EQ(kb.net_max_kbps, 5000);
  EXPECT_EQ(kb.disk_mib, 0);  // nothing bought: nothing mounted
  EXPECT_TRUE(ReadbackDifferences(b, kb).empty()) << kb.ToJson().dump();

  // Drift: the CPU share and the class's ceiling changed behind the guard's back.
  std::string share_file = opts_.cgroup.mode == CgroupMode::kV1 ? "cpu.shares" : "cpu.weight";
  std::ofstream(CgroupFile("rb_a", share_file))
      << (opts_.cgroup.mode == CgroupMode::kV1 ? "2048" : "200");
  ASSERT_TRUE(testing::Sh({"ip", "netns", "exec", net_->ns_a(), "tc", "class", "change", "dev",
                           net_->dev_a(), "parent", "1:1", "classid", "1:21", "htb", "rate",
                           "3000kbit", "ceil", "4000kbit"}));
  KernelReadback drift = enforcer_->ReadBack({a})["rb_a"];
  EXPECT_EQ(drift.cpu_mcores, 2000);
  EXPECT_EQ(drift.net_max_kbps, 4000);
  std::vector<std::string> d = ReadbackDifferences(a, drift);
  ASSERT_EQ(d.size(), 2u) << drift.ToJson().dump();
  EXPECT_EQ(d[1], "net_max_kbps: kernel 4000, enforced 12000");
  // A verifying pass writes the enforced values again; the kernel agrees.
  ASSERT_TRUE(enforcer_->Reconcile({a, b}, true).ok());
  KernelReadback fixed = enforcer_->ReadBack({a})["rb_a"];
  EXPECT_TRUE(ReadbackDifferences(a, fixed).empty()) << fixed.ToJson().dump();
  EXPECT_EQ(fixed.cpu_mcores, 700);
  EXPECT_EQ(fixed.net_max_kbps, 12000);
}

}  // namespace
}  // namespace bourse::nodeguard
