// Issue #13, the slice's end and what the node says, over HTTP against a real
// broker (SQLite file, loopback server, signed requests), time driven by a
// ManualClock and Markets::Tick():
//   * delete_slice ends the slice's share bids in its own transaction: each
//     pays up to the instant, the rest of its budget is released exactly, no
//     charge follows, and the slice leaves every node's share table at once;
//   * a binding's state follows the node guard's reports (scheduled, active,
//     redeemed with the report, refused with the reason, expired);
//   * usage per slice and per node, read back from the guards' reports.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/money.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class SliceEndTest : public ::testing::Test {
 protected:
  SliceEndTest()
      : t0_(core::SystemClock::Get().NowSeconds()),
        clock_(t0_ * 1000),
        env_({.clock = &clock_, .markets = {.tick_ms = 0, .share_charge_interval_s = 1}}) {}

  void SetUp() override {
    env_.SetupSites();
    alice_ = env_.AddUser("alice", "1000", "mit");
    bob_ = env_.AddUser("bob", "1000", "mit");
  }

  void At(int64_t ms) { clock_.SetMillis(t0_ * 1000 + ms); }
  void Tick() { ASSERT_TRUE(env_.markets().Tick().ok()); }
  json Entries() {
    int64_t size = env_.broker_->LedgerSize();
    return env_.Ok(env_.admin_, "GET",
                   "/v1/ledger/entries?from=0&to=" + std::to_string(size))["entries"];
  }
  json Bid(const std::string& id) { return env_.Ok(alice_, "GET", "/v1/share_bids/" + id)["bid"]; }
  json Table(const std::string& node) {
    return env_.Ok(alice_, "GET", "/v1/nodes/" + node + "/shares")["shares"];
  }
  // The node guard of node n1 / n2 (MarketEnv::SetupSites adds n1, n3, n2).
  const core::PrivateKey& NodeKey(const std::string& node) {
    return env_.node_keys_.at(node == "n1" ? 0 : node == "n3" ? 1 : 2);
  }

  int64_t t0_;
  core::ManualClock clock_;
  MarketEnv env_;
  core::PrivateKey alice_ = NewKey(), bob_ = NewKey();
};

TEST_F(SliceEndTest, DeleteSliceEndsItsShareBidsExactlyInTheSameTransaction) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  env_.Ok(bob_, "POST", "/v1/slices", {{"name", "mit_db"}});
  // Alice bids for mit_web on n1 (site mit) and n2 (site ucb); Bob for mit_db on n1.
  std::string a1 = env_.Ok(alice_, "POST", "/v1/nodes/n1/share_bids",
                           {{"slice", "mit_web"}, {"rate", "0.3"}, {"budget", "100"}})["bid"]["id"];
  std::string a2 = env_.Ok(alice_, "POST", "/v1/nodes/n2/share_bids",
                           {{"slice", "mit_web"}, {"rate", "0.2"}, {"budget", "50"}})["bid"]["id"];
  std::string b1 = env_.Ok(bob_, "POST", "/v1/nodes/n1/share_bids",
                           {{"slice", "mit_db"}, {"rate", "0.1"}, {"budget", "100"}})["bid"]["id"];
  ASSERT_EQ(Table("n1").size(), 2u);
  ASSERT_EQ(Table("n2").size(), 1u);
  At(2000);
  Tick();  // a charge on the way: 0.6 and 0.4
  EXPECT_EQ(Bid(a1)["charged"], "0.600000000");
  // Deleted at 2.5 s: each of Alice's bids pays up to that instant, no more.
  At(2500);
  const int64_t before = env_.broker_->LedgerSize();
  json del = env_.Ok(alice_, "DELETE", "/v1/slices/mit_web");
  const int64_t after = env_.broker_->LedgerSize();
  EXPECT_EQ(del["deleted"], "mit_web");
  json w1 = Bid(a1), w2 = Bid(a2);
  EXPECT_EQ(w1["state"], "withdrawn");
  EXPECT_EQ(w1["charged"], "0.750000000");  // 0.3 x 2.5 s
  EXPECT_EQ(w1["remaining"], "0.000000000");
  EXPECT_EQ(w2["state"], "withdrawn");
  EXPECT_EQ(w2["charged"], "0.500000000");  // 0.2 x 2.5 s
  EXPECT_EQ(env_.Balance(alice_), "998.750000000");
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  // The slice left both tables at once: Bob holds all of n1, n2 is empty.
  json t1 = Table("n1");
  ASSERT_EQ(t1.size(), 1u);
  EXPECT_EQ(t1[0], json({{"slice", "mit_db"}, {"cpu_weight", 10000}, {"net_kbps", 100000}}));
  EXPECT_TRUE(Table("n2").empty());
  ASSERT_TRUE(del.contains("share_bids")) << del.dump();
  EXPECT_EQ(del["share_bids"].get<std::set<std::string>>(), std::set<std::string>({a1, a2}));

  // What the delete wrote (nothing else runs: no background tick): the two
  // bids' settles up to 2.5 s, their exact releases and withdrawals, then
  // slice_deleted naming them.
  json all = Entries();
  ASSERT_GT(after, before);
  EXPECT_EQ(all[after - 1]["type"], "slice_deleted");
  EXPECT_EQ(all[after - 1]["body"]["share_bids"].get<std::set<std::string>>(),
            std::set<std::string>({a1, a2}));
  std::map<std::string, std::string> released;
  std::map<std::string, core::Money> settled;
  std::set<std::string> withdrawn;
  std::string esc1 = w1["escrow"], esc2 = w2["escrow"];
  for (int64_t i = before; i < after - 1; ++i) {
    const json& e = all[i];
    const json& b = e["body"];
    if (e["type"] == "escrow_release") {
      EXPECT_TRUE(released.emplace(b["escrow"], b["amount"]).second);
    } else if (e["type"] == "escrow_settle") {
      auto& m = settled[b["escrow"]];
      m = m.Add(core::Money::Parse(b["amount"].get<std::string>()).value()).value();
    } else if (e["type"] == "share_bid_withdrawn") {
      EXPECT_EQ(b["reason"], "slice_deleted");
      withdrawn.insert(b["bid"].get<std::string>());
    } else {
      ADD_FAILURE() << "unexpected entry in the delete: " << e.dump();
    }
  }
  EXPECT_EQ(withdrawn, std::set<std::string>({a1, a2}));
  EXPECT_EQ(released[esc1], "99.250000000");
  EXPECT_EQ(released[esc2], "49.500000000");
  EXPECT_EQ(settled[esc1].ToString(), "0.150000000");  // 0.75 - 0.6 charged at 2 s
  EXPECT_EQ(settled[esc2].ToString(), "0.100000000");
  EXPECT_EQ(settled.size(), 2u);  // Bob's bid is not charged by Alice's delete
  for (int64_t i = 0; i < before; ++i) {
    EXPECT_NE(all[i]["type"], "escrow_release") << all[i].dump();
  }

  // Time goes on: no further charge for Alice, Bob's bid still runs.
  At(60000);
  Tick();
  EXPECT_EQ(env_.Balance(alice_), "998.750000000");
  EXPECT_EQ(Bid(a1)["charged"], "0.750000000");
  EXPECT_EQ(Bid(a2)["charged"], "0.500000000");
  EXPECT_EQ(Bid(b1)["charged"], "6.000000000");
  EXPECT_EQ(env_.Balance(env_.pi2_), "0.500000000");  // n2's site got exactly 0.2 x 2.5 s
  EXPECT_EQ(Table("n1").size(), 1u);
  // Withdrawing an ended bid is refused; nothing moves.
  auto ac = env_.C(alice_);
  EXPECT_EQ(ac.Call("DELETE", "/v1/share_bids/" + a1).status().code(),
            core::StatusCode::kFailedPrecondition);
  env_.ExpectLedgerVerifies();
  env_.Restart();
  At(120000);
  Tick();
  EXPECT_EQ(env_.Balance(alice_), "998.750000000");
  EXPECT_EQ(Table("n1").size(), 1u);
  env_.ExpectLedgerVerifies();
}

TEST_F(SliceEndTest, DeletingASliceWithNoBidsAndARefusedDeleteChangeNothingElse) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  std::string a1 = env_.Ok(alice_, "POST", "/v1/nodes/n1/share_bids",
                           {{"slice", "mit_web"}, {"rate", "1"}, {"budget", "10"}})["bid"]["id"];
  At(1000);
  // Bob is neither an owner nor the PI: refused, the bid keeps running.
  auto bc = env_.C(bob_);
  EXPECT_EQ(bc.Call("DELETE", "/v1/slices/mit_web").status().code(),
            core::StatusCode::kPermissionDenied);
  EXPECT_EQ(Bid(a1)["state"], "active");
  EXPECT_EQ(Table("n1").size(), 1u);
  env_.Ok(bob_, "POST", "/v1/slices", {{"name", "mit_db"}});
  json d = env_.Ok(bob_, "DELETE", "/v1/slices/mit_db");
  EXPECT_TRUE(d["share_bids"].empty());
  // A bid whose budget ran out before the delete (not yet charged) pays
  // exactly its budget; nothing is released.
  At(20000);
  d = env_.Ok(alice_, "DELETE", "/v1/slices/mit_web");
  EXPECT_EQ(d["share_bids"], json::array({a1}));
  EXPECT_EQ(Bid(a1)["charged"], "10.000000000");
  EXPECT_EQ(env_.Balance(alice_), "990.000000000");
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  env_.ExpectLedgerVerifies();
}

TEST_F(SliceEndTest, BindingStateFollowsTheNodeGuardsReports) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  const int64_t now = t0_;
  // Five roots on n1 held by Alice, bound to her slice.
  ledger::Rcap quiet = env_.Grant(env_.pi_, "n1", alice_.public_key(), now, now + 3600, 500);
  ledger::Rcap later = env_.Grant(env_.pi_, "n1", alice_.public_key(), now + 3600, now + 7200, 500);
  ledger::Rcap refused = env_.Grant(env_.pi_, "n1", alice_.public_key(), now, now + 3600, 500);
  ledger::Rcap redeemed = env_.Grant(env_.pi_, "n1", alice_.public_key(), now, now + 3600, 500);
  ledger::Rcap brief = env_.Grant(env_.pi_, "n1", alice_.public_key(), now, now + 100, 500);
  for (const ledger::Rcap* r : {&quiet, &later, &refused, &redeemed, &brief}) {
    json b = env_.Ok(alice_, "POST", "/v1/slices/mit_web/bindings",
                     {{"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{*r})}});
    ASSERT_EQ(b["leaf"], r->id);
  }
  auto states = [&]() {
    json list = env_.Anon().Call("GET", "/v1/slices/mit_web/bindings").value()["bindings"];
    std::map<std::string, json> out;
    for (const json& b : list) out[b["leaf"]] = b;
    return out;
  };
  auto s = states();
  EXPECT_EQ(s[quiet.id]["state"], "active");
  EXPECT_EQ(s[later.id]["state"], "scheduled");
  EXPECT_EQ(s[refused.id]["state"], "active");

  // The guard of n1 reports: one refusal, one redemption, brief redeemed.
  auto node = env_.C(NodeKey("n1"));
  json rep = {{"redemptions",
               {{{"rcap", refused.id},
                 {"slice", "mit_web"},
                 {"state", "refused"},
                 {"reason", "oversubscribed"},
                 {"detail", "cpu_mcores: 9000 > 8000 at 1700000000"},
                 {"ts", now + 5}},
                {{"rcap", redeemed.id},
                 {"slice", "mit_web"},
                 {"state", "active"},
                 {"reason", nullptr},
                 {"detail", ""},
                 {"ts", now + 6}},
                {{"rcap", brief.id},
                 {"slice", "mit_web"},
                 {"state", "active"},
                 {"reason", nullptr},
                 {"detail", ""},
                 {"ts", now + 7}}}}};
  auto r = node.Call("POST", "/v1/nodes/n1/redemptions", rep);
  ASSERT_TRUE(r.ok()) << r.status().message();
  s = states();
  EXPECT_EQ(s[quiet.id]["state"], "active");
  EXPECT_TRUE(s[quiet.id]["report"].is_null());
  EXPECT_EQ(s[later.id]["state"], "scheduled");
  EXPECT_EQ(s[refused.id]["state"], "refused");
  EXPECT_EQ(s[refused.id]["report"]["reason"], "oversubscribed");
  EXPECT_EQ(s[refused.id]["report"]["detail"], "cpu_mcores: 9000 > 8000 at 1700000000");
  EXPECT_EQ(s[refused.id]["report"]["ts"], now + 5);
  EXPECT_EQ(s[redeemed.id]["state"], "redeemed");
  EXPECT_EQ(s[redeemed.id]["report"]["state"], "active");
  EXPECT_EQ(s[redeemed.id]["report"]["ts"], now + 6);
  EXPECT_TRUE(s[redeemed.id]["report"]["reason"].is_null());
  EXPECT_EQ(s[brief.id]["state"], "redeemed");

  // The scheduled one is redeemed as scheduled, later reported active.
  rep = {{"redemptions",
          {{{"rcap", later.id},
            {"slice", "mit_web"},
            {"state", "scheduled"},
            {"reason", nullptr},
            {"detail", ""},
            {"ts", now + 8}}}}};
  ASSERT_TRUE(node.Call("POST", "/v1/nodes/n1/redemptions", rep).ok());
  s = states();
  EXPECT_EQ(s[later.id]["state"], "redeemed");
  EXPECT_EQ(s[later.id]["report"]["state"], "scheduled");

  // Past its not_after a binding is expired, its report still shown.
  At(101 * 1000);
  s = states();
  EXPECT_EQ(s[brief.id]["state"], "expired");
  EXPECT_EQ(s[brief.id]["report"]["state"], "active");
  EXPECT_EQ(s[quiet.id]["state"], "active");
  At(3601 * 1000);
  s = states();
  EXPECT_EQ(s[later.id]["state"], "redeemed");
  EXPECT_EQ(s[quiet.id]["state"], "expired");
  EXPECT_EQ(s[refused.id]["state"], "expired");
  EXPECT_EQ(s[refused.id]["report"]["reason"], "oversubscribed");
  // Another node's key cannot report for n1.
  auto other = env_.C(NodeKey("n2"));
  EXPECT_EQ(other.Call("POST", "/v1/nodes/n1/redemptions", rep).status().code(),
            core::StatusCode::kPermissionDenied);
  env_.ExpectLedgerVerifies();
}

TEST_F(SliceEndTest, UsagePerSliceAndPerNodeFromTheGuardsReports) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  env_.Ok(bob_, "POST", "/v1/slices", {{"name", "mit_db"}});
  auto report = [](const std::string& id, const std::string& slice, int64_t from, int64_t to,
                   int64_t cpu, int64_t net, int64_t disk) {
    return json{{"id", id}, {"slice", slice},  {"rcap", "r_" + slice}, {"from", from},
                {"to", to}, {"cpu_usec", cpu}, {"net_tx_bytes", net},  {"disk_used_mib", disk}};
  };
  const int64_t t = t0_;
  auto n1 = env_.C(NodeKey("n1"));
  auto n2 = env_.C(NodeKey("n2"));
  ASSERT_TRUE(n1.Call("POST", "/v1/nodes/n1/usage",
                      {{"reports",
                        {report("u1", "mit_web", t, t + 30, 1000, 500, 10),
                         report("u2", "mit_web", t + 30, t + 60, 2000, 700, 12),
                         report("u3", "mit_db", t, t + 30, 50, 5, 1)}}})
                  .ok());
  ASSERT_TRUE(
      n2.Call("POST", "/v1/nodes/n2/usage",
              {{"reports", json::array({report("v1", "mit_web", t + 10, t + 40, 300, 30, 3)})}})
          .ok());
  auto anon = env_.Anon();
  auto got = anon.Call("GET", "/v1/slices/mit_web/usage");
  ASSERT_TRUE(got.ok()) << got.status().message();
  json u = *got;
  EXPECT_EQ(u["slice"], "mit_web");
  ASSERT_EQ(u["slivers"].size(), 2u);
  json s1 = u["slivers"][0];
  EXPECT_EQ(s1["node"], "n1");
  EXPECT_EQ(s1["slice"], "mit_web");
  EXPECT_EQ(s1["reports"], 2);
  EXPECT_EQ(s1["from"], t);
  EXPECT_EQ(s1["to"], t + 60);
  EXPECT_EQ(s1["cpu_usec"], 3000);
  EXPECT_EQ(s1["net_tx_bytes"], 1200);
  EXPECT_EQ(s1["disk_used_mib"], 12);
  EXPECT_EQ(s1["latest"]["id"], "u2");
  EXPECT_EQ(s1["latest"]["cpu_usec"], 2000);
  EXPECT_EQ(u["slivers"][1]["node"], "n2");
  EXPECT_EQ(u["slivers"][1]["cpu_usec"], 300);
  EXPECT_EQ(u["totals"], json({{"slivers", 2},
                               {"reports", 3},
                               {"cpu_usec", 3300},
                               {"net_tx_bytes", 1230},
                               {"disk_used_mib", 15}}));
  EXPECT_TRUE(u["next"].is_null());
  // Paging: one sliver at a time, totals still over all.
  json p1 = anon.Call("GET", "/v1/slices/mit_web/usage?limit=1").value();
  ASSERT_EQ(p1["slivers"].size(), 1u);
  EXPECT_EQ(p1["next"], "n1");
  EXPECT_EQ(p1["totals"]["cpu_usec"], 3300);
  json p2 = anon.Call("GET", "/v1/slices/mit_web/usage?limit=1&after=n1").value();
  ASSERT_EQ(p2["slivers"].size(), 1u);
  EXPECT_EQ(p2["slivers"][0]["node"], "n2");
  EXPECT_TRUE(p2["next"].is_null());

  json nu = anon.Call("GET", "/v1/nodes/n1/usage").value();
  EXPECT_EQ(nu["node"], "n1");
  ASSERT_EQ(nu["slivers"].size(), 2u);
  EXPECT_EQ(nu["slivers"][0]["slice"], "mit_db");
  EXPECT_EQ(nu["slivers"][0]["cpu_usec"], 50);
  EXPECT_EQ(nu["slivers"][1]["slice"], "mit_web");
  EXPECT_EQ(nu["slivers"][1]["latest"]["id"], "u2");
  EXPECT_EQ(nu["totals"]["cpu_usec"], 3050);
  EXPECT_EQ(nu["totals"]["disk_used_mib"], 13);
  // A node with no reports, a slice with none.
  json n3 = anon.Call("GET", "/v1/nodes/n3/usage").value();
  EXPECT_TRUE(n3["slivers"].empty());
  EXPECT_EQ(n3["totals"]["reports"], 0);
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_idle"}});
  EXPECT_TRUE(anon.Call("GET", "/v1/slices/mit_idle/usage").value()["slivers"].empty());
  // A re-sent report changes nothing.
  ASSERT_TRUE(
      n2.Call("POST", "/v1/nodes/n2/usage",
              {{"reports", json::array({report("v1", "mit_web", t + 10, t + 40, 300, 30, 3)})}})
          .ok());
  EXPECT_EQ(anon.Call("GET", "/v1/slices/mit_web/usage").value()["totals"]["reports"], 3);
  // A deleted slice's usage stays readable.
  env_.Ok(alice_, "DELETE", "/v1/slices/mit_web");
  EXPECT_EQ(anon.Call("GET", "/v1/slices/mit_web/usage").value()["totals"]["cpu_usec"], 3300);

  // Bad input: named, 4xx.
  auto bad = anon.Call("GET", "/v1/slices/mit_db/usage?limit=0");
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("limit"), std::string::npos);
  bad = anon.Call("GET", "/v1/nodes/n1/usage?limit=1001");
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(anon.Call("GET", "/v1/slices/mit_nope/usage").status().code(),
            core::StatusCode::kNotFound);
  EXPECT_EQ(anon.Call("GET", "/v1/nodes/nx/usage").status().code(), core::StatusCode::kNotFound);

  // Both are in the API document.
  json doc = anon.Call("GET", "/openapi.json").value();
  EXPECT_TRUE(doc["paths"]["/v1/slices/{slice}/usage"].contains("get"));
  EXPECT_TRUE(doc["paths"]["/v1/nodes/{node}/usage"].contains("get"));
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
