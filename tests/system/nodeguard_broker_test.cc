// End to end with the real processes: a `bourse-broker` on a loopback port, a
// site with node n1, a chain granted, split and bound to a slice on n1, two
// proportional-share bids on n1; then the real `bourse-nodeguard run` (dry-run
// backends, scratch state directory, reconcile_period_s = 1) against it. The
// guard must fetch and redeem the bound chain, enforce it (dry-run files), apply
// the broker-signed share table, and its redemption and usage reports must reach
// the broker's ledger. Processes and directories are removed even on failure.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "tests/system/guard_world.h"
#include "tests/system/notify_socket.h"

namespace bourse::systest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class NodeguardBrokerTest : public GuardWorldTest {
 protected:
  NodeguardBrokerTest() : GuardWorldTest("ng_broker") {}

  // Every ledger entry so far.
  json Entries() {
    clients::Client c(broker_->url());
    auto head = c.Call("GET", "/v1/ledger/head");
    if (!head.ok()) return json::array();
    int64_t size = (*head)["size"];
    json all = json::array();
    for (int64_t from = 0; from < size; from += 10000) {
      auto e = c.Call("GET", "/v1/ledger/entries?from=" + std::to_string(from) +
                                 "&to=" + std::to_string(std::min<int64_t>(size, from + 10000)));
      if (!e.ok()) return json::array();
      for (auto& x : (*e)["entries"]) all.push_back(x);
    }
    return all;
  }
  static json Find(const json& entries, const std::function<bool(const json&)>& pred) {
    for (const auto& e : entries) {
      if (pred(e)) return e;
    }
    return nullptr;
  }

  // The guard of n1 (GuardWorldTest::WriteGuardConfig, no disk quotas);
  // `broker_url` may be a port nobody listens on.
  fs::path WriteGuardConfig(const std::string& broker_url) {
    GuardConfigOptions o;
    o.broker_url = broker_url;
    o.extra = "disk_root = none\n";
    return GuardWorldTest::WriteGuardConfig(o);
  }

  // A piece of the broker's grant on n1 split off to the user and bound to
  // slice mit_web.
  void BindPieceOnN1(const std::string& id) { Bind("mit_web", id, Res(1000, 512, 0, 1000, 10000)); }
};

TEST_F(NodeguardBrokerTest, GuardRedeemsEnforcesAppliesSharesAndReportsUsage) {
  World& w = *world_;
  clients::Client user = w.As(w.user);
  BindPieceOnN1("ng-piece-1");
  ASSERT_TRUE(user.Call("POST", "/v1/slices", {{"name", "mit_other"}}).ok());

  // Proportional share on n1: mit_web bids 3x what mit_other (no sliver on n1) bids.
  ASSERT_TRUE(user.Call("POST", "/v1/nodes/n1/share_bids",
                        {{"slice", "mit_web"}, {"rate", "0.003"}, {"budget", "100"}})
                  .ok());
  ASSERT_TRUE(user.Call("POST", "/v1/nodes/n1/share_bids",
                        {{"slice", "mit_other"}, {"rate", "0.001"}, {"budget", "100"}})
                  .ok());
  auto table = user.Call("GET", "/v1/nodes/n1/shares");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_EQ((*table)["shares"].size(), 2u);
  EXPECT_EQ((*table)["shares"][0]["slice"], "mit_other");
  EXPECT_EQ((*table)["shares"][1]["cpu_weight"], 7500);
  EXPECT_EQ((*table)["shares"][1]["net_kbps"], 75000);  // of n1's net_max_kbps 100000

  WriteGuardConfig(broker_->url());
  guard_ = std::make_unique<Child>();
  ASSERT_TRUE(guard_->Start({GuardBinary(), "run", "--config", (dir_ / "guard.conf").string()},
                            (dir_ / "guard.log").string()));

  // Usage is metered one period after boot and reported when the broker
  // answers; wait (generously) for it to land in the ledger.
  json entries, usage;
  for (int i = 0; i < 300 && usage.is_null(); ++i) {
    ASSERT_TRUE(guard_->Running()) << ReadAll(dir_ / "guard.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    entries = Entries();
    usage = Find(entries, [](const json& e) {
      return e["type"] == "usage_reported" && e["body"]["node"] == "n1";
    });
  }
  ASSERT_FALSE(usage.is_null()) << "no usage report reached the broker\n"
                                << ReadAll(dir_ / "guard.log");
  EXPECT_EQ(usage["body"]["slice"], "mit_web");
  EXPECT_EQ(usage["body"]["rcap"], "ng-piece-1");

  // The guard redeemed the bound chain and told the broker.
  json redeemed = Find(entries, [](const json& e) {
    return e["type"] == "rcap_redeemed" && e["body"]["rcap"]["id"] == "ng-piece-1";
  });
  ASSERT_FALSE(redeemed.is_null());
  EXPECT_EQ(redeemed["body"]["node"], "n1");
  // The broker shows what the guard said: the binding redeemed, in force on
  // the node, and the usage read back per slice and per node.
  clients::Client anon(broker_->url());
  auto bindings = anon.Call("GET", "/v1/slices/mit_web/bindings");
  ASSERT_TRUE(bindings.ok()) << bindings.status().message();
  ASSERT_EQ((*bindings)["bindings"].size(), 1u);
  EXPECT_EQ((*bindings)["bindings"][0]["state"], "redeemed") << bindings->dump();
  EXPECT_EQ((*bindings)["bindings"][0]["report"]["state"], "active") << bindings->dump();
  auto su = anon.Call("GET", "/v1/slices/mit_web/usage");
  ASSERT_TRUE(su.ok()) << su.status().message();
  ASSERT_EQ((*su)["slivers"].size(), 1u) << su->dump();
  EXPECT_EQ((*su)["slivers"][0]["node"], "n1");
  EXPECT_EQ((*su)["slivers"][0]["latest"]["rcap"], "ng-piece-1");
  EXPECT_GE((*su)["totals"]["reports"], 1);
  auto nu = anon.Call("GET", "/v1/nodes/n1/usage");
  ASSERT_TRUE(nu.ok()) << nu.status().message();
  EXPECT_EQ((*nu)["slivers"][0]["slice"], "mit_web") << nu->dump();

  std::string status_text = RunCommand({GuardBinary(), "status", "--socket",
                                        (dir_ / "state/status.sock").string(), "/v1/status"})
                                .second;
  json status = json::parse(status_text, nullptr, false);
  ASSERT_TRUE(status.is_object()) << status_text;
  EXPECT_TRUE(status["broker"]["ok"]);
  ASSERT_EQ(status["slivers"].size(), 1u) << status_text;
  const json& web = status["slivers"][0];
  EXPECT_EQ(web["slice"], "mit_web");
  EXPECT_EQ(web["effective"]["cpu_mcores"], 1000);
  EXPECT_EQ(web["share"]["cpu_weight"], 7500);
  EXPECT_EQ(status["shares"]["table"].size(), 2u);
  EXPECT_TRUE(status["shares"]["refusals"].empty()) << status_text;
  EXPECT_EQ(status["refusals"].size(), 0u);

  EXPECT_EQ(guard_->Terminate(), 0);

  // Enforced (dry run): the rcap's 1000 mcores plus 75% of the 3000 mcores the
  // rcaps leave = 3250 mcores -> cpu.shares 3328; memory as bought; the HTB
  // class gets the rcap's 1000 kbit/s plus 75% of the link's unguaranteed
  // 100000 - 1000 (default class) - 1000 = 98000 kbit/s, ceil raised to match.
  fs::path cg = dir_ / "state/dry/cgroup";
  EXPECT_EQ(std::stoll(ReadAll(cg / "cpu/bourse/mit_web/cpu.shares")), 3328);
  EXPECT_EQ(std::stoll(ReadAll(cg / "memory/bourse/mit_web/memory.limit_in_bytes")),
            512LL * 1024 * 1024);
  std::string classes = ReadAll(dir_ / "state/dry/link/classes");
  EXPECT_NE(classes.find("\n3 200001 74500 74500\n"), std::string::npos) << classes;
  EXPECT_FALSE(fs::exists(cg / "cpu/bourse/mit_other"));  // a share but no sliver: nothing

  // A one-shot pass (`run --once`, as from cron) meters and reports itself:
  // one more usage report reaches the broker, covering the time since the last.
  auto count_usage = [&] {
    int n = 0;
    for (const json& e : Entries()) n += e["type"] == "usage_reported" ? 1 : 0;
    return n;
  };
  int before = count_usage();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // reports are per whole second
  Child once;
  ASSERT_TRUE(
      once.Start({GuardBinary(), "run", "--config", (dir_ / "guard.conf").string(), "--once"},
                 (dir_ / "once.log").string()));
  EXPECT_EQ(once.Wait(), 0) << ReadAll(dir_ / "once.log");
  EXPECT_EQ(count_usage(), before + 1) << ReadAll(dir_ / "once.log");
}

// Starts `bourse-nodeguard run` with $NOTIFY_SOCKET set for it alone.
void StartGuardNotifying(Child* g, const fs::path& conf, const fs::path& sock,
                         const fs::path& log) {
  setenv("NOTIFY_SOCKET", sock.c_str(), 1);
  ASSERT_TRUE(g->Start({GuardBinary(), "run", "--config", conf.string()}, log.string()));
  unsetenv("NOTIFY_SOCKET");
}

// Issue #18 "Node boot": a guard with an empty state directory and only its
// config redeems and enforces everything bound to its node from the broker
// before it says it is ready (READY=1 to the service manager; "ready" in its
// status). Restarted with the broker down and its kernel state gone (a
// rebooted node), it enforces the same slivers again from its own database in
// its first pass and is ready "from state".
TEST_F(NodeguardBrokerTest, BootsFromTheBrokerBeforeReadyAndFromItsOwnStateWhenTheBrokerIsDown) {
  BindPieceOnN1("boot-piece-1");
  fs::path conf = WriteGuardConfig(broker_->url());
  NotifySocket notify(dir_ / "notify.sock");
  ASSERT_TRUE(notify.bound());
  guard_ = std::make_unique<Child>();
  StartGuardNotifying(guard_.get(), conf, dir_ / "notify.sock", dir_ / "guard.log");
  std::string msg = notify.Next(60);
  ASSERT_NE(msg.find("READY=1"), std::string::npos) << msg << ReadAll(dir_ / "guard.log");
  EXPECT_NE(msg.find("STATUS=enforcing 1 sliver (booted from the broker)"), std::string::npos)
      << msg;
  // At READY the binding is already redeemed and enforced.
  fs::path shares = dir_ / "state/dry/cgroup/cpu/bourse/mit_web/cpu.shares";
  EXPECT_TRUE(fs::exists(shares));
  json status = json::parse(
      RunCommand({GuardBinary(), "status", "--socket", (dir_ / "state/status.sock").string()})
          .second,
      nullptr, false);
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status["ready"], true);
  EXPECT_EQ(status["ready_from"], "broker");
  ASSERT_EQ(status["slivers"].size(), 1u) << status.dump();
  EXPECT_EQ(status["slivers"][0]["leaves"][0]["id"], "boot-piece-1");
  EXPECT_EQ(guard_->Terminate(), 0);
  EXPECT_NE(notify.Next(5).find("STOPPING=1"), std::string::npos);

  // The node reboots while the broker is down.
  broker_->Kill9();
  fs::remove_all(dir_ / "state/dry");
  StartGuardNotifying(guard_.get(), conf, dir_ / "notify.sock", dir_ / "guard2.log");
  msg = notify.Next(60);
  ASSERT_NE(msg.find("READY=1"), std::string::npos) << msg << ReadAll(dir_ / "guard2.log");
  EXPECT_NE(msg.find("(booted from its own state)"), std::string::npos) << msg;
  EXPECT_TRUE(fs::exists(shares)) << "the sliver was not enforced again in the boot pass";
  status = json::parse(
      RunCommand({GuardBinary(), "status", "--socket", (dir_ / "state/status.sock").string()})
          .second,
      nullptr, false);
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status["ready_from"], "state");
  EXPECT_FALSE(status["broker"]["ok"]);
  EXPECT_EQ(guard_->Terminate(), 0);
}

// An empty state directory and no broker: nothing to boot from, so the guard
// is not ready (it keeps trying the broker); a one-shot pass says so.
TEST_F(NodeguardBrokerTest, AnEmptyStateWithTheBrokerDownIsNotReady) {
  fs::path conf = WriteGuardConfig("http://127.0.0.1:1");
  Child once;
  ASSERT_TRUE(once.Start({GuardBinary(), "run", "--config", conf.string(), "--once"},
                         (dir_ / "once.log").string()));
  EXPECT_EQ(once.Wait(), 0) << ReadAll(dir_ / "once.log");
  std::string out = ReadAll(dir_ / "once.log");
  size_t brace = out.find("{\"");
  ASSERT_NE(brace, std::string::npos) << out;
  json status = json::parse(out.substr(brace, out.find('\n', brace) - brace), nullptr, false);
  ASSERT_TRUE(status.is_object()) << out;
  EXPECT_EQ(status["ready"], false) << out;
  EXPECT_TRUE(status["ready_from"].is_null());
}

}  // namespace
}  // namespace bourse::systest
