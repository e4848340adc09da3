// bourse-agent as a process against the real bourse-broker (DESIGN §10,
// docs/agent.md): three sites grant root rcaps to two agents of different
// policies; the agents sell on node markets, a buyer buys, the utilisation
// agent's asks rise after its sales while the fixed one's stay put; capacity
// that comes back to an agent (the unsold escrow of a closed market) is
// offered again; an agent killed with -9 and restarted goes on without
// duplicate orders or a loop of refusals; afterwards `bourse ledger verify`
// passes and credits are conserved. Requests for quote: both agents quote on
// an RFQ for 4 nodes in 2 sites, the cheaper wins, the loser's escrows come
// back and are sold again; a killed agent does not quote twice; a quote the
// policy refuses is withdrawn. Robustness (an agent in this process behind a
// FaultProxy): an unreadable holding, a failing policy, a batch request
// refused whole, and trades read only when new.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.h"
#include "clients/agent/agent.h"
#include "core/json_codec.h"
#include "core/money.h"
#include "fault_proxy.h"

namespace bourse::systest {
namespace {

using nlohmann::json;

std::string AgentBinary() { return std::string(BOURSE_BINARY_DIR) + "/clients/bourse-agent"; }

int64_t Now() { return core::SystemClock::Get().NowSeconds(); }

// One bourse-agent process; killed (-9) by the destructor.
class AgentProcess {
 public:
  AgentProcess(std::string config, std::string log) : config_(std::move(config)), log_(log) {}
  ~AgentProcess() { Kill9(); }
  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::fopen(log_.c_str(), "a");
      if (f != nullptr) dup2(fileno(f), 2);
      execl(AgentBinary().c_str(), "bourse-agent", "run", "--config", config_.c_str(), nullptr);
      _exit(127);
    }
  }
  void Kill9() { KillChild(pid_); }
  int Terminate() { return TerminateChild(pid_); }

 private:
  std::string config_, log_;
  pid_t pid_ = -1;
};

struct ProcRun {
  int code = -1;
  std::string out;
};

ProcRun Exec(const std::string& cmd) {
  ProcRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

// Polls `done` every 200 ms for up to `seconds`.
bool WaitFor(const std::function<bool()>& done, int seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done();
}

core::Money M(const json& j) { return core::Money::Parse(j.get<std::string>()).value(); }

// One pass of an in-process agent, its error in the failure message.
::testing::AssertionResult PassOk(agent::Agent& a) {
  core::Status st = a.Pass();
  if (st.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << st.ToString();
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = BrokerProcess::Create();
    ASSERT_TRUE(p.ok()) << p.status().message();
    proc_ = std::move(*p);
    for (auto* k : {&fixed_, &util_, &buyer_}) *k = core::PrivateKey::Generate().value();
    clients::Client admin = As(proc_->admin_key());
    bk_ = admin.Call("GET", "/v1/ledger/key").value()["key"];
    window_ = {.not_before = Now() + 3600, .not_after = Now() + 7200};
    for (const char* s : {"s1", "s2", "s3"}) {
      pis_.emplace(s, core::PrivateKey::Generate().value());
      ASSERT_TRUE(admin.Call("POST", "/v1/sites", {{"name", s}, {"pi", Pub(pis_.at(s))}}).ok());
    }
    for (auto [k, name] : {std::pair{&fixed_, "fixed"}, std::pair{&util_, "util"}}) {
      ASSERT_TRUE(
          admin
              .Call("POST", "/v1/principals", {{"key", Pub(*k)}, {"kind", "agent"}, {"name", name}})
              .ok());
    }
    ASSERT_TRUE(As(pis_.at("s1"))
                    .Call("POST", "/v1/principals",
                          {{"key", Pub(buyer_)}, {"kind", "user"}, {"name", "bob"}, {"site", "s1"}})
                    .ok());
    for (auto [site, node] :
         {std::pair{"s1", "a1"}, std::pair{"s2", "b1"}, std::pair{"s3", "c1"}}) {
      AddNode(site, node);
    }
    for (const core::PrivateKey* k : {&buyer_, &fixed_, &util_}) {
      ASSERT_TRUE(
          admin.Call("POST", "/v1/accounts/mint", {{"to", Pub(*k)}, {"amount", "1000"}}).ok());
    }
  }

  static std::string Pub(const core::PrivateKey& k) { return k.public_key().ToText(); }
  clients::Client As(const core::PrivateKey& k) const { return clients::Client(proc_->url(), k); }

  void AddNode(const std::string& site, const std::string& node) {
    auto n = core::PrivateKey::Generate().value();
    json cap = {{"cpu_mcores", 4000},
                {"mem_mib", 8192},
                {"disk_mib", 0},
                {"net_min_kbps", 0},
                {"net_max_kbps", 0}};
    ASSERT_TRUE(As(pis_.at(site))
                    .Call("POST", "/v1/sites/" + site + "/nodes",
                          {{"id", node}, {"key", Pub(n)}, {"capacity", cap}})
                    .ok());
    node_site_[node] = site;
  }

  // The node's site grants `cpu` mcores over the test window to `to`; the root's id.
  std::string Grant(const std::string& node, const core::PrivateKey& to, int64_t cpu) {
    const core::PrivateKey& pi = pis_.at(node_site_[node]);
    auto root = ledger::IssueRoot(pi, {.id = "",
                                       .holder = to.public_key(),
                                       .node = node,
                                       .res = {.cpu_mcores = cpu},
                                       .interval = window_})
                    .value();
    auto r = As(pi).Call("POST", "/v1/grants", {{"rcap", root.ToJson()}});
    EXPECT_TRUE(r.ok()) << r.status().message();
    return root.id;
  }

  std::string Market(const std::string& node, int64_t close) {
    auto r = As(proc_->admin_key())
                 .Call("POST", "/v1/markets",
                       {{"node", node},
                        {"unit", core::ResourceVectorToJson({.cpu_mcores = 100})},
                        {"not_before", window_.not_before},
                        {"not_after", window_.not_after},
                        {"close", close}});
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? (*r)["market"].value("id", (*r).value("id", "")) : "";
  }

  // Writes the agent's key and config; returns the config path.
  std::string Config(const std::string& name, const core::PrivateKey& k, const std::string& lines) {
    std::string dir = proc_->dir() + "/" + name;
    std::filesystem::create_directories(dir);
    EXPECT_TRUE(k.SavePem(dir + "/key.pem").ok());
    std::ofstream f(dir + "/agent.conf");
    f << "broker_url = " << proc_->url() << "\nkey = " << dir << "/key.pem\nstate_dir = " << dir
      << "\nsites = s1, s2, s3\nmarkets = auto\nunit = cpu_mcores=100\nreprice_period_s = 1\n"
      << (lines.find("rfq = ") == std::string::npos ? "rfq = false\n" : "") << lines;
    return dir + "/agent.conf";
  }
  std::unique_ptr<AgentProcess> StartAgent(const std::string& name, const core::PrivateKey& k,
                                           const std::string& lines) {
    std::string conf = Config(name, k, lines);
    auto a = std::make_unique<AgentProcess>(conf, proc_->dir() + "/" + name + "/stderr.txt");
    a->Start();
    return a;
  }
  // An agent in this process (the test calls Pass()), talking to `url` (a FaultProxy's).
  std::unique_ptr<agent::Agent> InProcess(const std::string& name, const core::PrivateKey& k,
                                          const std::string& lines, const std::string& url) {
    auto c = agent::AgentConfig::Load(Config(name, k, lines));
    EXPECT_TRUE(c.ok()) << c.status().message();
    if (!c.ok()) return nullptr;
    c->broker_url = url;
    auto a = agent::Agent::Create(*std::move(c));
    EXPECT_TRUE(a.ok()) << a.status().message();
    return a.ok() ? *std::move(a) : nullptr;
  }
  std::string AgentLog(const std::string& name) {
    return ReadAll(proc_->dir() + "/" + name + "/agent.log");
  }

  // The agent's resting asks on `market`.
  std::vector<json> Asks(const core::PrivateKey& k, const std::string& market) {
    auto r = As(k).Call("GET", "/v1/orders?owner=" + Pub(k) + "&market=" + market);
    std::vector<json> out;
    if (!r.ok()) return out;
    for (const json& o : (*r)["orders"]) {
      if (o["side"] == "sell") out.push_back(o);
    }
    return out;
  }
  int64_t Resting(const core::PrivateKey& k, const std::string& market) {
    int64_t n = 0;
    for (const json& o : Asks(k, market)) n += o["remaining"].get<int64_t>();
    return n;
  }

  void ExpectLedgerVerifiesAndCreditsConserved() {
    ProcRun v = Exec(BourseBinary() + " ledger verify --url " + proc_->url() + " 2>&1");
    EXPECT_EQ(v.code, 0) << v.out;
    core::Money sum;
    std::vector<std::string> keys = {Pub(buyer_), Pub(fixed_), Pub(util_), bk_,
                                     Pub(proc_->admin_key())};
    for (auto& [s, k] : pis_) keys.push_back(Pub(k));
    for (const std::string& k : keys) {
      json a = As(proc_->admin_key()).Call("GET", "/v1/accounts/" + k).value();
      sum = sum.Add(M(a["balance"])).value().Add(M(a["escrow"])).value();
    }
    EXPECT_EQ(sum.ToString(), core::Money::FromCredits(3000).value().ToString());
  }

  std::unique_ptr<BrokerProcess> proc_;
  core::PrivateKey fixed_ = core::PrivateKey::Generate().value(),
                   util_ = core::PrivateKey::Generate().value(),
                   buyer_ = core::PrivateKey::Generate().value();
  std::map<std::string, core::PrivateKey> pis_;
  std::map<std::string, std::string> node_site_;
  std::string bk_;
  core::Interval window_;
};

// (1) Two agents of different policies sell; a buyer buys from the cheaper
// (utilisation) agent; its asks rise after the sale, the fixed agent's do not.
TEST_F(AgentTest, AgentsSellAndUtilisationPricesRiseAfterSales) {
  for (const char* node : {"a1", "b1"}) {
    Grant(node, fixed_, 1000);
    Grant(node, util_, 1000);
  }
  std::string ma = Market("a1", window_.not_before - 60);
  std::string mb = Market("b1", window_.not_before - 60);
  auto fa = StartAgent("fixed", fixed_, "policy = fixed\nprice = 2\n");
  auto ua = StartAgent("util", util_, "policy = utilisation\nprice = 1\nceiling = 10\n");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Resting(fixed_, ma) == 10 && Resting(fixed_, mb) == 10 && Resting(util_, ma) == 10 &&
               Resting(util_, mb) == 10;
      },
      30))
      << AgentLog("fixed") << AgentLog("util");
  const core::Money fixed_before = M(Asks(fixed_, mb)[0]["price"]);
  const core::Money util_before = M(Asks(util_, mb)[0]["price"]);
  EXPECT_LT(util_before, fixed_before);

  auto buy = As(buyer_).Call("POST", "/v1/markets/" + ma + "/orders",
                             {{"side", "buy"}, {"qty", 8}, {"price", "1.9"}, {"tif", "ioc"}});
  ASSERT_TRUE(buy.ok()) << buy.status().message();
  EXPECT_EQ((*buy)["order"]["filled"], 8);

  // The utilisation agent's unsold ask on the other market moves up; the
  // fixed agent's stays.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto a = Asks(util_, mb);
        return !a.empty() && util_before < M(a[0]["price"]);
      },
      20))
      << AgentLog("util");
  ASSERT_FALSE(Asks(fixed_, mb).empty());
  EXPECT_EQ(M(Asks(fixed_, mb)[0]["price"]), fixed_before);
  EXPECT_EQ(CountLines(AgentLog("util"), "refused"), 0) << AgentLog("util");

  // status shows the sale and the profit.
  ProcRun st = Exec(AgentBinary() + " status --json --config " + proc_->dir() + "/util/agent.conf");
  ASSERT_EQ(st.code, 0) << st.out;
  json s = json::parse(st.out);
  EXPECT_EQ(s["sales"].size(), 1u);
  EXPECT_TRUE(M(s["profit"]).is_positive()) << s.dump();
  EXPECT_EQ(s["nodes"]["a1"]["site"], "s1");
  ProcRun table = Exec(AgentBinary() + " status --config " + proc_->dir() + "/util/agent.conf");
  EXPECT_EQ(table.code, 0);
  EXPECT_NE(table.out.find("resting asks"), std::string::npos) << table.out;

  fa->Terminate();
  ua->Terminate();
  ExpectLedgerVerifiesAndCreditsConserved();
}

// (3) The unsold escrow of a market that closes comes back to the agent, which
// offers it again on another market of the same node.
TEST_F(AgentTest, ReturnedCapacityIsOfferedAgain) {
  Grant("c1", fixed_, 500);
  std::string soon = Market("c1", Now() + 6);
  std::string later = Market("c1", window_.not_before - 60);
  auto fa = StartAgent("fixed", fixed_, "policy = fixed\nprice = 1\n");
  ASSERT_TRUE(WaitFor([&] { return Resting(fixed_, soon) == 5; }, 20)) << AgentLog("fixed");
  EXPECT_EQ(Resting(fixed_, later), 0);  // everything went to the soonest close
  ASSERT_TRUE(WaitFor([&] { return Resting(fixed_, later) == 5; }, 30)) << AgentLog("fixed");
  // The unsold escrow was released (rcap_released): sold from the grant
  // itself again, escrow -> root, no deeper than the first offer.
  json order = Asks(fixed_, later)[0];
  json esc = As(fixed_).Call("GET", "/v1/rcaps/" + order["rcap_escrow"].get<std::string>()).value();
  EXPECT_EQ(esc["chain"].size(), 2u) << esc.dump();
  fa->Terminate();
  ExpectLedgerVerifiesAndCreditsConserved();
}

// (4) kill -9 mid-work and a restart: no duplicate orders, no refusal loop.
TEST_F(AgentTest, KilledAgentRestartsWithoutDuplicatesOrRefusalLoop) {
  for (const char* node : {"a1", "b1", "c1"}) Grant(node, util_, 1000);
  std::vector<std::string> markets;
  for (const char* node : {"a1", "b1", "c1"}) {
    for (int i = 0; i < 3; ++i) markets.push_back(Market(node, window_.not_before - 60 - i));
  }
  auto total = [&] {
    int64_t n = 0;
    for (const std::string& m : markets) n += Resting(util_, m);
    return n;
  };
  auto ua = StartAgent("util", util_, "policy = utilisation\nprice = 1\n");
  ASSERT_TRUE(WaitFor([&] { return total() > 0; }, 20)) << AgentLog("util");
  ua->Kill9();  // while it places its asks
  ua->Start();
  ASSERT_TRUE(WaitFor([&] { return total() == 30; }, 30)) << AgentLog("util");
  // Each node's 10 units went to its soonest-closing market, once.
  for (size_t i = 0; i < markets.size(); ++i) {
    EXPECT_EQ(Resting(util_, markets[i]), i % 3 == 2 ? 10 : 0) << markets[i];
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));  // several passes
  std::string log = AgentLog("util");
  EXPECT_LE(CountLines(log, "refused"), 1) << log;
  EXPECT_EQ(total(), 30);
  const int actions = CountLines(log, " sell ");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(CountLines(AgentLog("util"), " sell "), actions) << AgentLog("util");
  ua->Terminate();
  ExpectLedgerVerifiesAndCreditsConserved();
}

// Usage errors exit 2; a bad config names the key and line.
TEST_F(AgentTest, UsageAndBadConfigExitTwo) {
  EXPECT_EQ(Exec(AgentBinary() + " 2>/dev/null").code, 2);
  EXPECT_EQ(Exec(AgentBinary() + " run 2>/dev/null").code, 2);
  EXPECT_EQ(Exec(AgentBinary() + " fly --config x 2>/dev/null").code, 2);
  std::string conf = Config("bad", fixed_, "policy = fixed\nprice = 1\nbogus_key = 3\n");
  ProcRun r = Exec(AgentBinary() + " status --config " + conf + " 2>&1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("bogus_key"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("line 11"), std::string::npos) << r.out;
  // `run` names the file once: "error: PATH: config line 11: ...".
  r = Exec(AgentBinary() + " run --config " + conf + " 2>&1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(r.out.rfind("error: " + conf + ": config line 11", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find(conf, r.out.find(conf) + 1), std::string::npos) << r.out;
  // A broker that is not there: status exits 3.
  std::string down = Config("down", fixed_, "policy = fixed\nprice = 1\n");
  proc_->Kill9();
  EXPECT_EQ(Exec(AgentBinary() + " status --config " + down + " 2>/dev/null").code, 3);
}

// ---- robustness (in-process agent behind a FaultProxy) ----

// One holding it cannot fetch and one it cannot decode are skipped with a log
// line; the agent still sells from the rest.
TEST_F(AgentTest, UnreadableHoldingIsSkipped) {
  const std::string lost = Grant("a1", fixed_, 1000);
  const std::string bad = Grant("b1", fixed_, 1000);
  Grant("c1", fixed_, 1000);
  std::string mc = Market("c1", window_.not_before - 60);
  FaultProxy proxy(proc_->url());
  proxy.SetHook([&](const httplib::Request& q, httplib::Response& r) {
    if (q.method != "GET" || q.path != "/v1/rcaps/" + lost) return false;
    r.status = 404;
    r.set_content(R"({"error":{"code":"not_found","message":"gone"}})", "application/json");
    return true;
  });
  proxy.SetRewrite([&](const httplib::Request& q, httplib::Response& r) {
    if (q.path.rfind("/v1/holdings/", 0) != 0) return;
    json j = json::parse(r.body);
    for (json& rc : j["rcaps"]) {
      if (rc["id"] == bad) rc["res"] = "garbage";
    }
    r.body = j.dump();
  });
  auto a = InProcess("fixed", fixed_, "policy = fixed\nprice = 1\n", proxy.url());
  ASSERT_NE(a, nullptr);
  core::Status st = a->Pass();
  ASSERT_TRUE(st.ok()) << st.ToString() << AgentLog("fixed");
  EXPECT_EQ(Resting(fixed_, mc), 10) << AgentLog("fixed");
  std::string log = AgentLog("fixed");
  EXPECT_EQ(CountLines(log, "skip holding"), 2) << log;
  ASSERT_TRUE(PassOk(*a));
  EXPECT_EQ(CountLines(AgentLog("fixed"), "skip holding"), 2);  // told once
}

// A command policy that fails leaves the agent's asks alone; one that says
// "no offer" (null) takes them off the book.
TEST_F(AgentTest, PolicyFailureLeavesAsksAlone) {
  Grant("c1", fixed_, 1000);
  std::string mc = Market("c1", window_.not_before - 60);
  std::string dir = proc_->dir() + "/cmd";
  std::filesystem::create_directories(dir);
  std::string script = dir + "/price.sh";
  {
    std::ofstream f(script);
    f << "#!/bin/sh\ncat >/dev/null\nif [ -f " << dir << "/fail ]; then exit 3; fi\n"
      << "if [ -f " << dir << "/none ]; then echo '{\"prices\":[null]}'; exit 0; fi\n"
      << "echo '{\"prices\":[\"1.5\"]}'\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  auto a = InProcess("cmd", fixed_, "policy = command\ncommand = " + script + "\nprice = 1\n",
                     proc_->url());
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(PassOk(*a));
  ASSERT_EQ(Resting(fixed_, mc), 10) << AgentLog("cmd");
  std::ofstream(dir + "/fail") << "";
  ASSERT_TRUE(PassOk(*a));
  EXPECT_EQ(Resting(fixed_, mc), 10) << AgentLog("cmd");
  EXPECT_EQ(CountLines(AgentLog("cmd"), "offers stay as they are"), 1) << AgentLog("cmd");
  std::filesystem::remove(dir + "/fail");
  std::ofstream(dir + "/none") << "";
  ASSERT_TRUE(PassOk(*a));
  EXPECT_EQ(Resting(fixed_, mc), 0) << AgentLog("cmd");
}

// A batch request refused as a whole is not a refusal of its ops: the next
// pass sends them again.
TEST_F(AgentTest, WholeBatchFailureIsRetried) {
  Grant("c1", fixed_, 1000);
  std::string mc = Market("c1", window_.not_before - 60);
  FaultProxy proxy(proc_->url());
  int batches = 0;
  proxy.SetHook([&](const httplib::Request& q, httplib::Response& r) {
    if (q.path != "/v1/orders:batch" || ++batches > 1) return false;
    r.status = 400;
    r.set_content(R"({"error":{"code":"invalid_argument","message":"bad request"}})",
                  "application/json");
    return true;
  });
  auto a = InProcess("fixed", fixed_, "policy = fixed\nprice = 1\n", proxy.url());
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(PassOk(*a));
  EXPECT_EQ(Resting(fixed_, mc), 0);
  ASSERT_TRUE(PassOk(*a));
  EXPECT_EQ(Resting(fixed_, mc), 10) << AgentLog("fixed");
  EXPECT_EQ(CountLines(AgentLog("fixed"), "batch request failed"), 1) << AgentLog("fixed");
  EXPECT_EQ(CountLines(AgentLog("fixed"), "refused"), 0) << AgentLog("fixed");
}

// Trades are asked for only when the ledger grew since the last read.
TEST_F(AgentTest, TradesAreReadOnlyWhenNew) {
  Grant("c1", fixed_, 1000);
  std::string mc = Market("c1", window_.not_before - 60);
  FaultProxy proxy(proc_->url());
  auto a = InProcess("fixed", fixed_, "policy = fixed\nprice = 1\n", proxy.url());
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(PassOk(*a));  // places its ask (the ledger grows)
  ASSERT_TRUE(PassOk(*a));  // reads that, changes nothing
  proxy.ResetCounts();
  ASSERT_TRUE(PassOk(*a));
  EXPECT_EQ(proxy.Count("/v1/markets/" + mc + "/trades"), 0);
  auto buy = As(buyer_).Call("POST", "/v1/markets/" + mc + "/orders",
                             {{"side", "buy"}, {"qty", 3}, {"price", "1"}, {"tif", "ioc"}});
  ASSERT_TRUE(buy.ok()) << buy.status().message();
  ASSERT_TRUE(PassOk(*a));
  EXPECT_EQ(proxy.Count("/v1/markets/" + mc + "/trades"), 1);
  EXPECT_EQ(Resting(fixed_, mc), 7);
}

// ---- requests for quote ----

class AgentRfqTest : public AgentTest {
 protected:
  // Both agents hold the rspec's 500 mcores on a1, a2 (site s1), b1, b2 (s2).
  void SetUp() override {
    AgentTest::SetUp();
    AddNode("s1", "a2");
    AddNode("s2", "b2");
    for (const char* node : {"a1", "a2", "b1", "b2"}) {
      Grant(node, fixed_, 500);
      Grant(node, util_, 500);
    }
  }
  // The buyer's RFQ for 4 nodes of 500 mcores in >= 2 sites; its id.
  std::string OpenRfq(int64_t close) {
    auto r = As(buyer_).Call("POST", "/v1/rfqs",
                             {{"res", core::ResourceVectorToJson({.cpu_mcores = 500})},
                              {"nodes", 4},
                              {"min_sites", 2},
                              {"not_before", window_.not_before},
                              {"not_after", window_.not_after},
                              {"max_price", "100"},
                              {"close", close}});
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? (*r)["rfq"].value("id", "") : "";
  }
  json Rfq(const std::string& id) {
    auto r = As(buyer_).CallSigned("GET", "/v1/rfqs/" + id);
    return r.ok() ? (*r)["rfq"] : json();
  }
  // The quotes on `id` by `k` (any state).
  std::vector<json> QuotesBy(const std::string& id, const core::PrivateKey& k) {
    std::vector<json> out;
    for (const json& q : Rfq(id).value("quotes", json::array())) {
      if (q["seller"] == Pub(k)) out.push_back(q);
    }
    return out;
  }
  json Status(const std::string& name) {
    ProcRun st = Exec(AgentBinary() + " status --json --config " + proc_->dir() + "/" + name +
                      "/agent.conf 2>/dev/null");
    return st.code == 0 ? json::parse(st.out) : json();
  }
};

// Two agents quote on an RFQ for 4 nodes in 2 sites; the cheaper complete
// quote (the utilisation agent's) wins at the close; the loser's escrows come
// back to it and it offers them again on a market; credits are conserved.
TEST_F(AgentRfqTest, CheaperQuoteWinsAndLosersCapacityIsSoldAgain) {
  std::string rfq = OpenRfq(Now() + 6);
  const std::string on = "rfq = true\n";
  auto fa = StartAgent("fixed", fixed_, "policy = fixed\nprice = 2\n" + on);
  auto ua = StartAgent("util", util_, "policy = utilisation\nprice = 1\nceiling = 10\n" + on);
  ASSERT_TRUE(WaitFor(
      [&] { return QuotesBy(rfq, fixed_).size() == 1 && QuotesBy(rfq, util_).size() == 1; }, 6))
      << AgentLog("fixed") << AgentLog("util");
  for (const core::PrivateKey* k : {&fixed_, &util_}) {
    json q = QuotesBy(rfq, *k)[0];
    EXPECT_EQ(q["nodes"].size(), 4u) << q.dump();
    std::set<std::string> sites(q["sites"].begin(), q["sites"].end());
    EXPECT_EQ(sites.size(), 2u) << q.dump();
  }
  // status shows the open quote, with its price (the seller sees it).
  json st = Status("fixed");
  ASSERT_EQ(st["quotes"].size(), 1u) << st.dump();
  EXPECT_EQ(st["quotes"][0]["rfq"], rfq);
  EXPECT_TRUE(st["quotes"][0]["price"].is_string()) << st.dump();
  ProcRun table = Exec(AgentBinary() + " status --config " + proc_->dir() + "/fixed/agent.conf");
  EXPECT_NE(table.out.find(rfq), std::string::npos) << table.out;

  ASSERT_TRUE(WaitFor([&] { return Rfq(rfq)["state"] == "awarded"; }, 20)) << Rfq(rfq).dump();
  json done = Rfq(rfq);
  EXPECT_EQ(done["quote"], QuotesBy(rfq, util_)[0]["id"]) << done.dump();
  EXPECT_LT(M(QuotesBy(rfq, util_)[0]["price"]), M(QuotesBy(rfq, fixed_)[0]["price"]));
  EXPECT_EQ(QuotesBy(rfq, fixed_)[0]["state"], "lost");

  // The loser's four escrows were released (rcap_released): its grants are
  // whole and free again (no returned child), and sold again.
  ASSERT_TRUE(WaitFor([&] { return Status("fixed")["quotes"].empty(); }, 10));
  int returned = 0, whole = 0;
  const json after = Status("fixed");
  for (const json& h : after["holdings"]) {
    returned += h["returned"].get<bool>();
    whole += h["free"] == h["res"];
  }
  EXPECT_EQ(returned, 0) << after.dump();
  EXPECT_EQ(whole, 4) << after.dump();
  std::string ma = Market("a1", window_.not_before - 60);
  ASSERT_TRUE(WaitFor([&] { return Resting(fixed_, ma) == 5; }, 20)) << AgentLog("fixed");
  json order = Asks(fixed_, ma)[0];
  json esc = As(fixed_).Call("GET", "/v1/rcaps/" + order["rcap_escrow"].get<std::string>()).value();
  EXPECT_EQ(esc["chain"].size(), 2u) << esc.dump();  // escrow -> root, as the quote's was
  EXPECT_EQ(Resting(util_, ma), 0);                  // the winner's went to the buyer
  EXPECT_EQ(CountLines(AgentLog("fixed"), "refused"), 0) << AgentLog("fixed");
  EXPECT_EQ(CountLines(AgentLog("util"), "refused"), 0) << AgentLog("util");
  fa->Terminate();
  ua->Terminate();
  ExpectLedgerVerifiesAndCreditsConserved();
}

// An agent killed (-9) after quoting and restarted does not quote the same
// RFQ again and does not loop on refusals.
TEST_F(AgentRfqTest, KilledAgentDoesNotQuoteTwice) {
  std::string rfq = OpenRfq(Now() + 120);
  auto ua = StartAgent("util", util_, "policy = utilisation\nprice = 1\nrfq = true\n");
  ASSERT_TRUE(WaitFor([&] { return QuotesBy(rfq, util_).size() == 1; }, 10)) << AgentLog("util");
  ua->Kill9();
  ua->Start();
  std::this_thread::sleep_for(std::chrono::seconds(4));  // several passes
  EXPECT_EQ(QuotesBy(rfq, util_).size(), 1u);
  EXPECT_EQ(QuotesBy(rfq, util_)[0]["state"], "open");
  std::string log = AgentLog("util");
  EXPECT_EQ(CountLines(log, "refused"), 0) << log;
  EXPECT_EQ(CountLines(log, "quote " + rfq + " on "), 1) << log;
  EXPECT_EQ(Status("util")["quotes"].size(), 1u);
  ua->Terminate();
  auto cancel = As(buyer_).Call("DELETE", "/v1/rfqs/" + rfq);
  ASSERT_TRUE(cancel.ok()) << cancel.status().message();
  ExpectLedgerVerifiesAndCreditsConserved();
}

// A quote whose RFQ the policy now refuses is withdrawn; its capacity comes
// back, is quoted again when the price is back under max_price, and once
// withdrawn again is offered on a market.
TEST_F(AgentRfqTest, RefusedQuoteIsWithdrawnAndSoldAgain) {
  std::string rfq = OpenRfq(Now() + 120);
  std::string dir = proc_->dir() + "/cmd";
  std::filesystem::create_directories(dir);
  std::string script = dir + "/price.sh";
  {
    // Prices every item at 20 (the rfq) until `off` exists, then null for the rfq.
    std::ofstream f(script);
    f << "#!/bin/sh\nin=$(cat)\nn=$(echo \"$in\" | grep -o '\"kind\"' | wc -l)\n"
      << "if [ -f " << dir << "/off ]; then p=null; else p='\"20\"'; fi\n"
      << "out=''; i=0; while [ $i -lt $n ]; do\n"
      << "  k=$(echo \"$in\" | grep -o '\"kind\":\"[a-z]*\"' | sed -n \"$((i+1))p\")\n"
      << "  if [ \"$k\" = '\"kind\":\"rfq\"' ]; then v=$p; else v='\"1\"'; fi\n"
      << "  out=\"$out${out:+,}$v\"; i=$((i+1)); done\n"
      << "echo \"{\\\"prices\\\":[$out]}\"\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  auto a = InProcess("cmd", fixed_,
                     "policy = command\ncommand = " + script + "\nprice = 1\nrfq = true\n",
                     proc_->url());
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(PassOk(*a));
  ASSERT_EQ(QuotesBy(rfq, fixed_).size(), 1u) << AgentLog("cmd");
  std::ofstream(dir + "/off") << "";
  ASSERT_TRUE(PassOk(*a));
  ASSERT_EQ(QuotesBy(rfq, fixed_).size(), 1u);
  EXPECT_EQ(QuotesBy(rfq, fixed_)[0]["state"], "withdrawn") << AgentLog("cmd");
  // The price comes back under max_price: the returned capacity is quoted again; then withdrawn.
  std::filesystem::remove(dir + "/off");
  ASSERT_TRUE(PassOk(*a));
  ASSERT_EQ(QuotesBy(rfq, fixed_).size(), 2u) << AgentLog("cmd");
  EXPECT_EQ(Status("cmd")["quotes"].size(), 1u) << AgentLog("cmd");
  std::ofstream(dir + "/off") << "";
  ASSERT_TRUE(PassOk(*a));
  for (const json& q : QuotesBy(rfq, fixed_)) EXPECT_EQ(q["state"], "withdrawn");
  std::string ma = Market("a1", window_.not_before - 60);
  ASSERT_TRUE(PassOk(*a));
  EXPECT_EQ(Resting(fixed_, ma), 5) << AgentLog("cmd");
  ASSERT_TRUE(PassOk(*a));  // refused by the policy: not quoted again, nothing refused
  EXPECT_EQ(QuotesBy(rfq, fixed_).size(), 2u);
  EXPECT_EQ(CountLines(AgentLog("cmd"), "refused"), 0) << AgentLog("cmd");
}

}  // namespace
}  // namespace bourse::systest
