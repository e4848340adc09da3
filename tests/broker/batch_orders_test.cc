// Batch orders (POST /v1/orders:batch, docs/markets.md "Batch orders")
// through a real broker over loopback: per-op results across markets, an op
// that fails alone with its single route's error, whole-request refusals
// with nothing applied, a replay that runs nothing, exact escrows and the
// ledger's verification, and the results still in the books after a restart.
#include <gtest/gtest.h>

#include "broker/markets/internal/market_state.h"
#include "broker/markets/internal/order_ops.h"
#include "clients/orders_batch.h"
#include "core/money.h"
#include "core/request_signing.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class BatchOrdersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.SetupSites();
    const int64_t now = core::SystemClock::Get().NowSeconds();
    alice_ = env_.AddUser("alice", "1000");
    bob_ = env_.AddUser("bob", "1000");
    pool_ = env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), now, now + 86400);
    m1_ = env_.NodeMarket("n1", now + 3600, now + 7200);
    m2_ = env_.NodeMarket("n2", now + 3600, now + 7200);
  }
  core::Result<json> Batch(const core::PrivateKey& k, const json& ops) {
    auto c = env_.C(k);
    return c.Call("POST", "/v1/orders:batch", {{"ops", ops}});
  }
  json BatchOk(const core::PrivateKey& k, const json& ops) {
    auto r = Batch(k, ops);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? (*r)["results"] : json();
  }
  static json PlaceBuy(const std::string& m, int64_t qty, const std::string& price) {
    return {{"op", "place"}, {"market", m}, {"side", "buy"}, {"qty", qty}, {"price", price}};
  }
  // A resting buy of `k` placed through the single route: its id.
  int64_t Buy(const core::PrivateKey& k, const std::string& m, int64_t qty,
              const std::string& price) {
    json r = env_.Ok(k, "POST", "/v1/markets/" + m + "/orders",
                     {{"side", "buy"}, {"qty", qty}, {"price", price}});
    return r["order"]["id"];
  }
  json Order(const std::string& m, int64_t id) {
    return env_.Ok(alice_, "GET", "/v1/markets/" + m + "/orders/" + std::to_string(id))["order"];
  }
  // Σ price x remaining over k's resting buys, in nano-credits.
  int64_t RestingBuyNanos(const core::PrivateKey& k) {
    json list = env_.Ok(k, "GET", "/v1/orders?owner=" + k.public_key().ToText());
    int64_t sum = 0;
    for (const json& o : list["orders"]) {
      if (o["side"] != "buy") continue;
      sum += Nanos(o["price"]) * o["remaining"].get<int64_t>();
    }
    return sum;
  }
  static int64_t Nanos(const std::string& s) {
    return core::Money::Parse(s)->nanos().convert_to<int64_t>();
  }
  // Credits are conserved (minted = balance + escrow + what fills paid) and
  // every resting buy's escrow is exact.
  void ExpectExactEscrows(const core::PrivateKey& k, const std::string& minted,
                          const std::string& paid = "0") {
    EXPECT_EQ(Nanos(env_.Escrowed(k)), RestingBuyNanos(k));
    EXPECT_EQ(Nanos(env_.Balance(k)) + Nanos(env_.Escrowed(k)) + Nanos(paid), Nanos(minted));
  }
  // The broker's message in a client Status ("HTTP 403: <message>").
  static std::string Message(const core::Status& st) {
    const std::string& m = st.message();
    return m.rfind("HTTP ", 0) == 0 && m.find(": ") != std::string::npos
               ? m.substr(m.find(": ") + 2)
               : m;
  }
  int64_t LedgerSize() { return env_.Ok(alice_, "GET", "/v1/ledger/head")["size"]; }

  MarketEnv env_;
  core::PrivateKey alice_ = NewKey(), bob_ = NewKey();
  std::optional<ledger::Rcap> pool_;
  std::string m1_, m2_;
};

TEST_F(BatchOrdersTest, MixedBatchAcrossTwoMarketsGivesOneResultPerOp) {
  const int64_t a1 = Buy(alice_, m1_, 5, "1");
  const int64_t a2 = Buy(alice_, m1_, 3, "1.1");
  const int64_t a3 = Buy(alice_, m2_, 4, "2");
  json results =
      BatchOk(alice_, json::array({
                          PlaceBuy(m1_, 2, "0.5"),
                          {{"op", "move"}, {"market", m1_}, {"order", a1}, {"price", "1.2"}},
                          {{"op", "cancel"}, {"market", m1_}, {"order", std::to_string(a2)}},
                          {{"op", "reduce"}, {"market", m2_}, {"order", a3}, {"qty", 1}},
                          PlaceBuy(m2_, 1, "3"),
                      }));
  ASSERT_EQ(results.size(), 5u);
  for (const json& r : results) EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(results[0]["order"]["state"], "resting");
  EXPECT_EQ(results[0]["order"]["market"], m1_);
  EXPECT_EQ(results[0]["trades"], json::array());
  EXPECT_EQ(results[1]["order"]["id"], a1);
  EXPECT_EQ(results[1]["order"]["price"], "1.200000000");
  EXPECT_EQ(results[2]["order"]["state"], "cancelled");
  EXPECT_EQ(results[3]["order"]["remaining"], 3);
  EXPECT_EQ(results[4]["order"]["market"], m2_);
  // Each result is what the order reads now.
  for (const json& r : results) {
    EXPECT_EQ(Order(r["order"]["market"], r["order"]["id"]), r["order"]) << r.dump();
  }
  json d1 = env_.Ok(alice_, "GET", "/v1/markets/" + m1_ + "/depth");
  ASSERT_EQ(d1["bids"].size(), 2u);
  EXPECT_EQ(d1["bids"][0]["price"], "1.200000000");
  EXPECT_EQ(d1["bids"][1]["price"], "0.500000000");
  json d2 = env_.Ok(alice_, "GET", "/v1/markets/" + m2_ + "/depth");
  ASSERT_EQ(d2["bids"].size(), 2u);
  EXPECT_EQ(d2["bids"][0]["qty"], 1);  // the new buy at 3
  EXPECT_EQ(d2["bids"][1]["qty"], 3);  // a3 reduced to 3
  ExpectExactEscrows(alice_, "1000");
  env_.ExpectLedgerVerifies();
}

TEST_F(BatchOrdersTest, TradesSettleInsideTheBatch) {
  // The broker's pool sells 4 on m1; alice's batch buys 3 of them and rests 2 more.
  env_.Ok(env_.admin_, "POST", "/v1/markets/" + m1_ + "/orders",
          {{"side", "sell"}, {"qty", 4}, {"price", "1"}, {"rcap", pool_->id}});
  json results = BatchOk(alice_, json::array({PlaceBuy(m1_, 3, "1.5"), PlaceBuy(m1_, 3, "1")}));
  ASSERT_EQ(results.size(), 2u);
  ASSERT_EQ(results[0]["trades"].size(), 1u);
  EXPECT_EQ(results[0]["trades"][0]["price"], "1.000000000");
  EXPECT_EQ(results[0]["order"]["state"], "filled");
  ASSERT_EQ(results[1]["trades"].size(), 1u);  // the last unit of the sell
  EXPECT_EQ(results[1]["order"]["remaining"], 2);
  EXPECT_EQ(env_.Balance(alice_), "994.000000000");  // 4 paid, 2 escrowed
  ExpectExactEscrows(alice_, "1000", "4");
  env_.ExpectLedgerVerifies();
}

TEST_F(BatchOrdersTest, AFailingOpFailsAloneWithItsSingleRoutesError) {
  const int64_t bobs = Buy(bob_, m1_, 1, "1");
  const int64_t mine = Buy(alice_, m1_, 2, "1");
  json results =
      BatchOk(alice_, json::array({
                          PlaceBuy(m1_, 1, "2"),
                          {{"op", "cancel"}, {"market", m1_}, {"order", bobs}},
                          PlaceBuy(m1_, 1, "5000"),  // cannot be funded: touches the book
                          PlaceBuy(m1_, 1, "3"),     // same market, after the rollback
                          {{"op", "cancel"}, {"market", m2_}, {"order", "999999"}},
                          {{"op", "move"}, {"market", m1_}, {"order", mine}, {"price", "-1"}},
                          {{"op", "reduce"}, {"market", "mk_none"}, {"order", mine}, {"qty", 1}},
                          {{"op", "move"}, {"market", m1_}, {"order", mine}, {"price", "1.25"}},
                      }));
  ASSERT_EQ(results.size(), 8u);
  const std::vector<bool> ok = {true, false, false, true, false, false, false, true};
  for (size_t i = 0; i < ok.size(); ++i) {
    EXPECT_EQ(results[i]["ok"].get<bool>(), ok[i]) << i << ": " << results[i].dump();
  }
  EXPECT_EQ(results[2]["error"]["code"], "insufficient_funds");
  EXPECT_EQ(results[4]["error"]["code"], "not_found");
  EXPECT_EQ(results[5]["error"]["code"], "invalid_argument");
  EXPECT_EQ(results[6]["error"]["code"], "not_found");
  // Each error is exactly the single route's (none of these change anything).
  auto c = env_.C(alice_);
  auto expect_same = [&](const json& result, core::Result<json> single) {
    ASSERT_FALSE(single.ok());
    EXPECT_EQ(result["error"]["code"], std::string(core::StatusCodeName(single.status().code())));
    EXPECT_EQ(result["error"]["message"], Message(single.status()));
  };
  expect_same(results[1],
              c.Call("DELETE", "/v1/markets/" + m1_ + "/orders/" + std::to_string(bobs), nullptr));
  expect_same(results[4], c.Call("DELETE", "/v1/markets/" + m2_ + "/orders/999999", nullptr));
  expect_same(results[5],
              c.Call("POST", "/v1/markets/" + m1_ + "/orders/" + std::to_string(mine) + "/move",
                     {{"price", "-1"}}));
  expect_same(results[6],
              c.Call("POST", "/v1/markets/mk_none/orders/" + std::to_string(mine) + "/reduce",
                     {{"qty", 1}}));
  const std::string funds = results[2]["error"]["message"];
  EXPECT_NE(funds.find("insufficient funds: buy order"), std::string::npos) << funds;
  EXPECT_NE(funds.find("needs 5000 credits"), std::string::npos) << funds;
  // Bob's order rests untouched; the ok ops applied; the failed buy left nothing.
  EXPECT_EQ(Order(m1_, bobs)["state"], "resting");
  EXPECT_EQ(Order(m1_, mine)["price"], "1.250000000");
  json d1 = env_.Ok(alice_, "GET", "/v1/markets/" + m1_ + "/depth");
  ASSERT_EQ(d1["bids"].size(), 4u) << d1.dump();  // 3, 2, 1.25, 1 (bob)
  EXPECT_EQ(d1["bids"][0]["price"], "3.000000000");
  EXPECT_EQ(d1["bids"][1]["price"], "2.000000000");
  json mine_all =
      env_.Ok(alice_, "GET", "/v1/orders?state=all&owner=" + alice_.public_key().ToText());
  EXPECT_EQ(mine_all["orders"].size(), 3u);  // the failed placement wrote no order
  ExpectExactEscrows(alice_, "1000");
  ExpectExactEscrows(bob_, "1000");
  env_.ExpectLedgerVerifies();
}

TEST_F(BatchOrdersTest, MoreThan100OpsOrAMalformedOpIsRefusedWhole) {
  const int64_t size = LedgerSize();
  json many = json::array();
  for (int i = 0; i < 101; ++i) many.push_back(PlaceBuy(m1_, 1, "1"));
  auto r = Batch(alice_, many);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(r.status()), "ops: must hold 1 to 100 operations, has 101");
  EXPECT_EQ(Batch(alice_, json::array()).status().code(), core::StatusCode::kInvalidArgument);

  const std::vector<std::pair<json, std::string>> bad = {
      {{{"op", "explode"}, {"market", m1_}},
       "ops[1].op: unknown op \"explode\" (place, cancel, move or reduce)"},
      {{{"op", "cancel"}, {"order", "1"}}, "ops[1].market: required (a market id)"},
      {{{"op", "move"}, {"market", m1_}, {"price", "1"}}, "ops[1].order: required for a move"},
      {{{"op", "cancel"}, {"market", m1_}, {"order", "1"}, {"qty", 1}},
       "ops[1]: a cancel takes only op, market and order (not \"qty\")"},
      {json("place"), "ops[1]: must be an object"},
  };
  for (const auto& [op, message] : bad) {
    auto b = Batch(alice_, json::array({PlaceBuy(m1_, 1, "1"), op}));
    ASSERT_FALSE(b.ok()) << op.dump();
    EXPECT_EQ(b.status().code(), core::StatusCode::kInvalidArgument) << op.dump();
    EXPECT_EQ(Message(b.status()), message);
  }
  auto c = env_.C(alice_);
  EXPECT_EQ(c.Call("POST", "/v1/orders:batch", {{"ops", json::array()}, {"x", 1}}).status().code(),
            core::StatusCode::kInvalidArgument);
  // Nothing applied: no order, no escrow, no ledger entry.
  EXPECT_EQ(LedgerSize(), size);
  EXPECT_EQ(env_.Escrowed(alice_), "0.000000000");
  EXPECT_EQ(
      env_.Ok(alice_, "GET", "/v1/orders?state=all&owner=" + alice_.public_key().ToText())["orders"]
          .size(),
      0u);
  // GET /v1/orders:batch is 405 and GET /v1/orders still lists.
  auto get = c.Send("GET", "/v1/orders:batch", "", false, {});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->status, 405);
}

TEST_F(BatchOrdersTest, AReplayedBatchRunsNothing) {
  std::string body =
      json({{"ops", json::array({PlaceBuy(m1_, 1, "1"), PlaceBuy(m2_, 1, "1")})}}).dump();
  auto h = core::SignRequest(alice_, "POST", "/v1/orders:batch", body,
                             core::SystemClock::Get().NowSeconds());
  std::map<std::string, std::string> headers = {{"Bourse-Key", h.key},
                                                {"Bourse-Timestamp", h.timestamp},
                                                {"Bourse-Nonce", h.nonce},
                                                {"Bourse-Signature", h.signature}};
  auto c = env_.C(alice_);
  auto first = c.Send("POST", "/v1/orders:batch", body, false, headers);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->status, 200) << first->body;
  const std::string escrowed = env_.Escrowed(alice_);
  EXPECT_EQ(escrowed, "2.000000000");
  const int64_t size = LedgerSize();
  auto again = c.Send("POST", "/v1/orders:batch", body, false, headers);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 401) << again->body;
  env_.Restart();  // the nonce is durable: refused after a restart too
  auto c2 = env_.C(alice_);
  auto after = c2.Send("POST", "/v1/orders:batch", body, false, headers);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, 401) << after->body;
  EXPECT_EQ(LedgerSize(), size);
  EXPECT_EQ(env_.Escrowed(alice_), escrowed);
}

TEST_F(BatchOrdersTest, ResultsAreInTheBooksAfterARestart) {
  const int64_t a1 = Buy(alice_, m1_, 5, "1");
  const int64_t a2 = Buy(alice_, m2_, 5, "1");
  // Through the client library's builder: 140 ops go as two requests (100 + 40).
  clients::OrdersBatch b;
  for (int i = 0; i < 139; ++i) {
    b.Place(i % 2 ? m1_ : m2_, {{"side", "buy"}, {"qty", 1 + i % 3}, {"price", "0.5"}});
  }
  b.Move(m1_, std::to_string(a1), "0.9").Reduce(m2_, std::to_string(a2), 2);
  b.Cancel(m2_, "999999");  // fails alone
  ASSERT_EQ(b.size(), 142u);
  auto c = env_.C(alice_);
  auto sent = b.Send(c);
  ASSERT_TRUE(sent.ok()) << sent.status().message();
  json results = *sent;
  ASSERT_EQ(results.size(), 142u);
  json d1 = env_.Ok(alice_, "GET", "/v1/markets/" + m1_ + "/depth");
  json d2 = env_.Ok(alice_, "GET", "/v1/markets/" + m2_ + "/depth");
  env_.Restart();
  for (size_t i = 0; i + 1 < results.size(); ++i) {
    ASSERT_TRUE(results[i]["ok"].get<bool>()) << i;
    EXPECT_EQ(Order(results[i]["order"]["market"], results[i]["order"]["id"]), results[i]["order"]);
  }
  EXPECT_FALSE(results[141]["ok"].get<bool>());
  EXPECT_EQ(results[139]["order"]["price"], "0.900000000");
  EXPECT_EQ(results[140]["order"]["remaining"], 3);
  EXPECT_EQ(env_.Ok(alice_, "GET", "/v1/markets/" + m1_ + "/depth"), d1);
  EXPECT_EQ(env_.Ok(alice_, "GET", "/v1/markets/" + m2_ + "/depth"), d2);
  ExpectExactEscrows(alice_, "1000");
  env_.ExpectLedgerVerifies();
}

// A move with a bad price or a reduce with a bad qty is refused before the
// book is touched: the market's book is not left stale (to be rebuilt from
// the tables before its next use), in a batch or through the single route.
TEST_F(BatchOrdersTest, ABadPriceOrQtyLeavesTheBookFresh) {
  const int64_t mine = Buy(alice_, m1_, 2, "1");
  auto stale = [&](const std::string& m) {
    auto ms = env_.markets().Find(m);
    EXPECT_TRUE(ms.ok());
    core::MutexLock l(&(*ms)->mu);
    return (*ms)->stale;
  };
  ASSERT_FALSE(stale(m1_));
  json results = BatchOk(
      alice_, json::array({{{"op", "move"}, {"market", m1_}, {"order", mine}, {"price", "-1"}},
                           {{"op", "move"}, {"market", m1_}, {"order", mine}, {"price", "x"}},
                           {{"op", "reduce"}, {"market", m1_}, {"order", mine}, {"qty", 0}}}));
  ASSERT_EQ(results.size(), 3u);
  for (const json& r : results) {
    EXPECT_FALSE(r["ok"].get<bool>()) << r.dump();
    EXPECT_EQ(r["error"]["code"], "invalid_argument") << r.dump();
  }
  EXPECT_FALSE(stale(m1_));
  auto c = env_.C(alice_);
  const std::string path = "/v1/markets/" + m1_ + "/orders/" + std::to_string(mine);
  EXPECT_EQ(c.Call("POST", path + "/move", {{"price", "0"}}).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_FALSE(stale(m1_));
  // Bob's bad move of alice's order is refused as not his first.
  auto bc = env_.C(bob_);
  EXPECT_EQ(bc.Call("POST", path + "/move", {{"price", "-1"}}).status().code(),
            core::StatusCode::kPermissionDenied);
  EXPECT_EQ(Order(m1_, mine)["price"], "1.000000000");
  ExpectExactEscrows(alice_, "1000");
}

// A cancel, move or reduce runs without a savepoint of its own; should one
// fail after it wrote (here an injected internal error after its book
// operation), the batch is run again with a savepoint per op: that op alone
// is rolled back and every other op's result is as before.
TEST_F(BatchOrdersTest, ALateFailureOfAnOpWithoutASavepointFailsItAlone) {
  const int64_t a1 = Buy(alice_, m1_, 2, "1");
  const int64_t a2 = Buy(alice_, m2_, 3, "1");
  const int64_t a3 = Buy(alice_, m1_, 1, "1");
  const int64_t size = LedgerSize();
  markets::internal::batch_fault_at_for_test = 2;
  json results =
      BatchOk(alice_, json::array({
                          {{"op", "move"}, {"market", m1_}, {"order", a1}, {"price", "1.5"}},
                          PlaceBuy(m2_, 1, "0.5"),
                          {{"op", "move"}, {"market", m2_}, {"order", a2}, {"price", "2"}},
                          {{"op", "cancel"}, {"market", m1_}, {"order", a3}},
                          {{"op", "reduce"}, {"market", m2_}, {"order", a2}, {"qty", 1}},
                      }));
  markets::internal::batch_fault_at_for_test = -1;
  ASSERT_EQ(results.size(), 5u);
  const std::vector<bool> ok = {true, true, false, true, true};
  for (size_t i = 0; i < ok.size(); ++i) {
    EXPECT_EQ(results[i]["ok"].get<bool>(), ok[i]) << i << ": " << results[i].dump();
  }
  EXPECT_EQ(results[2]["error"]["code"], "internal");
  EXPECT_EQ(results[0]["order"]["price"], "1.500000000");
  EXPECT_EQ(results[3]["order"]["state"], "cancelled");
  EXPECT_EQ(results[4]["order"]["price"], "1.000000000");  // the move was rolled back
  EXPECT_EQ(results[4]["order"]["remaining"], 2);
  for (size_t i : {0, 1, 3, 4}) {
    EXPECT_EQ(Order(results[i]["order"]["market"], results[i]["order"]["id"]), results[i]["order"]);
  }
  // Entries: a1 moved (its escrow topped up, moved), the placement (hold,
  // placed), a3 cancelled (release, cancelled), a2 reduced (release, reduced).
  EXPECT_EQ(LedgerSize(), size + 8);
  ExpectExactEscrows(alice_, "1000");
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
