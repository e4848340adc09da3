// The event-stream parser (clients/sse.h), fed whole and byte by byte, and
// what `bourse watch` renders from events (clients/watch.h).
#include "clients/sse.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "clients/watch.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

struct Got {
  std::vector<SseEvent> events;
  core::Status status;
};

// Parses `text` in one Feed, or one byte per Feed.
Got Parse(const std::string& text, bool bytewise, SseParserOptions o = {}) {
  SseParser p(o);
  Got g;
  auto on = [&](const SseEvent& e) { g.events.push_back(e); };
  if (!bytewise) {
    g.status = p.Feed(text, on);
    return g;
  }
  for (char c : text) {
    g.status = p.Feed(std::string_view(&c, 1), on);
    if (!g.status.ok()) break;
  }
  return g;
}

class SseParserTest : public ::testing::TestWithParam<bool> {};

TEST_P(SseParserTest, FieldsCommentsAndEndings) {
  const std::string text =
      "\xEF\xBB\xBF: bourse events\r\n"
      "retry: 2000\n"
      "\n"
      "id: 7\r"
      "event: trade\r"
      "data: {\"qty\":1}\r"
      "\r"
      "id:8\r\n"
      "event:book\r\n"
      "data:line one\r\n"
      "data\r\n"
      "data:  two spaces\r\n"
      "\r\n"
      ": keep-alive\n"
      "data: no id or type\n"
      "unknown: ignored\n"
      "\n"
      "event: dropped\n"
      "\n"
      "id: 9\n"
      "data: cut off at the end";
  Got g = Parse(text, GetParam());
  ASSERT_TRUE(g.status.ok()) << g.status.message();
  ASSERT_EQ(g.events.size(), 3u);
  EXPECT_EQ(g.events[0].id, "7");
  EXPECT_EQ(g.events[0].type, "trade");
  EXPECT_EQ(g.events[0].data, "{\"qty\":1}");
  EXPECT_EQ(g.events[1].id, "8");
  EXPECT_EQ(g.events[1].type, "book");
  EXPECT_EQ(g.events[1].data, "line one\n\n two spaces");
  EXPECT_EQ(g.events[2].id, "8");  // the last id carries over
  EXPECT_EQ(g.events[2].type, "message");
  EXPECT_EQ(g.events[2].data, "no id or type");
}

TEST_P(SseParserTest, KeepsRetryCommentsAndTheLastIdAcrossAReset) {
  SseParser p;
  std::vector<SseEvent> got;
  auto on = [&](const SseEvent& e) { got.push_back(e); };
  std::string text = std::string(": hi\nretry: 1500\nretry: x1\nid: 41\ndata: a\n\nid: bad") +
                     '\0' + "id\ndata: b\n\n";
  if (GetParam()) {
    for (char c : text) ASSERT_TRUE(p.Feed(std::string_view(&c, 1), on).ok());
  } else {
    ASSERT_TRUE(p.Feed(text, on).ok());
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].id, "41");  // an id holding a NUL is ignored
  EXPECT_EQ(p.retry_ms(), 1500);
  EXPECT_EQ(p.comments(), 1);
  ASSERT_TRUE(p.Feed("data: partial", on).ok());
  p.Reset();
  ASSERT_TRUE(p.Feed("\ndata: c\n\n", on).ok());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].data, "c");
  EXPECT_EQ(p.last_event_id(), "41");
}

TEST_P(SseParserTest, BoundsLinesAndData) {
  SseParserOptions o{.max_line = 32, .max_data = 64};
  Got ok = Parse("data: " + std::string(26, 'x') + "\n\n", GetParam(), o);
  ASSERT_TRUE(ok.status.ok()) << ok.status.message();
  EXPECT_EQ(ok.events.size(), 1u);
  Got line = Parse("data: " + std::string(27, 'x') + "\n\n", GetParam(), o);
  EXPECT_EQ(line.status.code(), core::StatusCode::kResourceExhausted);
  EXPECT_TRUE(line.events.empty());
  Got noend = Parse(std::string(100, 'x'), GetParam(), o);
  EXPECT_EQ(noend.status.code(), core::StatusCode::kResourceExhausted);
  std::string many;
  for (int i = 0; i < 4; ++i) many += "data: " + std::string(20, 'y') + "\n";
  Got data = Parse(many + "\n", GetParam(), o);
  EXPECT_EQ(data.status.code(), core::StatusCode::kResourceExhausted);
  EXPECT_TRUE(data.events.empty());
}

INSTANTIATE_TEST_SUITE_P(WholeAndBytewise, SseParserTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Bytewise" : "Whole"; });

SseEvent Ev(const std::string& id, const std::string& type, const json& data) {
  return {.id = id, .type = type, .data = data.dump()};
}

TEST(WatchViewTest, MarketViewKeepsTopLevelsAndTheLastTrades) {
  MarketWatch v("mkt_1");
  json bids = json::array(), asks = json::array();
  for (int i = 0; i < 15; ++i) {
    bids.push_back({{"price", std::to_string(50 - i)}, {"qty", i + 1}, {"orders", 1}});
    asks.push_back({{"price", std::to_string(60 + i)}, {"qty", 2}, {"orders", 1}});
  }
  v.SetBook({{"bids", bids}, {"asks", asks}});
  std::string r = v.Render(false);
  EXPECT_EQ(r.find("\x1b["), std::string::npos);
  EXPECT_NE(r.find(" 41 "), std::string::npos);  // the 10th bid
  EXPECT_EQ(r.find(" 40 "), std::string::npos);  // the 11th is not shown
  EXPECT_NE(r.find(" 69 "), std::string::npos);
  EXPECT_EQ(r.find(" 70 "), std::string::npos);
  // The asks print highest first, above the bids.
  EXPECT_LT(r.find(" 69 "), r.find(" 60 "));
  EXPECT_LT(r.find(" 60 "), r.find(" 50 "));

  EXPECT_FALSE(v.Apply(Ev("5", "trade", {{"market", "mkt_2"}, {"qty", 1}})));
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(v.Apply(Ev(std::to_string(10 + i), "trade",
                           {{"market", "mkt_1"},
                            {"qty", i + 100},
                            {"price", "1.5"},
                            {"buy", 1},
                            {"sell", 2},
                            {"ts", 1'765'000'000'000}})));
  }
  ASSERT_EQ(v.trades().size(), MarketWatch::kTrades);
  EXPECT_EQ(v.trades().front()["qty"], 111);  // newest first
  EXPECT_EQ(v.trades().back()["qty"], 102);
  ASSERT_TRUE(v.Apply(Ev("22", "book",
                         {{"market", "mkt_1"},
                          {"bids", {{{"price", "3"}, {"qty", 4}, {"orders", 2}}}},
                          {"asks", json::array()}})));
  r = v.Render(true);
  EXPECT_EQ(r.rfind("\x1b[H\x1b[2J", 0), 0u);
  EXPECT_NE(r.find("(event 22)"), std::string::npos);
  EXPECT_EQ(r.find(" 41 "), std::string::npos);  // the new snapshot replaced the book
  EXPECT_NE(r.find("2025-12-06T05:46:40Z"), std::string::npos);
  EXPECT_EQ(MarketWatch::EventLine(Ev("22", "book",
                                      {{"market", "mkt_1"},
                                       {"bids", {{{"price", "3"}, {"qty", 4}}}},
                                       {"asks", json::array()}})),
            "book bid 3 x 4 | ask - (id 22)");
  EXPECT_EQ(MarketWatch::EventLine(Ev("9", "trade",
                                      {{"market", "mkt_1"},
                                       {"qty", 2},
                                       {"price", "2.25"},
                                       {"buy", 7},
                                       {"sell", 3},
                                       {"ts", 1'765'000'000'000}})),
            "2025-12-06T05:46:40Z trade 2 @ 2.25 (buy 7, sell 3, id 9)");
}

TEST(WatchViewTest, LinesForHeadsBindingsAndJson) {
  EXPECT_EQ(HeadLine({{"size", 42},
                      {"root", "0123456789abcdef0123456789abcdef"},
                      {"ts", 1'765'000'000'000},
                      {"sig", "x"}}),
            "2025-12-06T05:46:40Z head size=42 root=0123456789abcdef...");
  EXPECT_EQ(BindingLine({{"state", "expired"},
                         {"rcap", {{"id", "r1"}}},
                         {"slice", "mit_web"},
                         {"node", "n1"},
                         {"ts", 1'765'000'000'000}}),
            "2025-12-06T05:46:40Z expired rcap=r1 node=n1 slice=mit_web");
  EXPECT_EQ(BindingLine({{"state", "refused"},
                         {"rcap", "r2"},
                         {"slice", "mit_web"},
                         {"node", "n1"},
                         {"reason", "oversubscribed"},
                         {"detail", "cpu"},
                         {"ts", 0}}),
            "1970-01-01T00:00:00Z refused rcap=r2 node=n1 slice=mit_web oversubscribed: cpu");
  EXPECT_EQ(JsonLine(Ev("12", "head", {{"size", 12}})),
            R"({"data":{"size":12},"event":"head","id":12})");
  EXPECT_EQ(JsonLine({.id = "", .type = "message", .data = "not json"}),
            R"({"data":"not json","event":"message","id":""})");
  EXPECT_EQ(WatchPath({WatchKind::kMarket, "mkt 1"}),
            "/v1/events?topics=trades,book&market=mkt%201");
  EXPECT_EQ(WatchPath({WatchKind::kSlice, "mit_web"}), "/v1/events?topics=bindings&slice=mit_web");
  EXPECT_EQ(WatchPath({WatchKind::kLedger, ""}), "/v1/events?topics=ledger");
}

}  // namespace
}  // namespace bourse::clients
