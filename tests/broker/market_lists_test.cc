// The read endpoints a CLI needs across markets (issue #15), through the real
// HTTP API: GET /v1/orders (a principal's orders) and GET /v1/share_bids
// (share bids by bidder and/or node), each item as its single GET shows it.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class MarketListsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.SetupSites();
    int64_t now = core::SystemClock::Get().NowSeconds();
    alice_ = env_.AddUser("alice", "1000", "mit");
    bob_ = env_.AddUser("bob", "1000", "mit");
    a_ = env_.NodeMarket("n1", now + 3600, now + 7200);
    b_ = env_.NodeMarket("n3", now + 3600, now + 7200);
  }
  int64_t Buy(const core::PrivateKey& k, const std::string& market, const std::string& price) {
    return env_.Ok(k, "POST", "/v1/markets/" + market + "/orders",
                   {{"side", "buy"}, {"qty", 1}, {"price", price}})["order"]["id"];
  }
  json Order(const std::string& market, int64_t id) {
    return env_.Ok(alice_, "GET",
                   "/v1/markets/" + market + "/orders/" + std::to_string(id))["order"];
  }
  std::string Key(const core::PrivateKey& k) { return k.public_key().ToText(); }
  core::Status Err(const std::string& path) { return env_.Anon().Call("GET", path).status(); }

  MarketEnv env_;
  core::PrivateKey alice_ = NewKey(), bob_ = NewKey();
  std::string a_, b_;
};

TEST_F(MarketListsTest, OrdersOfAnOwnerAcrossMarketsNewestFirst) {
  int64_t o1 = Buy(alice_, a_, "1");
  int64_t o2 = Buy(alice_, b_, "2");
  int64_t o3 = Buy(alice_, a_, "3");
  Buy(bob_, a_, "1");
  env_.Ok(alice_, "DELETE", "/v1/markets/" + a_ + "/orders/" + std::to_string(o1));
  const std::string base = "/v1/orders?owner=" + Key(alice_);
  json open = env_.Ok(bob_, "GET", base)["orders"];
  EXPECT_EQ(open, json::array({Order(a_, o3), Order(b_, o2)}));
  EXPECT_EQ(open[1]["market"], b_);
  EXPECT_EQ(env_.Ok(bob_, "GET", base + "&state=open")["orders"], open);
  EXPECT_EQ(env_.Ok(bob_, "GET", base + "&state=all")["orders"],
            json::array({Order(a_, o3), Order(b_, o2), Order(a_, o1)}));
  EXPECT_EQ(Order(a_, o1)["state"], "cancelled");
  EXPECT_EQ(env_.Ok(bob_, "GET", base + "&state=all&market=" + a_)["orders"],
            json::array({Order(a_, o3), Order(a_, o1)}));
  // Reads are public, like a single order's.
  auto anon = env_.Anon().Call("GET", base + "&market=" + b_);
  ASSERT_TRUE(anon.ok()) << anon.status().message();
  EXPECT_EQ((*anon)["orders"], json::array({Order(b_, o2)}));
  // A principal without orders has an empty list.
  EXPECT_EQ(env_.Ok(bob_, "GET", "/v1/orders?owner=" + Key(env_.pi_))["orders"], json::array());
}

TEST_F(MarketListsTest, OrdersRefuseBadQueriesNamingTheParameter) {
  core::Status s = Err("/v1/orders");
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("owner: required"), std::string::npos) << s.message();
  s = Err("/v1/orders?owner=alice");
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("owner:"), std::string::npos) << s.message();
  s = Err("/v1/orders?owner=" + Key(alice_) + "&state=filled");
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("state: must be open or all"), std::string::npos) << s.message();
  s = Err("/v1/orders?owner=" + Key(alice_) + "&market=mkt_nope");
  EXPECT_EQ(s.code(), core::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("market mkt_nope does not exist"), std::string::npos) << s.message();
}

TEST_F(MarketListsTest, ShareBidsByHolderAndNode) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  env_.Ok(bob_, "POST", "/v1/slices", {{"name", "mit_db"}});
  auto bid = [&](const core::PrivateKey& k, const std::string& node, const std::string& slice) {
    return env_
        .Ok(k, "POST", "/v1/nodes/" + node + "/share_bids",
            {{"slice", slice}, {"rate", "0.1"}, {"budget", "10"}})["bid"]["id"]
        .get<std::string>();
  };
  auto one = [&](const std::string& id) {
    return env_.Ok(alice_, "GET", "/v1/share_bids/" + id)["bid"];
  };
  auto list = [&](const std::string& query) {
    return env_.Ok(bob_, "GET", "/v1/share_bids?" + query)["bids"];
  };
  std::string a1 = bid(alice_, "n1", "mit_web");
  std::string a3 = bid(alice_, "n3", "mit_web");
  std::string b1 = bid(bob_, "n1", "mit_db");
  json mine = list("holder=" + Key(alice_));
  ASSERT_EQ(mine.size(), 2u);
  auto ids = [](const json& bids) {
    std::set<std::string> out;
    for (const json& b : bids) out.insert(b["id"].get<std::string>());
    return out;
  };
  EXPECT_EQ(ids(mine), (std::set<std::string>{a1, a3}));
  for (const json& b : mine) EXPECT_EQ(b, one(b["id"]));
  json n1 = list("node=n1");
  ASSERT_EQ(n1.size(), 2u);
  EXPECT_EQ(ids(n1), (std::set<std::string>{a1, b1}));
  EXPECT_EQ(list("holder=" + Key(alice_) + "&node=n1"), json::array({one(a1)}));
  // A withdrawn bid leaves the default (active) list and shows under its state.
  env_.Ok(alice_, "DELETE", "/v1/share_bids/" + a1);
  EXPECT_EQ(list("holder=" + Key(alice_)), json::array({one(a3)}));
  EXPECT_EQ(list("holder=" + Key(alice_) + "&state=withdrawn"), json::array({one(a1)}));
  EXPECT_EQ(list("holder=" + Key(alice_) + "&state=all").size(), 2u);
  EXPECT_EQ(list("node=n2"), json::array());
}

TEST_F(MarketListsTest, ShareBidsRefuseBadQueriesNamingTheParameter) {
  core::Status s = Err("/v1/share_bids");
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("holder/node:"), std::string::npos) << s.message();
  s = Err("/v1/share_bids?holder=bob");
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("holder:"), std::string::npos) << s.message();
  s = Err("/v1/share_bids?node=n1&state=open");
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("state: must be active, exhausted, withdrawn or all"),
            std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace bourse::broker::testing
