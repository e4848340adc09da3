// Market lifecycles driven by a ManualClock and Markets::Tick() (no sleeps):
// a sealed round that escrows its offers, rounds with no feasible allocation or no
// bids, a market whose trading window ends, and a proportional-share bid
// whose budget runs out. Each checks the escrows in the ledger entries
// themselves (released exactly once, exactly the held amount), the state the
// API publishes, and `ledger verify`.
#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/money.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class MarketLifecycleTest : public ::testing::Test {
 protected:
  MarketLifecycleTest()
      : t0_(core::SystemClock::Get().NowSeconds()),
        clock_(t0_ * 1000),
        env_({.clock = &clock_, .markets = {.tick_ms = 0, .share_charge_interval_s = 1}}) {}

  void SetUp() override {
    env_.SetupSites();
    nb_ = t0_ + 3600;
    na_ = t0_ + 7200;
    alice_ = env_.AddUser("alice", "1000", "mit");
    bob_ = env_.AddUser("bob", "1000", "mit");
  }

  // Sets the clock to t0 + ms milliseconds.
  void At(int64_t ms) { clock_.SetMillis(t0_ * 1000 + ms); }
  void Tick() { ASSERT_TRUE(env_.markets().Tick().ok()); }

  // Every ledger entry of `type` whose body member `key` is `value`.
  std::vector<json> EntriesWhere(const std::string& type, const std::string& key,
                                 const std::string& value) {
    int64_t size = env_.broker_->LedgerSize();
    json all = env_.Ok(env_.admin_, "GET",
                       "/v1/ledger/entries?from=0&to=" + std::to_string(size))["entries"];
    std::vector<json> out;
    for (const json& e : all) {
      if (e["type"] == type && e["body"].contains(key) && e["body"][key] == value) {
        out.push_back(e["body"]);
      }
    }
    return out;
  }
  // The escrow was released once, by exactly `amount`, and never settled.
  void ExpectReleasedExactly(const std::string& escrow, const std::string& amount) {
    SCOPED_TRACE(escrow);
    auto rel = EntriesWhere("escrow_release", "escrow", escrow);
    ASSERT_EQ(rel.size(), 1u);
    EXPECT_EQ(rel[0]["amount"], amount);
    EXPECT_TRUE(EntriesWhere("escrow_settle", "escrow", escrow).empty());
    EXPECT_EQ(EntriesWhere("escrow_hold", "escrow", escrow).at(0)["amount"], amount);
  }
  json Round(const std::string& id) {
    return env_.Ok(env_.admin_, "GET", "/v1/rounds/" + id)["round"];
  }
  std::string OpenRound(const std::vector<std::string>& offers, int64_t close) {
    return env_.Ok(env_.admin_, "POST", "/v1/rounds",
                   {{"offers", offers},
                    {"not_before", nb_},
                    {"not_after", na_},
                    {"close", close}})["round"]["id"];
  }
  json Bid(const core::PrivateKey& k, const std::string& round, const std::string& limit,
           const json& bundle) {
    return env_.Ok(k, "POST", "/v1/rounds/" + round + "/bids",
                   {{"limit", limit}, {"bundles", {bundle}}})["bid"];
  }
  static json Items(const std::string& node, int64_t cpu) {
    return {{"items", {{{"node", node}, {"res", MarketEnv::Res(cpu)}}}}};
  }

  int64_t t0_;
  core::ManualClock clock_;
  MarketEnv env_;
  int64_t nb_ = 0, na_ = 0;
  core::PrivateKey alice_ = NewKey(), bob_ = NewKey();
};

TEST_F(MarketLifecycleTest, RoundEscrowsItsOffersSoNothingElseCanTakeThem) {
  // DESIGN 4.1: a round escrows what it offers when it opens. (Before, the
  // offer was only named: the same capacity could be sold on an order book
  // meanwhile and the round then failed at its close.)
  ledger::Rcap pool = env_.Grant(env_.pi2_, "n2", env_.broker_->broker_key(), t0_, t0_ + 86400);
  std::string round = OpenRound({pool.id}, t0_ + 10);
  json offer = Round(round)["offers"][0];
  EXPECT_EQ(offer["from"], pool.id);
  EXPECT_EQ(offer["res"]["cpu_mcores"], 4000);
  ASSERT_EQ(EntriesWhere("rcap_split", "parent", pool.id).size(), 1u);
  json a = Bid(alice_, round, "7.25", Items("n2", 3000));
  json b = Bid(bob_, round, "3", Items("n2", 1000));
  // Selling the whole pool over the same window is refused: the round holds it.
  std::string market = env_.NodeMarket("n2", nb_, na_);
  int64_t size = env_.broker_->LedgerSize();
  auto sell = env_.C(env_.admin_)
                  .Call("POST", "/v1/markets/" + market + "/orders",
                        {{"side", "sell"}, {"qty", 40}, {"price", "1"}, {"rcap", pool.id}});
  ASSERT_FALSE(sell.ok());
  EXPECT_EQ(sell.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(sell.status().message().find("oversubscribed"), std::string::npos)
      << sell.status().message();
  EXPECT_EQ(env_.broker_->LedgerSize(), size);

  At(10000);
  Tick();
  json r = Round(round);
  EXPECT_EQ(r["state"], "cleared") << r;
  ASSERT_EQ(r["result"]["winners"].size(), 2u) << r;
  EXPECT_TRUE(EntriesWhere("round_failed", "round", round).empty());
  // Each winner's rcap is a child of the round's escrow of the offer.
  EXPECT_EQ(EntriesWhere("rcap_split", "parent", offer["rcap"]).size(), 2u);
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  EXPECT_EQ(env_.Escrowed(bob_), "0.000000000");
  auto admin = env_.C(env_.admin_);
  EXPECT_EQ(admin.Call("POST", "/v1/rounds/" + round + "/clear").status().code(),
            core::StatusCode::kFailedPrecondition);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketLifecycleTest, RoundsRefuseBidsBeyondTheirOffersAndClearWithoutBids) {
  ledger::Rcap p1 = env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), t0_, t0_ + 86400);
  ledger::Rcap p2 = env_.Grant(env_.pi2_, "n2", env_.broker_->broker_key(), t0_, t0_ + 86400);
  // Bids that ask more than the round escrowed are refused when placed, with
  // nothing escrowed: 5000 mcores of a 4000 mcore offer; mem 8192 of offers of
  // 4096. (Before, they were taken and the round cleared with no winner.)
  std::string infeasible = OpenRound({p1.id, p2.id}, t0_ + 5);
  auto over = env_.C(alice_).Call("POST", "/v1/rounds/" + infeasible + "/bids",
                                  {{"limit", "9"}, {"bundles", {Items("n1", 5000)}}});
  EXPECT_EQ(over.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(over.status().message().find("more than node n1 offers"), std::string::npos)
      << over.status().message();
  auto mem = env_.C(bob_).Call("POST", "/v1/rounds/" + infeasible + "/bids",
                               {{"limit", "4.5"},
                                {"bundles",
                                 {{{"count", 2},
                                   {"from", {"n1", "n2"}},
                                   {"min_sites", 2},
                                   {"res", MarketEnv::Res(1000, 8192)}}}}});
  EXPECT_EQ(mem.status().code(), core::StatusCode::kInvalidArgument) << mem.status().message();
  Bid(bob_, infeasible, "4.5",
      {{"count", 2},
       {"from", {"n1", "n2"}},
       {"min_sites", 2},
       {"res", MarketEnv::Res(1000, 4096)}});
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  // A second round cannot offer p1 again over the same window (the first
  // escrowed all of it): it offers n3's pool.
  EXPECT_EQ(
      env_.C(env_.admin_)
          .Call("POST", "/v1/rounds",
                {{"offers", {p1.id}}, {"not_before", nb_}, {"not_after", na_}, {"close", t0_ + 5}})
          .status()
          .code(),
      core::StatusCode::kFailedPrecondition);
  ledger::Rcap p3 = env_.Grant(env_.pi_, "n3", env_.broker_->broker_key(), t0_, t0_ + 86400);
  std::string empty = OpenRound({p3.id}, t0_ + 5);
  // A bid the auction core cannot clear is refused when placed, so it cannot
  // fail the whole round later (count above the nodes named).
  auto bc = env_.C(bob_);
  auto bad = bc.Call("POST", "/v1/rounds/" + infeasible + "/bids",
                     {{"limit", "1"},
                      {"bundles", {{{"count", 2}, {"from", {"n1"}}, {"res", MarketEnv::Res(1)}}}}});
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument) << bad.status().message();
  EXPECT_EQ(env_.Escrowed(bob_), "4.500000000");

  At(5000);
  Tick();
  json r = Round(infeasible);
  EXPECT_EQ(r["state"], "cleared");
  ASSERT_EQ(r["result"]["winners"].size(), 1u) << r;
  EXPECT_EQ(r["result"]["bids"], 1);
  EXPECT_EQ(env_.Balance(alice_), "1000.000000000");
  EXPECT_EQ(env_.Escrowed(bob_), "0.000000000");
  // Bob's two nodes were split off the two offers' escrows, one each.
  for (const json& o : r["offers"]) {
    EXPECT_EQ(EntriesWhere("rcap_split", "parent", o["rcap"]).size(), 1u) << o;
  }
  json e = Round(empty);
  EXPECT_EQ(e["state"], "cleared");
  EXPECT_EQ(e["bids"], 0);
  EXPECT_TRUE(e["result"]["winners"].empty());
  // Closed for bids once cleared.
  auto ac = env_.C(alice_);
  EXPECT_EQ(ac.Call("POST", "/v1/rounds/" + empty + "/bids",
                    {{"limit", "1"}, {"bundles", {Items("n3", 100)}}})
                .status()
                .code(),
            core::StatusCode::kFailedPrecondition);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketLifecycleTest, MarketWhoseWindowEndsIsClosedByTickReleasingEscrowExactly) {
  ledger::Rcap pool = env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), t0_, t0_ + 86400);
  ledger::Rcap bobs = env_.Grant(env_.pi_, "n1", bob_.public_key(), t0_, t0_ + 86400, 2000);
  std::string market = env_.Ok(env_.admin_, "POST", "/v1/markets",
                               {{"node", "n1"},
                                {"unit", MarketEnv::Res(100)},
                                {"not_before", nb_},
                                {"not_after", na_},
                                {"close", t0_ + 60}})["market"]["id"];
  const std::string orders = "/v1/markets/" + market + "/orders";
  // Bob sells 5 units of his own capacity at 2, the pool 10 at 3; alice buys
  // 2 at 2 (fills against bob) and rests a buy of 4 at 1.5 (6 escrowed).
  auto e = ledger::Delegate(bobs, bob_,
                            {.id = "",
                             .holder = env_.broker_->broker_key(),
                             .res = {.cpu_mcores = 500},
                             .interval = {nb_, na_}});
  ASSERT_TRUE(e.ok());
  int64_t bob_sell = env_.Ok(
      bob_, "POST", orders,
      {{"side", "sell"}, {"qty", 5}, {"price", "2"}, {"escrow", e->ToJson()}})["order"]["id"];
  int64_t pool_sell =
      env_.Ok(env_.admin_, "POST", orders,
              {{"side", "sell"}, {"qty", 10}, {"price", "3"}, {"rcap", pool.id}})["order"]["id"];
  json fill = env_.Ok(alice_, "POST", orders, {{"side", "buy"}, {"qty", 2}, {"price", "2"}});
  ASSERT_EQ(fill["trades"].size(), 1u);
  json rest = env_.Ok(alice_, "POST", orders, {{"side", "buy"}, {"qty", 4}, {"price", "1.5"}});
  int64_t alice_buy = rest["order"]["id"];
  std::string alice_escrow = rest["order"]["escrow"];
  EXPECT_EQ(env_.Balance(alice_), "990.000000000");
  EXPECT_EQ(env_.Escrowed(alice_), "6.000000000");

  At(59999);
  Tick();
  EXPECT_EQ(env_.Ok(env_.admin_, "GET", "/v1/markets/" + market)["market"]["state"], "open");
  At(60000);
  Tick();
  EXPECT_EQ(env_.Ok(env_.admin_, "GET", "/v1/markets/" + market)["market"]["state"], "closed");
  json book = env_.Ok(env_.admin_, "GET", orders);
  EXPECT_TRUE(book["bids"].empty());
  EXPECT_TRUE(book["asks"].empty());
  auto order = [&](int64_t id) {
    return env_.Ok(env_.admin_, "GET", orders + "/" + std::to_string(id))["order"];
  };
  for (int64_t id : {bob_sell, pool_sell, alice_buy}) {
    SCOPED_TRACE(id);
    json o = order(id);
    EXPECT_EQ(o["state"], "cancelled");
    EXPECT_EQ(o["reason"], "market_closed");
    EXPECT_EQ(o["remaining"], 0);
  }
  EXPECT_EQ(EntriesWhere("market_closed", "market", market).size(), 1u);
  // Credits: alice's resting buy released exactly its 6; she paid 4 for the fill.
  ExpectReleasedExactly(alice_escrow, "6.000000000");
  EXPECT_EQ(env_.Balance(alice_), "996.000000000");
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  EXPECT_EQ(env_.Balance(bob_), "1004.000000000");
  // Capacity: bob's 3 unsold units come back to him as one child of his
  // escrow rcap, exactly 300 mcores over the window; the pool's unsold units
  // stay in the broker-held escrow rcap.
  json bs = order(bob_sell);
  ASSERT_TRUE(bs["returned_rcap"].is_string());
  json back = env_.Ok(bob_, "GET", "/v1/rcaps/" + bs["returned_rcap"].get<std::string>())["rcap"];
  EXPECT_EQ(back["holder"], bob_.public_key().ToText());
  EXPECT_EQ(back["parent"], e->id);
  EXPECT_EQ(back["res"]["cpu_mcores"], 300);
  EXPECT_EQ(back["not_before"], nb_);
  EXPECT_EQ(back["not_after"], na_);
  EXPECT_TRUE(order(pool_sell)["returned_rcap"].is_null());
  // Closed: no more trading, and later ticks change nothing.
  {
    auto ac = env_.C(alice_);  // scoped: a kept-alive connection would delay Restart
    EXPECT_EQ(
        ac.Call("POST", orders, {{"side", "buy"}, {"qty", 1}, {"price", "5"}}).status().code(),
        core::StatusCode::kFailedPrecondition);
  }
  int64_t size = env_.broker_->LedgerSize();
  At(120000);
  Tick();
  EXPECT_EQ(env_.broker_->LedgerSize(), size);
  env_.ExpectLedgerVerifies();
  // The close is durable.
  env_.Restart();
  EXPECT_EQ(env_.Ok(env_.admin_, "GET", "/v1/markets/" + market)["market"]["state"], "closed");
  EXPECT_EQ(env_.Ok(env_.admin_, "GET", orders), book);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketLifecycleTest, ShareBidStopsCountingWhenItsBudgetRunsOutAndPaysExactlyIt) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  env_.Ok(bob_, "POST", "/v1/slices", {{"name", "mit_db"}});
  // Alice: 0.3 credits/s with a budget of 1, spent at t = 3333.33 ms.
  std::string a = env_.Ok(alice_, "POST", "/v1/nodes/n1/share_bids",
                          {{"slice", "mit_web"}, {"rate", "0.3"}, {"budget", "1"}})["bid"]["id"];
  std::string b = env_.Ok(bob_, "POST", "/v1/nodes/n1/share_bids",
                          {{"slice", "mit_db"}, {"rate", "0.1"}, {"budget", "100"}})["bid"]["id"];
  auto table = [&] { return env_.Ok(alice_, "GET", "/v1/nodes/n1/shares")["shares"]; };
  auto bid = [&](const std::string& id) {
    return env_.Ok(alice_, "GET", "/v1/share_bids/" + id)["bid"];
  };
  json t = table();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], json({{"slice", "mit_db"}, {"cpu_weight", 2500}, {"net_kbps", 25000}}));
  EXPECT_EQ(t[1], json({{"slice", "mit_web"}, {"cpu_weight", 7500}, {"net_kbps", 75000}}));
  // A charge on the way: 2 s of each.
  At(2000);
  Tick();
  EXPECT_EQ(bid(a)["charged"], "0.600000000");
  EXPECT_EQ(bid(a)["remaining"], "0.400000000");
  EXPECT_EQ(bid(a)["state"], "active");
  EXPECT_EQ(bid(b)["charged"], "0.200000000");
  // Still counting 1 ms before the budget is spent (3333 ms: 0.9999 owed) ...
  At(3333);
  EXPECT_EQ(table().size(), 2u);
  // ... and out from the instant it is, before any charge says so.
  At(3334);
  t = table();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0], json({{"slice", "mit_db"}, {"cpu_weight", 10000}, {"net_kbps", 100000}}));
  EXPECT_EQ(bid(a)["state"], "active");  // not charged yet
  // The charge takes exactly the budget, not rate x elapsed (1.0002).
  Tick();
  json ab = bid(a);
  EXPECT_EQ(ab["state"], "exhausted");
  EXPECT_EQ(ab["charged"], "1.000000000");
  EXPECT_EQ(ab["remaining"], "0.000000000");
  EXPECT_EQ(env_.Balance(alice_), "999.000000000");
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  // Exhausted is final: no more charges, no withdrawal.
  At(10000);
  Tick();
  EXPECT_EQ(bid(a)["charged"], "1.000000000");
  auto ac = env_.C(alice_);
  EXPECT_EQ(ac.Call("DELETE", "/v1/share_bids/" + a).status().code(),
            core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(bid(b)["charged"], "1.000000000");  // 0.1 x 10 s
  // Bob withdraws at 12.5 s: pays to then, gets the rest back.
  At(12500);
  json w = env_.Ok(bob_, "DELETE", "/v1/share_bids/" + b)["bid"];
  EXPECT_EQ(w["state"], "withdrawn");
  EXPECT_EQ(w["charged"], "1.250000000");
  EXPECT_EQ(env_.Balance(bob_), "998.750000000");
  EXPECT_EQ(env_.Escrowed(bob_), "0.000000000");
  EXPECT_TRUE(table().empty());
  // The node's site PI received exactly what the two paid.
  EXPECT_EQ(env_.Balance(env_.pi_), "2.250000000");
  // Alice's escrow was settled in pieces summing to exactly her budget.
  core::Money settled;
  for (const json& s : EntriesWhere("escrow_settle", "escrow", ab["escrow"])) {
    settled = settled.Add(core::Money::Parse(s["amount"].get<std::string>()).value()).value();
  }
  EXPECT_EQ(settled.ToString(), "1.000000000");
  EXPECT_TRUE(EntriesWhere("escrow_release", "escrow", ab["escrow"]).empty());
  env_.ExpectLedgerVerifies();
}

// Once a market is closed for trading (its close has passed) no move trades,
// even before the tick closes it: a move is refused as a placement is, by the
// single route and in a batch; a cancel still works.
TEST_F(MarketLifecycleTest, AMoveAfterTheCloseIsRefusedBeforeTheTickClosesTheMarket) {
  ledger::Rcap pool = env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), t0_, t0_ + 86400);
  std::string market = env_.Ok(env_.admin_, "POST", "/v1/markets",
                               {{"node", "n1"},
                                {"unit", MarketEnv::Res(100)},
                                {"not_before", nb_},
                                {"not_after", na_},
                                {"close", t0_ + 60}})["market"]["id"];
  const std::string orders = "/v1/markets/" + market + "/orders";
  env_.Ok(env_.admin_, "POST", orders,
          {{"side", "sell"}, {"qty", 10}, {"price", "3"}, {"rcap", pool.id}});
  const int64_t b1 =
      env_.Ok(alice_, "POST", orders, {{"side", "buy"}, {"qty", 4}, {"price", "1"}})["order"]["id"];
  const int64_t b2 =
      env_.Ok(alice_, "POST", orders, {{"side", "buy"}, {"qty", 2}, {"price", "1"}})["order"]["id"];
  At(60500);  // closed for trading; the tick has not run yet
  auto c = env_.C(alice_);
  EXPECT_FALSE(c.Call("POST", orders, {{"side", "buy"}, {"qty", 1}, {"price", "3"}}).ok());
  auto mv = c.Call("POST", orders + "/" + std::to_string(b1) + "/move", {{"price", "3"}});
  ASSERT_FALSE(mv.ok()) << mv->dump();
  EXPECT_EQ(mv.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(mv.status().message().find("closed for trading"), std::string::npos);
  auto batch = c.Call(
      "POST", "/v1/orders:batch",
      {{"ops", json::array({{{"op", "move"}, {"market", market}, {"order", b1}, {"price", "3"}},
                            {{"op", "cancel"}, {"market", market}, {"order", b2}}})}});
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_FALSE((*batch)["results"][0]["ok"].get<bool>());
  EXPECT_EQ((*batch)["results"][0]["error"]["code"], "failed_precondition");
  EXPECT_TRUE((*batch)["results"][1]["ok"].get<bool>());
  EXPECT_EQ((*batch)["results"][1]["order"]["state"], "cancelled");
  EXPECT_TRUE(env_.Ok(alice_, "GET", "/v1/markets/" + market + "/trades")["trades"].empty());
  EXPECT_EQ(env_.Escrowed(alice_), "4.000000000");  // b1 rests until the market closes
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
