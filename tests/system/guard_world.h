// Test fixture for the system tests of `bourse-nodeguard` against a real
// `bourse-broker`: a scratch directory, the broker process, the seeded World
// (broker_process.h), and what those tests do to it — split a piece of the
// broker's grant on n1 and bind it to a slice, write n1's guard config
// (dry-run backends, reconcile_period_s = 1), run the guard as a Child.
//
//   class MyTest : public GuardWorldTest {
//    protected:
//     MyTest() : GuardWorldTest("ng_my") {}  // /tmp/ng_my_XXXXXX
//   };
//   TEST_F(MyTest, X) {
//     Bind("mit_web", "piece-1", Res(1000, 512, 0, 1000, 10000));
//     GuardConfigOptions o;
//     o.extra = "disk_root = none\n";
//     fs::path conf = WriteGuardConfig(o);
//     guard_ = std::make_unique<Child>();
//     ASSERT_TRUE(guard_->Start({GuardBinary(), "run", "--config", conf.string()}, log));
//   }
//
// TearDown kills a started guard before the directory goes; the broker's
// process and directory go with it, even when an assertion fails.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/json_codec.h"
#include "tests/system/broker_process.h"
#include "tests/system/run_command.h"

namespace bourse::systest {

inline std::string GuardBinary() {
  return std::string(BOURSE_BINARY_DIR) + "/nodeguard/bourse-nodeguard";
}

// A resource vector as the API's JSON.
inline nlohmann::json Res(int64_t cpu, int64_t mem, int64_t disk, int64_t nmin, int64_t nmax) {
  return core::ResourceVectorToJson({.cpu_mcores = cpu,
                                     .mem_mib = mem,
                                     .disk_mib = disk,
                                     .net_min_kbps = nmin,
                                     .net_max_kbps = nmax});
}

// A child process (fork/exec, stdout and stderr appended to a log), killed
// (SIGKILL) and reaped by the destructor unless stopped. It inherits the
// test's environment as it is at Start.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { KillChild(pid_); }

  bool Start(const std::vector<std::string>& args, const std::string& log) {
    pid_t pid = SpawnLogged(args, log);
    if (pid < 0) return false;
    pid_ = pid;
    return true;
  }
  // True while the process has not exited.
  bool Running() {
    if (pid_ <= 0) return false;
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      exit_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      return false;
    }
    return true;
  }
  // Waits for the process to exit on its own (killed after 30 s: -2).
  int Wait() {
    for (int i = 0; i < 3000 && Running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (Running()) {
      Terminate();
      return -2;
    }
    return exit_;
  }
  // SIGTERM and wait; the exit status (-1 when killed by a signal or never started).
  int Terminate() {
    if (pid_ <= 0) return exit_;
    exit_ = TerminateChild(pid_);
    return exit_;
  }

 private:
  pid_t pid_ = -1;
  int exit_ = -1;
};

// What WriteGuardConfig writes beyond the common dry-run lines.
struct GuardConfigOptions {
  std::string broker_url;          // empty: the test's broker
  std::filesystem::path node_key;  // empty: n1's key, saved to <dir>/node.pem
  bool pin_broker_key = true;      // broker_key = the broker's ledger key
  std::string extra;               // more lines, each ending in "\n"
};

class GuardWorldTest : public ::testing::Test {
 protected:
  // The scratch directory is /tmp/<prefix>_XXXXXX.
  explicit GuardWorldTest(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(GuardBinary())) << GuardBinary();
    std::string tmpl = "/tmp/" + prefix_ + "_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
    auto p = BrokerProcess::Create();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    broker_ = std::move(p).value();
    auto w = World::Seed(broker_->url(), broker_->admin_key());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    world_ = std::move(w).value();
  }
  void TearDown() override {
    guard_.reset();  // killed before its directory goes
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Creates `slice` (the user's), splits a piece `res` with id `id` of the
  // broker's grant on n1 off to the user and binds it to the slice (what
  // `bourse broker seed-demo` does).
  void Bind(const std::string& slice, const std::string& id, const nlohmann::json& res) {
    World& w = *world_;
    int64_t now = core::SystemClock::Get().NowSeconds();
    ASSERT_TRUE(w.As(w.user).Call("POST", "/v1/slices", {{"name", slice}}).ok());
    auto split = w.As(w.admin).Call("POST", "/v1/rcaps/root-n1/split",
                                    {{"children",
                                      {{{"id", id},
                                        {"holder", w.user.public_key().ToText()},
                                        {"res", res},
                                        {"not_before", now - 10},
                                        {"not_after", now + 86400}}}}});
    ASSERT_TRUE(split.ok()) << split.status().ToString();
    auto bound = w.As(w.user).Call("POST", "/v1/slices/" + slice + "/bindings",
                                   {{"chain", {w.root1, (*split)["rcaps"][0]}}});
    ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  }

  // Writes <dir>/guard.conf for the guard of n1 (dry-run backends, eth0 at
  // 100000 kbit/s, 4000 mcores, no launching, reconcile_period_s = 1) with
  // the site's key as trust root and <dir>/state as state directory; returns
  // its path. `o.broker_url` may be a port nobody listens on.
  std::filesystem::path WriteGuardConfig(const GuardConfigOptions& o = {}) {
    namespace fs = std::filesystem;
    fs::path key = o.node_key;
    if (key.empty()) {
      key = dir_ / "node.pem";
      EXPECT_TRUE(world_->n1.SavePem(key.string()).ok());
    }
    std::ofstream(dir_ / "trust") << world_->pi.public_key().ToText() << "\n";
    fs::create_directories(dir_ / "state");
    fs::path conf = dir_ / "guard.conf";
    std::ofstream f(conf);
    f << "node_id = n1\nnode_key = " << key.string()
      << "\ntrust_file = " << (dir_ / "trust").string()
      << "\nstate_dir = " << (dir_ / "state").string()
      << "\nbroker_url = " << (o.broker_url.empty() ? broker_->url() : o.broker_url) << "\n";
    if (o.pin_broker_key) f << "broker_key = " << world_->broker_key << "\n";
    f << "cgroup_mode = dry-run\ninterface = eth0\nlink_kbps = 100000\n"
         "default_min_kbps = 1000\ncpu_mcores = 4000\nlaunch = false\n"
         "reconcile_period_s = 1\n"
      << o.extra;
    return conf;
  }

  std::filesystem::path dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<World> world_;
  std::unique_ptr<Child> guard_;  // the guard under test, if started

 private:
  std::string prefix_;
};

}  // namespace bourse::systest
