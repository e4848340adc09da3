// acquire(rspec) that users can satisfy (issue #17): markets whose window
// covers the request, amounts rounded up to whole units and said so, chains
// narrowed to exactly the request by a broker delegation, a lower
// net_max_kbps served, and refusals that name what fell short.
#include <gtest/gtest.h>

#include "core/money.h"
#include "ledger/redemption_book.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class MarketAcquireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.SetupSites();
    now_ = core::SystemClock::Get().NowSeconds();
    base_ = now_ + 3600;
    alice_ = env_.AddUser("alice", "1000", "mit");
  }
  // A root rcap on `node` granted to the broker's pool, with net_max_kbps.
  ledger::Rcap Pool(const std::string& node, int64_t net_max = 0) {
    const core::PrivateKey& pi = node == "n2" ? env_.pi2_ : env_.pi_;
    auto root = ledger::IssueRoot(
        pi, {.id = "",
             .holder = env_.broker_->broker_key(),
             .node = node,
             .res = {.cpu_mcores = 4000, .mem_mib = 4096, .net_max_kbps = net_max},
             .interval = {now_, now_ + 86400}});
    EXPECT_TRUE(root.ok());
    env_.Ok(pi, "POST", "/v1/grants", {{"rcap", root->ToJson()}});
    return *root;
  }
  std::string Market(const std::string& node, const json& unit, int64_t nb, int64_t na) {
    return env_.Ok(
        env_.admin_, "POST", "/v1/markets",
        {{"node", node}, {"unit", unit}, {"not_before", nb}, {"not_after", na}})["market"]["id"];
  }
  void Sell(const std::string& market, const ledger::Rcap& pool, int64_t qty,
            const std::string& price) {
    env_.Ok(env_.admin_, "POST", "/v1/markets/" + market + "/orders",
            {{"side", "sell"}, {"qty", qty}, {"price", price}, {"rcap", pool.id}});
  }
  json Rspec(const json& res, int64_t nodes, int64_t min_sites, int64_t nb, int64_t na) {
    return {{"res", res},
            {"nodes", nodes},
            {"min_sites", min_sites},
            {"not_before", nb},
            {"not_after", na}};
  }
  core::Result<json> Acquire(const core::PrivateKey& who, const json& rspec,
                             const std::string& max_price) {
    auto c = env_.C(who);
    return c.Call("POST", "/v1/acquire", {{"rspec", rspec}, {"max_price", max_price}});
  }
  // A refusal: the code, nothing written, and the message for the caller to check.
  std::string Refused(const core::PrivateKey& who, const json& rspec, const std::string& max_price,
                      core::StatusCode code = core::StatusCode::kFailedPrecondition) {
    int64_t size = env_.broker_->LedgerSize();
    auto r = Acquire(who, rspec, max_price);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "";
    EXPECT_EQ(r.status().code(), code) << r.status().message();
    EXPECT_EQ(env_.broker_->LedgerSize(), size) << "a refusal wrote to the ledger";
    return r.status().message();
  }
  std::vector<core::PublicKey> Trust() { return {env_.pi_.public_key(), env_.pi2_.public_key()}; }

  MarketEnv env_;
  int64_t now_ = 0, base_ = 0;
  core::PrivateKey alice_ = NewKey();
};

TEST_F(MarketAcquireTest, CoveringWindowAndWholeUnitsNarrowTheChainToTheRequest) {
  ledger::Rcap pool = Pool("n1");
  std::string m = Market("n1", MarketEnv::Res(500), base_, base_ + 7200);
  Sell(m, pool, 4, "1");
  // 700 mcores for [base+1800, base+3600) from a market of 500-mcore units over [base, base+7200).
  const int64_t nb = base_ + 1800, na = base_ + 3600;
  json r = env_.Ok(alice_, "POST", "/v1/acquire",
                   {{"rspec", Rspec(MarketEnv::Res(700), 1, 0, nb, na)}, {"max_price", "5"}});
  EXPECT_EQ(r["paid"], "2.000000000");  // 2 units of 1
  EXPECT_EQ(env_.Balance(alice_), "998.000000000");
  ASSERT_EQ(r["rounded"].size(), 1u);
  EXPECT_EQ(r["rounded"][0]["node"], "n1");
  EXPECT_EQ(r["rounded"][0]["units"], 2);
  EXPECT_EQ(r["rounded"][0]["bought"]["cpu_mcores"], 1000);
  EXPECT_EQ(r["rounded"][0]["asked"]["cpu_mcores"], 700);
  EXPECT_EQ(r["rounded"][0]["window"]["not_before"], base_);
  std::string note = r.value("note", "");
  EXPECT_NE(note.find("2 x cpu_mcores=500"), std::string::npos) << note;
  EXPECT_NE(note.find("cpu_mcores=700 asked"), std::string::npos) << note;
  // Units accounting is unchanged: one trade of 2 units.
  ASSERT_EQ(r["trades"].size(), 1u);
  EXPECT_EQ(r["trades"][0]["qty"], 2);
  // The chain: pool root -> escrow -> fill (broker-held, 2 units, market
  // window) -> leaf (alice, exactly 700 over the asked window).
  ASSERT_EQ(r["chains"].size(), 1u);
  auto chain = ledger::ChainFromJson(r["chains"][0]);
  ASSERT_TRUE(chain.ok()) << chain.status().message();
  ASSERT_GE(chain->size(), 3u);
  const ledger::Rcap& leaf = chain->back();
  const ledger::Rcap& fill = (*chain)[chain->size() - 2];
  EXPECT_EQ(leaf.holder, alice_.public_key());
  EXPECT_EQ(leaf.res, (core::ResourceVector{.cpu_mcores = 700}));
  EXPECT_EQ(leaf.interval, (core::Interval{nb, na}));
  EXPECT_EQ(fill.holder, env_.broker_->broker_key());
  EXPECT_EQ(fill.id, r["trades"][0]["rcap"]);
  EXPECT_EQ(fill.res.cpu_mcores, 1000);
  EXPECT_EQ(fill.interval, (core::Interval{base_, base_ + 7200}));
  auto v = ledger::VerifyChain(*chain, Trust(), "n1", now_);
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.refusal().detail);
  ledger::RedemptionBook guard;  // what the node guard does next
  auto red = guard.Redeem(*chain);
  EXPECT_TRUE(red.ok()) << (red.ok() ? "" : red.refusal().detail);
  // What alice paid for beyond the request is hers too: the 300 left over the
  // asked window, and all 1000 before and after it, as children of the fill.
  ASSERT_EQ(r["extra"].size(), 3u);
  std::vector<std::pair<int64_t, core::Interval>> rest;
  for (const json& id : r["extra"]) {
    json got = env_.Ok(alice_, "GET", "/v1/rcaps/" + id.get<std::string>());
    auto e = ledger::Rcap::FromJson(got["rcap"]);
    ASSERT_TRUE(e.ok()) << e.status().message();
    EXPECT_EQ(e->holder, alice_.public_key());
    EXPECT_EQ(*e->parent, fill.id);
    rest.emplace_back(e->res.cpu_mcores, e->interval);
  }
  EXPECT_EQ(rest, (std::vector<std::pair<int64_t, core::Interval>>{
                      {300, {nb, na}}, {1000, {base_, nb}}, {1000, {na, base_ + 7200}}}));
  // The buyer can bind what it got; the ledger's replay checks every split.
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  env_.Ok(alice_, "POST", "/v1/slices/mit_web/bindings", {{"chain", r["chains"][0]}});
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketAcquireTest, ExactRequestsAreNotRounded) {
  ledger::Rcap pool = Pool("n1");
  std::string m = Market("n1", MarketEnv::Res(100), base_, base_ + 3600);
  Sell(m, pool, 10, "1");
  json r = env_.Ok(
      alice_, "POST", "/v1/acquire",
      {{"rspec", Rspec(MarketEnv::Res(300), 1, 0, base_, base_ + 3600)}, {"max_price", "5"}});
  EXPECT_EQ(r["rounded"], json::array());
  EXPECT_EQ(r["extra"], json::array());  // nothing bought beyond the request
  EXPECT_FALSE(r.contains("note"));
  auto chain = ledger::ChainFromJson(r["chains"][0]);
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(chain->back().res.cpu_mcores, 300);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketAcquireTest, FillsFromSeveralAsksAreNarrowedTogether) {
  ledger::Rcap pool = Pool("n1");
  std::string m = Market("n1", MarketEnv::Res(500), base_, base_ + 3600);
  Sell(m, pool, 1, "1");
  Sell(m, pool, 1, "2");
  json r = env_.Ok(
      alice_, "POST", "/v1/acquire",
      {{"rspec", Rspec(MarketEnv::Res(700), 1, 0, base_, base_ + 3600)}, {"max_price", "5"}});
  EXPECT_EQ(r["paid"], "3.000000000");
  ASSERT_EQ(r["chains"].size(), 2u);
  int64_t total = 0;
  for (const json& c : r["chains"]) {
    auto chain = ledger::ChainFromJson(c);
    ASSERT_TRUE(chain.ok());
    EXPECT_EQ(chain->back().holder, alice_.public_key());
    total += chain->back().res.cpu_mcores;
    auto v = ledger::VerifyChain(*chain, Trust(), "n1", now_);
    EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.refusal().detail);
  }
  EXPECT_EQ(total, 700);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketAcquireTest, ALowerNetMaxIsServedAHigherOneIsNot) {
  ledger::Rcap pool = Pool("n1", 10000);
  std::string m = Market("n1", MarketEnv::Res(100, 0, 0, 0, 10000), base_, base_ + 3600);
  Sell(m, pool, 10, "1");
  std::string msg =
      Refused(alice_, Rspec(MarketEnv::Res(100, 0, 0, 0, 20000), 1, 0, base_, base_ + 3600), "5");
  EXPECT_NE(msg.find("no open market offers net_max_kbps >= 20000"), std::string::npos) << msg;
  json r = env_.Ok(alice_, "POST", "/v1/acquire",
                   {{"rspec", Rspec(MarketEnv::Res(100, 0, 0, 0, 5000), 1, 0, base_, base_ + 3600)},
                    {"max_price", "5"}});
  auto chain = ledger::ChainFromJson(r["chains"][0]);
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(chain->back().res, (core::ResourceVector{.cpu_mcores = 100, .net_max_kbps = 5000}));
  EXPECT_EQ((*chain)[chain->size() - 2].res.net_max_kbps, 10000);
  auto v = ledger::VerifyChain(*chain, Trust(), "n1", now_);
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.refusal().detail);
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketAcquireTest, RefusalsNameTheWindowAndTheResource) {
  ledger::Rcap pool = Pool("n1");
  std::string m = Market("n1", MarketEnv::Res(100), base_, base_ + 3600);
  Sell(m, pool, 10, "1");
  // A window no market covers.
  std::string msg = Refused(alice_, Rspec(MarketEnv::Res(100), 1, 0, base_ - 60, base_ + 60), "5");
  EXPECT_NE(msg.find("no open node market's window covers [" + std::to_string(base_ - 60)),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find(std::to_string(base_ + 3600) + ")"), std::string::npos)
      << msg;  // the open one
  // A resource no unit has.
  msg = Refused(alice_, Rspec(MarketEnv::Res(100, 512), 1, 0, base_, base_ + 3600), "5");
  EXPECT_NE(msg.find("no open market offers mem_mib for"), std::string::npos) << msg;
}

TEST_F(MarketAcquireTest, TooFewNodesNamesThoseThatCanAndWhatIsShort) {
  ledger::Rcap p1 = Pool("n1"), p3 = Pool("n3");
  Sell(Market("n1", MarketEnv::Res(100), base_, base_ + 3600), p1, 10, "1");
  Sell(Market("n3", MarketEnv::Res(100), base_, base_ + 3600), p3, 10, "1");
  Market("n2", MarketEnv::Res(100), base_, base_ + 3600);  // no asks
  std::string msg = Refused(alice_, Rspec(MarketEnv::Res(100), 4, 2, base_, base_ + 3600), "50");
  EXPECT_NE(msg.find("2 nodes can fill for [" + std::to_string(base_)), std::string::npos) << msg;
  EXPECT_NE(msg.find("n1 (site mit)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("n3 (site mit)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4 needed in >= 2 sites"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2 nodes short"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 site short"), std::string::npos) << msg;
  EXPECT_NE(msg.find("too few asks on n2 (site ucb, 0 of 1 units"), std::string::npos) << msg;
}

TEST_F(MarketAcquireTest, PriceAndFundsRefusalsNameTheAmounts) {
  ledger::Rcap p1 = Pool("n1"), p3 = Pool("n3");
  Sell(Market("n1", MarketEnv::Res(100), base_, base_ + 3600), p1, 10, "1");
  Sell(Market("n3", MarketEnv::Res(100), base_, base_ + 3600), p3, 10, "2");
  json rspec = Rspec(MarketEnv::Res(200), 2, 0, base_, base_ + 3600);  // 2 + 4 = 6
  std::string msg = Refused(alice_, rspec, "5.5");
  EXPECT_NE(msg.find("the cheapest fill of 2 nodes costs 6.000000000 > max_price 5.5"),
            std::string::npos)
      << msg;
  core::PrivateKey carol = env_.AddUser("carol", "4", "mit");
  msg = Refused(carol, rspec, "10", core::StatusCode::kInsufficientFunds);
  EXPECT_NE(msg.find("costs 6.000000000"), std::string::npos) << msg;
  EXPECT_NE(msg.find(carol.public_key().ToText() + " has 4.000000000 available"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("2.000000000 short"), std::string::npos) << msg;
  EXPECT_EQ(env_.Balance(carol), "4.000000000");
  EXPECT_EQ(env_.Escrowed(carol), "0.000000000");
  env_.ExpectLedgerVerifies();
}

TEST_F(MarketAcquireTest, FallbackRfqOpensAnRfqForWhatTheBooksCannotFill) {
  json rspec = Rspec(MarketEnv::Res(100), 2, 2, base_, base_ + 3600);
  // No market at all: with "fallback":"rfq" an RFQ for the same rspec opens.
  json r = env_.Ok(alice_, "POST", "/v1/acquire",
                   {{"rspec", rspec}, {"max_price", "7"}, {"fallback", "rfq"}});
  EXPECT_EQ(r["fallback"], true);
  ASSERT_TRUE(r["rfq"].is_string());
  EXPECT_NE(r.value("refused", "").find("no open node market's window covers"), std::string::npos);
  json got = env_.Ok(alice_, "GET", "/v1/rfqs/" + r["rfq"].get<std::string>())["rfq"];
  EXPECT_EQ(got["state"], "open");
  EXPECT_EQ(got["nodes"], 2);
  EXPECT_EQ(got["min_sites"], 2);
  EXPECT_EQ(got["not_before"], base_);
  EXPECT_EQ(env_.Escrowed(alice_), "7.000000000");  // an RFQ escrows its max_price
  // A bad fallback is refused naming the field.
  auto bad = Acquire(alice_, rspec, "7");
  auto c = env_.C(alice_);
  auto wrong =
      c.Call("POST", "/v1/acquire", {{"rspec", rspec}, {"max_price", "7"}, {"fallback", "round"}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("fallback"), std::string::npos);
  EXPECT_FALSE(bad.ok());  // without the fallback: refused as before
  // An rspec for now, with min_sites 0 (acquire's default), opens an RFQ too:
  // one site at least, closing 60 s from now rather than at a past not_before.
  json now_rspec = Rspec(MarketEnv::Res(100), 1, 0, now_ - 10, now_ + 3600);
  json r2 = env_.Ok(alice_, "POST", "/v1/acquire",
                    {{"rspec", now_rspec}, {"max_price", "3"}, {"fallback", "rfq"}});
  json got2 = env_.Ok(alice_, "GET", "/v1/rfqs/" + r2["rfq"].get<std::string>())["rfq"];
  EXPECT_EQ(got2["min_sites"], 1);
  EXPECT_GE(got2["close"].get<int64_t>(), now_ + 60);
  EXPECT_LE(got2["close"].get<int64_t>(), now_ + 70);
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
