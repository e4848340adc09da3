// Sliver reports end to end with the real processes: a `bourse-broker` on a
// loopback port, a chain bound to a slice on node n1, and the real
// `bourse-nodeguard run` (dry-run backends, reconcile_period_s = 1). The
// guard reads back what it enforced and reports its node's slivers; the
// broker's public GETs (per node and per slice) show them with the kernel's
// values, the ledger holds one slivers_reported per change (none while
// nothing changes) and `bourse ledger verify --url` passes. Processes and
// directories are removed even on failure.
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

class NodeguardSliversTest : public GuardWorldTest {
 protected:
  NodeguardSliversTest() : GuardWorldTest("ng_slivers") {}

  // The guard of n1 with disk quotas (dry run) and no pinned broker key.
  void StartGuard() {
    GuardConfigOptions o;
    o.pin_broker_key = false;
    fs::path conf = WriteGuardConfig(o);
    guard_ = std::make_unique<Child>();
    ASSERT_TRUE(guard_->Start({GuardBinary(), "run", "--config", conf.string()},
                              (dir_ / "guard.log").string()));
  }

  // GET `path` (public) until `done` holds for the answer; at most 30 s.
  json WaitFor(const std::string& path, const std::function<bool(const json&)>& done) {
    clients::Client anon(broker_->url());
    json last;
    for (int i = 0; i < 300; ++i) {
      auto r = anon.Call("GET", path);
      if (r.ok()) {
        last = *r;
        if (done(last)) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << path << " never showed what was expected; last: " << last.dump() << "\n"
                  << ReadAll(dir_ / "guard.log");
    return last;
  }

  int SliverEntries() {
    clients::Client c(broker_->url());
    int64_t size = c.Call("GET", "/v1/ledger/head").value()["size"];
    json e =
        c.Call("GET", "/v1/ledger/entries?from=0&to=" + std::to_string(size)).value()["entries"];
    int n = 0;
    for (const json& x : e) n += x["type"] == "slivers_reported" ? 1 : 0;
    return n;
  }

  // The guard's status API (its Unix socket), through `bourse-nodeguard status`.
  json GuardStatus() {
    std::string out = (dir_ / "status.json").string();
    std::string cmd = GuardBinary() + " status --socket " + (dir_ / "state/status.sock").string() +
                      " /v1/status > " + out + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) return nullptr;
    return json::parse(ReadAll(out), nullptr, false);
  }
};

TEST_F(NodeguardSliversTest, GuardReportsKernelReadBackAndTheBrokerServesIt) {
  Bind("mit_web", "ng-web-1", Res(1000, 512, 128, 1000, 10000));
  StartGuard();

  json n1 = WaitFor("/v1/nodes/n1/slivers", [](const json& j) { return !j["slivers"].empty(); });
  ASSERT_EQ(n1["slivers"].size(), 1u) << n1.dump();
  const json& web = n1["slivers"][0];
  EXPECT_EQ(web["slice"], "mit_web");
  EXPECT_EQ(web["state"], "active");
  EXPECT_EQ(web["bought"], Res(1000, 512, 128, 1000, 10000));
  EXPECT_EQ(web["enforced"], Res(1000, 512, 128, 1000, 10000));
  const json& k = web["kernel"];
  EXPECT_EQ(k["cpu_mcores"], 1000);
  EXPECT_EQ(k["cpu_shares"], 1024);
  EXPECT_EQ(k["cpu_cap_mcores"], 0);
  EXPECT_EQ(k["mem_mib"], 512);
  EXPECT_EQ(k["net_min_kbps"], 1000);
  EXPECT_EQ(k["net_max_kbps"], 10000);
  EXPECT_EQ(k["net_classified"], true);
  EXPECT_EQ(k["disk_mib"], 128);
  EXPECT_EQ(k["differences"], json::array()) << k.dump();
  EXPECT_EQ(k["problems"], json::array()) << k.dump();
  EXPECT_GT(k["read_ms"].get<int64_t>(), 0);
  EXPECT_GE(n1["reported_ms"].get<int64_t>(), k["read_ms"].get<int64_t>() - 60000);
  EXPECT_EQ(web["reported_ms"], n1["reported_ms"]);

  json slice =
      WaitFor("/v1/slices/mit_web/slivers", [](const json& j) { return j["slivers"].size() == 1; });
  EXPECT_EQ(slice["slivers"][0]["node"], "n1");
  EXPECT_EQ(slice["slivers"][0]["kernel"], k);
  EXPECT_EQ(SliverEntries(), 1);

  // The guard's own status API shows the same read-back, read on its passes.
  json st;
  int64_t first_ts = 0;
  for (int i = 0; i < 100; ++i) {
    st = GuardStatus();
    if (st.is_object() && st["ts"].is_number()) {
      if (first_ts == 0) first_ts = st["ts"];
      if (st["ts"].get<int64_t>() >= first_ts + 2500) break;  // a few passes later
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(st.is_object()) << ReadAll(dir_ / "guard.log");
  ASSERT_EQ(st["slivers"].size(), 1u) << st.dump();
  EXPECT_EQ(st["slivers"][0]["kernel"]["cpu_mcores"], 1000);
  EXPECT_EQ(st["slivers"][0]["kernel"]["disk_mib"], 128);
  // Passes that found nothing new sent nothing.
  EXPECT_EQ(SliverEntries(), 1);

  // A second slice bound to n1: the next report has both.
  Bind("mit_db", "ng-db-1", Res(500, 256, 0, 0, 2000));
  n1 = WaitFor("/v1/nodes/n1/slivers", [](const json& j) { return j["slivers"].size() == 2; });
  EXPECT_EQ(n1["slivers"][0]["slice"], "mit_db");
  EXPECT_EQ(n1["slivers"][0]["kernel"]["cpu_mcores"], 500);
  EXPECT_EQ(n1["slivers"][0]["kernel"]["net_min_kbps"], 0);
  EXPECT_EQ(n1["slivers"][0]["kernel"]["net_max_kbps"], 2000);
  EXPECT_EQ(n1["slivers"][0]["kernel"]["disk_mib"], 0);
  EXPECT_EQ(n1["slivers"][1]["slice"], "mit_web");
  EXPECT_EQ(SliverEntries(), 2);

  std::string verify = BourseBinary() + " ledger verify --url " + broker_->url() + " > " +
                       (dir_ / "verify.txt").string() + " 2>&1";
  EXPECT_EQ(std::system(verify.c_str()), 0) << ReadAll(dir_ / "verify.txt");
  EXPECT_EQ(guard_->Terminate(), 0) << ReadAll(dir_ / "guard.log");
}

}  // namespace
}  // namespace bourse::systest
