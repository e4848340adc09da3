// The agent's side of RFQs (clients/agent/agent_rfq.cc, docs/agent.md "Answering RFQs"):
// PlaceRspec, the placement of an rspec on its holdings (round-robin over sites, tightest fit,
// min_sites, free capacity over the window), and NextRfqStep, what it does on an open RFQ
// (keep, withdraw, quote again after a withdrawal, up to kMaxQuotesPerRfq quotes).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "clients/agent/agent.h"
#include "core/keys.h"

namespace bourse::agent {
namespace {

using nlohmann::json;

constexpr int64_t kT0 = 1'800'000'000;
const core::Interval kWindow{.not_before = kT0 + 3600, .not_after = kT0 + 7200};

core::ResourceVector Cpu(int64_t mcores) {
  core::ResourceVector r;
  r.cpu_mcores = mcores;
  return r;
}

// An rcap (unsigned: PlaceRspec reads only node, res and interval).
ledger::Rcap MakeRcap(const std::string& id, const std::string& node, int64_t mcores,
                      const core::Interval& iv) {
  static const core::PublicKey key = core::PrivateKey::Generate().value().public_key();
  return ledger::Rcap{id, key, key, node, Cpu(mcores), iv, std::nullopt, {}};
}

// A held root rcap of `mcores` on `node` at `site`, over [kT0, kT0 + 1 day).
Held Holding(const std::string& id, const std::string& node, const std::string& site,
             int64_t mcores) {
  return Held{.rcap = MakeRcap(id, node, mcores, {.not_before = kT0, .not_after = kT0 + 86400}),
              .children = {},
              .site = site};
}

std::vector<std::string> Ids(const std::vector<Held*>& place) {
  std::vector<std::string> out;
  for (const Held* h : place) out.push_back(h->rcap.id);
  return out;
}

std::map<std::string, int> PerSite(const std::vector<Held*>& place) {
  std::map<std::string, int> out;
  for (const Held* h : place) ++out[h->site];
  return out;
}

TEST(AgentRfqTest, PlaceRspecSpreadsNodesRoundRobinOverSites) {
  std::vector<Held> hs = {Holding("a1", "na1", "a", 1000), Holding("a2", "na2", "a", 1000),
                          Holding("a3", "na3", "a", 1000), Holding("b1", "nb1", "b", 1000),
                          Holding("c1", "nc1", "c", 1000), Holding("c2", "nc2", "c", 1000)};
  std::vector<Held*> three = PlaceRspec(hs, Cpu(1000), 3, 1, kWindow, Cpu(1000));
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(PerSite(three), (std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}}));
  // Five nodes: b has one, so a and c take two each (never three on one site).
  std::vector<Held*> five = PlaceRspec(hs, Cpu(1000), 5, 3, kWindow, Cpu(1000));
  ASSERT_EQ(five.size(), 5u);
  EXPECT_EQ(PerSite(five), (std::map<std::string, int>{{"a", 2}, {"b", 1}, {"c", 2}}));
  std::set<std::string> nodes;
  for (const Held* h : five) nodes.insert(h->rcap.node);
  EXPECT_EQ(nodes.size(), 5u);  // distinct nodes
}

TEST(AgentRfqTest, PlaceRspecUsesTheTightestHoldingOfANode) {
  std::vector<Held> hs = {Holding("big", "n1", "a", 8000), Holding("tight", "n1", "a", 1000),
                          Holding("mid", "n1", "a", 3000)};
  EXPECT_EQ(Ids(PlaceRspec(hs, Cpu(1000), 1, 1, kWindow, Cpu(1000))),
            std::vector<std::string>{"tight"});
  // Between nodes of a site too: the tightest first.
  std::vector<Held> two = {Holding("roomy", "n1", "a", 4000), Holding("snug", "n2", "a", 2000)};
  EXPECT_EQ(Ids(PlaceRspec(two, Cpu(1000), 1, 1, kWindow, Cpu(1000))),
            std::vector<std::string>{"snug"});
}

TEST(AgentRfqTest, PlaceRspecIsEmptyBelowMinSites) {
  std::vector<Held> hs = {Holding("a1", "na1", "a", 1000), Holding("a2", "na2", "a", 1000),
                          Holding("a3", "na3", "a", 1000)};
  EXPECT_EQ(PlaceRspec(hs, Cpu(1000), 2, 1, kWindow, Cpu(1000)).size(), 2u);
  EXPECT_TRUE(PlaceRspec(hs, Cpu(1000), 2, 2, kWindow, Cpu(1000)).empty());
}

TEST(AgentRfqTest, PlaceRspecIsEmptyWithoutEnoughNodes) {
  // Two holdings on one node count as one node.
  std::vector<Held> hs = {Holding("a1", "na1", "a", 1000), Holding("a1b", "na1", "a", 1000),
                          Holding("b1", "nb1", "b", 1000)};
  EXPECT_EQ(PlaceRspec(hs, Cpu(1000), 2, 1, kWindow, Cpu(1000)).size(), 2u);
  EXPECT_TRUE(PlaceRspec(hs, Cpu(1000), 3, 1, kWindow, Cpu(1000)).empty());
  std::vector<Held> none;
  EXPECT_TRUE(PlaceRspec(none, Cpu(1000), 1, 1, kWindow, Cpu(1000)).empty());
}

TEST(AgentRfqTest, PlaceRspecSkipsAHoldingWhoseFreeCapacityDoesNotCoverRes) {
  // n1's holding has 2000 mcores, but a child uses 1500 of it during the window: 500 free.
  Held used = Holding("used", "n1", "a", 2000);
  used.children.push_back(
      MakeRcap("child", "n1", 1500,
               {.not_before = kWindow.not_before + 600, .not_after = kWindow.not_after}));
  // n2's holding is too small; n3's does not span the window.
  Held small = Holding("small", "n2", "a", 900);
  Held early = Holding("early", "n3", "a", 4000);
  early.rcap.interval = {.not_before = kT0, .not_after = kWindow.not_after - 1};
  std::vector<Held> hs = {used, small, early};
  EXPECT_TRUE(PlaceRspec(hs, Cpu(1000), 1, 1, kWindow, Cpu(1000)).empty());
  // Outside the child's interval the whole 2000 is free.
  const core::Interval before{.not_before = kT0, .not_after = kT0 + 3600};
  EXPECT_EQ(Ids(PlaceRspec(hs, Cpu(1000), 1, 1, before, Cpu(1000))),
            std::vector<std::string>{"used"});
  hs.push_back(Holding("fits", "n4", "b", 1000));
  EXPECT_EQ(Ids(PlaceRspec(hs, Cpu(1000), 1, 1, kWindow, Cpu(1000))),
            std::vector<std::string>{"fits"});
}

const std::string kMe = "ed25519:me";

json Rfq(const std::vector<std::pair<std::string, std::string>>& quotes) {
  json qs = json::array();
  int n = 0;
  for (const auto& [seller, state] : quotes) {
    qs.push_back({{"id", "q" + std::to_string(++n)}, {"seller", seller}, {"state", state}});
  }
  return {{"id", "r1"}, {"state", "open"}, {"buyer", "ed25519:buyer"}, {"quotes", qs}};
}

TEST(AgentRfqTest, NextRfqStepQuotesAnRfqItHasNotQuoted) {
  EXPECT_EQ(NextRfqStep(Rfq({}), kMe, false), RfqStep::kQuote);
  EXPECT_EQ(NextRfqStep(Rfq({}), kMe, true), RfqStep::kKeep);
  EXPECT_EQ(NextRfqStep(Rfq({{"ed25519:other", "open"}}), kMe, false), RfqStep::kQuote);
}

TEST(AgentRfqTest, NextRfqStepKeepsOrWithdrawsItsOpenQuote) {
  EXPECT_EQ(NextRfqStep(Rfq({{kMe, "open"}}), kMe, false), RfqStep::kKeep);
  EXPECT_EQ(NextRfqStep(Rfq({{kMe, "open"}}), kMe, true), RfqStep::kWithdraw);
  EXPECT_EQ(NextRfqStep(Rfq({{kMe, "withdrawn"}, {kMe, "open"}}), kMe, true), RfqStep::kWithdraw);
}

TEST(AgentRfqTest, NextRfqStepQuotesAgainAfterItWithdrew) {
  EXPECT_EQ(NextRfqStep(Rfq({{kMe, "withdrawn"}}), kMe, false), RfqStep::kQuote);
  EXPECT_EQ(NextRfqStep(Rfq({{kMe, "withdrawn"}}), kMe, true), RfqStep::kKeep);
  // A lost (or won) quote: the RFQ is settled, nothing to do.
  EXPECT_EQ(NextRfqStep(Rfq({{kMe, "withdrawn"}, {kMe, "lost"}}), kMe, false), RfqStep::kKeep);
}

TEST(AgentRfqTest, NextRfqStepStopsAtItsBoundOfQuotesPerRfq) {
  std::vector<std::pair<std::string, std::string>> quotes;
  for (int64_t i = 0; i + 1 < kMaxQuotesPerRfq; ++i) quotes.push_back({kMe, "withdrawn"});
  // Other sellers' quotes do not count.
  for (int i = 0; i < 10; ++i) quotes.push_back({"ed25519:other", "withdrawn"});
  EXPECT_EQ(NextRfqStep(Rfq(quotes), kMe, false), RfqStep::kQuote);
  quotes.push_back({kMe, "withdrawn"});
  EXPECT_EQ(NextRfqStep(Rfq(quotes), kMe, false), RfqStep::kAtBound);
  EXPECT_EQ(NextRfqStep(Rfq(quotes), kMe, true), RfqStep::kKeep);
  // The fifth quote, still open, stands and can still be withdrawn.
  quotes.back().second = "open";
  EXPECT_EQ(NextRfqStep(Rfq(quotes), kMe, false), RfqStep::kKeep);
  EXPECT_EQ(NextRfqStep(Rfq(quotes), kMe, true), RfqStep::kWithdraw);
}

}  // namespace
}  // namespace bourse::agent
