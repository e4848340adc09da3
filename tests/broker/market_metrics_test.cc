// GET /metrics' market, node and event-stream gauges (docs/broker.md,
// "Metrics"): a real broker on loopback, trades made through the API, the
// scrape parsed as Prometheus text and its values checked. Time is a
// ManualClock, so "sold now" is checked before and inside a market's window.
#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <regex>
#include <sstream>

#include "core/clock.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

// The samples of a Prometheus text exposition: "name{labels}" -> value.
// Fails the test on a line that is not a comment, a blank or a sample, on
// a family whose TYPE line comes twice, or a sample whose family has none.
std::map<std::string, std::string> ParseExposition(const std::string& text) {
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (\S+)$)");
  std::map<std::string, std::string> out;
  std::map<std::string, int> typed;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(++typed[name], 1) << "TYPE twice: " << name;
      continue;
    }
    if (line[0] == '#') continue;
    std::smatch m;
    if (!std::regex_match(line, m, kSample)) {
      ADD_FAILURE() << "not a sample: " << line;
      continue;
    }
    std::string family = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s(suffix);
      if (!typed.count(family) && family.size() > s.size() &&
          family.compare(family.size() - s.size(), s.size(), s) == 0) {
        family = family.substr(0, family.size() - s.size());
      }
    }
    EXPECT_TRUE(typed.count(family)) << "no TYPE before " << line;
    std::string key = line.substr(0, line.rfind(' '));
    EXPECT_FALSE(out.count(key)) << "sample twice: " << key;
    out[key] = m[5];
  }
  return out;
}

class MarketMetricsTest : public ::testing::Test {
 protected:
  MarketMetricsTest()
      : t0_(core::SystemClock::Get().NowSeconds()),
        clock_(t0_ * 1000),
        env_({.clock = &clock_, .markets = {.tick_ms = 0}}) {}

  void SetUp() override {
    env_.SetupSites();
    alice_ = env_.AddUser("alice", "1000", "mit");
    bob_ = env_.AddUser("bob", "1000", "mit");
  }

  std::map<std::string, std::string> Scrape() {
    httplib::Client c(env_.url_);
    auto r = c.Get("/metrics");
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
    return ParseExposition(r->body);
  }
  static std::string M(const std::string& name, const std::string& market) {
    return name + "{market=\"" + market + "\"}";
  }
  static std::string N(const std::string& name, const std::string& node, const std::string& res) {
    return name + "{node=\"" + node + "\",resource=\"" + res + "\"}";
  }
  void Order(const core::PrivateKey& k, const std::string& market, const json& body) {
    env_.Ok(k, "POST", "/v1/markets/" + market + "/orders", body);
  }

  int64_t t0_;
  core::ManualClock clock_;
  MarketEnv env_;
  core::PrivateKey alice_ = NewKey(), bob_ = NewKey();
};

TEST_F(MarketMetricsTest, MarketsShowTradesVolumeLastPriceAndRestingOrders) {
  ledger::Rcap pool = env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), t0_, t0_ + 86400);
  std::string m1 = env_.NodeMarket("n1", t0_ + 100, t0_ + 7200);
  std::string m2 = env_.NodeMarket("n1", t0_ + 7200, t0_ + 9000);
  auto before = Scrape();
  EXPECT_EQ(before.at(M("bourse_market_trades_total", m1)), "0");
  EXPECT_EQ(before.at(M("bourse_market_volume_credits_total", m1)), "0");
  EXPECT_FALSE(before.count(M("bourse_market_last_price", m1)));  // no trade yet

  Order(env_.admin_, m1, {{"side", "sell"}, {"qty", 3}, {"price", "1.5"}, {"rcap", pool.id}});
  Order(env_.admin_, m1, {{"side", "sell"}, {"qty", 10}, {"price", "2.25"}, {"rcap", pool.id}});
  // Fills 3 at 1.5 and 2 at 2.25: two trades, 5 units, 9 credits.
  Order(alice_, m1, {{"side", "buy"}, {"qty", 5}, {"price", "3"}});
  Order(bob_, m1, {{"side", "buy"}, {"qty", 1}, {"price", "1"}});
  Order(bob_, m2, {{"side", "buy"}, {"qty", 2}, {"price", "1"}});

  auto s = Scrape();
  EXPECT_EQ(s.at(M("bourse_market_trades_total", m1)), "2");
  EXPECT_EQ(s.at(M("bourse_market_volume_units_total", m1)), "5");
  EXPECT_EQ(s.at(M("bourse_market_volume_credits_total", m1)), "9");
  EXPECT_EQ(s.at(M("bourse_market_last_price", m1)), "2.25");
  EXPECT_EQ(s.at("bourse_market_resting_orders{market=\"" + m1 + "\",side=\"buy\"}"), "1");
  EXPECT_EQ(s.at("bourse_market_resting_orders{market=\"" + m1 + "\",side=\"sell\"}"), "1");
  EXPECT_EQ(s.at(M("bourse_market_trades_total", m2)), "0");
  EXPECT_EQ(s.at("bourse_market_resting_orders{market=\"" + m2 + "\",side=\"buy\"}"), "1");
  EXPECT_EQ(s.at("bourse_event_streams"), "0");

  // One more trade after a restart: the totals are rebuilt from the store,
  // then added to, never counted twice.
  env_.Restart();
  Order(alice_, m1, {{"side", "buy"}, {"qty", 4}, {"price", "2.5"}});
  s = Scrape();
  s = Scrape();
  EXPECT_EQ(s.at(M("bourse_market_trades_total", m1)), "3");
  EXPECT_EQ(s.at(M("bourse_market_volume_units_total", m1)), "9");
  EXPECT_EQ(s.at(M("bourse_market_volume_credits_total", m1)), "18");
  EXPECT_EQ(s.at("bourse_market_resting_orders{market=\"" + m1 + "\",side=\"sell\"}"), "1");
}

TEST_F(MarketMetricsTest, NodesShowRegisteredSoldAndFreeCapacityNow) {
  ledger::Rcap pool = env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), t0_, t0_ + 86400);
  // A root granted to bob (a pooling agent, say) is sold as soon as it is valid.
  ledger::Rcap bobs = env_.Grant(env_.pi2_, "n2", bob_.public_key(), t0_, t0_ + 86400, 1000);
  std::string m1 = env_.NodeMarket("n1", t0_ + 100, t0_ + 7200);
  Order(env_.admin_, m1, {{"side", "sell"}, {"qty", 10}, {"price", "1"}, {"rcap", pool.id}});
  Order(alice_, m1, {{"side", "buy"}, {"qty", 5}, {"price", "1"}});

  auto s = Scrape();
  EXPECT_EQ(s.at(N("bourse_node_capacity", "n1", "cpu_mcores")), "8000");
  EXPECT_EQ(s.at(N("bourse_node_capacity", "n1", "mem_mib")), "16384");
  EXPECT_EQ(s.at(N("bourse_node_capacity", "n1", "net_min_kbps")), "100000");
  // The market's window has not begun: what alice bought is not valid yet.
  EXPECT_EQ(s.at(N("bourse_node_sold", "n1", "cpu_mcores")), "0");
  EXPECT_EQ(s.at(N("bourse_node_free", "n1", "cpu_mcores")), "8000");
  EXPECT_EQ(s.at(N("bourse_node_sold", "n2", "cpu_mcores")), "1000");
  EXPECT_EQ(s.at(N("bourse_node_sold", "n2", "mem_mib")), "4096");
  EXPECT_EQ(s.at(N("bourse_node_free", "n2", "mem_mib")), std::to_string(16384 - 4096));
  EXPECT_EQ(s.at(N("bourse_node_sold", "n3", "cpu_mcores")), "0");

  // bob splits his root to alice: the capacity was sold once, not twice.
  std::vector<ledger::ChildSpec> spec = {{.id = "",
                                          .holder = alice_.public_key(),
                                          .res = {.cpu_mcores = 400},
                                          .interval = {t0_, t0_ + 3600}}};
  auto kids = ledger::Split(bobs, bob_, spec);
  ASSERT_TRUE(kids.ok()) << kids.status().message();
  env_.Ok(bob_, "POST", "/v1/rcaps/" + bobs.id + "/split",
          json{{"children", json::array({kids->at(0).ToJson()})}});

  clock_.SetSeconds(t0_ + 200);  // inside the market's window
  s = Scrape();
  EXPECT_EQ(s.at(N("bourse_node_sold", "n1", "cpu_mcores")), "500");
  EXPECT_EQ(s.at(N("bourse_node_sold", "n1", "mem_mib")), "0");
  EXPECT_EQ(s.at(N("bourse_node_free", "n1", "cpu_mcores")), "7500");
  EXPECT_EQ(s.at(N("bourse_node_sold", "n2", "cpu_mcores")), "1000");

  clock_.SetSeconds(t0_ + 7200);  // the window has ended
  s = Scrape();
  EXPECT_EQ(s.at(N("bourse_node_sold", "n1", "cpu_mcores")), "0");
}

TEST(MetricsRenderTest, EscapesLabelValuesAndCountsStreamsThroughTheHook) {
  Metrics m;
  ScrapeGauges g;
  markets::MarketStats st;
  st.market = "a\"b\\c\nd";
  st.trades = 1;
  st.last_price_nanos = 1'500'000'000;
  g.markets.push_back(st);
  g.nodes.push_back({.node = "n\"1", .capacity = {.cpu_mcores = 10}, .sold = {.cpu_mcores = 4}});
  m.SetEventStreamCounter([] { return int64_t{7}; });
  g.event_streams = m.EventStreams();
  std::string text = m.Render({}, g);
  EXPECT_NE(text.find("bourse_market_trades_total{market=\"a\\\"b\\\\c\\nd\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("bourse_market_last_price{market=\"a\\\"b\\\\c\\nd\"} 1.5\n"),
            std::string::npos);
  EXPECT_NE(text.find("bourse_node_free{node=\"n\\\"1\",resource=\"cpu_mcores\"} 6\n"),
            std::string::npos);
  EXPECT_NE(text.find("bourse_event_streams 7\n"), std::string::npos);
  auto samples = ParseExposition(text);
  EXPECT_EQ(samples.at("bourse_event_streams"), "7");
}

}  // namespace
}  // namespace bourse::broker::testing
