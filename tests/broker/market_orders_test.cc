// Order-book markets through the real HTTP API: escrow, settlement into the
// ledger (credits and rcap splits), cancel/reduce/move, restart, bad input.
#include <gtest/gtest.h>

#include "core/money.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class MarketOrdersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.SetupSites();
    now_ = core::SystemClock::Get().NowSeconds();
    nb_ = now_ + 3600;
    na_ = now_ + 7200;
    alice_ = env_.AddUser("alice", "1000");
    bob_ = env_.AddUser("bob", "10");
    pool_ = env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), now_, now_ + 86400);
    bobs_ = env_.Grant(env_.pi_, "n1", bob_.public_key(), now_, now_ + 86400, 2000);
    market_ = env_.Ok(env_.admin_, "POST", "/v1/markets",
                      {{"node", "n1"},
                       {"unit", MarketEnv::Res(100)},
                       {"not_before", nb_},
                       {"not_after", na_}})["market"]["id"];
    ASSERT_FALSE(market_.empty());
  }
  std::string Orders() { return "/v1/markets/" + market_ + "/orders"; }
  json PoolSell(int64_t qty, const std::string& price) {
    return env_.Ok(env_.admin_, "POST", Orders(),
                   {{"side", "sell"}, {"qty", qty}, {"price", price}, {"rcap", pool_->id}});
  }
  json Buy(const core::PrivateKey& k, int64_t qty, const std::string& price,
           const std::string& tif = "gtc") {
    return env_.Ok(k, "POST", Orders(),
                   {{"side", "buy"}, {"qty", qty}, {"price", price}, {"tif", tif}});
  }
  // Bob offers `qty` units (100 mcores each) of `from` (his grant by default).
  ledger::Rcap BobEscrow(int64_t qty, const ledger::Rcap* from = nullptr) {
    auto e = ledger::Delegate(from ? *from : *bobs_, bob_,
                              {.id = "",
                               .holder = env_.broker_->broker_key(),
                               .res = {.cpu_mcores = 100 * qty},
                               .interval = {nb_, na_}});
    EXPECT_TRUE(e.ok()) << e.status().message();
    return *e;
  }

  MarketEnv env_;
  int64_t now_ = 0, nb_ = 0, na_ = 0;
  core::PrivateKey alice_ = NewKey(), bob_ = NewKey();
  std::optional<ledger::Rcap> pool_, bobs_;
  std::string market_;
};

TEST_F(MarketOrdersTest, RestingBuyEscrowsPriceTimesQty) {
  json r = Buy(alice_, 10, "1.5");
  EXPECT_EQ(r["order"]["state"], "resting");
  EXPECT_EQ(r["order"]["remaining"], 10);
  EXPECT_EQ(env_.Balance(alice_), "985.000000000");
  EXPECT_EQ(env_.Escrowed(alice_), "15.000000000");
  json depth = env_.Ok(alice_, "GET", "/v1/markets/" + market_ + "/depth");
  ASSERT_EQ(depth["bids"].size(), 1u);
  EXPECT_EQ(depth["bids"][0]["price"], "1.500000000");
  EXPECT_EQ(depth["bids"][0]["qty"], 10);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketOrdersTest, PoolSellFillsRestingBuyAndDelegatesChild) {
  Buy(alice_, 10, "1.5");
  json r = PoolSell(4, "1.0");
  ASSERT_EQ(r["trades"].size(), 1u);
  EXPECT_EQ(r["trades"][0]["qty"], 4);
  EXPECT_EQ(r["trades"][0]["price"], "1.500000000");  // the resting order's price
  EXPECT_EQ(r["order"]["state"], "filled");
  // 6 credits left alice's escrow for the broker's account.
  EXPECT_EQ(env_.Escrowed(alice_), "9.000000000");
  EXPECT_EQ(
      env_.Ok(env_.admin_, "GET", "/v1/accounts/" + env_.broker_->broker_key().ToText())["balance"],
      "6.000000000");
  // The buyer holds a child of the escrow, whose parent is the pool rcap.
  std::string child = r["trades"][0]["rcap"];
  json rc = env_.Ok(alice_, "GET", "/v1/rcaps/" + child);
  EXPECT_EQ(rc["rcap"]["holder"], alice_.public_key().ToText());
  EXPECT_EQ(rc["rcap"]["res"]["cpu_mcores"], 400);
  EXPECT_EQ(rc["rcap"]["not_before"], nb_);
  auto chain = ledger::ChainFromJson(rc["chain"]);
  ASSERT_TRUE(chain.ok());
  ASSERT_EQ(chain->size(), 3u);
  EXPECT_EQ((*chain)[0].id, pool_->id);
  std::vector<core::PublicKey> trust = {env_.pi_.public_key()};
  auto v = ledger::VerifyChain(*chain, trust, "n1", now_);
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.refusal().detail);
  // Trades and candles show it.
  json trades = env_.Ok(alice_, "GET", "/v1/markets/" + market_ + "/trades");
  ASSERT_EQ(trades["trades"].size(), 1u);
  json candles = env_.Ok(alice_, "GET", "/v1/markets/" + market_ + "/candles?interval=60");
  ASSERT_EQ(candles["candles"].size(), 1u);
  EXPECT_EQ(candles["candles"][0]["volume"], 4);
  EXPECT_EQ(candles["candles"][0]["open"], "1.500000000");
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketOrdersTest, PrincipalSellEscrowsDelegatedCapacityAndGetsUnsoldBack) {
  ledger::Rcap e = BobEscrow(5);
  json s = env_.Ok(bob_, "POST", Orders(),
                   {{"side", "sell"}, {"qty", 5}, {"price", "2"}, {"escrow", e.ToJson()}});
  EXPECT_EQ(s["order"]["state"], "resting");
  int64_t sell_id = s["order"]["id"];
  // Alice buys 3 at market: pays 6, gets 300 mcores.
  json b = env_.Ok(alice_, "POST", Orders(), {{"side", "buy"}, {"type", "market"}, {"qty", 3}});
  ASSERT_EQ(b["trades"].size(), 1u);
  EXPECT_EQ(b["order"]["state"], "filled");
  EXPECT_EQ(env_.Balance(alice_), "994.000000000");
  EXPECT_EQ(env_.Balance(bob_), "16.000000000");
  // Bob cancels: the 2 unsold units come back to him as a child of E.
  json c = env_.Ok(bob_, "DELETE", Orders() + "/" + std::to_string(sell_id));
  EXPECT_EQ(c["order"]["state"], "cancelled");
  std::string back = c["order"]["returned_rcap"];
  json rc = env_.Ok(bob_, "GET", "/v1/rcaps/" + back);
  EXPECT_EQ(rc["rcap"]["holder"], bob_.public_key().ToText());
  EXPECT_EQ(rc["rcap"]["res"]["cpu_mcores"], 200);
  // Reusing the same escrow rcap is refused.
  auto bc = env_.C(bob_);
  auto again = bc.Call("POST", Orders(),
                       {{"side", "sell"}, {"qty", 5}, {"price", "2"}, {"escrow", e.ToJson()}});
  EXPECT_EQ(again.status().code(), core::StatusCode::kAlreadyExists);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketOrdersTest, SellerCannotSellMoreThanItHolds) {
  // bobs_ has 2000 mcores = 20 units; an escrow of 30 units exceeds it.
  auto e = ledger::Delegate(*bobs_, bob_,
                            {.id = "",
                             .holder = env_.broker_->broker_key(),
                             .res = {.cpu_mcores = 3000},
                             .interval = {nb_, na_}});
  EXPECT_FALSE(e.ok());  // the library refuses to sign it...
  // ...and two escrows that together exceed it are refused by the broker.
  auto bc = env_.C(bob_);
  ASSERT_TRUE(
      bc.Call("POST", Orders(),
              {{"side", "sell"}, {"qty", 15}, {"price", "2"}, {"escrow", BobEscrow(15).ToJson()}})
          .ok());
  auto second =
      bc.Call("POST", Orders(),
              {{"side", "sell"}, {"qty", 10}, {"price", "2"}, {"escrow", BobEscrow(10).ToJson()}});
  EXPECT_EQ(second.status().code(), core::StatusCode::kFailedPrecondition)
      << second.status().message();
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketOrdersTest, BuyerCannotSpendCreditsItDoesNotHave) {
  for (int i = 0; i < 4; ++i) PoolSell(5, "1");
  // bob has 10 credits: a market buy of 20 units (20 credits) is refused
  // whole (402 insufficient_funds), nothing filled (issue #13).
  auto bc = env_.C(bob_);
  auto r = bc.Call("POST", Orders(), {{"side", "buy"}, {"type", "market"}, {"qty", 20}});
  EXPECT_EQ(r.status().code(), core::StatusCode::kInsufficientFunds) << r.status().message();
  EXPECT_EQ(env_.Balance(bob_), "10.000000000");
  // What he can pay for fills.
  json ok = env_.Ok(bob_, "POST", Orders(), {{"side", "buy"}, {"type", "market"}, {"qty", 10}});
  EXPECT_EQ(ok["order"]["filled"], 10);
  EXPECT_EQ(ok["order"]["state"], "filled");
  EXPECT_EQ(env_.Balance(bob_), "0.000000000");
  // A resting buy he cannot fund is refused: nothing rests.
  auto r2 = bc.Call("POST", Orders(), {{"side", "buy"}, {"qty", 5}, {"price", "0.5"}});
  EXPECT_EQ(r2.status().code(), core::StatusCode::kInsufficientFunds) << r2.status().message();
  json depth = env_.Ok(bob_, "GET", "/v1/markets/" + market_ + "/depth");
  EXPECT_TRUE(depth["bids"].empty());
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketOrdersTest, CancelReduceMoveReleaseEscrowExactly) {
  int64_t id = Buy(alice_, 10, "1.5")["order"]["id"];
  std::string path = Orders() + "/" + std::to_string(id);
  json red = env_.Ok(alice_, "POST", path + "/reduce", {{"qty", 4}});
  EXPECT_EQ(red["order"]["remaining"], 6);
  EXPECT_EQ(env_.Escrowed(alice_), "9.000000000");
  json mv = env_.Ok(alice_, "POST", path + "/move", {{"price", "2"}});
  EXPECT_EQ(mv["order"]["price"], "2.000000000");
  EXPECT_EQ(env_.Escrowed(alice_), "12.000000000");
  // Another key may not cancel it.
  auto bc = env_.C(bob_);
  EXPECT_EQ(bc.Call("DELETE", path).status().code(), core::StatusCode::kPermissionDenied);
  json c = env_.Ok(alice_, "DELETE", path);
  EXPECT_EQ(c["order"]["state"], "cancelled");
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  EXPECT_EQ(env_.Balance(alice_), "1000.000000000");
  auto ac = env_.C(alice_);
  EXPECT_EQ(ac.Call("DELETE", path).status().code(), core::StatusCode::kFailedPrecondition);
  env_.ExpectLedgerVerifies();
}

// The ledger's entries after seq `from` (types and bodies).
json EntriesFrom(MarketEnv& env, int64_t from) {
  return env.Ok(env.admin_, "GET",
                "/v1/ledger/entries?from=" + std::to_string(from) +
                    "&to=" + std::to_string(env.broker_->LedgerSize()))["entries"];
}

// A move keeps the buy's escrow and adjusts it by the difference: one credit
// entry (escrow_topup up, escrow_release down, none at the same notional)
// besides order_moved (docs/markets.md "Escrow").
TEST_F(MarketOrdersTest, AMoveAdjustsTheBuysOwnEscrowByTheDifference) {
  json placed = Buy(alice_, 2, "1");
  const int64_t id = placed["order"]["id"];
  const std::string escrow = placed["order"]["escrow"];
  const std::string path = Orders() + "/" + std::to_string(id);
  struct Step {
    std::string price, credit_type, amount, escrowed;
  };
  for (const Step& s : {Step{"1.5", "escrow_topup", "1.000000000", "3.000000000"},
                        Step{"0.5", "escrow_release", "2.000000000", "1.000000000"},
                        Step{"0.5", "", "", "1.000000000"}}) {
    SCOPED_TRACE(s.price);
    const int64_t from = env_.broker_->LedgerSize();
    json mv = env_.Ok(alice_, "POST", path + "/move", {{"price", s.price}});
    EXPECT_EQ(mv["order"]["escrow"], escrow);
    json entries = EntriesFrom(env_, from);
    ASSERT_EQ(entries.size(), s.credit_type.empty() ? 1u : 2u) << entries.dump();
    if (!s.credit_type.empty()) {
      EXPECT_EQ(entries[0]["type"], s.credit_type);
      EXPECT_EQ(entries[0]["body"]["escrow"], escrow);
      EXPECT_EQ(entries[0]["body"]["amount"], s.amount);
    }
    EXPECT_EQ(entries.back()["type"], "order_moved");
    EXPECT_EQ(env_.Escrowed(alice_), s.escrowed);
  }
  EXPECT_EQ(env_.Balance(alice_), "999.000000000");
  env_.ExpectLedgerVerifies();
}

// A raise its owner cannot fund cancels the buy (escrow_refused) with its
// whole escrow released, as a buy coming to rest without the funds.
TEST_F(MarketOrdersTest, AMoveItsOwnerCannotFundCancelsTheBuyAndReleasesItsEscrow) {
  const int64_t id = Buy(alice_, 100, "5")["order"]["id"];
  const int64_t from = env_.broker_->LedgerSize();
  json mv =
      env_.Ok(alice_, "POST", Orders() + "/" + std::to_string(id) + "/move", {{"price", "20"}});
  EXPECT_EQ(mv["order"]["state"], "cancelled");
  EXPECT_EQ(mv["order"]["reason"].get<std::string>().rfind("escrow_refused: insufficient", 0), 0u)
      << mv.dump();
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  EXPECT_EQ(env_.Balance(alice_), "1000.000000000");
  for (const json& e : EntriesFrom(env_, from)) {
    EXPECT_NE(e["type"], "escrow_topup") << e.dump();
    EXPECT_NE(e["type"], "escrow_hold") << e.dump();
  }
  env_.ExpectLedgerVerifies();
}

// A moved buy that crosses pays its fills from its free balance: its escrow
// is released before the first fill, and what rests after them is escrowed
// anew.
TEST_F(MarketOrdersTest, AMovedBuyThatCrossesPaysFromItsReleasedEscrow) {
  PoolSell(4, "1");
  const int64_t filled = Buy(alice_, 3, "0.5")["order"]["id"];
  const int64_t rests = Buy(alice_, 6, "0.5")["order"]["id"];
  EXPECT_EQ(env_.Escrowed(alice_), "4.500000000");
  json f = env_.Ok(alice_, "POST", Orders() + "/" + std::to_string(filled) + "/move",
                   {{"price", "1.5"}});
  EXPECT_EQ(f["order"]["state"], "filled");
  EXPECT_EQ(env_.Escrowed(alice_), "3.000000000");
  EXPECT_EQ(env_.Balance(alice_), "994.000000000");  // 3 paid, 3 escrowed for `rests`
  json r =
      env_.Ok(alice_, "POST", Orders() + "/" + std::to_string(rests) + "/move", {{"price", "1.5"}});
  EXPECT_EQ(r["order"]["filled"], 1);
  EXPECT_EQ(r["order"]["remaining"], 5);
  EXPECT_EQ(env_.Escrowed(alice_), "7.500000000");
  EXPECT_EQ(env_.Balance(alice_), "988.500000000");  // 4 paid, 7.5 escrowed
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketOrdersTest, IocRemainderIsCancelled) {
  PoolSell(3, "1");
  json r = Buy(alice_, 5, "1", "ioc");
  EXPECT_EQ(r["order"]["filled"], 3);
  EXPECT_EQ(r["order"]["state"], "cancelled");
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  EXPECT_EQ(env_.Balance(alice_), "997.000000000");
}

TEST_F(MarketOrdersTest, BooksSurviveRestart) {
  Buy(alice_, 10, "1.5");
  Buy(alice_, 5, "1.4");
  ledger::Rcap e = BobEscrow(4);
  env_.Ok(bob_, "POST", Orders(),
          {{"side", "sell"}, {"qty", 4}, {"price", "3"}, {"escrow", e.ToJson()}});
  json before = env_.Ok(alice_, "GET", "/v1/markets/" + market_ + "/orders");
  env_.Restart();
  json after = env_.Ok(alice_, "GET", "/v1/markets/" + market_ + "/orders");
  EXPECT_EQ(before, after);
  // Trading continues on the rebuilt book: best bid first.
  json r = PoolSell(12, "1.4");
  ASSERT_EQ(r["trades"].size(), 2u);
  EXPECT_EQ(r["trades"][0]["price"], "1.500000000");
  EXPECT_EQ(r["trades"][1]["price"], "1.400000000");
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketOrdersTest, BadInputIsRefusedAndChangesNothing) {
  auto ac = env_.C(alice_);
  int64_t size = env_.broker_->LedgerSize();
  std::vector<json> bad = {
      {{"side", "hold"}, {"qty", 1}, {"price", "1"}},
      {{"side", "buy"}, {"qty", 0}, {"price", "1"}},
      {{"side", "buy"}, {"qty", -3}, {"price", "1"}},
      {{"side", "buy"}, {"qty", 1}},
      {{"side", "buy"}, {"qty", 1}, {"price", "0"}},
      {{"side", "buy"}, {"qty", 1}, {"price", "1.0000000001"}},
      {{"side", "buy"}, {"qty", 1}, {"price", 1.5}},
      {{"side", "buy"}, {"type", "market"}, {"qty", 1}, {"price", "1"}},
      {{"side", "buy"}, {"qty", 1}, {"price", "1"}, {"tif", "fok"}},
      {{"side", "buy"}, {"qty", 1}, {"price", "1"}, {"extra", 1}},
      {{"side", "sell"}, {"qty", 1}, {"price", "1"}},
      {{"side", "sell"}, {"qty", 1}, {"price", "1"}, {"rcap", pool_->id}},  // not admin
      {{"side", "buy"}, {"qty", 2000000000}, {"price", "99999999999"}},
  };
  for (const json& b : bad) {
    auto r = ac.Send("POST", Orders(), b.dump(), true);
    ASSERT_TRUE(r.ok());
    EXPECT_GE(r->status, 400) << b.dump();
    EXPECT_LT(r->status, 500) << b.dump() << " " << r->body;
  }
  EXPECT_EQ(
      ac.Call("POST", "/v1/markets/nope/orders", {{"side", "buy"}, {"qty", 1}, {"price", "1"}})
          .status()
          .code(),
      core::StatusCode::kNotFound);
  EXPECT_EQ(env_.broker_->LedgerSize(), size);
  EXPECT_EQ(env_.Balance(alice_), "1000.000000000");
}

// A site market (pool = every node of site "mit"): capacity on n1 and n3 is
// sold in one book; capacity on another site's node is refused; a market
// names exactly one of node and site; listing filters by site.
TEST_F(MarketOrdersTest, SiteMarketSellsCapacityOnAnyNodeOfTheSite) {
  json m = env_.Ok(env_.admin_, "POST", "/v1/markets",
                   {{"site", "mit"},
                    {"unit", MarketEnv::Res(100)},
                    {"not_before", nb_},
                    {"not_after", na_}})["market"];
  EXPECT_TRUE(m["node"].is_null());
  EXPECT_EQ(m["site"], "mit");
  const std::string orders = "/v1/markets/" + m["id"].get<std::string>() + "/orders";
  auto pool3 = env_.Grant(env_.pi_, "n3", env_.broker_->broker_key(), now_, now_ + 86400);
  auto pool2 = env_.Grant(env_.pi2_, "n2", env_.broker_->broker_key(), now_, now_ + 86400);
  // Sells from n1 (pool_) and n3 (pool3) both rest in the site's book.
  env_.Ok(env_.admin_, "POST", orders,
          {{"side", "sell"}, {"qty", 2}, {"price", "1"}, {"rcap", pool_->id}});
  env_.Ok(env_.admin_, "POST", orders,
          {{"side", "sell"}, {"qty", 2}, {"price", "2"}, {"rcap", pool3.id}});
  // n2 is on ucb: refused, naming why, and nothing changes.
  std::string before = env_.Balance(alice_);
  auto ac = env_.C(env_.admin_);
  auto bad =
      ac.Call("POST", orders, {{"side", "sell"}, {"qty", 1}, {"price", "1"}, {"rcap", pool2.id}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("not the market's site mit"), std::string::npos)
      << bad.status().message();
  // A principal's escrow on the other site's node is refused in the transaction too.
  auto carol = env_.AddUser("carol", "");
  auto carols = env_.Grant(env_.pi2_, "n2", carol.public_key(), now_, now_ + 86400, 1000);
  auto ce = ledger::Delegate(carols, carol,
                             {.id = "",
                              .holder = env_.broker_->broker_key(),
                              .res = {.cpu_mcores = 100},
                              .interval = {nb_, na_}});
  ASSERT_TRUE(ce.ok());
  auto cc = env_.C(carol);
  auto bad2 = cc.Call("POST", orders,
                      {{"side", "sell"}, {"qty", 1}, {"price", "1"}, {"escrow", ce->ToJson()}});
  ASSERT_FALSE(bad2.ok());
  EXPECT_NE(bad2.status().message().find("escrow.node"), std::string::npos)
      << bad2.status().message();
  // Alice buys 3 at market: 2 from n1 at 1, 1 from n3 at 2; each child is on its node.
  json b = env_.Ok(alice_, "POST", orders, {{"side", "buy"}, {"type", "market"}, {"qty", 3}});
  ASSERT_EQ(b["trades"].size(), 2u);
  EXPECT_EQ(b["order"]["state"], "filled");
  EXPECT_EQ(env_.Balance(alice_), "996.000000000");
  EXPECT_EQ(before, "1000.000000000");
  std::vector<std::string> nodes;
  for (const json& t : b["trades"]) {
    json rc = env_.Ok(alice_, "GET", "/v1/rcaps/" + t["rcap"].get<std::string>());
    EXPECT_EQ(rc["rcap"]["holder"], alice_.public_key().ToText());
    nodes.push_back(rc["rcap"]["node"]);
  }
  EXPECT_EQ(nodes, (std::vector<std::string>{"n1", "n3"}));
  // Listing by site shows it (and the node market of SetUp, on n1 of mit); by node only the latter.
  json by_site = env_.Ok(alice_, "GET", "/v1/markets?site=mit");
  EXPECT_EQ(by_site["markets"].size(), 2u);
  json by_ucb = env_.Ok(alice_, "GET", "/v1/markets?site=ucb");
  EXPECT_EQ(by_ucb["markets"].size(), 0u);
  json by_node = env_.Ok(alice_, "GET", "/v1/markets?node=n1");
  ASSERT_EQ(by_node["markets"].size(), 1u);
  EXPECT_EQ(by_node["markets"][0]["id"], market_);
  // Exactly one of node and site; an unknown site is not_found.
  for (const json& body :
       {json{{"node", "n1"},
             {"site", "mit"},
             {"unit", MarketEnv::Res(100)},
             {"not_before", nb_},
             {"not_after", na_}},
        json{{"unit", MarketEnv::Res(100)}, {"not_before", nb_}, {"not_after", na_}}}) {
    auto r = ac.Call("POST", "/v1/markets", body);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("exactly one of node and site"), std::string::npos)
        << r.status().message();
  }
  auto unknown = ac.Call("POST", "/v1/markets",
                         {{"site", "nowhere"},
                          {"unit", MarketEnv::Res(100)},
                          {"not_before", nb_},
                          {"not_after", na_}});
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kNotFound);
  // The market survives a restart with its site pool (the keep-alive clients
  // go first, or the server's stop waits for them to time out).
  ac = env_.C(env_.admin_);
  cc = env_.C(carol);
  env_.Restart();
  json again = env_.Ok(alice_, "GET", "/v1/markets?site=mit&state=open");
  EXPECT_EQ(again["markets"].size(), 2u);
  env_.ExpectLedgerVerifies();
}

// ---- an unsold escrow goes back without deepening the chain ----
// (rcap_released, docs/ledger.md): a seller that offers its holding, cancels
// and offers it again keeps selling the same rcap at the same link; a partly
// sold escrow's rest still comes back as a child of the escrow.

class EscrowReleaseTest : public MarketOrdersTest {
 protected:
  json Sell(const ledger::Rcap& e, int64_t qty) {
    return env_.Ok(bob_, "POST", Orders(),
                   {{"side", "sell"}, {"qty", qty}, {"price", "2"}, {"escrow", e.ToJson()}});
  }
  std::string OrderPath(const json& placed) {
    return Orders() + "/" + std::to_string(placed["order"]["id"].get<int64_t>());
  }
  ledger::Rcap GetRcap(const json& id) {
    json got = env_.Ok(bob_, "GET", "/v1/rcaps/" + id.get<std::string>());
    auto r = ledger::Rcap::FromJson(got["rcap"]);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return *r;
  }
  size_t ChainLength(const std::string& id) {
    return env_.Ok(bob_, "GET", "/v1/rcaps/" + id)["chain"].size();
  }
  size_t Entries(const std::string& type) {
    json all = env_.Ok(
        env_.admin_, "GET",
        "/v1/ledger/entries?from=0&to=" + std::to_string(env_.broker_->LedgerSize()))["entries"];
    size_t n = 0;
    for (const json& e : all) n += e["type"] == type;
    return n;
  }
};

// Bob sells all he holds, cancels, and sells what came back, 20 times (an
// agent's offer-and-return cycle): every sell succeeds, what comes back is
// his holding itself, and the 20th escrow is the same link as the first.
TEST_F(EscrowReleaseTest, SellCancelSellTwentyTimesKeepsTheChainShort) {
  ledger::Rcap holding = *bobs_;
  size_t first_links = 0;
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE(i);
    ledger::Rcap e = BobEscrow(20, &holding);
    json s = Sell(e, 20);
    ASSERT_EQ(s["order"]["state"], "resting");
    size_t links = ChainLength(e.id);
    if (i == 0) first_links = links;
    EXPECT_EQ(links, first_links);
    json c = env_.Ok(bob_, "DELETE", OrderPath(s));
    ASSERT_EQ(c["order"]["state"], "cancelled");
    // What comes back names bob's holding, whole again: no new child.
    ASSERT_TRUE(c["order"]["returned_rcap"].is_string());
    EXPECT_EQ(c["order"]["returned_rcap"], bobs_->id);
    EXPECT_EQ(env_.Ok(bob_, "GET", "/v1/rcaps/" + e.id)["released"], true);
    holding = GetRcap(c["order"]["returned_rcap"]);
    EXPECT_EQ(holding.holder, bob_.public_key());
  }
  EXPECT_EQ(first_links, 2u);
  EXPECT_EQ(Entries("rcap_released"), 20u);
  // The released escrows are gone from every list: bob holds his grant, with
  // no children; the broker's pool shows its own grant only.
  json mine = env_.Ok(bob_, "GET", "/v1/holdings/" + bob_.public_key().ToText())["rcaps"];
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0]["id"], bobs_->id);
  EXPECT_TRUE(env_.Ok(bob_, "GET", "/v1/rcaps/" + bobs_->id)["children"].empty());
  json pools = env_.Ok(bob_, "GET", "/v1/pools")["pools"];
  ASSERT_EQ(pools.size(), 1u);
  ASSERT_EQ(pools[0]["rcaps"].size(), 1u) << pools.dump();
  EXPECT_EQ(pools[0]["rcaps"][0]["id"], pool_->id);
  // And all of it still sells: alice buys the 21st offer whole.
  Sell(BobEscrow(20), 20);
  json b = env_.Ok(alice_, "POST", Orders(), {{"side", "buy"}, {"type", "market"}, {"qty", 20}});
  EXPECT_EQ(b["order"]["state"], "filled");
  env_.ExpectLedgerVerifies();
}

// A partly filled sell's rest comes back as a child of its escrow, as before.
TEST_F(EscrowReleaseTest, PartlySoldEscrowsRestComesBackAsAChild) {
  ledger::Rcap e = BobEscrow(5);
  json s = Sell(e, 5);
  env_.Ok(alice_, "POST", Orders(), {{"side", "buy"}, {"type", "market"}, {"qty", 3}});
  json c = env_.Ok(bob_, "DELETE", OrderPath(s));
  ASSERT_TRUE(c["order"]["returned_rcap"].is_string());
  ledger::Rcap back = GetRcap(c["order"]["returned_rcap"]);
  EXPECT_EQ(back.parent, e.id);
  EXPECT_EQ(back.holder, bob_.public_key());
  EXPECT_EQ(back.res.cpu_mcores, 200);
  EXPECT_EQ(Entries("rcap_released"), 0u);
  env_.ExpectLedgerVerifies();
}

// A reduced sell gives the cut units back as a child (the order still rests
// on the rest of the escrow); its final cancel does the same.
TEST_F(EscrowReleaseTest, ReducedSellGivesTheCutBackAsAChild) {
  ledger::Rcap e = BobEscrow(5);
  std::string order = OrderPath(Sell(e, 5));
  json r = env_.Ok(bob_, "POST", order + "/reduce", {{"qty", 2}});
  ASSERT_TRUE(r["order"]["returned_rcap"].is_string()) << r.dump();
  EXPECT_EQ(GetRcap(r["order"]["returned_rcap"]).parent, e.id);
  json c = env_.Ok(bob_, "DELETE", order);
  EXPECT_EQ(GetRcap(c["order"]["returned_rcap"]).parent, e.id);
  EXPECT_EQ(Entries("rcap_released"), 0u);
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
