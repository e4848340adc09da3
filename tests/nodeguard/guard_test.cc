// The guard's reconcile loop over dry-run backends: spool, scheduling, expiry,
// restart, a stand-in broker over real HTTP (signed requests checked), the
// status socket.
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

  GuardConfig Config(const std::string& broker = "") {
    std::string text = "node_id = n1\ntrust_file = " + (dir_ / "trust").string() +
                       "\nstate_dir = " + (dir_ / "state").string() +
                       "\ncgroup_mode = dry-run\ninterface = eth0\nreconcile_period_s = 30\n"
                       "node_key = " +
                       (dir_ / "node.pem").string() + "\n";
    if (!broker.empty()) text += "broker_url = " + broker + "\n";
    auto c = GuardConfig::Parse(text);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return *c;
  }
  std::unique_ptr<Guard> Make(const std::string& broker = "") {
    auto g = Guard::Create(Config(broker), &clock_);
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
      res.set_content(nlohmann::json{{"node", "n1"}, {"ts", 0}, {"bindings", bindings}}.dump(),
                      "application/json");
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
  std::vector<nlohmann::json> redemptions, usage;
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
  ASSERT_EQ(resp.rfind("HTTP/1.0 200", 0), 0u) << resp;
  auto j = nlohmann::json::parse(resp.substr(resp.find("\r\n\r\n") + 4));
  ASSERT_EQ(j["slivers"].size(), 1u);
  EXPECT_EQ(j["slivers"][0]["slice"], "site_a");
  EXPECT_EQ(j["slivers"][0]["effective"]["cpu_mcores"], 250);
  EXPECT_EQ(j["slivers"][0]["uid"], 200001);
  EXPECT_EQ(get("/nope").rfind("HTTP/1.0 404", 0), 0u);
  g->StopStatus();
  EXPECT_FALSE(fs::exists(dir_ / "state/status.sock"));
}

}  // namespace
}  // namespace bourse::nodeguard
