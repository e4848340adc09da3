// The node guards' sliver reports (docs/broker.md "Slivers"), over HTTP
// against a real broker: POST /v1/nodes/{node}/slivers signed by the node's
// key replaces the node's set and writes slivers_reported to the ledger only
// when it changed; GET per node and per slice show it with reported_ms; a
// node cannot report for another, a report over the bounds is refused, a
// replayed request is refused, and `ledger verify` accepts the entries.
// Changes are rate-bound per node. The logs reports (POST /v1/nodes/{node}/logs,
// docs/broker.md "Sliver logs") are stored without a ledger entry, bounded,
// rate-bound, and shown only to those who manage the slice.
#include <gtest/gtest.h>

#include <string>

#include "core/clock.h"
#include "core/json_codec.h"
#include "core/request_signing.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

json Res(int64_t cpu, int64_t mem, int64_t disk, int64_t nmin, int64_t nmax) {
  return core::ResourceVectorToJson({.cpu_mcores = cpu,
                                     .mem_mib = mem,
                                     .disk_mib = disk,
                                     .net_min_kbps = nmin,
                                     .net_max_kbps = nmax});
}

json Kernel(int64_t read_ms, int64_t cpu) {
  return {{"read_ms", read_ms},
          {"cpu_mcores", cpu},
          {"cpu_shares", cpu * 1024 / 1000},
          {"cpu_cap_mcores", 0},
          {"mem_mib", 256},
          {"net_min_kbps", 1000},
          {"net_max_kbps", 5000},
          {"net_classified", true},
          {"disk_mib", 64},
          {"disk_fs_mib", nullptr},
          {"problems", json::array()},
          {"differences", json::array()}};
}

json Sliver(const std::string& slice, int64_t cpu, int64_t read_ms) {
  return {{"slice", slice},
          {"state", "active"},
          {"bought", Res(cpu, 256, 64, 1000, 5000)},
          {"enforced", Res(cpu, 256, 64, 1000, 5000)},
          {"kernel", Kernel(read_ms, cpu)}};
}

class SliverReportsTest : public ::testing::Test {
 protected:
  SliverReportsTest()
      : t0_(core::SystemClock::Get().NowSeconds()),
        clock_(t0_ * 1000),
        env_({.clock = &clock_, .markets = {.tick_ms = 0}}) {}
  void SetUp() override {
    env_.SetupSites();
    alice_ = env_.AddUser("alice", "10", "mit");
    env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  }
  // n1 and n3 are site mit's, n2 ucb's (MarketEnv::SetupSites).
  const core::PrivateKey& NodeKey(const std::string& node) {
    return env_.node_keys_.at(node == "n1" ? 0 : node == "n3" ? 1 : 2);
  }
  core::Result<json> Report(const std::string& signer, const std::string& node, const json& body) {
    return env_.C(NodeKey(signer)).Call("POST", "/v1/nodes/" + node + "/slivers", body);
  }
  int64_t Entries(const std::string& type) {
    int64_t size = env_.broker_->LedgerSize();
    json all = env_.Ok(env_.admin_, "GET",
                       "/v1/ledger/entries?from=0&to=" + std::to_string(size))["entries"];
    int64_t n = 0;
    for (const json& e : all) n += e["type"] == type;
    return n;
  }

  int64_t t0_;
  core::ManualClock clock_;
  MarketEnv env_;
  core::PrivateKey alice_ = NewKey();
};

TEST_F(SliverReportsTest, ReportIsStoredServedAndLedgeredOnlyWhenItChanges) {
  // Nothing reported yet: the node's set is empty, the slice's 404-free.
  json none = env_.Anon().Call("GET", "/v1/nodes/n1/slivers").value();
  EXPECT_EQ(none["reported_ms"], nullptr);
  EXPECT_EQ(none["slivers"], json::array());
  EXPECT_EQ(env_.Anon().Call("GET", "/v1/slices/mit_web/slivers").value()["slivers"],
            json::array());

  const int64_t t1 = clock_.NowMillis();
  json body = {{"slivers", {Sliver("mit_web", 500, t1 - 10), Sliver("mit_other", 250, t1 - 10)}}};
  auto r = Report("n1", "n1", body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["changed"], true);
  EXPECT_EQ((*r)["reported_ms"], t1);
  EXPECT_EQ(Entries("slivers_reported"), 1);

  json n1 = env_.Anon().Call("GET", "/v1/nodes/n1/slivers").value();
  EXPECT_EQ(n1["node"], "n1");
  EXPECT_EQ(n1["reported_ms"], t1);
  EXPECT_EQ(n1["seq"], (*r)["seq"]);
  ASSERT_EQ(n1["slivers"].size(), 2u);
  EXPECT_EQ(n1["slivers"][0]["slice"], "mit_other");  // in slice order
  json web = n1["slivers"][1];
  EXPECT_EQ(web["slice"], "mit_web");
  EXPECT_EQ(web["node"], "n1");
  EXPECT_EQ(web["reported_ms"], t1);
  EXPECT_EQ(web["state"], "active");
  EXPECT_EQ(web["bought"], Res(500, 256, 64, 1000, 5000));
  EXPECT_EQ(web["kernel"], Kernel(t1 - 10, 500));

  // The same set again (a guard that restarted): nothing written.
  clock_.AdvanceMillis(5000);
  auto same = Report("n1", "n1", body);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ((*same)["changed"], false);
  EXPECT_EQ((*same)["reported_ms"], t1);
  EXPECT_EQ(Entries("slivers_reported"), 1);

  // n2 reports mit_web too; the slice's view has both nodes.
  ASSERT_TRUE(Report("n2", "n2", {{"slivers", {Sliver("mit_web", 100, t1)}}}).ok());
  json slice = env_.Anon().Call("GET", "/v1/slices/mit_web/slivers").value();
  EXPECT_EQ(slice["slice"], "mit_web");
  ASSERT_EQ(slice["slivers"].size(), 2u);
  EXPECT_EQ(slice["slivers"][0]["node"], "n1");
  EXPECT_EQ(slice["slivers"][0]["kernel"]["cpu_mcores"], 500);
  EXPECT_EQ(slice["slivers"][1]["node"], "n2");
  EXPECT_EQ(slice["slivers"][1]["reported_ms"], t1 + 5000);

  // A changed set replaces the node's whole set: mit_other is gone from n1.
  clock_.AdvanceMillis(1000);
  json scheduled = {{"slice", "mit_web"},
                    {"state", "scheduled"},
                    {"bought", Res(500, 256, 64, 1000, 5000)},
                    {"enforced", nullptr},
                    {"kernel", nullptr}};
  auto changed = Report("n1", "n1", {{"slivers", {scheduled}}});
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_EQ((*changed)["changed"], true);
  n1 = env_.Anon().Call("GET", "/v1/nodes/n1/slivers").value();
  ASSERT_EQ(n1["slivers"].size(), 1u);
  EXPECT_EQ(n1["slivers"][0]["state"], "scheduled");
  EXPECT_EQ(n1["slivers"][0]["kernel"], nullptr);
  EXPECT_EQ(n1["reported_ms"], t1 + 6000);
  EXPECT_EQ(Entries("slivers_reported"), 3);
  // An empty set is a report too.
  ASSERT_TRUE(Report("n1", "n1", {{"slivers", json::array()}}).ok());
  EXPECT_EQ(env_.Anon().Call("GET", "/v1/nodes/n1/slivers").value()["slivers"], json::array());
  env_.ExpectLedgerVerifies();
}

TEST_F(SliverReportsTest, ANodeCannotReportForAnotherNodeAndOthersCannotReport) {
  json body = {{"slivers", {Sliver("mit_web", 500, 1)}}};
  auto other = Report("n2", "n1", body);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), core::StatusCode::kPermissionDenied);
  EXPECT_NE(other.status().message().find("only node n1's own key"), std::string::npos);
  auto user = env_.C(alice_).Call("POST", "/v1/nodes/n1/slivers", body);
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.status().code(), core::StatusCode::kPermissionDenied);
  auto unknown = Report("n1", "n9", body);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(env_.Anon().Call("GET", "/v1/nodes/n1/slivers").value()["slivers"], json::array());
  EXPECT_EQ(Entries("slivers_reported"), 0);
  auto get404 = env_.Anon().Call("GET", "/v1/slices/mit_nothing/slivers");
  ASSERT_FALSE(get404.ok());
  EXPECT_EQ(get404.status().code(), core::StatusCode::kNotFound);
}

TEST_F(SliverReportsTest, BadAndOversizedReportsAreRefusedNamingTheField) {
  auto refused = [&](const json& body, const std::string& needle) {
    auto r = Report("n1", "n1", body);
    ASSERT_FALSE(r.ok()) << body.dump().substr(0, 200);
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  json many = json::array();
  for (int i = 0; i < 501; ++i) many.push_back(Sliver("s" + std::to_string(i), 1, 1));
  refused({{"slivers", many}}, "slivers: 501 slivers; at most 500");
  json big = Sliver("mit_web", 1, 1);
  big["kernel"]["problems"] = json::array();
  for (int i = 0; i < 16; ++i) big["kernel"]["problems"].push_back(std::string(512, 'x'));
  json fat = json::array();
  for (int i = 0; i < 80; ++i) {
    big["slice"] = "s" + std::to_string(i);
    fat.push_back(big);
  }
  refused({{"slivers", fat}}, "a sliver report is at most 524288");
  json bad = Sliver("mit_web", 1, 1);
  bad["state"] = "running";
  refused({{"slivers", {bad}}}, "slivers[0].state: must be active, error or scheduled");
  bad = Sliver("../etc", 1, 1);
  refused({{"slivers", {bad}}}, "slivers[0].slice");
  bad = Sliver("mit_web", 1, 1);
  bad["kernel"]["mem_mib"] = -1;
  refused({{"slivers", {bad}}}, "slivers[0].kernel.mem_mib");
  bad = Sliver("mit_web", 1, 1);
  bad["kernel"]["rogue"] = 1;
  refused({{"slivers", {bad}}}, "rogue");
  refused({{"slivers", {Sliver("mit_web", 1, 1), Sliver("mit_web", 2, 1)}}},
          "slivers[1].slice: mit_web is reported twice");
  EXPECT_EQ(Entries("slivers_reported"), 0);
}

TEST_F(SliverReportsTest, AReplayedReportIsRefused) {
  std::string body = json{{"slivers", {Sliver("mit_web", 500, 1)}}}.dump();
  auto h =
      core::SignRequest(NodeKey("n1"), "POST", "/v1/nodes/n1/slivers", body, clock_.NowSeconds());
  std::map<std::string, std::string> headers = {{"Bourse-Key", h.key},
                                                {"Bourse-Timestamp", h.timestamp},
                                                {"Bourse-Nonce", h.nonce},
                                                {"Bourse-Signature", h.signature},
                                                {"Content-Type", "application/json"}};
  clients::Client c = env_.Anon();
  auto first = c.Send("POST", "/v1/nodes/n1/slivers", body, false, headers);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 200) << first->body;
  // The guard's set changes, then the old request is sent again.
  ASSERT_TRUE(Report("n1", "n1", {{"slivers", json::array()}}).ok());
  auto again = c.Send("POST", "/v1/nodes/n1/slivers", body, false, headers);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 401) << again->body;
  EXPECT_NE(again->body.find("replayed"), std::string::npos) << again->body;
  EXPECT_EQ(env_.Anon().Call("GET", "/v1/nodes/n1/slivers").value()["slivers"], json::array());
}

// A node with a valid key cannot grow the ledger by changing its report on
// every request: 12 changes in a row, then one every 10 s (issue #20).
TEST_F(SliverReportsTest, ChangesAreRateBoundPerNode) {
  auto body = [](int i) { return json{{"slivers", {Sliver("mit_web", 100 + i, 1)}}}; };
  for (int i = 0; i < kNodeReportBurst; ++i) {
    auto r = Report("n1", "n1", body(i));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
  }
  auto refused = Report("n1", "n1", body(100));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("node n1's sliver report changed more than 12 times"),
            std::string::npos)
      << refused.status().message();
  EXPECT_EQ(Entries("slivers_reported"), kNodeReportBurst);
  // Nothing of the refused report was stored; the same report as stored
  // takes no token; another node has its own bucket.
  json stored = env_.Anon().Call("GET", "/v1/nodes/n1/slivers").value();
  EXPECT_EQ(stored["slivers"][0]["bought"]["cpu_mcores"], 100 + kNodeReportBurst - 1);
  auto same = Report("n1", "n1", body(kNodeReportBurst - 1));
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ((*same)["changed"], false);
  EXPECT_TRUE(Report("n2", "n2", body(0)).ok());
  // One more change every 10 s.
  clock_.AdvanceMillis(10'000);
  EXPECT_TRUE(Report("n1", "n1", body(200)).ok());
  EXPECT_FALSE(Report("n1", "n1", body(201)).ok());
  EXPECT_EQ(Entries("slivers_reported"), kNodeReportBurst + 2);
}

json Event(int64_t ts_ms, const std::string& kind, const std::string& message) {
  return {{"ts_ms", ts_ms}, {"kind", kind}, {"message", message}, {"count", 1}};
}

json SliverLog(const std::string& slice, json events, json log) {
  return {{"slice", slice}, {"events", std::move(events)}, {"log", std::move(log)}};
}

json Tail(const std::string& text) {
  return {{"tail", text}, {"size", static_cast<int64_t>(text.size())}, {"max_bytes", 65536}};
}

class SliverLogsTest : public SliverReportsTest {
 protected:
  core::Result<json> Logs(const std::string& signer, const std::string& node, const json& body) {
    return env_.C(NodeKey(signer)).Call("POST", "/v1/nodes/" + node + "/logs", body);
  }
  core::Result<json> Slivers(const core::PrivateKey& k) {
    return env_.C(k).CallSigned("GET", "/v1/slices/mit_web/slivers", nullptr);
  }
};

TEST_F(SliverLogsTest, EventsAndLogTailsAreShownToThoseWhoManageTheSliceOnly) {
  const int64_t t = clock_.NowMillis();
  ASSERT_TRUE(Report("n1", "n1", {{"slivers", {Sliver("mit_web", 500, t)}}}).ok());
  int64_t ledger = env_.broker_->LedgerSize();
  json n1 = {{"slivers",
              {SliverLog("mit_web",
                         {Event(t - 2000, "started", "sliver set up"),
                          Event(t - 1000, "boot", "boot script started")},
                         Tail("hello from mit_web\n"))}}};
  auto r = Logs("n1", "n1", n1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["changed"], true);
  // n3 tore its sliver down: its events stay, no sliver report names it.
  ASSERT_TRUE(Logs("n3", "n3",
                   {{"slivers",
                     {SliverLog("mit_web", json::array({Event(t, "torn_down", "sliver torn down")}), nullptr)}}})
                  .ok());
  // Not in the ledger.
  EXPECT_EQ(env_.broker_->LedgerSize(), ledger + 0);

  // Unsigned: the public view, without events or logs.
  json pub = env_.Anon().Call("GET", "/v1/slices/mit_web/slivers").value();
  ASSERT_EQ(pub["slivers"].size(), 1u);
  EXPECT_FALSE(pub["slivers"][0].contains("events"));
  EXPECT_FALSE(pub["slivers"][0].contains("log"));

  // The owner, the site's PI and an admin see events and tails, by node.
  for (const core::PrivateKey* k : {&alice_, &env_.pi_, &env_.admin_}) {
    auto got = Slivers(*k);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const json& sl = (*got)["slivers"];
    ASSERT_EQ(sl.size(), 2u) << sl.dump();
    EXPECT_EQ(sl[0]["node"], "n1");
    EXPECT_EQ(sl[0]["state"], "active");
    EXPECT_EQ(sl[0]["events"].size(), 2u);
    EXPECT_EQ(sl[0]["events"][1]["kind"], "boot");
    EXPECT_EQ(sl[0]["log"]["tail"], "hello from mit_web\n");
    EXPECT_EQ(sl[0]["logs_reported_ms"], t);
    EXPECT_EQ(sl[1]["node"], "n3");
    EXPECT_EQ(sl[1]["state"], "gone");
    EXPECT_EQ(sl[1]["events"][0]["kind"], "torn_down");
    EXPECT_EQ(sl[1]["log"], nullptr);
  }
  // Anyone else who signs is refused: another user, another site's PI, a node.
  core::PrivateKey bob = env_.AddUser("bob", "1", "mit");
  for (const core::PrivateKey* k :
       std::vector<const core::PrivateKey*>{&bob, &env_.pi2_, &NodeKey("n1")}) {
    auto no = Slivers(*k);
    ASSERT_FALSE(no.ok());
    EXPECT_EQ(no.status().code(), core::StatusCode::kPermissionDenied);
    EXPECT_NE(no.status().message().find("is neither an owner nor the PI of site mit"),
              std::string::npos)
        << no.status().message();
  }
  auto missing = env_.C(alice_).CallSigned("GET", "/v1/slices/mit_nothing/slivers", nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);

  // The same report again writes nothing; a new one replaces the node's.
  clock_.AdvanceMillis(1000);
  EXPECT_EQ(Logs("n1", "n1", n1).value()["changed"], false);
  ASSERT_TRUE(Logs("n1", "n1", {{"slivers", json::array()}}).ok());
  auto after = Slivers(alice_).value();
  EXPECT_EQ(after["slivers"][0]["events"], json::array());
  EXPECT_EQ(after["slivers"][0]["log"], nullptr);
}

TEST_F(SliverLogsTest, BadLogReportsAreRefusedNamingTheField) {
  auto refused = [&](const json& body, core::StatusCode code, const std::string& needle) {
    auto r = Logs("n1", "n1", body);
    ASSERT_FALSE(r.ok()) << body.dump().substr(0, 200);
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  auto bad = core::StatusCode::kInvalidArgument;
  json ok = SliverLog("mit_web", json::array({Event(1, "boot", "m")}), Tail("x\n"));
  auto with = [&](const std::string& member, const json& v) {
    json s = ok;
    s[member] = v;
    return json{{"slivers", {s}}};
  };
  auto event = [&](const std::string& member, const json& v) {
    json e = Event(1, "boot", "m");
    e[member] = v;
    return with("events", json::array({e}));
  };
  auto log = [&](const std::string& member, const json& v) {
    json l = Tail("x\n");
    l[member] = v;
    return with("log", l);
  };
  json many_events = json::array();
  for (int i = 0; i < 17; ++i) many_events.push_back(Event(i, "boot", "m"));
  refused(with("events", many_events), bad, "slivers[0].events: 17 events; at most 16");
  refused(with("events", "boot"), bad, "slivers[0].events: must be an array");
  refused(event("kind", "Boot!"), bad, "slivers[0].events[0].kind: \"Boot!\" is not");
  refused(event("message", std::string(513, 'm')), bad, "slivers[0].events[0].message");
  refused(event("ts_ms", -1), bad, "slivers[0].events[0].ts_ms");
  refused(event("count", 0), bad, "slivers[0].events[0].count");
  refused(event("rogue", 1), bad, "rogue");
  refused(log("tail", std::string(4097, 't')), bad, "slivers[0].log.tail");
  refused(log("size", -1), bad, "slivers[0].log.size");
  refused(with("log", "hello"), bad, "slivers[0].log: must be an object or null");
  refused(with("slice", "../etc"), bad, "slivers[0].slice");
  refused(with("state", "active"), bad, "state");
  refused({{"slivers", {ok, ok}}}, bad, "slivers[1].slice: mit_web is reported twice");
  refused({{"logs", json::array()}}, bad, "logs");
  json many = json::array();
  for (int i = 0; i < 501; ++i) many.push_back(SliverLog("s" + std::to_string(i), json::array(), nullptr));
  refused({{"slivers", many}}, bad, "slivers: 501 slivers; at most 500");
  json fat = json::array();
  for (int i = 0; i < 140; ++i) {
    fat.push_back(SliverLog("s" + std::to_string(i), json::array(), Tail(std::string(4000, 'x'))));
  }
  refused({{"slivers", fat}}, bad, "a logs report is at most 524288");
  // Only the node's own key, for a node that exists.
  auto other = Logs("n2", "n1", {{"slivers", {ok}}});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), core::StatusCode::kPermissionDenied);
  auto user = env_.C(alice_).Call("POST", "/v1/nodes/n1/logs", {{"slivers", {ok}}});
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.status().code(), core::StatusCode::kPermissionDenied);
  auto unknown = Logs("n1", "n9", {{"slivers", {ok}}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(Slivers(alice_).value()["slivers"], json::array());
}

// As the sliver report: 12 changes in a row, then one every 10 s, so a node
// cannot keep the broker rewriting its rows; unchanged reports are free.
TEST_F(SliverLogsTest, LogReportChangesAreRateBoundPerNode) {
  auto body = [](int i) {
    return json{{"slivers", {SliverLog("mit_web", json::array(), Tail("line " + std::to_string(i)))}}};
  };
  for (int i = 0; i < kNodeReportBurst; ++i) ASSERT_TRUE(Logs("n1", "n1", body(i)).ok()) << i;
  auto refused = Logs("n1", "n1", body(100));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("node n1's logs report changed more than 12 times"),
            std::string::npos)
      << refused.status().message();
  EXPECT_EQ(Logs("n1", "n1", body(kNodeReportBurst - 1)).value()["changed"], false);
  // The sliver report's bucket is another one.
  EXPECT_TRUE(Report("n1", "n1", {{"slivers", {Sliver("mit_web", 1, 1)}}}).ok());
  clock_.AdvanceMillis(10'000);
  EXPECT_TRUE(Logs("n1", "n1", body(200)).ok());
  EXPECT_FALSE(Logs("n1", "n1", body(201)).ok());
}

TEST_F(SliverReportsTest, RoutesAreInTheOpenApiDocument) {
  json doc = env_.Anon().Call("GET", "/openapi.json").value();
  const json& paths = doc["paths"];
  ASSERT_TRUE(paths.contains("/v1/nodes/{node}/slivers")) << paths.dump().substr(0, 300);
  EXPECT_TRUE(paths["/v1/nodes/{node}/slivers"].contains("post"));
  EXPECT_TRUE(paths["/v1/nodes/{node}/slivers"].contains("get"));
  ASSERT_TRUE(paths.contains("/v1/nodes/{node}/logs"));
  EXPECT_TRUE(paths["/v1/nodes/{node}/logs"].contains("post"));
  ASSERT_TRUE(paths.contains("/v1/slices/{slice}/slivers"));
  EXPECT_TRUE(paths["/v1/slices/{slice}/slivers"].contains("get"));
}

}  // namespace
}  // namespace bourse::broker::testing
