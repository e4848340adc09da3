// Property test through the HTTP API: a random sequence of order placements
// (limit/market, GTC/IOC, buys and sells from two kinds of seller), cancels,
// reduces, moves, acquires, share bids and a sealed round. After every
// book operation the trades the broker reports must be exactly those a bare
// auction::OrderBook produces on the same sequence (same ids, owners, prices,
// quantities), the resting books must agree at the end, and the ledger must
// verify (credits conserved, no negative balance, no capacity sold twice).
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

#include "auction/order_book.h"
#include "core/money.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

struct Recorder : auction::OrderListener {
  std::vector<auction::Trade> trades;
  void OnTrade(const auction::Trade& t) override { trades.push_back(t); }
};

TEST(MarketPropertyTest, RandomSequencesMatchTheAuctionCoreAndVerify) {
  MarketEnv env;
  env.SetupSites();
  int64_t now = core::SystemClock::Get().NowSeconds();
  int64_t nb = now + 3600, na = now + 7200;
  std::vector<core::PrivateKey> traders;
  for (int i = 0; i < 3; ++i) {
    traders.push_back(env.AddUser("t" + std::to_string(i), "1000000", "mit"));
  }
  core::PrivateKey sam = env.AddUser("sam", "", "mit");
  ledger::Rcap pool = env.Grant(env.pi_, "n1", env.broker_->broker_key(), now, now + 86400, 4000);
  ledger::Rcap sams = env.Grant(env.pi_, "n1", sam.public_key(), now, now + 86400, 2000);
  ledger::Rcap pool2 = env.Grant(env.pi2_, "n2", env.broker_->broker_key(), now, now + 86400);
  std::string market = env.Ok(env.admin_, "POST", "/v1/markets",
                              {{"node", "n1"},
                               {"unit", MarketEnv::Res(10)},
                               {"not_before", nb},
                               {"not_after", na}})["market"]["id"];
  std::string orders = "/v1/markets/" + market + "/orders";
  std::string round = env.Ok(env.admin_, "POST", "/v1/rounds",
                             {{"offers", {pool2.id}},
                              {"not_before", nb},
                              {"not_after", na},
                              {"close", now + 3}})["round"]["id"];
  for (size_t i = 0; i < traders.size(); ++i) {
    env.Ok(traders[i], "POST", "/v1/slices", {{"name", "mit_s" + std::to_string(i)}});
  }

  Recorder rec;
  auction::OrderBook ref(&rec);
  std::map<std::string, uint64_t> owner_ids;
  auto owner = [&](const core::PrivateKey& k) {
    auto [it, fresh] = owner_ids.emplace(k.public_key().ToText(), owner_ids.size() + 1);
    return it->second;
  };
  std::mt19937_64 rng(20261124);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  int64_t pool_units = 400, sam_units = 200;                        // capacity left to escrow
  std::vector<std::pair<int64_t, const core::PrivateKey*>> placed;  // id, owner
  std::vector<std::string> share_bids;
  size_t compared = 0;

  auto check_trades = [&](const json& got) {
    ASSERT_EQ(got.size(), rec.trades.size()) << got.dump();
    for (size_t i = 0; i < rec.trades.size(); ++i) {
      const auction::Trade& t = rec.trades[i];
      EXPECT_EQ(got[i]["buy"].get<int64_t>(), static_cast<int64_t>(t.buy_order));
      EXPECT_EQ(got[i]["sell"].get<int64_t>(), static_cast<int64_t>(t.sell_order));
      EXPECT_EQ(got[i]["qty"].get<int64_t>(), t.qty);
      EXPECT_EQ(got[i]["price"], t.price().ToString());
      ++compared;
    }
    rec.trades.clear();
  };

  for (int step = 0; step < 160; ++step) {
    int op = static_cast<int>(pick(0, 99));
    if (op < 55 || placed.empty()) {
      // Place.
      bool sell = pick(0, 1) == 1;
      int64_t qty = pick(1, 10);
      bool is_market = pick(0, 9) == 0;
      bool ioc = !is_market && pick(0, 5) == 0;
      std::string price = std::to_string(pick(2, 40) / 2) + (pick(0, 1) ? ".5" : "");
      if (price == "1") price = "1.5";
      json body = {{"side", sell ? "sell" : "buy"}, {"qty", qty}};
      if (is_market)
        body["type"] = "market";
      else
        body["price"] = price;
      if (ioc) body["tif"] = "ioc";
      const core::PrivateKey* who = &traders[pick(0, 2)];
      if (sell) {
        if (pick(0, 1) == 0) {
          if (pool_units < qty) continue;
          pool_units -= qty;
          who = &env.admin_;
          body["rcap"] = pool.id;
        } else {
          if (sam_units < qty) continue;
          sam_units -= qty;
          who = &sam;
          auto e = ledger::Delegate(sams, sam,
                                    {.id = "",
                                     .holder = env.broker_->broker_key(),
                                     .res = {.cpu_mcores = 10 * qty},
                                     .interval = {nb, na}});
          ASSERT_TRUE(e.ok());
          body["escrow"] = e->ToJson();
        }
      }
      json r = env.Ok(*who, "POST", orders, body);
      int64_t id = r["order"]["id"];
      auto req = auction::OrderRequest{
          .id = static_cast<uint64_t>(id),
          .owner = owner(*who),
          .side = sell ? auction::Side::kSell : auction::Side::kBuy,
          .type = is_market ? auction::OrderType::kMarket : auction::OrderType::kLimit,
          .tif = ioc ? auction::TimeInForce::kIoc : auction::TimeInForce::kGtc,
          .qty = qty,
          .price = is_market ? core::Money() : core::Money::Parse(price).value()};
      ASSERT_TRUE(ref.Place(req).ok());
      check_trades(r["trades"]);
      placed.push_back({id, who});
      // Capacity returned to sellers by cancels is not re-used: keep it simple.
    } else if (op < 67) {
      auto [id, who] = placed[pick(0, placed.size() - 1)];
      auto c = env.C(*who);
      auto r = c.Call("DELETE", orders + "/" + std::to_string(id));
      bool resting = ref.Find(id).has_value();
      EXPECT_EQ(r.ok(), resting) << r.status().message();
      if (resting) {
        ASSERT_TRUE(ref.Cancel(id).ok());
      }
    } else if (op < 75) {
      auto [id, who] = placed[pick(0, placed.size() - 1)];
      int64_t n = pick(1, 5);
      auto c = env.C(*who);
      auto r = c.Call("POST", orders + "/" + std::to_string(id) + "/reduce", {{"qty", n}});
      bool resting = ref.Find(id).has_value();
      EXPECT_EQ(r.ok(), resting) << r.status().message();
      if (resting) {
        ASSERT_TRUE(ref.Reduce(id, n).ok());
      }
    } else if (op < 85) {
      auto [id, who] = placed[pick(0, placed.size() - 1)];
      std::string price = std::to_string(pick(2, 40) / 2) + ".25";
      auto c = env.C(*who);
      auto r = c.Call("POST", orders + "/" + std::to_string(id) + "/move", {{"price", price}});
      bool resting = ref.Find(id).has_value();
      EXPECT_EQ(r.ok(), resting) << r.status().message();
      if (resting) {
        ASSERT_TRUE(ref.Move(id, core::Money::Parse(price).value()).ok());
        check_trades((*r)["trades"]);
      }
    } else if (op < 90) {
      // acquire k units on n1 (all or nothing) = a market buy when it succeeds.
      const core::PrivateKey& who = traders[pick(0, 2)];
      int64_t k = pick(1, 6);
      auto c = env.C(who);
      auto r = c.Call(
          "POST", "/v1/acquire",
          {{"rspec",
            {{"res", MarketEnv::Res(10 * k)}, {"nodes", 1}, {"not_before", nb}, {"not_after", na}}},
           {"max_price", "1000"}});
      if (r.ok()) {
        ASSERT_TRUE(ref.Place({.id = static_cast<uint64_t>((*r)["trades"][0]["buy"].get<int64_t>()),
                               .owner = owner(who),
                               .side = auction::Side::kBuy,
                               .type = auction::OrderType::kMarket,
                               .tif = auction::TimeInForce::kIoc,
                               .qty = k,
                               .price = {}})
                        .ok());
        check_trades((*r)["trades"]);
      } else {
        EXPECT_EQ(r.status().code(), core::StatusCode::kFailedPrecondition) << r.status().message();
      }
    } else if (op < 95) {
      size_t t = static_cast<size_t>(pick(0, 2));
      if (share_bids.empty() || pick(0, 1) == 0) {
        share_bids.push_back(env.Ok(traders[t], "POST", "/v1/nodes/n1/share_bids",
                                    {{"slice", "mit_s" + std::to_string(t)},
                                     {"rate", "0.01"},
                                     {"budget", "5"}})["bid"]["id"]);
        share_bids.back() += "|" + std::to_string(t);
      } else {
        std::string sb = share_bids.back();
        share_bids.pop_back();
        size_t bar = sb.find('|');
        auto c = env.C(traders[std::stoi(sb.substr(bar + 1))]);
        EXPECT_TRUE(c.Call("DELETE", "/v1/share_bids/" + sb.substr(0, bar)).ok());
      }
    } else {
      const core::PrivateKey& who = traders[pick(0, 2)];
      auto c = env.C(who);
      (void)c.Call(
          "POST", "/v1/rounds/" + round + "/bids",
          {{"limit", std::to_string(pick(1, 50))},
           {"bundles",
            {{{"items", {{{"node", "n2"}, {"res", MarketEnv::Res(pick(1, 4) * 1000)}}}}}}}});
    }
  }
  // The resting books agree.
  json book = env.Ok(env.admin_, "GET", orders);
  for (auto side : {auction::Side::kBuy, auction::Side::kSell}) {
    const json& got = book[side == auction::Side::kBuy ? "bids" : "asks"];
    auto want = ref.Orders(side);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i]["id"].get<int64_t>(), static_cast<int64_t>(want[i].id));
      EXPECT_EQ(got[i]["remaining"].get<int64_t>(), want[i].qty);
    }
  }
  EXPECT_GT(compared, 10u);
  // The round clears on schedule.
  for (int i = 0; i < 60; ++i) {
    if (env.Ok(env.admin_, "GET", "/v1/rounds/" + round)["round"]["state"] != "open") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(env.Ok(env.admin_, "GET", "/v1/rounds/" + round)["round"]["state"], "cleared");
  env.ExpectLedgerVerifies();
  // And the books survive a restart unchanged.
  env.Restart();
  EXPECT_EQ(env.Ok(env.admin_, "GET", orders), book);
  env.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
