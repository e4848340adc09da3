// Enforcement logic against the dry-run backends (no privileges needed).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nodeguard/enforcement.h"

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

class DryRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ng_dry_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  SliverSpec Spec(const std::string& name, uint32_t uid, uint32_t minor, int64_t mcores) {
    SliverSpec s;
    s.name = name;
    s.uid = uid;
    s.class_minor = minor;
    s.res = {.cpu_mcores = mcores,
             .mem_mib = 256,
             .disk_mib = 64,
             .net_min_kbps = 1000,
             .net_max_kbps = 5000};
    return s;
  }
  fs::path dir_;
};

TEST(CpuWeights, SharesAreProportionalToMcores) {
  EXPECT_EQ(CpuSharesFor(1000), 1024);
  EXPECT_EQ(CpuSharesFor(250), 256);
  EXPECT_EQ(CpuSharesFor(750), 768);
  EXPECT_EQ(CpuSharesFor(0), 2);  // kernel minimum
  EXPECT_EQ(CpuSharesFor(1000000), 262144);
}

TEST(CpuWeights, V2WeightIsLinearInShares) {
  EXPECT_EQ(CpuWeightFromShares(1024), 100);
  EXPECT_EQ(CpuWeightFromShares(3072), 300);  // runc's mapping would give 1:2.3, not 1:3
  EXPECT_EQ(CpuWeightFromShares(2), 1);
  EXPECT_EQ(CpuWeightFromShares(262144), 10000);
  EXPECT_EQ(CpuWeightFromShares(102400), 10000);
}

TEST_F(DryRunTest, WritesV1SettingsAndIsIdempotent) {
  auto e = Enforcer::Create(DryRunOptions(dir_));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  SliverSpec a = Spec("site_a", 200001, 2, 250);
  a.cpu_cap_mcores = 500;
  SliverSpec b = Spec("site_b", 200002, 3, 750);
  auto st = (*e)->Reconcile({a, b});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->created, 2);
  EXPECT_TRUE(st->link_changed);
  fs::path cg = dir_ / "cgroup/cpu/bourse";
  EXPECT_EQ(Read(cg / "site_a/cpu.shares"), "256");
  EXPECT_EQ(Read(cg / "site_b/cpu.shares"), "768");
  EXPECT_EQ(Read(cg / "site_a/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(Read(cg / "site_b/cpu.cfs_quota_us"), "-1");
  EXPECT_EQ(Read(cg / "site_a/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(Read(dir_ / "cgroup/memory/bourse/site_a/memory.limit_in_bytes"),
            std::to_string(256LL << 20));
  std::string log = Read(dir_ / "link/commands.log");
  EXPECT_NE(log.find("qdisc replace dev eth0 root handle 1: htb default fffe r2q"),
            std::string::npos);
  EXPECT_NE(log.find("classid 1:2 htb rate 1000kbit ceil 5000kbit"), std::string::npos);
  EXPECT_NE(log.find("200002 : 1:3"), std::string::npos);

  // Same desired state again: nothing written.
  auto mtime = fs::last_write_time(cg / "site_a/cpu.shares");
  auto again = (*e)->Reconcile({a, b});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->created, 0);
  EXPECT_EQ(again->updated, 0);
  EXPECT_EQ(again->unchanged, 2);
  EXPECT_FALSE(again->link_changed);
  EXPECT_EQ(fs::last_write_time(cg / "site_a/cpu.shares"), mtime);

  // A fresh enforcer (a restarted guard) sees the same state: nothing to do.
  auto e2 = Enforcer::Create(DryRunOptions(dir_));
  ASSERT_TRUE(e2.ok());
  auto restarted = (*e2)->Reconcile({a, b});
  ASSERT_TRUE(restarted.ok());
  EXPECT_EQ(restarted->unchanged, 2);
  EXPECT_FALSE(restarted->link_changed);

  // Only the difference is applied; a dropped sliver is removed.
  b.res.cpu_mcores = 1000;
  auto changed = (*e2)->Reconcile({b});
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->updated, 1);
  EXPECT_EQ(changed->removed, 1);
  EXPECT_EQ(Read(cg / "site_b/cpu.shares"), "1024");
  EXPECT_FALSE(fs::exists(cg / "site_a"));
  EXPECT_FALSE(fs::exists(dir_ / "disk/slivers/site_a"));
  EXPECT_NE(Read(dir_ / "link/classes").find("3 200002 1000 5000"), std::string::npos);
  EXPECT_EQ(Read(dir_ / "link/classes").find("2 200001"), std::string::npos);
}

TEST_F(DryRunTest, WritesV2SettingsWithLinearWeight) {
  EnforcerOptions o = DryRunOptions(dir_);
  o.cgroup = CgroupOptions::DryRun((dir_ / "cgroup").string(), CgroupMode::kV2);
  auto e = Enforcer::Create(o);
  ASSERT_TRUE(e.ok());
  SliverSpec a = Spec("site_a", 200001, 2, 1000);
  SliverSpec b = Spec("site_b", 200002, 3, 3000);
  b.cpu_cap_mcores = 1500;
  b.res.mem_mib = 0;
  ASSERT_TRUE((*e)->Reconcile({a, b}).ok());
  fs::path cg = dir_ / "cgroup/unified/bourse";
  EXPECT_EQ(Read(cg / "site_a/cpu.weight"), "100");
  EXPECT_EQ(Read(cg / "site_b/cpu.weight"), "300");
  EXPECT_EQ(Read(cg / "site_a/cpu.max"), "max 100000");
  EXPECT_EQ(Read(cg / "site_b/cpu.max"), "150000 100000");
  EXPECT_EQ(Read(cg / "site_b/memory.max"), "max");
  EXPECT_EQ(Read(cg / "cgroup.subtree_control"), "cpu memory");
}

TEST_F(DryRunTest, RejectsBadSpecsAndAppliesNothing) {
  auto e = Enforcer::Create(DryRunOptions(dir_));
  ASSERT_TRUE(e.ok());
  SliverSpec good = Spec("site_a", 200001, 2, 100);
  SliverSpec bad = Spec("../etc", 200002, 3, 100);
  auto r = (*e)->Reconcile({good, bad});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sliver.name"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "cgroup/cpu/bourse/site_a"));
  SliverSpec dup_uid = Spec("site_b", 200001, 3, 100);
  r = (*e)->Reconcile({good, dup_uid});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("uid"), std::string::npos);
  SliverSpec root_uid = Spec("site_c", 0, 4, 100);
  EXPECT_FALSE((*e)->Reconcile({root_uid}).ok());
  SliverSpec bad_res = Spec("site_d", 200004, 5, 100);
  bad_res.res.net_min_kbps = 9000;  // above net_max_kbps
  EXPECT_FALSE((*e)->Reconcile({bad_res}).ok());
}

TEST_F(DryRunTest, CheapPassSkipsUnchangedSlivers) {
  auto e = Enforcer::Create(DryRunOptions(dir_));
  ASSERT_TRUE(e.ok());
  std::vector<SliverSpec> v;
  for (uint32_t i = 0; i < 50; ++i)
    v.push_back(Spec("s" + std::to_string(i), 200000 + i, 2 + i, 10));
  ASSERT_TRUE((*e)->Reconcile(v).ok());
  auto r = (*e)->Reconcile(v, /*verify_kernel=*/false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->unchanged, 50);
  EXPECT_FALSE(r->link_changed);
  // A sliver removed behind our back is noticed even by the cheap pass.
  fs::remove_all(dir_ / "cgroup/cpu/bourse/s7");
  fs::remove_all(dir_ / "cgroup/cpuacct/bourse/s7");
  fs::remove_all(dir_ / "cgroup/memory/bourse/s7");
  fs::remove_all(dir_ / "disk/slivers/s7");
  r = (*e)->Reconcile(v, false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->created, 1);
  EXPECT_TRUE(fs::exists(dir_ / "cgroup/cpu/bourse/s7/cpu.shares"));
}

TEST(CgroupDetect, FailsClearlyWithoutCpuController) {
  auto r = CgroupOptions::Detect("/nonexistent-cgroup-root", "bourse");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no cgroup cpu controller"), std::string::npos);
}

}  // namespace
}  // namespace bourse::nodeguard

namespace bourse::nodeguard {
namespace {

// A sliver that bought no minimum still gets its ceiling: tc refuses
// "rate 0kbit", so the class is written with tc's smallest rate and the uid
// map holds the sliver (issue #13). The dry run writes what the real backend runs.
TEST_F(DryRunTest, ZeroMinimumStillGetsItsCeilingAndUidMapping) {
  auto e = Enforcer::Create(DryRunOptions(dir_));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  SliverSpec z = Spec("site_zero", 200001, 2, 100);
  z.res.net_min_kbps = 0;
  z.res.net_max_kbps = 3000;
  SliverSpec n = Spec("site_none", 200002, 3, 100);
  n.res.net_min_kbps = 0;
  n.res.net_max_kbps = 0;
  SliverSpec a = Spec("site_a", 200003, 4, 100);
  auto st = (*e)->Reconcile({z, n, a});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_TRUE((*e)->Failures().empty());
  std::string log = Read(dir_ / "link/commands.log");
  EXPECT_EQ(log.find("rate 0kbit"), std::string::npos) << log;
  EXPECT_EQ(log.find("ceil 0kbit"), std::string::npos) << log;
  EXPECT_NE(log.find("classid 1:2 htb rate 8bit ceil 3000kbit "), std::string::npos) << log;
  EXPECT_NE(log.find("classid 1:3 htb rate 8bit ceil 8bit "), std::string::npos) << log;
  EXPECT_NE(log.find("classid 1:4 htb rate 1000kbit ceil 5000kbit "), std::string::npos) << log;
  EXPECT_NE(log.find("200001 : 1:2"), std::string::npos) << log;
  EXPECT_NE(log.find("200002 : 1:3"), std::string::npos) << log;
  // Read back as rate 0: the next pass writes nothing.
  auto again = (*e)->Reconcile({z, n, a});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->link_changed);
  EXPECT_TRUE((*e)->Failures().empty());
}

// A link that cannot be read back is a failure of every sliver on it, kept in
// Failures() with the step and counted over passes, not only an error line.
TEST_F(DryRunTest, LinkFailureIsNamedPerSliverAndCounted) {
  EnforcerOptions o = DryRunOptions(dir_);
  auto e = Enforcer::Create(o);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  // The dry-run link directory is a file: nothing can be written there.
  std::ofstream(dir_ / "link") << "not a directory";
  SliverSpec a = Spec("site_a", 200001, 2, 100);
  auto st = (*e)->Reconcile({a});
  EXPECT_FALSE(st.ok());
  auto f = (*e)->Failures();
  ASSERT_EQ(f.count("site_a"), 1u);
  EXPECT_EQ(f["site_a"].step, "link");
  EXPECT_EQ(f["site_a"].attempts, 1);
  EXPECT_FALSE(f["site_a"].message.empty());
  EXPECT_FALSE((*e)->Reconcile({a}, /*verify_kernel=*/false).ok());
  EXPECT_EQ((*e)->Failures()["site_a"].attempts, 2);
  fs::remove(dir_ / "link");
  auto ok = (*e)->Reconcile({a}, false);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE((*e)->Failures().empty());
}

}  // namespace
}  // namespace bourse::nodeguard
