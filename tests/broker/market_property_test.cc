// Property test through the HTTP API: a random sequence of order placements
// (limit/market, GTC/IOC, buys and sells from two kinds of seller), cancels,
// reduces, moves, acquires, share bids and withdrawals, sealed-round bids and
// background ticks, with time driven by a ManualClock. After every book
// operation the trades the broker reports must be exactly those a bare
// auction::OrderBook produces on the same sequence (same ids, owners, prices,
// quantities), the resting books must agree at the end, every share bid's
// charges and the served share table must match a model written here
// (exact rate x time, capped by the budget; largest remainder by slice), and
// the ledger must verify (credits conserved, no negative balance, no capacity
// sold twice).
//
// Runs over a fixed set of seeds; to reproduce or explore one:
//   BOURSE_PROPERTY_SEED=123 broker_tests --gtest_filter='*MarketProperty*FromEnvironment*'
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "auction/order_book.h"
#include "core/clock.h"
#include "core/money.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

struct Recorder : auction::OrderListener {
  std::vector<auction::Trade> trades;
  void OnTrade(const auction::Trade& t) override { trades.push_back(t); }
};

__extension__ typedef __int128 i128;

// A share bid as the test expects it to behave. Rates are whole
// micro-credits per second, so rate x elapsed ms is an exact nano-credit
// amount and no rounding enters the expected charges.
struct ShareModel {
  std::string id;
  size_t trader = 0;
  int64_t rate = 0, budget = 0;  // nano-credits (per second)
  int64_t created_ms = 0;
  bool withdrawn = false;
  // What it owes for [created, t): rate x elapsed, capped by the budget.
  int64_t OwedAt(int64_t t_ms) const {
    i128 v = static_cast<i128>(rate) * (t_ms - created_ms) / 1000;
    return static_cast<int64_t>(std::min<i128>(v, budget));
  }
  bool LiveAt(int64_t t_ms) const {
    return !withdrawn &&
           static_cast<i128>(rate) * (t_ms - created_ms) < static_cast<i128>(budget) * 1000;
  }
};

// Largest remainder, ties to the lower index, written out plainly.
std::vector<int64_t> Apportion(const std::vector<i128>& w, int64_t total) {
  i128 sum = 0;
  for (i128 x : w) sum += x;
  std::vector<int64_t> out(w.size());
  std::vector<std::pair<i128, size_t>> rem;
  int64_t given = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    out[i] = static_cast<int64_t>(w[i] * total / sum);
    given += out[i];
    rem.push_back({w[i] * total % sum, i});
  }
  std::stable_sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < total; ++k, ++given) ++out[rem[k].second];
  return out;
}

int64_t Nanos(const json& money) {
  return static_cast<int64_t>(core::Money::Parse(money.get<std::string>()).value().nanos());
}

void RunSequence(uint64_t seed) {
  const int64_t t0 = core::SystemClock::Get().NowSeconds();
  core::ManualClock clock(t0 * 1000);
  MarketEnv env({.clock = &clock, .markets = {.tick_ms = 0, .share_charge_interval_s = 1}});
  env.SetupSites();
  int64_t nb = t0 + 3600, na = t0 + 7200;
  const int64_t round_close = t0 + 25;
  std::vector<core::PrivateKey> traders;
  for (int i = 0; i < 3; ++i) {
    traders.push_back(env.AddUser("t" + std::to_string(i), "1000000", "mit"));
  }
  core::PrivateKey sam = env.AddUser("sam", "", "mit");
  ledger::Rcap pool = env.Grant(env.pi_, "n1", env.broker_->broker_key(), t0, t0 + 86400, 4000);
  ledger::Rcap sams = env.Grant(env.pi_, "n1", sam.public_key(), t0, t0 + 86400, 2000);
  ledger::Rcap pool2 = env.Grant(env.pi2_, "n2", env.broker_->broker_key(), t0, t0 + 86400);
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
                              {"close", round_close}})["round"]["id"];
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
  std::mt19937_64 rng(seed);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  int64_t pool_units = 400, sam_units = 200;                        // capacity left to escrow
  std::vector<std::pair<int64_t, const core::PrivateKey*>> placed;  // id, owner
  std::vector<ShareModel> share_bids;
  size_t compared = 0, share_checks = 0;

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
  // Every share bid's charges and state, and n1's served table, against the model.
  auto check_shares = [&] {
    const int64_t now = clock.NowMillis();
    for (const ShareModel& m : share_bids) {
      SCOPED_TRACE(m.id);
      json b = env.Ok(env.admin_, "GET", "/v1/share_bids/" + m.id)["bid"];
      int64_t to = b["charged_to_ms"];
      EXPECT_GE(to, m.created_ms);
      EXPECT_LE(to, now);
      int64_t charged = Nanos(b["charged"]);
      EXPECT_EQ(charged, m.OwedAt(to));
      if (m.withdrawn) {
        EXPECT_EQ(b["state"], "withdrawn");
        EXPECT_EQ(Nanos(b["remaining"]), 0);
      } else if (charged == m.budget) {
        EXPECT_EQ(b["state"], "exhausted");
        EXPECT_EQ(Nanos(b["remaining"]), 0);
      } else {
        EXPECT_EQ(b["state"], "active");
        EXPECT_EQ(Nanos(b["remaining"]), m.budget - charged);
      }
    }
    std::map<std::string, i128> by_slice;
    for (const ShareModel& m : share_bids) {
      if (m.LiveAt(now)) by_slice["mit_s" + std::to_string(m.trader)] += m.rate;
    }
    json want = json::array();
    if (!by_slice.empty()) {
      std::vector<i128> w;
      for (auto& [slice, r] : by_slice) w.push_back(r);
      std::vector<int64_t> cpu = Apportion(w, 10000), net = Apportion(w, 100000);
      size_t i = 0;
      for (auto& [slice, r] : by_slice) {
        want.push_back(
            {{"slice", slice}, {"cpu_weight", std::max<int64_t>(1, cpu[i])}, {"net_kbps", net[i]}});
        ++i;
      }
    }
    json got = env.Ok(env.admin_, "GET", "/v1/nodes/n1/shares");
    EXPECT_EQ(got["ts"], now);
    EXPECT_EQ(got["shares"], want);
    ++share_checks;
  };

  for (int step = 0; step < 160; ++step) {
    clock.AdvanceMillis(pick(0, 300));
    int op = static_cast<int>(pick(0, 99));
    if (op < 50 || placed.empty()) {
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
    } else if (op < 60) {
      auto [id, who] = placed[pick(0, placed.size() - 1)];
      auto c = env.C(*who);
      auto r = c.Call("DELETE", orders + "/" + std::to_string(id));
      bool resting = ref.Find(id).has_value();
      EXPECT_EQ(r.ok(), resting) << r.status().message();
      if (resting) {
        ASSERT_TRUE(ref.Cancel(id).ok());
      }
    } else if (op < 67) {
      auto [id, who] = placed[pick(0, placed.size() - 1)];
      int64_t n = pick(1, 5);
      auto c = env.C(*who);
      auto r = c.Call("POST", orders + "/" + std::to_string(id) + "/reduce", {{"qty", n}});
      bool resting = ref.Find(id).has_value();
      EXPECT_EQ(r.ok(), resting) << r.status().message();
      if (resting) {
        ASSERT_TRUE(ref.Reduce(id, n).ok());
      }
    } else if (op < 76) {
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
    } else if (op < 81) {
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
    } else if (op < 88) {
      std::vector<size_t> open;
      for (size_t i = 0; i < share_bids.size(); ++i) {
        if (!share_bids[i].withdrawn) open.push_back(i);
      }
      if (open.empty() || pick(0, 1) == 0) {
        static const char* kRates[] = {"0.01", "0.25", "1"};
        static const char* kBudgets[] = {"0.5", "3", "50"};
        ShareModel m;
        m.trader = static_cast<size_t>(pick(0, 2));
        std::string rate = kRates[pick(0, 2)], budget = kBudgets[pick(0, 2)];
        m.rate = Nanos(rate);
        m.budget = Nanos(budget);
        m.created_ms = clock.NowMillis();
        m.id = env.Ok(traders[m.trader], "POST", "/v1/nodes/n1/share_bids",
                      {{"slice", "mit_s" + std::to_string(m.trader)},
                       {"rate", rate},
                       {"budget", budget}})["bid"]["id"];
        share_bids.push_back(m);
      } else {
        ShareModel& m = share_bids[open[pick(0, open.size() - 1)]];
        auto c = env.C(traders[m.trader]);
        auto r = c.Call("DELETE", "/v1/share_bids/" + m.id);
        // Refused only once a charge has found the budget spent.
        json b = env.Ok(env.admin_, "GET", "/v1/share_bids/" + m.id)["bid"];
        if (r.ok()) {
          m.withdrawn = true;
          EXPECT_EQ(b["charged_to_ms"], clock.NowMillis());
        } else {
          EXPECT_EQ(r.status().code(), core::StatusCode::kFailedPrecondition)
              << r.status().message();
          EXPECT_EQ(b["state"], "exhausted");
        }
      }
    } else if (op < 91) {
      check_shares();
    } else if (op < 95) {
      const core::PrivateKey& who = traders[pick(0, 2)];
      auto c = env.C(who);
      auto r =
          c.Call("POST", "/v1/rounds/" + round + "/bids",
                 {{"limit", std::to_string(pick(1, 50))},
                  {"bundles",
                   {{{"items", {{{"node", "n2"}, {"res", MarketEnv::Res(pick(1, 4) * 1000)}}}}}}}});
      EXPECT_EQ(r.ok(), clock.NowSeconds() < round_close) << r.status().message();
    } else {
      ASSERT_TRUE(env.markets().Tick().ok());
    }
  }
  check_shares();
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
  EXPECT_GT(share_checks, 1u);
  // The round clears on schedule.
  clock.SetMillis(std::max(clock.NowMillis(), round_close * 1000));
  ASSERT_TRUE(env.markets().Tick().ok());
  EXPECT_EQ(env.Ok(env.admin_, "GET", "/v1/rounds/" + round)["round"]["state"], "cleared");
  check_shares();
  env.ExpectLedgerVerifies();
  // And the books survive a restart unchanged.
  env.Restart();
  EXPECT_EQ(env.Ok(env.admin_, "GET", orders), book);
  env.ExpectLedgerVerifies();
}

std::string Repro(uint64_t seed) {
  return "seed " + std::to_string(seed) +
         "; rerun with BOURSE_PROPERTY_SEED=" + std::to_string(seed) +
         " broker_tests --gtest_filter='*MarketProperty*FromEnvironment*'";
}

class MarketPropertyTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(MarketPropertyTest, RandomSequencesMatchTheAuctionCoreAndVerify) {
  SCOPED_TRACE(Repro(GetParam()));
  RunSequence(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Seeds, MarketPropertyTest,
                         ::testing::Values(20261124, 1, 2, 3, 4, 5, 6, 7),
                         [](const ::testing::TestParamInfo<uint64_t>& i) {
                           return "seed_" + std::to_string(i.param);
                         });

// One more seed, from the environment (skipped when BOURSE_PROPERTY_SEED is unset).
TEST(MarketPropertySeedTest, RandomSequenceFromEnvironment) {
  const char* env = std::getenv("BOURSE_PROPERTY_SEED");
  if (env == nullptr || *env == '\0') GTEST_SKIP() << "BOURSE_PROPERTY_SEED is not set";
  char* end = nullptr;
  uint64_t seed = std::strtoull(env, &end, 10);
  ASSERT_EQ(*end, '\0') << "BOURSE_PROPERTY_SEED: not a decimal number: " << env;
  SCOPED_TRACE(Repro(seed));
  RunSequence(seed);
}

}  // namespace
}  // namespace bourse::broker::testing
