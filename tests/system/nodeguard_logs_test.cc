// Sliver events and logs end to end (issue #20) with the real processes: a
// `bourse-broker` on a loopback port, two slices bound on node n1 with boot
// scripts, and the real `bourse-nodeguard run --once` (dry-run backends with
// `launch = true`: the scripts run, as the slivers' uids, so root only), one
// pass per run so that "within two passes" is counted, not timed:
// - pass 1 sets the slivers up and starts the scripts (events started, boot);
//   a script's line is then in the node's log file, and pass 2 brings it to
//   GET /v1/slices/{slice}/slivers, signed by the slice's owner;
// - a script printing 4 MB leaves a file of at most 64 KiB on the node and a
//   tail of at most 2 KiB in the broker;
// - deleting a slice tears its sliver down in the next pass: event torn_down
//   (read by an admin: the slice is gone), and its log file is removed;
// - the new route refuses bad input and other keys; another user is refused
//   the slice's logs;
// - the CLI: `bourse slice slivers` and `bourse slice logs --node` (tables and
//   --json), and the refusal for a user who does not manage the slice.
// Processes and directories are removed even on failure.
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

class NodeguardLogsTest : public GuardWorldTest {
 protected:
  NodeguardLogsTest() : GuardWorldTest("ng_logs") {}

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "boot scripts run as the slivers' uids: root only";
    GuardWorldTest::SetUp();
  }

  // One guard pass (`run --once`); its exit code.
  int Pass() {
    if (conf_.empty()) {
      GuardConfigOptions o;
      o.extra = "launch = true\n";
      conf_ = WriteGuardConfig(o);
    }
    auto [code, out] = RunCommand({GuardBinary(), "run", "--config", conf_.string(), "--once"});
    return code;
  }

  void SetBootScript(const std::string& slice, const std::string& script) {
    auto r = world_->As(world_->user)
                 .Call("PUT", "/v1/slices/" + slice + "/state", {{"boot_script", script}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  json Slivers(const core::PrivateKey& k, const std::string& slice) {
    auto r = world_->As(k).CallSigned("GET", "/v1/slices/" + slice + "/slivers", nullptr);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : json();
  }

  // Waits until the node's file `f` holds `needle` (the script's output is
  // asynchronous to the guard); at most 30 s.
  bool FileHas(const fs::path& f, const std::string& needle) {
    for (int i = 0; i < 300; ++i) {
      if (ReadAll(f).find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  static std::vector<std::string> Kinds(const json& sliver) {
    std::vector<std::string> k;
    for (const json& e : sliver["events"]) k.push_back(e["kind"]);
    return k;
  }

  // `bourse ARGS` with the user's key; exit code, stdout and stderr.
  struct Cli {
    int code;
    std::string out, err;
  };
  Cli Bourse(const std::string& key, const std::string& args) {
    std::string out = (dir_ / "cli.out").string(), err = (dir_ / "cli.err").string();
    std::string cmd = BourseBinary() + " --url " + broker_->url() + " --key " + key + " " + args +
                      " > " + out + " 2> " + err;
    int st = std::system(cmd.c_str());
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, ReadAll(out), ReadAll(err)};
  }

  fs::path conf_;
};

TEST_F(NodeguardLogsTest, BootOutputAndEventsReachTheBrokerBoundedAndOnlyForTheSlicesManagers) {
  Bind("mit_web", "ng-web-1", Res(500, 256, 0, 1000, 10000));
  Bind("mit_big", "ng-big-1", Res(250, 128, 0, 0, 2000));
  SetBootScript("mit_web", "echo \"hello from $BOURSE_SLIVER\"\n");
  SetBootScript("mit_big",
                "yes 'mit_big prints a line of output again and again' | head -c 4000000\n"
                "echo done\n");
  const fs::path run = dir_ / "state/run";

  // Pass 1: set up and started.
  ASSERT_EQ(Pass(), 0) << ReadAll(dir_ / "guard.log");
  json after1 = Slivers(world_->user, "mit_web");
  ASSERT_EQ(after1["slivers"].size(), 1u) << after1.dump();
  EXPECT_EQ(after1["slivers"][0]["state"], "active");
  EXPECT_EQ(Kinds(after1["slivers"][0]), (std::vector<std::string>{"started", "boot"}));

  // The line is kept on the node; the next pass reports it.
  ASSERT_TRUE(FileHas(run / "mit_web.log", "hello from mit_web\n"));
  ASSERT_TRUE(FileHas(run / "mit_big.log", "done\n"));
  ASSERT_EQ(Pass(), 0);
  json web = Slivers(world_->user, "mit_web")["slivers"][0];
  EXPECT_EQ(web["node"], "n1");
  EXPECT_EQ(web["log"]["tail"], "hello from mit_web\n");
  EXPECT_EQ(web["log"]["size"], 19);
  EXPECT_EQ(web["log"]["max_bytes"], 65536);
  EXPECT_EQ(Kinds(web), (std::vector<std::string>{"started", "boot"}));  // nothing new

  // 4 MB printed: at most 64 KiB on the node, at most 2 KiB reported.
  EXPECT_LE(fs::file_size(run / "mit_big.log"), 65536u);
  EXPECT_GE(fs::file_size(run / "mit_big.log"), 32768u);
  json big_doc = Slivers(world_->user, "mit_big");
  json big = big_doc["slivers"][0];
  EXPECT_LE(big["log"]["size"].get<int64_t>(), 65536);
  std::string tail = big["log"]["tail"];
  EXPECT_LE(tail.size(), 2048u);
  EXPECT_EQ(tail.substr(tail.size() - 5), "done\n");
  EXPECT_EQ(tail.rfind("mit_big prints a line", 0), 0u) << tail.substr(0, 80);  // from a line
  EXPECT_LT(big_doc.dump().size(), 8192u);

  // Who reads them: the owner (above), the site's PI, an admin; not another
  // site's PI; unsigned, no events or logs.
  EXPECT_EQ(Slivers(world_->pi, "mit_web")["slivers"][0]["log"]["tail"], "hello from mit_web\n");
  EXPECT_EQ(Slivers(world_->admin, "mit_web")["slivers"].size(), 1u);
  auto other =
      world_->As(world_->other_pi).CallSigned("GET", "/v1/slices/mit_web/slivers", nullptr);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), core::StatusCode::kPermissionDenied);
  json pub = clients::Client(broker_->url()).Call("GET", "/v1/slices/mit_web/slivers").value();
  EXPECT_FALSE(pub["slivers"][0].contains("log"));

  // Bad input to the route: another key, a malformed body (the field named).
  json ok = {{"slivers", {{{"slice", "mit_web"}, {"events", json::array()}, {"log", nullptr}}}}};
  auto user_post = world_->As(world_->user).Call("POST", "/v1/nodes/n1/logs", ok);
  ASSERT_FALSE(user_post.ok());
  EXPECT_EQ(user_post.status().code(), core::StatusCode::kPermissionDenied);
  json bad = ok;
  bad["slivers"][0]["log"] = {{"tail", std::string(5000, 'x')}, {"size", 5000}};
  auto bad_post = world_->As(world_->n1).Call("POST", "/v1/nodes/n1/logs", bad);
  ASSERT_FALSE(bad_post.ok());
  EXPECT_EQ(bad_post.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_post.status().message().find("slivers[0].log.tail"), std::string::npos)
      << bad_post.status().message();

  // The CLI, with the owner's key and with another user's.
  std::string user_pem = (dir_ / "user.pem").string();
  ASSERT_TRUE(world_->user.SavePem(user_pem).ok());
  Cli table = Bourse(user_pem, "slice slivers mit_web");
  EXPECT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("NODE"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("LAST EVENT"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("n1"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("active"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("cpu_mcores=500"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("boot ("), std::string::npos) << table.out;
  Cli logs = Bourse(user_pem, "slice logs mit_web --node n1");
  EXPECT_EQ(logs.code, 0) << logs.err;
  EXPECT_NE(logs.out.find("slice mit_web on node n1: active"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("started"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("boot script started"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("hello from mit_web\n"), std::string::npos) << logs.out;
  Cli logs_json = Bourse(user_pem, "--json slice logs mit_web --node n1");
  EXPECT_EQ(logs_json.code, 0) << logs_json.err;
  json lj = json::parse(logs_json.out, nullptr, false);
  ASSERT_TRUE(lj.is_object()) << logs_json.out;
  EXPECT_EQ(lj["slice"], "mit_web");
  ASSERT_EQ(lj["slivers"].size(), 1u);
  EXPECT_EQ(lj["slivers"][0]["log"]["tail"], "hello from mit_web\n");
  Cli no_node = Bourse(user_pem, "slice logs mit_web --node n2");
  EXPECT_EQ(no_node.code, 1);
  EXPECT_NE(no_node.err.find("error: not_found: slice mit_web has no sliver reported on node n2"),
            std::string::npos)
      << no_node.err;
  std::string other_pem = (dir_ / "other.pem").string();
  ASSERT_TRUE(world_->other_pi.SavePem(other_pem).ok());
  Cli refused = Bourse(other_pem, "slice logs mit_web --node n1");
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("error: permission_denied: slice mit_web: caller"), std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.out, "");

  // Teardown: the slice deleted, the next pass tears the sliver down.
  ASSERT_TRUE(world_->As(world_->user).Call("DELETE", "/v1/slices/mit_big").ok());
  ASSERT_EQ(Pass(), 0);
  json gone = Slivers(world_->admin, "mit_big");
  ASSERT_EQ(gone["slivers"].size(), 1u) << gone.dump();
  EXPECT_EQ(gone["slivers"][0]["state"], "gone");
  EXPECT_EQ(Kinds(gone["slivers"][0]).back(), "torn_down");
  EXPECT_FALSE(fs::exists(run / "mit_big.log"));
  // The other sliver is untouched and its events were not repeated.
  EXPECT_EQ(Kinds(Slivers(world_->user, "mit_web")["slivers"][0]),
            (std::vector<std::string>{"started", "boot"}));
}

}  // namespace
}  // namespace bourse::systest
