// The node guards' sliver reports (docs/broker.md "Slivers"), over HTTP
// against a real broker: POST /v1/nodes/{node}/slivers signed by the node's
// key replaces the node's set and writes slivers_reported to the ledger only
// when it changed; GET per node and per slice show it with reported_ms; a
// node cannot report for another, a report over the bounds is refused, a
// replayed request is refused, and `ledger verify` accepts the entries.
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

TEST_F(SliverReportsTest, RoutesAreInTheOpenApiDocument) {
  json doc = env_.Anon().Call("GET", "/openapi.json").value();
  const json& paths = doc["paths"];
  ASSERT_TRUE(paths.contains("/v1/nodes/{node}/slivers")) << paths.dump().substr(0, 300);
  EXPECT_TRUE(paths["/v1/nodes/{node}/slivers"].contains("post"));
  EXPECT_TRUE(paths["/v1/nodes/{node}/slivers"].contains("get"));
  ASSERT_TRUE(paths.contains("/v1/slices/{slice}/slivers"));
  EXPECT_TRUE(paths["/v1/slices/{slice}/slivers"].contains("get"));
}

}  // namespace
}  // namespace bourse::broker::testing
