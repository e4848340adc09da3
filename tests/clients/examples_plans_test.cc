// The example services' decisions (clients/examples/plans.h): lease and
// renewal windows of the CDN, the rounds the measurement service bids on and
// its bid, the nodes the batch service bids on, the markets and round offers
// of the operator. The programs around them are run end to end by the
// testbed's system test.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "clients/examples/plans.h"
#include "core/json_codec.h"

namespace bourse::examples {
namespace {

using nlohmann::json;

constexpr int64_t kP = 600;
constexpr int64_t kT0 = 1'800'000'000;  // a multiple of 600, i.e. a period boundary

core::ResourceVector Res(const char* text) { return core::ResourceVector::Parse(text).value(); }
json ResJson(const char* text) { return core::ResourceVectorToJson(Res(text)); }
core::Money M(const char* text) { return core::Money::Parse(text).value(); }

TEST(ExamplePeriods, AlignToMultiplesOfThePeriod) {
  EXPECT_EQ(PeriodStart(kT0, kP), kT0);
  EXPECT_EQ(PeriodEnd(kT0, kP), kT0 + kP);
  EXPECT_EQ(PeriodStart(kT0 + 599, kP), kT0);
  EXPECT_EQ(PeriodEnd(kT0 + 599, kP), kT0 + kP);
  EXPECT_EQ(PeriodStart(kT0 + 600, kP), kT0 + kP);
}

TEST(ExampleCdn, FirstLeaseRunsToThePeriodsEndOrThroughTheNext) {
  EXPECT_EQ(FirstLease(kT0 + 100, kP), (core::Interval{kT0 + 100, kT0 + kP}));
  EXPECT_EQ(FirstLease(kT0 + kP - kMinLeaseS, kP),
            (core::Interval{kT0 + kP - kMinLeaseS, kT0 + kP}));
  // Less than a minute left: an RFQ would barely be awarded before it ends.
  EXPECT_EQ(FirstLease(kT0 + kP - 59, kP), (core::Interval{kT0 + kP - 59, kT0 + 2 * kP}));
}

TEST(ExampleCdn, RenewalIsTheNextWholePeriod) {
  EXPECT_EQ(Renewal(kT0 + kP, kP), (core::Interval{kT0 + kP, kT0 + 2 * kP}));
  // A lease that ended off the grid is renewed to the end of its period.
  EXPECT_EQ(Renewal(kT0 + 30, kP), (core::Interval{kT0 + 30, kT0 + kP}));
  EXPECT_EQ(RenewLead(600), 200);
  EXPECT_EQ(RenewLead(30), 20);
  EXPECT_EQ(RenewLead(86400), 300);
}

TEST(ExampleCdn, PlanLeasesRenewsOrWaits) {
  const int64_t now = kT0 + 100;
  EXPECT_EQ(PlanCdn(now, kP, 0, false), CdnStep::kLease);
  EXPECT_EQ(PlanCdn(now, kP, now, false), CdnStep::kLease);  // ends this second
  EXPECT_EQ(PlanCdn(now, kP, 0, true), CdnStep::kWaitForRfq);
  EXPECT_EQ(PlanCdn(now, kP, kT0 + kP, true), CdnStep::kWaitForRfq);
  EXPECT_EQ(PlanCdn(now, kP, now + RenewLead(kP), false), CdnStep::kRenew);
  EXPECT_EQ(PlanCdn(now, kP, now + RenewLead(kP) + 1, false), CdnStep::kIdle);
}

TEST(ExampleCdn, CoveredUntilCountsLiveBindingsOnly) {
  json bindings = {{"slice", "mit_cdn"},
                   {"bindings",
                    {{{"leaf", "a"}, {"state", "redeemed"}, {"not_after", kT0 + 600}},
                     {{"leaf", "b"}, {"state", "scheduled"}, {"not_after", kT0 + 1200}},
                     {{"leaf", "c"}, {"state", "refused"}, {"not_after", kT0 + 9000}},
                     {{"leaf", "d"}, {"state", "expired"}, {"not_after", kT0 + 9000}}}}};
  EXPECT_EQ(CoveredUntil(bindings), kT0 + 1200);
  EXPECT_EQ(CoveredUntil(json{{"bindings", json::array()}}), 0);
  EXPECT_EQ(CoveredUntil(json()), 0);
}

TEST(ExampleCdn, UnboundAwardsAreTheAwardedLeavesNotBoundYet) {
  // GET /v1/rfqs lists newest first.
  json rfqs = {
      {"rfqs",
       {{{"id", "r3"}, {"state", "awarded"}, {"not_after", kT0 + 1200}, {"rcaps", {"x1", "x2"}}},
        {{"id", "r2"}, {"state", "failed"}, {"not_after", kT0 + 1200}, {"rcaps", json::array()}},
        {{"id", "r1"}, {"state", "awarded"}, {"not_after", kT0 + 600}, {"rcaps", {"y1", "y2"}}},
        {{"id", "r0"}, {"state", "awarded"}, {"not_after", kT0}, {"rcaps", {"old"}}}}}};
  json bindings = {{"bindings", {{{"leaf", "y1"}, {"state", "redeemed"}}}}};
  EXPECT_EQ(UnboundAwards(rfqs, bindings, kT0 + 10), (std::vector<std::string>{"y2", "x1", "x2"}));
  // Once its window is over an award is not bound any more.
  EXPECT_EQ(UnboundAwards(rfqs, bindings, kT0 + 600), (std::vector<std::string>{"x1", "x2"}));
}

TEST(ExampleCdn, RequestBodies) {
  Rspec want{.res = Res("cpu_mcores=500,mem_mib=512"),
             .nodes = 3,
             .min_sites = 2,
             .window = {kT0 + 100, kT0 + 600}};
  EXPECT_EQ(RfqBody(want, M("20"), kT0 + 112), (json{{"res", ResJson("cpu_mcores=500,mem_mib=512")},
                                                     {"nodes", 3},
                                                     {"min_sites", 2},
                                                     {"not_before", kT0 + 100},
                                                     {"not_after", kT0 + 600},
                                                     {"max_price", "20.000000000"},
                                                     {"close", kT0 + 112},
                                                     {"award", "auto"}}));
  EXPECT_EQ(AcquireBody(want, M("20")), (json{{"rspec",
                                               {{"res", ResJson("cpu_mcores=500,mem_mib=512")},
                                                {"nodes", 3},
                                                {"min_sites", 2},
                                                {"not_before", kT0 + 100},
                                                {"not_after", kT0 + 600}}},
                                              {"max_price", "20.000000000"},
                                              {"fallback", "rfq"}}));
}

json Offer(const char* node, const char* site, const char* res) {
  return {{"rcap", std::string("rd.") + node},
          {"from", "pool"},
          {"node", node},
          {"site", site},
          {"res", ResJson(res)}};
}

json RoundOf(json offers) {
  return {{"id", "rd_1"}, {"state", "open"}, {"close", kT0 + 15}, {"offers", std::move(offers)}};
}

TEST(ExampleMeasure, RoundsToBidAreOpenUnseenAndBeforeTheirClose) {
  json rounds = {{"rounds",
                  {{{"id", "c"}, {"state", "open"}, {"close", kT0 + 20}},
                   {{"id", "b"}, {"state", "open"}, {"close", kT0 + 10}},
                   {{"id", "a"}, {"state", "open"}, {"close", kT0}},
                   {{"id", "z"}, {"state", "cleared"}, {"close", kT0 + 20}}}}};
  std::vector<json> got = RoundsToBid(rounds, {}, kT0);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["id"], "b");  // oldest first
  EXPECT_EQ(got[1]["id"], "c");
  EXPECT_EQ(RoundsToBid(rounds, {"b"}, kT0).size(), 1u);
}

TEST(ExampleMeasure, BidIsCountXorTwoNodesOfDifferentSites) {
  json round = RoundOf({Offer("m1", "mit", "cpu_mcores=1000,mem_mib=1024"),
                        Offer("m2", "mit", "cpu_mcores=50"),  // too small: left out
                        Offer("m3", "mit", "cpu_mcores=1000,mem_mib=1024"),
                        Offer("u1", "ucb", "cpu_mcores=1000,mem_mib=1024")});
  Rspec want{.res = Res("cpu_mcores=100,mem_mib=128"), .nodes = 2, .min_sites = 2, .window = {}};
  std::string why;
  std::optional<json> bid = RoundBid(round, want, M("5"), &why);
  ASSERT_TRUE(bid) << why;
  json res = ResJson("cpu_mcores=100,mem_mib=128");
  EXPECT_EQ(
      *bid,
      (json{{"limit", "5.000000000"},
            {"bundles",
             {{{"count", 2}, {"from", {"m1", "m3", "u1"}}, {"min_sites", 2}, {"res", res}},
              {{"items", {{{"node", "m1"}, {"res", res}}, {{"node", "u1"}, {"res", res}}}}}}}}));
}

TEST(ExampleMeasure, BundlesTheOffersCannotServeAreLeftOut) {
  Rspec want{.res = Res("cpu_mcores=100"), .nodes = 3, .min_sites = 2, .window = {}};
  std::string why;
  // Two fitting nodes in two sites: no count bundle of 3, the pair remains.
  json two = RoundOf({Offer("m1", "mit", "cpu_mcores=100"), Offer("u1", "ucb", "cpu_mcores=100")});
  std::optional<json> bid = RoundBid(two, want, M("1"), &why);
  ASSERT_TRUE(bid);
  ASSERT_EQ((*bid)["bundles"].size(), 1u);
  EXPECT_TRUE((*bid)["bundles"][0].contains("items"));
  // One site only: the count bundle (min_sites 1) but no pair of sites.
  want.nodes = 2;
  want.min_sites = 1;
  json one = RoundOf({Offer("m1", "mit", "cpu_mcores=100"), Offer("m2", "mit", "cpu_mcores=100")});
  bid = RoundBid(one, want, M("1"), &why);
  ASSERT_TRUE(bid);
  ASSERT_EQ((*bid)["bundles"].size(), 1u);
  EXPECT_EQ((*bid)["bundles"][0]["count"], 2);
  // Nothing fits: no bid, and why.
  want.res = Res("cpu_mcores=101");
  EXPECT_FALSE(RoundBid(one, want, M("1"), &why));
  EXPECT_NE(why.find("0 offered node(s)"), std::string::npos) << why;
}

TEST(ExampleMeasure, UnboundWinsAreMineNotBoundAndNotEnded) {
  json rounds = {
      {"rounds",
       {{{"id", "rd_2"},
         {"state", "cleared"},
         {"not_after", kT0 + 600},
         {"result",
          {{"winners",
            {{{"bid", "b1"}, {"bidder", "me"}, {"nodes", {"m1", "u1"}}, {"rcaps", {"w1", "w2"}}},
             {{"bid", "b2"}, {"bidder", "you"}, {"nodes", {"m3"}}, {"rcaps", {"w3"}}}}}}}},
        {{"id", "rd_1"},
         {"state", "cleared"},
         {"not_after", kT0},
         {"result", {{"winners", {{{"bidder", "me"}, {"nodes", {"m1"}}, {"rcaps", {"old"}}}}}}}}}}};
  json bindings = {{"bindings", {{{"leaf", "w1"}, {"state", "active"}}}}};
  std::vector<Won> won = UnboundWins(rounds, "me", bindings, kT0);
  ASSERT_EQ(won.size(), 1u);
  EXPECT_EQ(won[0].round, "rd_2");
  EXPECT_EQ(won[0].rcap, "w2");
  EXPECT_EQ(won[0].node, "u1");
}

TEST(ExampleBatch, NodesNeedingABidHaveNoActiveBidOfTheSlice) {
  json bids = {{"bids",
                {{{"node", "n1"}, {"slice", "mit_batch"}, {"state", "active"}},
                 {{"node", "n2"}, {"slice", "mit_batch"}, {"state", "exhausted"}},
                 {{"node", "n3"}, {"slice", "mit_other"}, {"state", "active"}}}}};
  EXPECT_EQ(NodesNeedingShareBid({"n1", "n2", "n3", "n4"}, bids, "mit_batch"),
            (std::vector<std::string>{"n2", "n3", "n4"}));
}

TEST(ExampleBatch, NodeListAndShareRow) {
  EXPECT_EQ(ParseNodeList("all").value(), std::vector<std::string>{});
  EXPECT_EQ(ParseNodeList("n1,n2").value(), (std::vector<std::string>{"n1", "n2"}));
  for (const char* bad : {"", "n1,,n2", "n1,", "all,n1"}) {
    EXPECT_EQ(ParseNodeList(bad).status().code(), core::StatusCode::kInvalidArgument) << bad;
  }
  json table = {{"node", "n1"},
                {"shares",
                 {{{"slice", "a_x"}, {"cpu_weight", 2500}, {"net_kbps", 100}},
                  {{"slice", "mit_batch"}, {"cpu_weight", 7500}, {"net_kbps", 300}}}}};
  EXPECT_EQ(SliceShare(table, "mit_batch")["cpu_weight"], 7500);
  EXPECT_TRUE(SliceShare(table, "mit_none").is_null());
}

json Market(const char* node, int64_t nb, const char* unit, const char* state = "open") {
  return {{"id", "mk"},       {"node", node},         {"unit", ResJson(unit)},
          {"not_before", nb}, {"not_after", nb + kP}, {"state", state}};
}

TEST(ExampleOperator, MarketsOfTheCurrentAndNextPeriodPerNode) {
  const core::ResourceVector unit = Res("cpu_mcores=100,mem_mib=128");
  const int64_t now = kT0 + 100;
  std::vector<MarketSpec> all =
      MissingMarkets({"n1", "n2"}, json{{"markets", json::array()}}, unit, kP, now);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].node, "n1");
  EXPECT_EQ(all[0].window, (core::Interval{kT0, kT0 + kP}));
  EXPECT_EQ(all[0].close, kT0 + kP - kMarketCloseBeforeEndS);
  EXPECT_EQ(all[1].window, (core::Interval{kT0 + kP, kT0 + 2 * kP}));
  EXPECT_EQ(all[3].node, "n2");

  json markets = {{"markets",
                   {Market("n1", kT0, "cpu_mcores=100,mem_mib=128"),
                    Market("n1", kT0 + kP, "cpu_mcores=200"),  // another unit: not ours
                    Market("n2", kT0 + kP, "cpu_mcores=100,mem_mib=128", "closed")}}};
  std::vector<MarketSpec> missing = MissingMarkets({"n1", "n2"}, markets, unit, kP, now);
  ASSERT_EQ(missing.size(), 3u);
  EXPECT_EQ(missing[0].node, "n1");
  EXPECT_EQ(missing[0].window.not_before, kT0 + kP);
  EXPECT_EQ(missing[1].node, "n2");
  EXPECT_EQ(missing[2].window.not_before, kT0 + kP);

  // In the last minute of a period its market no longer trades: only the next one.
  std::vector<MarketSpec> late = MissingMarkets({"n1"}, json::object(), unit, kP, kT0 + kP - 60);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].window.not_before, kT0 + kP);
  EXPECT_EQ(MarketBody(late[0], unit), (json{{"node", "n1"},
                                             {"unit", ResJson("cpu_mcores=100,mem_mib=128")},
                                             {"not_before", kT0 + kP},
                                             {"not_after", kT0 + 2 * kP},
                                             {"close", kT0 + 2 * kP - 60}}));
}

TEST(ExampleOperator, RoundWindowIsTheRestOfThePeriodOrTheNext) {
  EXPECT_EQ(RoundWindow(kT0 + 115, kP), (core::Interval{kT0 + 115, kT0 + kP}));
  EXPECT_EQ(RoundWindow(kT0 + kP - kMinRoundWindowS, kP),
            (core::Interval{kT0 + kP - kMinRoundWindowS, kT0 + kP}));
  EXPECT_EQ(RoundWindow(kT0 + kP - 59, kP), (core::Interval{kT0 + kP, kT0 + 2 * kP}));
}

TEST(ExampleOperator, PoolChainsAreHeldByTheBrokerAllTheWay) {
  json pool = {{{"holder", "B"}}, {{"holder", "B"}}};
  json sold_escrow = {{{"holder", "agent"}}, {{"holder", "B"}}};
  EXPECT_TRUE(IsPoolChain(pool, "B"));
  EXPECT_FALSE(IsPoolChain(sold_escrow, "B"));
  EXPECT_FALSE(IsPoolChain(json::array(), "B"));
}

TEST(ExampleOperator, OneOfferPerNodeTheShallowestWithSomethingFree) {
  std::vector<OfferCandidate> c = {
      {.rcap = "root1", .node = "n1", .depth = 1, .free = {}},  // all escrowed already
      {.rcap = "rd_2.n1", .node = "n1", .depth = 3, .free = Res("cpu_mcores=300")},
      {.rcap = "rd_1.n1", .node = "n1", .depth = 2, .free = Res("cpu_mcores=100")},
      {.rcap = "deep", .node = "n2", .depth = kMaxOfferDepth + 1, .free = Res("cpu_mcores=1")},
      {.rcap = "root3", .node = "n3", .depth = 1, .free = Res("net_min_kbps=10,net_max_kbps=10")},
      {.rcap = "ceiling", .node = "n4", .depth = 1, .free = Res("net_max_kbps=10")}};
  EXPECT_EQ(ChooseOffers(c), (std::vector<std::string>{"rd_1.n1", "root3"}));
  EXPECT_TRUE(ChooseOffers({}).empty());
}

TEST(ExampleOperator, RefusedOfferIsTheOneTheMessageNames) {
  std::vector<std::string> offers = {"a", "b", "c"};
  EXPECT_EQ(RefusedOffer("HTTP 409: offers[1]: rcap b is escrowed for resting order 7", offers),
            "b");
  EXPECT_EQ(RefusedOffer("HTTP 409: offers[3]: out of range", offers), "");
  EXPECT_EQ(RefusedOffer("HTTP 409: offers[x]", offers), "");
  EXPECT_EQ(RefusedOffer("HTTP 400: close: is in the past", offers), "");
}

}  // namespace
}  // namespace bourse::examples
