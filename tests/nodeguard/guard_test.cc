// The guard's reconcile loop over dry-run backends: spool, scheduling, expiry,
// restart, a stand-in broker over real HTTP (signed requests checked), the
// broker-signed share table turned into weights and rates, the status socket.
#include "nodeguard/guard.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/canonical_json.h"
#include "core/request_signing.h"
#include "tests/nodeguard/chain_util.h"

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;
using testing::Child;
using testing::Res;
using testing::Root;

constexpr int64_t kNow = 1700000000;

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ng_guard_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ / "trust") << p_.site.public_key().ToText() << "\n";
    root_.emplace(Root(p_, "n1", kNow - 3600, kNow + 86400));
    ASSERT_TRUE(node_key_.SavePem((dir_ / "node.pem").string()).ok());
    fs::create_directories(dir_ / "state/spool");
  }
  void TearDown() override { fs::remove_all(dir_); }

  GuardConfig Config(const std::string& broker = "", const std::string& extra = "") {
    std::string text = "node_id = n1\ntrust_file = " + (dir_ / "trust").string() +
                       "\nstate_dir = " + (dir_ / "state").string() +
                       "\ncgroup_mode = dry-run\ninterface = eth0\nreconcile_period_s = 30\n"
                       "node_key = " +
                       (dir_ / "node.pem").string() + "\n" + extra;
    if (!broker.empty()) text += "broker_url = " + broker + "\n";
    auto c = GuardConfig::Parse(text);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return *c;
  }
  std::unique_ptr<Guard> Make(const std::string& broker = "", const std::string& extra = "") {
    auto g = Guard::Create(Config(broker, extra), &clock_);
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    return g.ok() ? std::move(*g) : nullptr;
  }
  void Spool(const std::string& file, const std::string& text) {
    std::ofstream(dir_ / "state/spool" / file) << text;
  }
  bool HasCgroup(const std::string& slice) {
    return fs::exists(dir_ / "state/dry/cgroup/cpu/bourse" / slice / "cpu.shares");
  }
  std::string Leaf(const core::ResourceVector& r, int64_t nb, int64_t na) {
    return testing::ChainText({*root_, Child(*root_, p_.broker, p_.alice.public_key(), r, nb, na)});
  }

  fs::path dir_;
  testing::Principals p_;
  core::PrivateKey node_key_ = core::PrivateKey::Generate().value();
  core::ManualClock clock_{kNow * 1000};
  std::optional<ledger::Rcap> root_;
};

TEST(GuardConfigTest, ParsesAndNamesBadKeys) {
  auto c = GuardConfig::Parse("# comment\nnode_id = n1\ntrust_file=/t\nstate_dir = /s\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->reconcile_period_s, 30);
  EXPECT_EQ(c->spool_dir, "/s/spool");
  EXPECT_EQ(c->status_socket, "/s/status.sock");
  auto bad = GuardConfig::Parse("node_id = n1\ntrust_file=/t\nstate_dir=/s\nlink_kbps = fast\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 4: link_kbps"), std::string::npos);
  auto unknown = GuardConfig::Parse("node_id = n1\nfoo = 1\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown key \"foo\""), std::string::npos);
  auto missing = GuardConfig::Parse("trust_file=/t\nstate_dir=/s\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("node_id"), std::string::npos);
  auto nokey = GuardConfig::Parse("node_id=n\ntrust_file=/t\nstate_dir=/s\nbroker_url=http://x\n");
  ASSERT_FALSE(nokey.ok());
  EXPECT_NE(nokey.status().message().find("node_key"), std::string::npos);
  auto badkey =
      GuardConfig::Parse("node_id=n\ntrust_file=/t\nstate_dir=/s\nbroker_key = ed25519:xyz\n");
  ASSERT_FALSE(badkey.ok());
  EXPECT_NE(badkey.status().message().find("line 4: broker_key"), std::string::npos);
  EXPECT_GE(c->cpu_mcores, 1000);  // online CPUs x 1000 unless configured
}

TEST_F(GuardTest, SpoolScheduledAndExpiry) {
  Spool("site_a.json", Leaf(Res(1000, 128, 0, 1000, 2000), kNow, kNow + 3600));
  nlohmann::json b = {
      {"slice", "site_b"},
      {"boot_script", "echo hi\n"},
      {"chain", nlohmann::json::parse(Leaf(Res(500, 64, 0, 500, 900), kNow + 100, kNow + 200))}};
  Spool("b.json", b.dump());
  Spool("site_c.json", Leaf(Res(1, 1, 0, 1, 1), kNow - 600, kNow - 300));  // expired
  auto g = Make();
  ASSERT_NE(g, nullptr);
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->redeemed, 2);
  EXPECT_EQ(st->refused, 1);
  EXPECT_EQ(st->enforce.created, 1);
  EXPECT_TRUE(HasCgroup("site_a"));
  EXPECT_FALSE(HasCgroup("site_b"));  // scheduled: enforced only from its start
  auto status = g->StatusJson();
  ASSERT_EQ(status["refusals"].size(), 1u);
  EXPECT_EQ(status["refusals"][0]["reason"], "expired");

  clock_.SetSeconds(kNow + 150);
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->redeemed, 0);
  EXPECT_TRUE(HasCgroup("site_b"));
  EXPECT_EQ(st->enforce.created, 1);

  clock_.SetSeconds(kNow + 250);  // site_b's leaf expired
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->enforce.removed, 1);
  EXPECT_FALSE(HasCgroup("site_b"));
  EXPECT_TRUE(HasCgroup("site_a"));

  clock_.SetSeconds(kNow + 3600);
  ASSERT_TRUE(g->ReconcileOnce().ok());
  EXPECT_FALSE(HasCgroup("site_a"));
  EXPECT_EQ(g->store().BookSize(), 0u);
}

TEST_F(GuardTest, RestartKeepsStateAndDisturbsNothing) {
  for (int i = 0; i < 5; ++i) {
    Spool("s" + std::to_string(i) + ".json", Leaf(Res(100, 16, 0, 100, 100), kNow, kNow + 3600));
  }
  {
    auto g = Make();
    auto st = g->ReconcileOnce();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->enforce.created, 5);
  }
  auto mtime = fs::last_write_time(dir_ / "state/dry/cgroup/cpu/bourse/s3/cpu.shares");
  auto g = Make();
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->redeemed, 0);
  EXPECT_EQ(st->enforce.created, 0);
  EXPECT_EQ(st->enforce.updated, 0);
  EXPECT_EQ(st->enforce.unchanged, 5);
  EXPECT_FALSE(st->enforce.link_changed);
  EXPECT_EQ(fs::last_write_time(dir_ / "state/dry/cgroup/cpu/bourse/s3/cpu.shares"), mtime);
  EXPECT_EQ(g->store().BookSize(), 5u);
}

// A stand-in for the broker's node endpoints (the real one is in broker/,
// which the guard must not link): checks every request's signature.
class FakeBroker {
 public:
  explicit FakeBroker(const core::PublicKey& node) : node_(node.ToText()) {
    auto check = [this](const httplib::Request& req, httplib::Response& res) {
      core::SignedHeaders h{
          req.get_header_value("Bourse-Key"), req.get_header_value("Bourse-Timestamp"),
          req.get_header_value("Bourse-Nonce"), req.get_header_value("Bourse-Signature")};
      auto who = core::VerifyRequest(h, req.method, req.path, req.body, now_s, &nonces_);
      if (!who.ok() || who->ToText() != node_) {
        res.status = !who.ok() ? 401 : 403;
        res.set_content("{\"error\":{\"code\":\"unauthenticated\",\"message\":\"\"}}",
                        "application/json");
        return false;
      }
      return true;
    };
    svr_.Get("/v1/nodes/n1/bindings", [this, check](const auto& req, auto& res) {
      if (!check(req, res)) return;
      std::lock_guard<std::mutex> l(mu);
      nlohmann::json body = {{"node", "n1"}, {"ts", 0}, {"bindings", bindings}};
      if (!slices.is_null()) body["slices"] = slices;
      res.set_content(body.dump(), "application/json");
    });
    // Public, like the real one: the body's signature is what the guard trusts.
    svr_.Get("/v1/nodes/n1/shares", [this](const auto&, auto& res) {
      std::lock_guard<std::mutex> l(mu);
      ++share_fetches;
      res.set_content(shares_body, "application/json");
    });
    svr_.Post("/v1/nodes/n1/redemptions", [this, check](const auto& req, auto& res) {
      if (!check(req, res)) return;
      std::lock_guard<std::mutex> l(mu);
      auto j = nlohmann::json::parse(req.body);
      for (auto& r : j["redemptions"]) redemptions.push_back(r);
      res.set_content(nlohmann::json{{"recorded", j["redemptions"].size()}}.dump(),
                      "application/json");
    });
    svr_.Post("/v1/nodes/n1/usage", [this, check](const auto& req, auto& res) {
      if (!check(req, res)) return;
      std::lock_guard<std::mutex> l(mu);
      auto j = nlohmann::json::parse(req.body);
      nlohmann::json acked = nlohmann::json::array();
      for (auto& r : j["reports"]) {
        usage.push_back(r);
        acked.push_back(r["id"]);
      }
      res.set_content(nlohmann::json{{"acked", acked}}.dump(), "application/json");
    });
    svr_.Post("/v1/nodes/n1/slivers", [this, check](const auto& req, auto& res) {
      if (!check(req, res)) return;
      std::lock_guard<std::mutex> l(mu);
      sliver_reports.push_back(nlohmann::json::parse(req.body));
      res.set_content(R"({"changed":true,"reported_ms":0,"seq":0})", "application/json");
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    while (!svr_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeBroker() { Stop(); }
  void Stop() {
    svr_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::mutex mu;
  nlohmann::json bindings = nlohmann::json::array();
  nlohmann::json slices;  // best-effort slices; null: the member is left out (an older broker)
  std::vector<nlohmann::json> redemptions, usage, sliver_reports;
  std::string shares_body = R"({"node":"n1","ts":0,"shares":[]})";  // unsigned
  int share_fetches = 0;
  int64_t now_s = kNow;

 private:
  std::string node_;
  core::NonceCache nonces_;
  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(GuardTest, FetchesBindingsReportsAndTearsDownUnbound) {
  FakeBroker broker(node_key_.public_key());
  auto chain = nlohmann::json::parse(Leaf(Res(700, 64, 0, 100, 500), kNow, kNow + 3600));
  std::string leaf_id = chain.back()["id"];
  {
    std::lock_guard<std::mutex> l(broker.mu);
    broker.bindings.push_back({{"slice", "site_web"},
                               {"chain", chain},
                               {"boot_script", ""},
                               {"owners", nlohmann::json::array()},
                               {"state", "bound"}});
    // A binding whose chain the node must refuse (untrusted root).
    auto rogue = ledger::IssueRoot(p_.mallory, {.id = "",
                                                .holder = p_.broker.public_key(),
                                                .node = "n1",
                                                .res = Res(10, 1, 1, 1, 1),
                                                .interval = {kNow - 1, kNow + 60}});
    broker.bindings.push_back({{"slice", "site_rogue"},
                               {"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{*rogue})}});
  }
  auto g = Make(broker.url());
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_TRUE(st->broker_ok);
  EXPECT_EQ(st->redeemed, 1);
  EXPECT_EQ(st->refused, 1);
  EXPECT_TRUE(HasCgroup("site_web"));
  {
    std::lock_guard<std::mutex> l(broker.mu);
    ASSERT_EQ(broker.redemptions.size(), 2u);
    bool active = false, refused = false;
    for (auto& r : broker.redemptions) {
      if (r["rcap"] == leaf_id && r["state"] == "active") active = true;
      if (r["state"] == "refused" && r["reason"] == "untrusted_root") refused = true;
    }
    EXPECT_TRUE(active);
    EXPECT_TRUE(refused);
    EXPECT_EQ(broker.usage.size(), 0u);  // metering starts one period after boot
  }
  // Redemptions are reported once only; usage arrives each period.
  clock_.AdvanceSeconds(31);
  broker.now_s += 31;
  ASSERT_TRUE(g->ReconcileOnce().ok());
  {
    std::lock_guard<std::mutex> l(broker.mu);
    EXPECT_EQ(broker.redemptions.size(), 2u);
    ASSERT_EQ(broker.usage.size(), 1u);
    EXPECT_EQ(broker.usage[0]["slice"], "site_web");
    EXPECT_EQ(broker.usage[0]["rcap"], leaf_id);
    EXPECT_EQ(broker.usage[0]["to"], kNow + 31);
  }
  EXPECT_EQ(g->StatusJson()["pending_usage"], 0);
  // The slice is deleted at the broker: its binding vanishes, the sliver goes.
  {
    std::lock_guard<std::mutex> l(broker.mu);
    broker.bindings = nlohmann::json::array();
  }
  clock_.AdvanceSeconds(31);
  broker.now_s += 31;
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->revoked, 1);
  EXPECT_FALSE(HasCgroup("site_web"));
}

// Best-effort slivers (issue #20): a slice instantiated on the node without
// an rcap gets a sliver (uid, cgroup, HTB class, disk) with the default
// share; a slice with an rcap gets it on top; the list survives a restart
// with the broker down; removal and expiry tear the sliver down.
TEST_F(GuardTest, BestEffortSliversFollowTheBrokersListAndSurviveItsOutage) {
  auto broker = std::make_unique<FakeBroker>(node_key_.public_key());
  auto chain = nlohmann::json::parse(Leaf(Res(400, 64, 0, 100, 500), kNow, kNow + 3600));
  auto be = [](const char* slice, int64_t share, int64_t expires) {
    return nlohmann::json{{"slice", slice}, {"expires", expires}, {"boot_script", ""},
                          {"share", share}, {"disk_mib", 64},     {"mem_mib", 256}};
  };
  {
    std::lock_guard<std::mutex> l(broker->mu);
    broker->bindings.push_back({{"slice", "site_paid"}, {"chain", chain}});
    broker->slices = nlohmann::json::array(
        {be("site_a", 1, kNow + 7200), be("site_b", 3, kNow + 60), be("site_paid", 1, kNow + 7200),
         // skipped, named on stderr: a share the guard never applies
         be("site_bad", 0, kNow + 7200)});
  }
  // cpu 2000, link 100000 with 1000 for the default class.
  const std::string extra = "cpu_mcores = 2000\nlink_kbps = 100000\n";
  auto g = Make(broker->url(), extra);
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->enforce.created, 3);
  EXPECT_FALSE(HasCgroup("site_bad"));
  auto cpu_shares = [&](const std::string& slice) {
    std::ifstream f(dir_ / "state/dry/cgroup/cpu/bourse" / slice / "cpu.shares");
    int64_t v = 0;
    f >> v;
    return v;
  };
  // spare CPU 2000 - 400 = 1600 split 1:3:1 -> 320, 960, 320 (+ the 400 bought).
  EXPECT_EQ(cpu_shares("site_a"), 320 * 1024 / 1000);
  EXPECT_EQ(cpu_shares("site_b"), 960 * 1024 / 1000);
  EXPECT_EQ(cpu_shares("site_paid"), 720 * 1024 / 1000);
  nlohmann::json slivers = g->StatusJson()["slivers"];
  std::map<std::string, nlohmann::json> by;
  for (auto& s : slivers) by[s["slice"]] = s;
  // link: 100000 - 1000 - 100 bought = 98900 split 1:3:1.
  EXPECT_EQ(by["site_b"]["enforced"]["net_min_kbps"], 98900 * 3 / 5);
  EXPECT_EQ(by["site_b"]["enforced"]["net_max_kbps"], 100000);
  EXPECT_EQ(by["site_b"]["enforced"]["disk_mib"], 64);
  EXPECT_EQ(by["site_b"]["enforced"]["mem_mib"], 256);
  EXPECT_EQ(by["site_b"]["effective"]["cpu_mcores"], 0);  // nothing bought
  EXPECT_EQ(by["site_b"]["best_effort"]["share"], 3);
  EXPECT_EQ(by["site_paid"]["enforced"]["cpu_mcores"], 720);
  EXPECT_EQ(by["site_paid"]["enforced"]["mem_mib"], 64 + 256);
  EXPECT_EQ(by["site_paid"]["effective"]["cpu_mcores"], 400);
  const int64_t uid_a = by["site_a"]["uid"];

  // The broker goes away; a restarted guard with its dry-run kernel state
  // wiped (a reboot) restores every sliver from its own database.
  broker.reset();
  g.reset();
  fs::remove_all(dir_ / "state/dry");
  g = Make("http://127.0.0.1:1", extra);
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_FALSE(st->broker_ok);
  EXPECT_EQ(st->enforce.created, 3);
  EXPECT_EQ(cpu_shares("site_b"), 960 * 1024 / 1000);
  // site_b's slice expires by the guard's own clock, broker or not; the
  // others keep their uids.
  clock_.AdvanceSeconds(61);
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->enforce.removed, 1);
  EXPECT_FALSE(HasCgroup("site_b"));
  // 1600 split 1:1 now.
  EXPECT_EQ(cpu_shares("site_a"), 800 * 1024 / 1000);
  nlohmann::json after = g->StatusJson();
  for (auto& s : after["slivers"]) {
    if (s["slice"] == "site_a") EXPECT_EQ(s["uid"], uid_a);
  }

  // The broker is back and site_a was removed from the node: torn down; the
  // paid slice keeps its rcap sliver without the best-effort part once it
  // is no longer instantiated here either.
  broker = std::make_unique<FakeBroker>(node_key_.public_key());
  {
    std::lock_guard<std::mutex> l(broker->mu);
    broker->bindings.push_back({{"slice", "site_paid"}, {"chain", chain}});
    broker->slices = nlohmann::json::array();
  }
  g = Make(broker->url(), extra);
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_FALSE(HasCgroup("site_a"));
  EXPECT_TRUE(HasCgroup("site_paid"));
  EXPECT_EQ(cpu_shares("site_paid"), 400 * 1024 / 1000);
}

// The status API shows per sliver what the kernel holds (read back), and the
// guard sends the broker its node's slivers when they change, not each pass.
TEST_F(GuardTest, ReportsKernelReadBackAndSendsSliverReportsOnChange) {
  FakeBroker broker(node_key_.public_key());
  auto chain = nlohmann::json::parse(Leaf(Res(700, 64, 32, 100, 500), kNow, kNow + 3600));
  auto later = nlohmann::json::parse(Leaf(Res(200, 16, 0, 10, 50), kNow + 600, kNow + 3600));
  {
    std::lock_guard<std::mutex> l(broker.mu);
    broker.bindings.push_back({{"slice", "site_web"}, {"chain", chain}});
    broker.bindings.push_back({{"slice", "site_later"}, {"chain", later}});
  }
  auto g = Make(broker.url());
  ASSERT_TRUE(g->ReconcileOnce().ok());
  nlohmann::json st = g->StatusJson();
  nlohmann::json web;
  for (const auto& s : st["slivers"]) {
    if (s["slice"] == "site_web") web = s;
  }
  ASSERT_TRUE(web.contains("kernel")) << st.dump();
  const nlohmann::json& k = web["kernel"];
  EXPECT_EQ(k["read_ms"], kNow * 1000);
  EXPECT_EQ(k["cpu_mcores"], 700);
  EXPECT_EQ(k["cpu_shares"], CpuSharesFor(700));
  EXPECT_EQ(k["mem_mib"], 64);
  EXPECT_EQ(k["disk_mib"], 32);
  EXPECT_EQ(k["net_min_kbps"], 100);
  EXPECT_EQ(k["net_max_kbps"], 500);
  EXPECT_EQ(k["differences"], nlohmann::json::array()) << k.dump();
  {
    std::lock_guard<std::mutex> l(broker.mu);
    ASSERT_EQ(broker.sliver_reports.size(), 1u);
    const nlohmann::json& r = broker.sliver_reports[0]["slivers"];
    ASSERT_EQ(r.size(), 2u) << r.dump();
    EXPECT_EQ(r[0]["slice"], "site_web");
    EXPECT_EQ(r[0]["state"], "active");
    EXPECT_EQ(r[0]["bought"]["cpu_mcores"], 700);
    EXPECT_EQ(r[0]["enforced"]["cpu_mcores"], 700);
    EXPECT_EQ(r[0]["kernel"]["cpu_mcores"], 700);
    EXPECT_EQ(r[0]["kernel"]["read_ms"], kNow * 1000);
    EXPECT_EQ(r[1]["slice"], "site_later");
    EXPECT_EQ(r[1]["state"], "scheduled");
    EXPECT_EQ(r[1]["kernel"], nullptr);
    EXPECT_EQ(r[1]["bought"]["cpu_mcores"], 200);
  }
  // Nothing changed: later passes (one of them re-reading the kernel) send nothing.
  for (int i = 0; i < 10; ++i) {
    clock_.AdvanceSeconds(5);
    broker.now_s += 5;
    ASSERT_TRUE(g->ReconcileOnce().ok());
  }
  {
    std::lock_guard<std::mutex> l(broker.mu);
    EXPECT_EQ(broker.sliver_reports.size(), 1u);
  }
  EXPECT_EQ(g->StatusJson()["slivers"][0]["kernel"]["read_ms"], (kNow + 50) * 1000);
  // The scheduled leaf starts: a new sliver, a new report.
  clock_.SetSeconds(kNow + 600);
  broker.now_s = kNow + 600;
  ASSERT_TRUE(g->ReconcileOnce().ok());
  {
    std::lock_guard<std::mutex> l(broker.mu);
    ASSERT_EQ(broker.sliver_reports.size(), 2u);
    const nlohmann::json& r = broker.sliver_reports[1]["slivers"];
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0]["slice"], "site_later");
    EXPECT_EQ(r[0]["state"], "active");
    EXPECT_EQ(r[0]["kernel"]["cpu_mcores"], 200);
    EXPECT_EQ(r[0]["kernel"]["read_ms"], (kNow + 600) * 1000);
  }
}

TEST_F(GuardTest, BootsFromLastGoodStateWhenBrokerIsDown) {
  auto chain = nlohmann::json::parse(Leaf(Res(700, 64, 0, 100, 500), kNow, kNow + 3600));
  std::string url;
  {
    FakeBroker broker(node_key_.public_key());
    url = broker.url();
    broker.bindings.push_back({{"slice", "site_web"}, {"chain", chain}});
    auto g = Make(url);
    ASSERT_TRUE(g->ReconcileOnce().ok());
    EXPECT_TRUE(HasCgroup("site_web"));
  }  // broker gone; so is the guard (a node reboot)
  clock_.AdvanceSeconds(60);
  auto g = Make(url);
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_FALSE(st->broker_ok);
  EXPECT_EQ(st->revoked, 0);
  EXPECT_TRUE(HasCgroup("site_web"));
  EXPECT_EQ(st->enforce.unchanged, 1);
  clock_.AdvanceSeconds(31);
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(HasCgroup("site_web"));
  EXPECT_EQ(g->StatusJson()["pending_usage"].get<int>(), 1);  // kept until acknowledged
}

TEST_F(GuardTest, StatusSocketServesSlivers) {
  Spool("site_a.json", Leaf(Res(250, 32, 0, 100, 100), kNow, kNow + 3600));
  auto g = Make();
  ASSERT_TRUE(g->ReconcileOnce().ok());
  ASSERT_TRUE(g->ServeStatus().ok());
  auto get = [&](const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string sock = (dir_ / "state/status.sock").string();
    memcpy(a.sun_path, sock.c_str(), sock.size() + 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
    EXPECT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string resp;
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(r));
    close(fd);
    return resp;
  };
  std::string resp = get("/v1/slivers");
  ASSERT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp;
  auto j = nlohmann::json::parse(resp.substr(resp.find("\r\n\r\n") + 4));
  ASSERT_EQ(j["slivers"].size(), 1u);
  EXPECT_EQ(j["slivers"][0]["slice"], "site_a");
  EXPECT_EQ(j["slivers"][0]["effective"]["cpu_mcores"], 250);
  EXPECT_EQ(j["slivers"][0]["uid"], 200001);
  EXPECT_EQ(get("/nope").rfind("HTTP/1.1 404", 0), 0u);
  g->StopStatus();
  EXPECT_FALSE(fs::exists(dir_ / "state/status.sock"));
}

// ---------------------------------------------------------------- share table

nlohmann::json Entries(std::initializer_list<std::tuple<const char*, int64_t, int64_t>> es) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& [slice, w, n] : es) {
    a.push_back({{"slice", slice}, {"cpu_weight", w}, {"net_kbps", n}});
  }
  return a;
}

// What the broker's GET /v1/nodes/{node}/shares returns (broker/market_shares.cc).
std::string SignedTable(const core::PrivateKey& k, const std::string& node, int64_t ts_ms,
                        const nlohmann::json& shares) {
  nlohmann::json doc = {{"node", node}, {"ts", ts_ms}, {"shares", shares}};
  doc["sig"] = core::SignatureToText(k.Sign(core::CanonicalJson(doc).value()));
  return doc.dump();
}

std::string ReadAll(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST(ShareTableTest, ChecksSignatureNodeAndAge) {
  core::PrivateKey broker = core::PrivateKey::Generate().value();
  core::PrivateKey other = core::PrivateKey::Generate().value();
  const core::PublicKey& bk = broker.public_key();
  auto shares = Entries({{"s_b", 2500, 100}, {"s_a", 7500, 300}});
  ShareCheck ok = CheckShareTable(SignedTable(broker, "n1", 5000, shares), bk, "n1", -1);
  ASSERT_TRUE(ok.ok()) << ok.reason << ": " << ok.detail;
  EXPECT_EQ(ok.table->ts_ms, 5000);
  ASSERT_EQ(ok.table->shares.size(), 2u);
  EXPECT_EQ(ok.table->shares[0], (ShareEntry{"s_a", 7500, 300}));  // sorted by slice
  EXPECT_TRUE(CheckShareTable(SignedTable(broker, "n1", 5000, shares), bk, "n1", 5000).ok());

  auto reason = [&](const std::string& body, int64_t held = -1) {
    return CheckShareTable(body, bk, "n1", held).reason;
  };
  EXPECT_EQ(reason(SignedTable(broker, "n1", 4999, shares), 5000), "stale");
  EXPECT_EQ(reason(SignedTable(broker, "n2", 5000, shares)), "wrong_node");
  EXPECT_EQ(reason(SignedTable(other, "n1", 5000, shares)), "bad_signature");
  auto forged = nlohmann::json::parse(SignedTable(broker, "n1", 5000, shares));
  forged["shares"][0]["cpu_weight"] = 10000;
  EXPECT_EQ(reason(forged.dump()), "bad_signature");
  forged = nlohmann::json::parse(SignedTable(broker, "n1", 5000, shares));
  forged.erase("sig");
  EXPECT_EQ(reason(forged.dump()), "unsigned");
  forged["sig"] = "not-base64!";
  EXPECT_EQ(reason(forged.dump()), "bad_signature");
  EXPECT_EQ(reason("{\"node\":"), "malformed");
  EXPECT_EQ(reason("[]"), "malformed");
  // Signed, but not what a share table may say.
  EXPECT_EQ(reason(SignedTable(broker, "n1", 1, Entries({{"s_a", 10001, 0}}))), "malformed");
  EXPECT_EQ(reason(SignedTable(broker, "n1", 1, Entries({{"s_a", 1, -1}}))), "malformed");
  EXPECT_EQ(reason(SignedTable(broker, "n1", 1, Entries({{"s_a", 1, 0}, {"s_a", 2, 0}}))),
            "malformed");
  EXPECT_EQ(reason(SignedTable(broker, "n1", 1, nlohmann::json::object())), "malformed");
}

TEST(ShareTableTest, SharesDivideWhatRcapsLeave) {
  ShareTable t;
  t.shares = {{"s_a", 6000, 60000}, {"s_absent", 4000, 40000}};
  std::vector<SliverSpec> desired = {{.name = "s_a",
                                      .uid = 200001,
                                      .class_minor = 3,
                                      .res = Res(700, 64, 0, 100, 500),
                                      .cpu_cap_mcores = 0,
                                      .boot_script = ""},
                                     {.name = "s_b",
                                      .uid = 200002,
                                      .class_minor = 4,
                                      .res = Res(300, 64, 0, 900, 2000),
                                      .cpu_cap_mcores = 0,
                                      .boot_script = ""}};
  auto grants =
      ApplyShares(t, {.cpu_mcores = 4000, .link_kbps = 100000, .default_min_kbps = 1000}, &desired);
  // cpu pool 4000 - 1000 = 3000 -> 60% = 1800; link pool 100000 - 1000 - 1000 = 98000 -> 60%.
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants["s_a"].cpu_mcores, 1800);
  EXPECT_EQ(grants["s_a"].net_rate_kbps, 58800);
  EXPECT_EQ(desired[0].res, Res(2500, 64, 0, 58900, 58900));  // ceil raised to the rate
  EXPECT_EQ(desired[1].res, Res(300, 64, 0, 900, 2000));      // no entry: untouched
  EXPECT_EQ(CpuSharesFor(desired[0].res.cpu_mcores), 2560);

  // Rcaps already guarantee the whole node: the shares have nothing to divide.
  std::vector<SliverSpec> full = {{.name = "s_a",
                                   .uid = 200001,
                                   .class_minor = 3,
                                   .res = Res(4000, 64, 0, 99000, 99000),
                                   .cpu_cap_mcores = 0,
                                   .boot_script = ""}};
  grants =
      ApplyShares(t, {.cpu_mcores = 4000, .link_kbps = 100000, .default_min_kbps = 1000}, &full);
  EXPECT_EQ(grants["s_a"].cpu_mcores, 0);
  EXPECT_EQ(grants["s_a"].net_rate_kbps, 0);
  EXPECT_EQ(full[0].res, Res(4000, 64, 0, 99000, 99000));
}

class GuardShareTest : public GuardTest {
 protected:
  std::string Extra() const {
    return "broker_key = " + ledger_key_.public_key().ToText() +
           "\ncpu_mcores = 4000\nlink_kbps = 100000\n";
  }
  void Bind(FakeBroker& b) {
    std::lock_guard<std::mutex> l(b.mu);
    b.bindings.push_back(
        {{"slice", "site_web"},
         {"chain", nlohmann::json::parse(Leaf(Res(700, 64, 0, 100, 500), kNow, kNow + 3600))}});
  }
  void Serve(FakeBroker& b, const std::string& body) {
    std::lock_guard<std::mutex> l(b.mu);
    b.shares_body = body;
  }
  std::string Table(int64_t ts_ms, int64_t web_weight, const std::string& node = "n1") {
    int64_t web_net = web_weight * 10;
    return SignedTable(ledger_key_, node, ts_ms,
                       Entries({{"site_web", web_weight, web_net},
                                {"site_absent", 10000 - web_weight, 100000 - web_net}}));
  }
  int64_t WebShares() {
    return std::stoll(ReadAll(dir_ / "state/dry/cgroup/cpu/bourse/site_web/cpu.shares"));
  }
  std::string Classes() { return ReadAll(dir_ / "state/dry/link/classes"); }

  core::PrivateKey ledger_key_ = core::PrivateKey::Generate().value();
};

TEST_F(GuardShareTest, SignedTableSetsWeightsAndRates) {
  FakeBroker broker(node_key_.public_key());
  Bind(broker);
  auto g = Make(broker.url(), Extra());
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->redeemed, 1);
  EXPECT_EQ(st->shares_refused, "unsigned");  // the stand-in's default body
  EXPECT_EQ(WebShares(), 716);                // 700 mcores bought
  EXPECT_NE(Classes().find("\n3 200001 100 500\n"), std::string::npos) << Classes();

  Serve(broker, Table(kNow * 1000, 6000));
  clock_.AdvanceSeconds(1);
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_TRUE(st->shares_accepted);
  EXPECT_EQ(st->shares_refused, "");
  EXPECT_EQ(st->enforce.updated, 1);
  // cpu pool 4000 - 700 = 3300, 60% -> +1980 mcores: shares of 2680 mcores.
  EXPECT_EQ(WebShares(), 2744);
  // link pool 100000 - 1000 (default class) - 100 = 98900, 60% -> +59340 kbit/s.
  EXPECT_NE(Classes().find("\n3 200001 59440 59440\n"), std::string::npos) << Classes();
  EXPECT_FALSE(HasCgroup("site_absent"));  // an entry without a sliver gets nothing
  auto status = g->StatusJson();
  ASSERT_EQ(status["slivers"].size(), 1u);
  const auto& web = status["slivers"][0];
  EXPECT_EQ(web["effective"]["cpu_mcores"], 700);
  EXPECT_EQ(web["enforced"]["cpu_mcores"], 2680);
  EXPECT_EQ(web["share"]["cpu_weight"], 6000);
  EXPECT_EQ(web["share"]["added_net_kbps"], 59340);
  EXPECT_EQ(status["shares"]["ts"], kNow * 1000);
  EXPECT_EQ(status["shares"]["table"].size(), 2u);

  // A newer table with a smaller share: weights go down on the next pass.
  Serve(broker, Table(kNow * 1000 + 5000, 2000));
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->shares_accepted);
  EXPECT_EQ(WebShares(), (700 + 660) * 1024 / 1000);
  // An empty table: back to what the rcap bought.
  Serve(broker, SignedTable(ledger_key_, "n1", kNow * 1000 + 6000, nlohmann::json::array()));
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(WebShares(), 716);
  EXPECT_NE(Classes().find("\n3 200001 100 500\n"), std::string::npos) << Classes();
}

TEST_F(GuardShareTest, ForgedForeignAndOlderTablesAreRefusedAndChangeNothing) {
  FakeBroker broker(node_key_.public_key());
  Bind(broker);
  Serve(broker, Table(kNow * 1000, 6000));
  auto g = Make(broker.url(), Extra());
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_TRUE(st->shares_accepted);
  ASSERT_EQ(WebShares(), 2744);
  const std::string classes = Classes();
  const std::string stored = g->store().GetMeta("share_table").value();

  auto forged = nlohmann::json::parse(Table(kNow * 1000 + 1000, 6000));
  forged["shares"][0]["cpu_weight"] = 10000;  // site_web helps itself
  core::PrivateKey mallory = core::PrivateKey::Generate().value();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {forged.dump(), "bad_signature"},
      {SignedTable(mallory, "n1", kNow * 1000 + 1000, Entries({{"site_web", 10000, 100000}})),
       "bad_signature"},
      {Table(kNow * 1000 + 1000, 9000, "n2"), "wrong_node"},
      {Table(kNow * 1000 - 1, 9000), "stale"},
      {R"({"node":"n1","ts":99999999999999,"shares":[{"slice":"site_web","cpu_weight":10000,"net_kbps":1}]})",
       "unsigned"},
  };
  for (const auto& [body, why] : cases) {
    Serve(broker, body);
    clock_.AdvanceSeconds(1);
    st = g->ReconcileOnce();
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_TRUE(st->broker_ok);
    EXPECT_FALSE(st->shares_accepted) << why;
    EXPECT_EQ(st->shares_refused, why);
    EXPECT_EQ(st->enforce.updated, 0) << why;
    EXPECT_EQ(WebShares(), 2744) << why;
    EXPECT_EQ(Classes(), classes) << why;
    EXPECT_EQ(g->store().GetMeta("share_table").value(), stored) << why;
  }
  auto status = g->StatusJson();
  EXPECT_EQ(status["shares"]["ts"], kNow * 1000);
  std::vector<std::string> reasons;
  for (const auto& r : status["shares"]["refusals"]) reasons.push_back(r["reason"]);
  EXPECT_EQ(reasons, (std::vector<std::string>{"bad_signature", "bad_signature", "wrong_node",
                                               "stale", "unsigned"}));
  EXPECT_EQ(status["slivers"][0]["share"]["cpu_weight"], 6000);
}

TEST_F(GuardShareTest, TableSurvivesRestartWithBrokerDown) {
  std::string url;
  {
    FakeBroker broker(node_key_.public_key());
    url = broker.url();
    Bind(broker);
    Serve(broker, Table(kNow * 1000, 6000));
    auto g = Make(url, Extra());
    auto st = g->ReconcileOnce();
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    ASSERT_TRUE(st->shares_accepted);
    ASSERT_EQ(WebShares(), 2744);
  }  // broker and guard gone (a node reboot while the broker is down)
  clock_.AdvanceSeconds(60);
  const std::string classes = Classes();
  {
    auto g = Make(url, Extra());
    auto st = g->ReconcileOnce();
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_FALSE(st->broker_ok);
    EXPECT_FALSE(st->shares_accepted);
    EXPECT_EQ(st->enforce.unchanged, 1);
    EXPECT_EQ(st->enforce.updated, 0);
    EXPECT_EQ(WebShares(), 2744);
    EXPECT_EQ(Classes(), classes);
    EXPECT_EQ(g->StatusJson()["shares"]["ts"], kNow * 1000);
    EXPECT_EQ(g->StatusJson()["slivers"][0]["share"]["added_cpu_mcores"], 1980);
  }
  // The broker is back (elsewhere): the restored table's age still counts.
  FakeBroker broker(node_key_.public_key());
  Bind(broker);
  Serve(broker, Table(kNow * 1000 - 1, 9000));
  auto g = Make(broker.url(), Extra());
  auto st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_TRUE(st->broker_ok);
  EXPECT_EQ(st->shares_refused, "stale");
  EXPECT_EQ(WebShares(), 2744);
  // Without broker_key the stored table is not applied (shares are off).
  g.reset();
  g = Make(broker.url());
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(WebShares(), 716);
}

}  // namespace
}  // namespace bourse::nodeguard

namespace bourse::nodeguard {
namespace {

// The dry-run backend with one sliver whose link step always fails, as tc
// does when it refuses a class: a fault-injecting backend for the guard.
class FaultyEnforcer final : public Enforcer {
 public:
  FaultyEnforcer(std::unique_ptr<Enforcer> inner, std::string bad)
      : inner_(std::move(inner)), bad_(std::move(bad)) {}
  core::Result<ReconcileStats> Reconcile(const std::vector<SliverSpec>& desired,
                                         bool verify_kernel) override {
    auto r = inner_->Reconcile(desired, verify_kernel);
    failures_ = inner_->Failures();
    bool wanted = false;
    for (const SliverSpec& s : desired) wanted = wanted || s.name == bad_;
    if (!wanted) {
      attempts_ = 0;
      return r;
    }
    failures_[bad_] = {"link", "HTB class not installed (injected)", ++attempts_};
    ++calls_with_bad;
    return core::Internal("link: HTB class not installed (injected)");
  }
  core::Result<std::vector<std::string>> ListPresent() override { return inner_->ListPresent(); }
  std::map<std::string, SliverUsage> Usage() override { return inner_->Usage(); }
  std::map<std::string, KernelReadback> ReadBack(const std::vector<SliverSpec>& s) override {
    return inner_->ReadBack(s);
  }
  std::string SliverDir(const std::string& n) const override { return inner_->SliverDir(n); }
  std::vector<int> Pids(const std::string& n) override { return inner_->Pids(n); }
  core::Status TearDownAll() override { return inner_->TearDownAll(); }
  std::map<std::string, SliverFailure> Failures() const override { return failures_; }

  int calls_with_bad = 0;

 private:
  std::unique_ptr<Enforcer> inner_;
  std::string bad_;
  int attempts_ = 0;
  std::map<std::string, SliverFailure> failures_;
};

// A failed enforcement step is an error in the status API and holds back the
// "active" report; after kMaxEnforceAttempts passes it is a refusal
// (enforcement_failed) reported to the broker, and the sliver goes (issue #13).
TEST_F(GuardTest, EnforcementFailureIsAnErrorThenARefusalReportedToTheBroker) {
  FakeBroker broker(node_key_.public_key());
  auto bad_chain = nlohmann::json::parse(Leaf(Res(300, 64, 0, 0, 500), kNow, kNow + 3600));
  auto ok_chain = nlohmann::json::parse(Leaf(Res(300, 64, 0, 100, 500), kNow, kNow + 3600));
  std::string bad_leaf = bad_chain.back()["id"], ok_leaf = ok_chain.back()["id"];
  {
    std::lock_guard<std::mutex> l(broker.mu);
    broker.bindings.push_back({{"slice", "site_bad"}, {"chain", bad_chain}});
    broker.bindings.push_back({{"slice", "site_ok"}, {"chain", ok_chain}});
  }
  auto inner = Enforcer::Create(DryRunOptions((dir_ / "fault").string()));
  ASSERT_TRUE(inner.ok()) << inner.status().ToString();
  auto faulty = std::make_unique<FaultyEnforcer>(std::move(*inner), "site_bad");
  FaultyEnforcer* fe = faulty.get();
  auto created = Guard::Create(Config(broker.url()), &clock_, std::move(faulty));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::unique_ptr<Guard> g = std::move(*created);
  auto reported = [&](const std::string& leaf, const std::string& state) {
    std::lock_guard<std::mutex> l(broker.mu);
    std::vector<nlohmann::json> out;
    for (auto& r : broker.redemptions) {
      if (r["rcap"] == leaf && r["state"] == state) out.push_back(r);
    }
    return out;
  };
  auto sliver = [&](const std::string& name) {
    nlohmann::json status = g->StatusJson();
    for (auto& s : status["slivers"]) {
      if (s["slice"] == name) return s;
    }
    return nlohmann::json();
  };
  for (int pass = 1; pass < kMaxEnforceAttempts; ++pass) {
    auto st = g->ReconcileOnce();
    EXPECT_FALSE(st.ok()) << "pass " << pass << ": the kernel error is the pass's error";
    nlohmann::json status = g->StatusJson();
    EXPECT_EQ(status["enforcement"]["ok"], false);
    EXPECT_EQ(status["enforcement"]["failed_slivers"], 1);
    EXPECT_NE(status["enforcement"]["error"].get<std::string>().find("injected"),
              std::string::npos);
    nlohmann::json b = sliver("site_bad");
    EXPECT_EQ(b["state"], "error") << b.dump();
    EXPECT_EQ(b["error"]["step"], "link");
    EXPECT_EQ(b["error"]["attempts"], pass);
    EXPECT_EQ(b["error"]["max_attempts"], kMaxEnforceAttempts);
    EXPECT_EQ(sliver("site_ok")["state"], "active");
    // The broker hears "active" for the enforced sliver only.
    EXPECT_EQ(reported(ok_leaf, "active").size(), 1u);
    EXPECT_TRUE(reported(bad_leaf, "active").empty());
    EXPECT_TRUE(reported(bad_leaf, "refused").empty());
    clock_.AdvanceSeconds(5);
    broker.now_s += 5;
  }
  // The last attempt fails too: the leaf is refused, released and reported.
  auto st = g->ReconcileOnce();
  EXPECT_FALSE(st.ok());
  auto refused = reported(bad_leaf, "refused");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0]["reason"], "enforcement_failed");
  EXPECT_EQ(refused[0]["slice"], "site_bad");
  EXPECT_NE(refused[0]["detail"].get<std::string>().find("link: HTB class not installed"),
            std::string::npos)
      << refused[0].dump();
  EXPECT_TRUE(reported(bad_leaf, "active").empty());
  bool listed = false;
  nlohmann::json after = g->StatusJson();
  for (auto& r : after["refusals"]) {
    if (r["rcap"] == bad_leaf && r["reason"] == "enforcement_failed") listed = true;
  }
  EXPECT_TRUE(listed);
  // The next pass tears the sliver down; the broker still lists the binding,
  // and presenting it again changes nothing.
  clock_.AdvanceSeconds(5);
  broker.now_s += 5;
  int calls = fe->calls_with_bad;
  st = g->ReconcileOnce();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->redeemed, 0);
  EXPECT_EQ(st->refused, 0);
  EXPECT_EQ(fe->calls_with_bad, calls);
  EXPECT_TRUE(sliver("site_bad").is_null());
  EXPECT_EQ(g->StatusJson()["enforcement"]["ok"], true);
  EXPECT_EQ(sliver("site_ok")["state"], "active");
  EXPECT_EQ(reported(bad_leaf, "refused").size(), 1u);
  auto leaves = g->store().AllLeaves();
  ASSERT_TRUE(leaves.ok());
  for (const LeafRecord& l : *leaves) {
    EXPECT_EQ(l.state, l.leaf_id == bad_leaf ? "refused" : "active") << l.leaf_id;
  }
}

// A fault of the node, not of one sliver (here: every sliver's link step
// fails) is an error in the status API but never a refusal: a refusal is
// final and would take paid bindings away for a hiccup of the node.
TEST_F(GuardTest, NodeWideEnforcementFaultRefusesNothing) {
  FakeBroker broker(node_key_.public_key());
  auto chain = nlohmann::json::parse(Leaf(Res(300, 64, 0, 0, 500), kNow, kNow + 3600));
  std::string leaf = chain.back()["id"];
  {
    std::lock_guard<std::mutex> l(broker.mu);
    broker.bindings.push_back({{"slice", "site_bad"}, {"chain", chain}});
  }
  auto inner = Enforcer::Create(DryRunOptions((dir_ / "nodewide").string()));
  ASSERT_TRUE(inner.ok()) << inner.status().ToString();
  auto created = Guard::Create(Config(broker.url()), &clock_,
                               std::make_unique<FaultyEnforcer>(std::move(*inner), "site_bad"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::unique_ptr<Guard> g = std::move(*created);
  for (int pass = 1; pass <= kMaxEnforceAttempts + 2; ++pass) {
    EXPECT_FALSE(g->ReconcileOnce().ok()) << "pass " << pass;
    EXPECT_EQ(g->StatusJson()["enforcement"]["ok"], false);
    clock_.AdvanceSeconds(5);
    broker.now_s += 5;
  }
  std::lock_guard<std::mutex> l(broker.mu);
  for (auto& r : broker.redemptions) {
    EXPECT_FALSE(r["rcap"] == leaf && r["state"] == "refused") << r.dump();
  }
}

}  // namespace
}  // namespace bourse::nodeguard
