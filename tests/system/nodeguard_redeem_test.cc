// The real `bourse-nodeguard` binary: the `redeem` contract of DESIGN §7
// (exit code, JSON on stdout), state shared between separate redeem
// processes, and `run --once` enforcing what `redeem` recorded (dry-run
// backends, so no privileges are needed).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/keys.h"
#include "ledger/rcap.h"

namespace bourse {
namespace {

namespace fs = std::filesystem;

std::string Binary() { return std::string(BOURSE_BINARY_DIR) + "/nodeguard/bourse-nodeguard"; }

struct Ran {
  int code = -1;
  std::string out;
};

Ran RunBinary(const std::vector<std::string>& args) {
  int p[2];
  if (pipe(p) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    std::vector<char*> argv{const_cast<char*>("bourse-nodeguard")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(Binary().c_str(), argv.data());
    _exit(127);
  }
  close(p[1]);
  Ran r;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class NodeguardBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(Binary())) << Binary();
    char tmpl[] = "/tmp/ng_sys_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ / "trust") << site_.public_key().ToText() << "\n";
    now_ = core::SystemClock::Get().NowSeconds();
    root_.emplace(ledger::IssueRoot(site_, {.id = "",
                                            .holder = broker_.public_key(),
                                            .node = "n1",
                                            .res = {.cpu_mcores = 2000,
                                                    .mem_mib = 1024,
                                                    .disk_mib = 0,
                                                    .net_min_kbps = 1000,
                                                    .net_max_kbps = 10000},
                                            .interval = {now_ - 60, now_ + 3600}})
                      .value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string WriteChain(const std::string& name, const ledger::Rcap& leaf) {
    std::string path = (dir_ / (name + ".json")).string();
    std::ofstream(path) << ledger::ChainToJson(std::vector<ledger::Rcap>{*root_, leaf}).dump();
    return path;
  }
  ledger::Rcap Leaf(int64_t cpu) {
    return ledger::Delegate(*root_, broker_,
                            {.id = "",
                             .holder = alice_.public_key(),
                             .res = {.cpu_mcores = cpu,
                                     .mem_mib = 64,
                                     .disk_mib = 0,
                                     .net_min_kbps = 100,
                                     .net_max_kbps = 1000},
                             .interval = {now_ - 1, now_ + 600}})
        .value();
  }
  Ran Redeem(const std::string& file) {
    return RunBinary({"redeem", "--state", (dir_ / "state").string(), "--trust",
                      (dir_ / "trust").string(), "--node", "n1", file});
  }

  fs::path dir_;
  core::PrivateKey site_ = core::PrivateKey::Generate().value();
  core::PrivateKey broker_ = core::PrivateKey::Generate().value();
  core::PrivateKey alice_ = core::PrivateKey::Generate().value();
  int64_t now_ = 0;
  std::optional<ledger::Rcap> root_;
};

TEST_F(NodeguardBinaryTest, RedeemPrintsEffectiveResourcesOrRefusal) {
  ledger::Rcap leaf = Leaf(1500);
  Ran ok = Redeem(WriteChain("site_web", leaf));
  ASSERT_EQ(ok.code, 0) << ok.out;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["state"], "active");
  EXPECT_EQ(j["res"]["cpu_mcores"], 1500);
  EXPECT_EQ(j["slice"], "site_web");

  // A second process sees the first one's redemption: the sibling no longer fits.
  Ran over = Redeem(WriteChain("site_other", Leaf(1000)));
  EXPECT_EQ(over.code, 1) << over.out;
  EXPECT_EQ(nlohmann::json::parse(over.out)["refused"], "oversubscribed");
  Ran twice = Redeem(WriteChain("site_thief", leaf));
  EXPECT_EQ(twice.code, 1);
  EXPECT_EQ(nlohmann::json::parse(twice.out)["refused"], "double_redemption");

  ledger::Rcap forged = Leaf(100);
  forged.res.cpu_mcores = 2000;
  Ran bad = Redeem(WriteChain("site_forged", forged));
  EXPECT_EQ(bad.code, 1);
  auto b = nlohmann::json::parse(bad.out);
  EXPECT_EQ(b["refused"], "bad_signature");
  EXPECT_TRUE(b["detail"].is_string());

  // `run --once` (dry-run backends) enforces exactly the redeemed chain.
  std::ofstream(dir_ / "guard.conf") << "node_id = n1\ntrust_file = " << (dir_ / "trust").string()
                                     << "\nstate_dir = " << (dir_ / "state").string()
                                     << "\ncgroup_mode = dry-run\ninterface = eth0\n";
  Ran run = RunBinary({"run", "--config", (dir_ / "guard.conf").string(), "--once"});
  ASSERT_EQ(run.code, 0) << run.out;
  auto status = nlohmann::json::parse(run.out);
  ASSERT_EQ(status["slivers"].size(), 1u);
  EXPECT_EQ(status["slivers"][0]["slice"], "site_web");
  EXPECT_EQ(status["slivers"][0]["effective"]["cpu_mcores"], 1500);
  EXPECT_EQ(status["refusals"].size(), 3u);
  std::ifstream shares(dir_ / "state/dry/cgroup/cpu/bourse/site_web/cpu.shares");
  int v = 0;
  shares >> v;
  EXPECT_EQ(v, 1536);
}

TEST_F(NodeguardBinaryTest, UsageErrorExitsTwo) {
  EXPECT_EQ(RunBinary({"redeem", "--state", (dir_ / "s").string()}).code, 2);
  EXPECT_EQ(RunBinary({"frobnicate"}).code, 2);
}

}  // namespace
}  // namespace bourse
