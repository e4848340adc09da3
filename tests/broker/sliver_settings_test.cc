// Issue #20, best-effort slivers at the broker, over HTTP against a real
// broker (SQLite file, loopback server, signed requests):
//   * set_resources takes the slice's share, disk and memory, refuses what
//     is malformed or beyond its site's limits with the member named, and a
//     slice owner with a valid key cannot take more than the limits allow
//     (a huge share, a negative one, a disk larger than the node, many
//     slices of one site on one node);
//   * a site's PI may only tighten its sliver limits, the admin raises them;
//   * instantiate_slice, remove_nodes, delete and expiry change what the
//     node's guard is told (GET /v1/nodes/{node}/bindings "slices"), with
//     the settings clamped to the site's current limits;
//   * each mutation is one ledger entry and `ledger verify` accepts them.
#include <gtest/gtest.h>

#include <string>

#include "core/clock.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class SliverSettingsTest : public ::testing::Test {
 protected:
  SliverSettingsTest()
      : t0_(core::SystemClock::Get().NowSeconds()),
        clock_(t0_ * 1000),
        env_({.clock = &clock_, .markets = {.tick_ms = 0}}) {}

  void SetUp() override {
    env_.SetupSites();
    alice_ = env_.AddUser("alice", "", "mit");
  }

  // The request's HTTP status and error message (200 and "" on success).
  std::pair<int, std::string> Try(const core::PrivateKey& k, std::string_view method,
                                  std::string_view path, const json& body) {
    auto r = env_.C(k).Call(method, path, body);
    if (r.ok()) return {200, ""};
    int code = 0;
    switch (r.status().code()) {
      case core::StatusCode::kInvalidArgument:
        code = 400;
        break;
      case core::StatusCode::kPermissionDenied:
        code = 403;
        break;
      case core::StatusCode::kNotFound:
        code = 404;
        break;
      case core::StatusCode::kFailedPrecondition:
      case core::StatusCode::kAlreadyExists:
        code = 409;
        break;
      default:
        code = 500;
    }
    return {code, r.status().message()};
  }
  std::pair<int, std::string> SetResources(const std::string& slice, const json& res) {
    return Try(alice_, "PUT", "/v1/slices/" + slice + "/resources", {{"resources", res}});
  }
  // What node n1's guard is told about best-effort slices.
  json NodeSlices(const std::string& node = "n1") {
    // MarketEnv::SetupSites adds n1, n3, n2 in that order.
    const core::PrivateKey& key = env_.node_keys_.at(node == "n1" ? 0 : node == "n3" ? 1 : 2);
    auto r = env_.C(key).CallSigned("GET", "/v1/nodes/" + node + "/bindings");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? (*r)["slices"] : json();
  }
  json Last(const std::string& type) {
    int64_t size = env_.broker_->LedgerSize();
    json entries = env_.Ok(env_.admin_, "GET",
                           "/v1/ledger/entries?from=0&to=" + std::to_string(size))["entries"];
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
      if ((*it)["type"] == type) return (*it)["body"];
    }
    return nullptr;
  }

  int64_t t0_;
  core::ManualClock clock_;
  MarketEnv env_;
  core::PrivateKey alice_ = NewKey();
};

TEST_F(SliverSettingsTest, SetResourcesValidatesAndKeepsWithinTheSiteLimits) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  json s = env_.Ok(alice_, "GET", "/v1/slices/mit_web");
  EXPECT_EQ(s["resources"], json({{"share", 1}, {"disk_mib", 64}, {"mem_mib", 256}}));

  struct Bad {
    const char* what;
    json res;
    int code;
    const char* names;
  };
  const Bad bad[] = {
      {"huge share",
       {{"share", 1000000}},
       400,
       "resources.share: 1000000 is above the site's limit of 10"},
      {"negative share", {{"share", -5}}, 400, "resources.share"},
      {"zero share", {{"share", 0}}, 400, "resources.share: must be at least 1"},
      {"float share", json::parse(R"({"share":1.5})"), 400, "body: "},  // no floats in JSON here
      {"string share", {{"share", "3"}}, 400, "resources.share"},
      {"share past 2^64", json::parse(R"({"share":18446744073709551615})"), 400, "resources.share"},
      {"share of 2^53", {{"share", int64_t{1} << 53}}, 400, "share"},
      {"disk over limit",
       {{"disk_mib", 5000}},
       400,
       "resources.disk_mib: 5000 is above the site's limit of 1024"},
      {"negative disk", {{"disk_mib", -1}}, 400, "resources.disk_mib"},
      {"no memory limit", {{"mem_mib", 0}}, 400, "resources.mem_mib: must be at least 1"},
      {"memory over limit", {{"mem_mib", 4096}}, 400, "resources.mem_mib: 4096 is above"},
      {"an rcap's member", {{"cpu_mcores", 500}}, 400, "resources.cpu_mcores: unknown member"},
      {"not an object", json::array({1}), 400, "resources: must be a JSON object"},
  };
  for (const Bad& b : bad) {
    auto [code, msg] = SetResources("mit_web", b.res);
    EXPECT_EQ(code, b.code) << b.what;
    EXPECT_NE(msg.find(b.names), std::string::npos) << b.what << ": " << msg;
  }
  // Nothing of that was kept or recorded.
  EXPECT_EQ(env_.Ok(alice_, "GET", "/v1/slices/mit_web")["resources"]["share"], 1);
  EXPECT_TRUE(Last("slice_resources_set").is_null());

  // Within the limits: accepted, recorded with the settings.
  ASSERT_EQ(SetResources("mit_web", {{"share", 3}, {"disk_mib", 128}, {"mem_mib", 512}}).first,
            200);
  json e = Last("slice_resources_set");
  EXPECT_EQ(e["resources"], json({{"share", 3}, {"disk_mib", 128}, {"mem_mib", 512}}));
  EXPECT_EQ(e["slice"], "mit_web");
  // Another user, not an owner, cannot touch it.
  core::PrivateKey mallory = env_.AddUser("mallory", "", "mit");
  EXPECT_EQ(
      Try(mallory, "PUT", "/v1/slices/mit_web/resources", {{"resources", {{"share", 1}}}}).first,
      403);
  env_.ExpectLedgerVerifies();
}

TEST_F(SliverSettingsTest, DiskLargerThanTheNodeIsRefused) {
  // The admin lets mit's slices ask for much disk; n1 has 100000 MiB.
  env_.Ok(env_.admin_, "PUT", "/v1/sites/mit/sliver_limits",
          {{"max_share", 10},
           {"max_disk_mib", 1000000},
           {"max_mem_mib", 2048},
           {"max_site_share", 20}});
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_big"}});
  env_.Ok(alice_, "POST", "/v1/slices/mit_big/instantiate", {{"nodes", {"n1"}}});
  auto [code, msg] = SetResources("mit_big", {{"disk_mib", 150000}});
  EXPECT_EQ(code, 409);
  EXPECT_NE(msg.find("150000 MiB is larger than node n1's disk of 100000 MiB"), std::string::npos)
      << msg;
  // Set first, then instantiated on the node: refused the same way.
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_big2"}});
  ASSERT_EQ(SetResources("mit_big2", {{"disk_mib", 150000}}).first, 200);  // on no node yet
  auto inst = Try(alice_, "POST", "/v1/slices/mit_big2/instantiate", {{"nodes", {"n1"}}});
  EXPECT_EQ(inst.first, 409);
  EXPECT_NE(inst.second.find("node n1's disk"), std::string::npos) << inst.second;
  EXPECT_EQ(env_.Ok(alice_, "GET", "/v1/slices/mit_big2")["nodes"], json::array());
  env_.ExpectLedgerVerifies();
}

TEST_F(SliverSettingsTest, ManySlicesOfOneSiteCannotStarveANode) {
  // Default limits: share ≤ 10 each, a site's live slices ≤ 20 on one node.
  for (const char* name : {"mit_a", "mit_b", "mit_c"}) {
    env_.Ok(alice_, "POST", "/v1/slices", {{"name", name}});
    ASSERT_EQ(SetResources(name, {{"share", 10}}).first, 200);
  }
  env_.Ok(alice_, "POST", "/v1/slices/mit_a/instantiate", {{"nodes", {"n1"}}});
  env_.Ok(alice_, "POST", "/v1/slices/mit_b/instantiate", {{"nodes", {"n1"}}});
  auto third = Try(alice_, "POST", "/v1/slices/mit_c/instantiate", {{"nodes", {"n1"}}});
  EXPECT_EQ(third.first, 409);
  EXPECT_NE(third.second.find("node n1 would hold shares of 30, above its limit of 20"),
            std::string::npos)
      << third.second;
  // With a share of 1 it does not fit either (20 + 1), nor does raising one in place.
  ASSERT_EQ(SetResources("mit_c", {{"share", 1}}).first, 200);
  EXPECT_EQ(Try(alice_, "POST", "/v1/slices/mit_c/instantiate", {{"nodes", {"n1"}}}).first, 409);
  // On another node it fits; a deleted slice frees its part.
  env_.Ok(alice_, "POST", "/v1/slices/mit_c/instantiate", {{"nodes", {"n3"}}});
  env_.Ok(alice_, "DELETE", "/v1/slices/mit_b");
  env_.Ok(alice_, "POST", "/v1/slices/mit_c/instantiate", {{"nodes", {"n1"}}});
  EXPECT_EQ(SetResources("mit_c", {{"share", 10}}).first, 200);  // a + c = 20: the limit
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_d"}});
  EXPECT_EQ(Try(alice_, "POST", "/v1/slices/mit_d/instantiate", {{"nodes", {"n1"}}}).first, 409);
  // Another site's slices are not counted against mit's.
  core::PrivateKey carol = env_.AddUser("carol", "", "ucb");
  env_.Ok(carol, "POST", "/v1/slices", {{"name", "ucb_x"}});
  env_.Ok(carol, "POST", "/v1/slices/ucb_x/instantiate", {{"nodes", {"n1"}}});
  env_.ExpectLedgerVerifies();
}

TEST_F(SliverSettingsTest, SitePiMayOnlyTightenLimitsTheAdminRaisesThem) {
  json tight = {
      {"max_share", 2}, {"max_disk_mib", 100}, {"max_mem_mib", 512}, {"max_site_share", 4}};
  json wide = {
      {"max_share", 50}, {"max_disk_mib", 100}, {"max_mem_mib", 512}, {"max_site_share", 100}};
  auto up = Try(env_.pi_, "PUT", "/v1/sites/mit/sliver_limits", wide);
  EXPECT_EQ(up.first, 403);
  EXPECT_NE(up.second.find("limits.max_share: 50 is above the default 10"), std::string::npos)
      << up.second;
  EXPECT_EQ(Try(env_.pi2_, "PUT", "/v1/sites/mit/sliver_limits", tight).first,
            403);  // not its site
  EXPECT_EQ(Try(alice_, "PUT", "/v1/sites/mit/sliver_limits", tight).first, 403);
  json neg = tight;
  neg["max_share"] = -1;
  EXPECT_EQ(Try(env_.pi_, "PUT", "/v1/sites/mit/sliver_limits", neg).first, 400);
  json missing = {{"max_share", 2}};
  auto m = Try(env_.pi_, "PUT", "/v1/sites/mit/sliver_limits", missing);
  EXPECT_EQ(m.first, 400);
  EXPECT_NE(m.second.find("sliver_limits.max_disk_mib: missing"), std::string::npos) << m.second;

  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  ASSERT_EQ(SetResources("mit_web", {{"share", 8}}).first, 200);
  env_.Ok(alice_, "POST", "/v1/slices/mit_web/instantiate", {{"nodes", {"n1"}}});
  // The PI tightens: the node is told the clamped settings from now on.
  ASSERT_EQ(Try(env_.pi_, "PUT", "/v1/sites/mit/sliver_limits", tight).first, 200);
  EXPECT_EQ(env_.Ok(alice_, "GET", "/v1/sites/mit/sliver_limits")["max_share"], 2);
  EXPECT_EQ(Last("site_sliver_limits_set")["limits"], tight);
  json slices = NodeSlices();
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0]["share"], 2);
  EXPECT_EQ(slices[0]["disk_mib"], 64);
  EXPECT_EQ(slices[0]["mem_mib"], 256);
  EXPECT_EQ(SetResources("mit_web", {{"share", 3}}).first, 400);
  // The admin raises them beyond the defaults.
  ASSERT_EQ(Try(env_.admin_, "PUT", "/v1/sites/mit/sliver_limits", wide).first, 200);
  ASSERT_EQ(SetResources("mit_web", {{"share", 40}}).first, 200);
  EXPECT_EQ(NodeSlices()[0]["share"], 40);
  env_.ExpectLedgerVerifies();
}

TEST_F(SliverSettingsTest, TheNodeIsToldWhichSlicesItHoldsUntilRemovedDeletedOrExpired) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_db"}});
  env_.Ok(alice_, "PUT", "/v1/slices/mit_web/state", {{"boot_script", "#!/bin/sh\necho hi\n"}});
  EXPECT_EQ(NodeSlices(), json::array());
  env_.Ok(alice_, "POST", "/v1/slices/mit_web/instantiate", {{"nodes", {"n1", "n3"}}});
  env_.Ok(alice_, "POST", "/v1/slices/mit_db/instantiate", {{"nodes", {"n1"}}});
  json slices = NodeSlices();
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(slices[1]["slice"], "mit_web");
  EXPECT_EQ(slices[1]["boot_script"], "#!/bin/sh\necho hi\n");
  EXPECT_EQ(slices[1]["share"], 1);
  EXPECT_GT(slices[1]["expires"].get<int64_t>(), t0_);
  // Another node's key may not read n1's list.
  auto foreign = env_.C(env_.node_keys_.at(1)).CallSigned("GET", "/v1/nodes/n1/bindings");
  EXPECT_EQ(foreign.status().code(), core::StatusCode::kPermissionDenied);

  // remove_nodes: only nodes the slice is on; the rest stays.
  auto not_on = Try(alice_, "POST", "/v1/slices/mit_db/remove_nodes", {{"nodes", {"n2"}}});
  EXPECT_EQ(not_on.first, 404);
  EXPECT_NE(not_on.second.find("nodes[0]: slice mit_db is not instantiated on node n2"), std::string::npos);
  EXPECT_EQ(
      Try(alice_, "POST", "/v1/slices/mit_web/remove_nodes", {{"nodes", json::array()}}).first,
      400);
  env_.Ok(alice_, "POST", "/v1/slices/mit_web/remove_nodes", {{"nodes", {"n1"}}});
  json e = Last("slice_nodes_removed");
  EXPECT_EQ(e["nodes"], json::array({"n3"}));
  EXPECT_EQ(e["removed"], json::array({"n1"}));
  slices = NodeSlices();
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0]["slice"], "mit_db");
  // Deleted: gone.
  env_.Ok(alice_, "DELETE", "/v1/slices/mit_db");
  EXPECT_EQ(NodeSlices(), json::array());
  // Expired: gone from the list (n3 still has mit_web until then).
  json n3 = NodeSlices("n3");
  ASSERT_EQ(n3.size(), 1u);
  clock_.SetMillis((n3[0]["expires"].get<int64_t>() + 1) * 1000);
  EXPECT_EQ(NodeSlices("n3"), json::array());
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
