// End to end with the real processes: a `bourse-broker` on a loopback port, a
// site with node n1, a chain granted, split and bound to a slice on n1, two
// proportional-share bids on n1; then the real `bourse-nodeguard run` (dry-run
// backends, scratch state directory, reconcile_period_s = 1) against it. The
// guard must fetch and redeem the bound chain, enforce it (dry-run files), apply
// the broker-signed share table, and its redemption and usage reports must reach
// the broker's ledger. Processes and directories are removed even on failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "tests/system/broker_process.h"
#include "tests/system/notify_socket.h"

namespace bourse::systest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string GuardBinary() { return std::string(BOURSE_BINARY_DIR) + "/nodeguard/bourse-nodeguard"; }

// A child process killed (SIGKILL) and reaped by the destructor unless stopped.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int st;
      waitpid(pid_, &st, 0);
    }
  }
  bool Start(const std::vector<std::string>& args, const std::string& log) {
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
      FILE* f = std::fopen(log.c_str(), "a");
      if (f != nullptr) {
        dup2(fileno(f), 1);
        dup2(fileno(f), 2);
      }
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
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
  // SIGTERM and wait; the exit status (-1 when killed by a signal).
  int Terminate() {
    if (pid_ <= 0) return exit_;
    kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    exit_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return exit_;
  }

 private:
  pid_t pid_ = -1;
  int exit_ = -1;
};

std::string ReadAll(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Runs a command and returns its stdout.
std::string Capture(const std::vector<std::string>& args) {
  int p[2];
  if (pipe(p) != 0) return "";
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int st;
  waitpid(pid, &st, 0);
  return out;
}

class NodeguardBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(GuardBinary())) << GuardBinary();
    char tmpl[] = "/tmp/ng_broker_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
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
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

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

  // The guard of n1 (dry-run backends, reconcile_period_s = 1): its key, the
  // site's key as trust root, the broker's ledger key; `broker_url` may be a
  // port nobody listens on.
  fs::path WriteGuardConfig(const std::string& broker_url) {
    EXPECT_TRUE(world_->n1.SavePem((dir_ / "node.pem").string()).ok());
    std::ofstream(dir_ / "trust") << world_->pi.public_key().ToText() << "\n";
    fs::create_directories(dir_ / "state");
    fs::path conf = dir_ / "guard.conf";
    std::ofstream(conf) << "node_id = n1\nnode_key = " << (dir_ / "node.pem").string()
                        << "\ntrust_file = " << (dir_ / "trust").string()
                        << "\nstate_dir = " << (dir_ / "state").string()
                        << "\nbroker_url = " << broker_url
                        << "\nbroker_key = " << world_->broker_key
                        << "\ncgroup_mode = dry-run\ninterface = eth0\nlink_kbps = 100000\n"
                           "default_min_kbps = 1000\ncpu_mcores = 4000\ndisk_root = none\n"
                           "launch = false\nreconcile_period_s = 1\n";
    return conf;
  }

  // A piece of the broker's grant on n1 split off to the user and bound to
  // slice mit_web (what `bourse broker seed-demo` does).
  void BindPieceOnN1(const std::string& id) {
    World& w = *world_;
    clients::Client user = w.As(w.user);
    clients::Client admin = w.As(w.admin);
    int64_t now = core::SystemClock::Get().NowSeconds();
    ASSERT_TRUE(user.Call("POST", "/v1/slices", {{"name", "mit_web"}}).ok());
    auto split = admin.Call("POST", "/v1/rcaps/root-n1/split",
                            {{"children",
                              {{{"id", id},
                                {"holder", w.user.public_key().ToText()},
                                {"res",
                                 {{"cpu_mcores", 1000},
                                  {"mem_mib", 512},
                                  {"disk_mib", 0},
                                  {"net_min_kbps", 1000},
                                  {"net_max_kbps", 10000}}},
                                {"not_before", now - 10},
                                {"not_after", now + 86400}}}}});
    ASSERT_TRUE(split.ok()) << split.status().ToString();
    auto bound = user.Call("POST", "/v1/slices/mit_web/bindings",
                           {{"chain", {w.root1, (*split)["rcaps"][0]}}});
    ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  }

  fs::path dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<World> world_;
  std::unique_ptr<Child> guard_;
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

  std::string status_text = Capture(
      {GuardBinary(), "status", "--socket", (dir_ / "state/status.sock").string(), "/v1/status"});
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
  ASSERT_TRUE(once.Start(
      {GuardBinary(), "run", "--config", (dir_ / "guard.conf").string(), "--once"},
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
      Capture({GuardBinary(), "status", "--socket", (dir_ / "state/status.sock").string()}),
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
      Capture({GuardBinary(), "status", "--socket", (dir_ / "state/status.sock").string()}),
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
