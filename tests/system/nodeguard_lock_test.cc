// Issue #14: one guard daemon per state directory. A second `bourse-nodeguard
// run` on the same state exits at start naming the holder; the lock dies with
// the first (kill -9), so a restart works.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/keys.h"
#include "tests/system/run_command.h"

namespace bourse::systest {
namespace {

namespace fs = std::filesystem;

std::string GuardBinary() { return std::string(BOURSE_BINARY_DIR) + "/nodeguard/bourse-nodeguard"; }

pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
  return SpawnLogged(args, log);
}

// Waits up to `seconds` for pid to exit: its exit code, or -2 (still running).
int WaitExit(pid_t pid, int seconds) {
  for (int i = 0; i < seconds * 100; ++i) {
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -2;
}

void Kill9(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
}

class NodeguardLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bourse-guardlock-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto site = core::PrivateKey::Generate();
    auto broker = core::PrivateKey::Generate();
    auto node = core::PrivateKey::Generate();
    ASSERT_TRUE(site.ok() && broker.ok() && node.ok());
    ASSERT_TRUE(node->SavePem((dir_ / "node.pem").string()).ok());
    std::ofstream(dir_ / "trust") << site->public_key().ToText() << "\n";
    std::ofstream(dir_ / "guard.conf")
        << "node_id = n1\nnode_key = " << (dir_ / "node.pem").string()
        << "\ntrust_file = " << (dir_ / "trust").string()
        << "\nstate_dir = " << (dir_ / "state").string()
        << "\nbroker_url = http://127.0.0.1:1\nbroker_key = " << broker->public_key().ToText()
        << "\ncgroup_mode = dry-run\ninterface = eth0\nlink_kbps = 100000\n"
           "default_min_kbps = 1000\ncpu_mcores = 4000\ndisk_root = none\nlaunch = false\n"
           "reconcile_period_s = 1\n";
  }
  void TearDown() override {
    Kill9(first_);
    Kill9(second_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Starts a daemon and waits for its "status on" line.
  pid_t StartDaemon(const std::string& log) {
    pid_t pid = Spawn({GuardBinary(), "run", "--config", (dir_ / "guard.conf").string()},
                      (dir_ / log).string());
    for (int i = 0; i < 1000; ++i) {
      if (ReadAll(dir_ / log).find("status on") != std::string::npos) return pid;
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pid;
  }

  fs::path dir_;
  pid_t first_ = -1, second_ = -1;
};

TEST_F(NodeguardLockTest, SecondDaemonOnTheSameStateExitsNamingTheHolder) {
  first_ = StartDaemon("first.log");
  ASSERT_GT(first_, 0) << ReadAll(dir_ / "first.log");

  second_ = Spawn({GuardBinary(), "run", "--config", (dir_ / "guard.conf").string()},
                  (dir_ / "second.log").string());
  int code = WaitExit(second_, 10);
  if (code != -2) second_ = -1;
  EXPECT_EQ(code, 1) << ReadAll(dir_ / "second.log");
  const std::string want = "database " + (dir_ / "state" / "state.db").string() +
                           " is in use by pid " + std::to_string(first_) + " (bourse-nodeguard)";
  EXPECT_NE(ReadAll(dir_ / "second.log").find(want), std::string::npos)
      << ReadAll(dir_ / "second.log");
  // The first is still running.
  int st;
  EXPECT_EQ(waitpid(first_, &st, WNOHANG), 0);

  // kill -9 drops the lock: a new daemon starts.
  Kill9(first_);
  first_ = StartDaemon("third.log");
  ASSERT_GT(first_, 0) << ReadAll(dir_ / "third.log");
  EXPECT_EQ(waitpid(first_, &st, WNOHANG), 0) << ReadAll(dir_ / "third.log");
}

}  // namespace
}  // namespace bourse::systest
