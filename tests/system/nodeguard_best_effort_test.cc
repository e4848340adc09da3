// Issue #20, best-effort slivers end to end: the real `bourse-broker` and the
// real `bourse-nodeguard run` (dry-run backends, one pass a second). A slice
// instantiated on n1 without an rcap gets a sliver there; set_resources
// changes its weight and its disk on the next passes (a disk_resized event
// its owner reads from the broker); a slice with an rcap on n1 gets its
// best-effort part on top; remove_nodes and delete tear the slivers down;
// `ledger verify` accepts the broker's entries.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/system/guard_world.h"

namespace bourse::systest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class NodeguardBestEffortTest : public GuardWorldTest {
 protected:
  NodeguardBestEffortTest() : GuardWorldTest("ng_be") {}

  // The v1 cpu.shares the dry-run guard wrote for `slice` (-1: no cgroup).
  int64_t Shares(const std::string& slice) {
    std::ifstream f(dir_ / "state/dry/cgroup/cpu/bourse" / slice / "cpu.shares");
    int64_t v = -1;
    if (f) f >> v;
    return v;
  }
  // Waits (at most 30 s) until `done` holds.
  void WaitUntil(const std::function<bool()>& done, const std::string& what) {
    for (int i = 0; i < 300; ++i) {
      if (done()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::string cg;
    for (const char* slice : {"mit_paid", "mit_free"}) {
      cg += std::string(" ") + slice + "=" + std::to_string(Shares(slice));
    }
    ADD_FAILURE() << what << " never happened; cpu.shares:" << cg << "\n"
                  << ReadAll(dir_ / "guard.log");
  }
  clients::Client User() { return world_->As(world_->user); }
};

TEST_F(NodeguardBestEffortTest, InstantiateSetResourcesRemoveAndDeleteReachTheGuard) {
  // mit_paid holds 1000 of n1's 4000 mcores; mit_free holds nothing.
  Bind("mit_paid", "be-paid-1", Res(1000, 256, 0, 0, 1000));
  ASSERT_TRUE(User().Call("POST", "/v1/slices", {{"name", "mit_free"}}).ok());
  fs::path conf = WriteGuardConfig();
  guard_ = std::make_unique<Child>();
  ASSERT_TRUE(guard_->Start({GuardBinary(), "run", "--config", conf.string()},
                            (dir_ / "guard.log").string()));
  WaitUntil([&] { return Shares("mit_paid") == 1024; }, "the rcap sliver");
  EXPECT_EQ(Shares("mit_free"), -1);  // not instantiated: no sliver

  // Both instantiated: spare 3000 split 1:1 -> 1500 each, the paid one on top of its 1000.
  ASSERT_TRUE(User().Call("POST", "/v1/slices/mit_free/instantiate", {{"nodes", {"n1"}}}).ok());
  ASSERT_TRUE(User().Call("POST", "/v1/slices/mit_paid/instantiate", {{"nodes", {"n1"}}}).ok());
  WaitUntil([&] { return Shares("mit_free") == 1536 && Shares("mit_paid") == 2560; },
            "best-effort shares 1:1");
  // set_resources: share 3 for mit_free -> 3000 * 3/4 = 2250, 750 for mit_paid;
  // and its disk from the default 64 MiB to 128.
  auto set = User().Call("PUT", "/v1/slices/mit_free/resources",
                         {{"resources", {{"share", 3}, {"disk_mib", 128}}}});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  WaitUntil([&] { return Shares("mit_free") == 2304 && Shares("mit_paid") == 1792; },
            "best-effort shares 3:1");
  // The guard's report reaches the broker: mit_free bought nothing, enforced 2250.
  clients::Client anon(broker_->url());
  WaitUntil(
      [&] {
        auto r = anon.Call("GET", "/v1/slices/mit_free/slivers");
        return r.ok() && !(*r)["slivers"].empty() &&
               (*r)["slivers"][0]["enforced"]["cpu_mcores"] == 2250 &&
               (*r)["slivers"][0]["bought"]["cpu_mcores"] == 0;
      },
      "the sliver report of mit_free");
  // The disk change reached the sliver: the guard's disk_resized event, in
  // the report its owner reads.
  WaitUntil(
      [&] {
        auto r = User().CallSigned("GET", "/v1/slices/mit_free/slivers", nullptr);
        if (!r.ok() || (*r)["slivers"].empty()) return false;
        for (const json& e : (*r)["slivers"][0].value("events", json::array())) {
          if (e["kind"] == "disk_resized" &&
              e["message"].get<std::string>().find("from 64 to 128 MiB") != std::string::npos) {
            return true;
          }
        }
        return false;
      },
      "mit_free's disk_resized event");

  // Removed from n1: torn down; the paid slice keeps its rcap alone.
  ASSERT_TRUE(User().Call("POST", "/v1/slices/mit_free/remove_nodes", {{"nodes", {"n1"}}}).ok());
  WaitUntil([&] { return Shares("mit_free") == -1 && Shares("mit_paid") == 4096; },
            "mit_free torn down");
  // Deleted: its binding and its best-effort sliver go.
  ASSERT_TRUE(User().Call("DELETE", "/v1/slices/mit_paid").ok());
  WaitUntil([&] { return Shares("mit_paid") == -1; }, "mit_paid torn down");

  std::string verify = BourseBinary() + " ledger verify --url " + broker_->url() + " > " +
                       (dir_ / "verify.txt").string() + " 2>&1";
  EXPECT_EQ(std::system(verify.c_str()), 0) << ReadAll(dir_ / "verify.txt");
  EXPECT_EQ(guard_->Terminate(), 0) << ReadAll(dir_ / "guard.log");
}

}  // namespace
}  // namespace bourse::systest
