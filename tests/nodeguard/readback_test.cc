// Enforcer::ReadBack against the dry-run backends: what Reconcile wrote is read
// back through the same files and converted to resource units; a file changed
// behind the enforcer's back (drift) shows in the read-back and in
// ReadbackDifferences. The real kernel: tests/nodeguard/kernel/readback_kernel_test.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "nodeguard/enforcement.h"

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;

class ReadBackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ng_readback_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Enforcer> Make(CgroupMode mode) {
    EnforcerOptions o = DryRunOptions(dir_.string());
    o.cgroup = CgroupOptions::DryRun((dir_ / "cgroup").string(), mode);
    auto e = Enforcer::Create(o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(*e) : nullptr;
  }
  static SliverSpec Spec(const std::string& name, uint32_t uid, uint32_t minor, int64_t mcores) {
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
  // Overwrites a dry-run setting, as an operator (or a bug) would in the kernel.
  static void Write(const fs::path& p, const std::string& v) { std::ofstream(p) << v << "\n"; }

  fs::path dir_;
};

TEST_F(ReadBackTest, V1ReadsBackWhatWasEnforcedInResourceUnits) {
  auto e = Make(CgroupMode::kV1);
  ASSERT_NE(e, nullptr);
  SliverSpec a = Spec("site_a", 200001, 0x11, 333);
  a.cpu_cap_mcores = 750;
  SliverSpec b = Spec("site_b", 200002, 0x12, 1500);
  b.res.disk_mib = 0;
  b.res.net_min_kbps = 0;        // written as tc's 8bit, read back as 0
  b.res.net_max_kbps = 1234567;  // tc shows 1234Mbit
  ASSERT_TRUE(e->Reconcile({a, b}).ok());
  auto k = e->ReadBack({a, b});
  ASSERT_EQ(k.size(), 2u);
  const KernelReadback& ka = k["site_a"];
  EXPECT_TRUE(ka.problems.empty()) << ka.ToJson().dump();
  EXPECT_EQ(ka.cpu_shares, CpuSharesFor(333));
  EXPECT_FALSE(ka.cpu_weight.has_value());
  EXPECT_EQ(ka.cpu_mcores, 333);  // v1 shares invert exactly
  EXPECT_EQ(ka.cpu_cap_mcores, 750);
  EXPECT_EQ(ka.mem_mib, 256);
  EXPECT_EQ(ka.net_min_kbps, 1000);
  EXPECT_EQ(ka.net_max_kbps, 5000);
  EXPECT_EQ(ka.net_classified, true);
  EXPECT_EQ(ka.disk_mib, 64);
  EXPECT_FALSE(ka.disk_fs_mib.has_value());  // no filesystem in a dry run
  EXPECT_TRUE(ReadbackDifferences(a, ka).empty()) << ka.ToJson().dump();
  const KernelReadback& kb = k["site_b"];
  EXPECT_EQ(kb.cpu_mcores, 1500);
  EXPECT_EQ(kb.cpu_cap_mcores, 0);  // no quota
  EXPECT_EQ(kb.net_min_kbps, 0);
  EXPECT_EQ(kb.net_max_kbps, 1234000);
  EXPECT_EQ(kb.disk_mib, 0);
  EXPECT_TRUE(ReadbackDifferences(b, kb).empty()) << kb.ToJson().dump();
  nlohmann::json j = ka.ToJson();
  EXPECT_EQ(j["cpu_shares"], CpuSharesFor(333));
  EXPECT_FALSE(j.contains("cpu_weight"));
  EXPECT_EQ(j["disk_fs_mib"], nullptr);
  EXPECT_EQ(j["problems"], nlohmann::json::array());
}

TEST_F(ReadBackTest, EveryAmountOfCpuInvertsExactlyInV1) {
  // The share of every amount from 1 to 256 cores is distinct, so reading it
  // back gives the amount itself.
  auto e = Make(CgroupMode::kV1);
  ASSERT_NE(e, nullptr);
  SliverSpec s = Spec("site_a", 200001, 0x11, 1);
  ASSERT_TRUE(e->Reconcile({s}).ok());
  fs::path shares = dir_ / "cgroup/cpu/bourse/site_a/cpu.shares";
  ASSERT_TRUE(fs::exists(shares));
  for (int64_t m = 3; m <= 256000; m += 997) {
    Write(shares, std::to_string(CpuSharesFor(m)));
    EXPECT_EQ(e->ReadBack({s})["site_a"].cpu_mcores, m) << m;
  }
}

TEST_F(ReadBackTest, V2ReadsTheWeightAndTheSmallestAmountThatWritesIt) {
  auto e = Make(CgroupMode::kV2);
  ASSERT_NE(e, nullptr);
  SliverSpec a = Spec("site_a", 200001, 0x11, 505);
  a.cpu_cap_mcores = 1250;
  a.res.mem_mib = 0;  // unlimited: memory.max "max"
  ASSERT_TRUE(e->Reconcile({a}).ok());
  KernelReadback k = e->ReadBack({a})["site_a"];
  EXPECT_TRUE(k.problems.empty()) << k.ToJson().dump();
  EXPECT_FALSE(k.cpu_shares.has_value());
  EXPECT_EQ(k.cpu_weight, CpuWeightFromShares(CpuSharesFor(505)));  // 50
  EXPECT_EQ(k.cpu_mcores, 500);                                     // 500..509 all write weight 50
  EXPECT_EQ(k.cpu_cap_mcores, 1250);
  EXPECT_EQ(k.mem_mib, 0);
  // The weight, not the rounded amount, is what is compared.
  EXPECT_TRUE(ReadbackDifferences(a, k).empty()) << k.ToJson().dump();
  EXPECT_EQ(k.ToJson()["cpu_weight"], 50);
}

TEST_F(ReadBackTest, DriftShowsInTheReadBackAndItsDifferences) {
  auto e = Make(CgroupMode::kV1);
  ASSERT_NE(e, nullptr);
  SliverSpec a = Spec("site_a", 200001, 0x11, 500);
  ASSERT_TRUE(e->Reconcile({a}).ok());
  Write(dir_ / "cgroup/cpu/bourse/site_a/cpu.shares", "1024");
  Write(dir_ / "cgroup/memory/bourse/site_a/memory.limit_in_bytes", "9223372036854771712");
  Write(dir_ / "link/classes", "1 0 1000000 1000000\n");  // the sliver's class is gone
  KernelReadback k = e->ReadBack({a})["site_a"];
  EXPECT_EQ(k.cpu_shares, 1024);
  EXPECT_EQ(k.cpu_mcores, 1000);
  EXPECT_EQ(k.mem_mib, 0);  // v1's "unlimited"
  EXPECT_FALSE(k.net_min_kbps.has_value());
  ASSERT_EQ(k.problems.size(), 1u);
  EXPECT_EQ(k.problems[0], "HTB class 1:11 is not installed");
  std::vector<std::string> d = ReadbackDifferences(a, k);
  ASSERT_EQ(d.size(), 4u) << k.ToJson().dump();
  EXPECT_EQ(d[0], "cpu_shares: kernel 1024, enforced 512");
  EXPECT_EQ(d[1], "mem_mib: kernel 0, enforced 256");
  EXPECT_EQ(d[2], "net_min_kbps: not read");
  EXPECT_EQ(d[3], "net_max_kbps: not read");
  // A verifying pass puts it right, and the read-back agrees again.
  ASSERT_TRUE(e->Reconcile({a}, true).ok());
  EXPECT_TRUE(ReadbackDifferences(a, e->ReadBack({a})["site_a"]).empty());
}

TEST_F(ReadBackTest, ASliverThatIsNotThereIsNamedInProblems) {
  auto e = Make(CgroupMode::kV1);
  ASSERT_NE(e, nullptr);
  ASSERT_TRUE(e->Reconcile({}).ok());
  KernelReadback k = e->ReadBack({Spec("site_gone", 200009, 0x19, 100)})["site_gone"];
  EXPECT_FALSE(k.cpu_shares.has_value());
  EXPECT_FALSE(k.mem_mib.has_value());
  EXPECT_FALSE(k.disk_mib.has_value());
  ASSERT_FALSE(k.problems.empty());
  EXPECT_NE(k.problems[0].find("site_gone/cpu.shares: no such file"), std::string::npos)
      << k.problems[0];
  EXPECT_FALSE(ReadbackDifferences(Spec("site_gone", 200009, 0x19, 100), k).empty());
}

TEST_F(ReadBackTest, ANodeWithoutLinkOrDiskEnforcementExpectsNeither) {
  EnforcerOptions o = DryRunOptions(dir_.string());
  o.link.iface.clear();
  o.disk_root.clear();
  auto e = Enforcer::Create(o);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  SliverSpec a = Spec("site_a", 200001, 0x11, 500);
  ASSERT_TRUE((*e)->Reconcile({a}).ok());
  KernelReadback k = (*e)->ReadBack({a})["site_a"];
  EXPECT_FALSE(k.link);
  EXPECT_FALSE(k.disk);
  EXPECT_FALSE(k.net_min_kbps.has_value());
  EXPECT_FALSE(k.disk_mib.has_value());
  EXPECT_TRUE(k.problems.empty());
  EXPECT_TRUE(ReadbackDifferences(a, k).empty()) << k.ToJson().dump();
}

}  // namespace
}  // namespace bourse::nodeguard
