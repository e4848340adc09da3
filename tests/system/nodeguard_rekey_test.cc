// Rotating a node's key with the real processes (docs/operations.md "Keys"):
// a `bourse-broker`, the real `bourse-nodeguard run` of n1 (dry-run backends)
// and the `bourse` CLI. The guard boots from the broker with its key; the
// site's PI runs `bourse node rekey n1 --key NEW`; the guard, still on the
// old key, is refused by the broker but keeps enforcing what it redeemed;
// with node_key switched to the new key and restarted, it fetches its
// bindings again, redeems what was bound meanwhile and reports it.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/system/guard_world.h"
#include "tests/system/notify_socket.h"

namespace bourse::systest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class NodeguardRekeyTest : public GuardWorldTest {
 protected:
  NodeguardRekeyTest() : GuardWorldTest("ng_rekey") {}

  void SetUp() override {
    GuardWorldTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(world_->As(world_->user).Call("POST", "/v1/slices", {{"name", "mit_web"}}).ok());
  }

  // A root of 500 mcores on n1 the site's PI signs to the user, bound to mit_web.
  void BindRoot(const std::string& id) {
    int64_t now = core::SystemClock::Get().NowSeconds();
    auto root = ledger::IssueRoot(world_->pi, {.id = id,
                                               .holder = world_->user.public_key(),
                                               .node = "n1",
                                               .res = {.cpu_mcores = 500, .mem_mib = 256},
                                               .interval = {now - 10, now + 86400}});
    ASSERT_TRUE(root.ok());
    auto chain = ledger::ChainToJson(std::vector<ledger::Rcap>{*root});
    auto bound =
        world_->As(world_->user).Call("POST", "/v1/slices/mit_web/bindings", {{"chain", chain}});
    ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  }
  // The guard's config with `key` as its node_key.
  void WriteConfig(const fs::path& key) {
    GuardConfigOptions o;
    o.node_key = key;
    o.extra = "disk_root = none\n";
    WriteGuardConfig(o);
  }
  // Starts the guard and waits for its READY=1; returns the notify message.
  std::string StartGuard(const std::string& log) {
    NotifySocket notify(dir_ / "notify.sock");
    EXPECT_TRUE(notify.bound());
    setenv("NOTIFY_SOCKET", (dir_ / "notify.sock").c_str(), 1);
    guard_ = std::make_unique<Child>();
    EXPECT_TRUE(guard_->Start({GuardBinary(), "run", "--config", (dir_ / "guard.conf").string()},
                              (dir_ / log).string()));
    unsetenv("NOTIFY_SOCKET");
    std::string msg = notify.Next(60);
    fs::remove(dir_ / "notify.sock");
    return msg;
  }
  json Status() {
    auto [code, out] =
        RunCommand({GuardBinary(), "status", "--socket", (dir_ / "state/status.sock").string()});
    json j = json::parse(out, nullptr, false);
    return j.is_discarded() ? json::object() : j;
  }
  // Polls the guard's status until `pred` holds (at most 60 s).
  bool WaitFor(const std::function<bool(const json&)>& pred) {
    for (int i = 0; i < 600; ++i) {
      if (pred(Status())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::vector<std::string> Leaves(const json& status) {
    std::vector<std::string> ids;
    for (const json& s : status.value("slivers", json::array())) {
      for (const json& l : s.value("leaves", json::array())) ids.push_back(l["id"]);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }
};

TEST_F(NodeguardRekeyTest, AfterNodeRekeyTheGuardOnTheNewKeyFetchesItsBindingsAgain) {
  BindRoot("before-rekey");
  ASSERT_TRUE(world_->n1.SavePem((dir_ / "old.pem").string()).ok());
  WriteConfig(dir_ / "old.pem");
  std::string msg = StartGuard("guard1.log");
  ASSERT_NE(msg.find("READY=1"), std::string::npos) << msg;
  EXPECT_EQ(Leaves(Status()), std::vector<std::string>{"before-rekey"});

  // The site's PI rotates the node's key with the CLI.
  ASSERT_TRUE(world_->pi.SavePem((dir_ / "pi.pem").string()).ok());
  auto [kc, new_key] = RunCommand({BourseBinary(), "key", "new", (dir_ / "new.pem").string()});
  ASSERT_EQ(kc, 0);
  new_key = new_key.substr(0, new_key.find('\n'));
  auto [rc, out] =
      RunCommand({BourseBinary(), "--url", broker_->url(), "--key", (dir_ / "pi.pem").string(),
                  "--json", "node", "rekey", "n1", "--key", (dir_ / "new.pem").string()});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(out)["key"], new_key);

  // The guard on the old key: refused, yet still enforcing what it holds.
  BindRoot("after-rekey");
  EXPECT_TRUE(WaitFor([](const json& s) { return s.contains("broker") && !s["broker"]["ok"]; }));
  json st = Status();
  EXPECT_EQ(Leaves(st), std::vector<std::string>{"before-rekey"});
  EXPECT_TRUE(fs::exists(dir_ / "state/dry/cgroup/cpu/bourse/mit_web/cpu.shares"));

  // node_key switched and the guard restarted: it fetches again.
  EXPECT_EQ(guard_->Terminate(), 0);
  WriteConfig(dir_ / "new.pem");
  msg = StartGuard("guard2.log");
  ASSERT_NE(msg.find("READY=1"), std::string::npos) << msg;
  EXPECT_TRUE(WaitFor([](const json& s) { return s.contains("broker") && s["broker"]["ok"]; }));
  EXPECT_EQ(Leaves(Status()), (std::vector<std::string>{"after-rekey", "before-rekey"}));
  // Its report of the new redemption reached the ledger under the new key.
  bool reported = false;
  for (int i = 0; i < 600 && !reported; ++i) {
    auto b = world_->As(world_->user).Call("GET", "/v1/slices/mit_web/bindings");
    ASSERT_TRUE(b.ok());
    for (const json& x : (*b)["bindings"]) {
      reported = reported || (x["leaf"] == "after-rekey" && x["state"] == "redeemed");
    }
    if (!reported) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(reported);
  EXPECT_EQ(guard_->Terminate(), 0);
  auto [vc, vout] = RunCommand({BourseBinary(), "ledger", "verify", "--url", broker_->url()});
  EXPECT_EQ(vc, 0) << vout;
}

}  // namespace
}  // namespace bourse::systest
