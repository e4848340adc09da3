// Requests for quote (DESIGN §10, issue #17) against a real broker over
// HTTP with real signatures: quotes escrow capacity under DESIGN 4.1, the
// award settles in one transaction (auto at the close, or the buyer's
// accept), every other escrow goes back, and refusals name their reason.
// Time is a ManualClock and the tests call Markets::Tick() themselves.
#include <gtest/gtest.h>

#include "core/clock.h"
#include "storage/sqlite.h"
#include "core/money.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class RfqTest : public ::testing::Test {
 protected:
  RfqTest()
      : t0_(core::SystemClock::Get().NowSeconds()),
        clock_(t0_ * 1000),
        env_({.clock = &clock_, .markets = {.tick_ms = 0}}) {}

  void SetUp() override {
    env_.SetupSites();  // mit: n1, n3; ucb: n2
    nb_ = t0_ + 3600;
    na_ = t0_ + 7200;
    close_ = t0_ + 600;
    buyer_ = env_.AddUser("buyer", "1000", "mit");
    s1_ = env_.AddUser("seller1", "", "mit");
    s2_ = env_.AddUser("seller2", "", "ucb");
    // Each seller holds half of every node for [nb - 3600, na + 3600).
    for (const char* n : {"n1", "n2", "n3"}) {
      const core::PrivateKey& pi = std::string(n) == "n2" ? env_.pi2_ : env_.pi_;
      roots1_.insert_or_assign(n,
                               env_.Grant(pi, n, s1_.public_key(), nb_ - 3600, na_ + 3600, 3000));
      roots2_.insert_or_assign(n,
                               env_.Grant(pi, n, s2_.public_key(), nb_ - 3600, na_ + 3600, 3000));
    }
  }

  void At(int64_t s) { clock_.SetMillis((t0_ + s) * 1000); }
  void Tick() { ASSERT_TRUE(env_.markets().Tick().ok()); }

  static json Want() { return MarketEnv::Res(1000, 512); }
  json OpenBody(int64_t nodes, int64_t min_sites, const std::string& max_price) {
    return {{"res", Want()},     {"nodes", nodes},   {"min_sites", min_sites},
            {"not_before", nb_}, {"not_after", na_}, {"max_price", max_price},
            {"close", close_}};
  }
  std::string Open(int64_t nodes = 2, int64_t min_sites = 2, const std::string& max_price = "100",
                   const std::string& award = "auto") {
    json body = OpenBody(nodes, min_sites, max_price);
    body["award"] = award;
    return env_.Ok(buyer_, "POST", "/v1/rfqs", body)["rfq"]["id"];
  }
  // A child of `parent` the seller signs, delegated to the broker.
  ledger::Rcap Escrow(const core::PrivateKey& seller, const ledger::Rcap& parent,
                      core::ResourceVector res = {.cpu_mcores = 1000, .mem_mib = 512},
                      std::optional<core::Interval> iv = std::nullopt) {
    auto e = ledger::Delegate(parent, seller,
                              {.id = "",
                               .holder = env_.ledger_.public_key(),
                               .res = res,
                               .interval = iv.value_or(core::Interval{nb_, na_})});
    EXPECT_TRUE(e.ok()) << e.status().message();
    return *e;
  }
  json Pieces(const std::vector<ledger::Rcap>& escrows) {
    json out = json::array();
    for (const ledger::Rcap& e : escrows) out.push_back({{"rcap", e.ToJson()}, {"node", e.node}});
    return out;
  }
  core::Result<json> Quote(const core::PrivateKey& seller, const std::string& rfq,
                           const std::string& price, const json& pieces) {
    return env_.C(seller).Call("POST", "/v1/rfqs/" + rfq + "/quotes",
                               {{"price", price}, {"rcaps", pieces}});
  }
  std::string QuoteOk(const core::PrivateKey& seller, const std::string& rfq,
                      const std::string& price, const std::vector<ledger::Rcap>& escrows) {
    auto r = Quote(seller, rfq, price, Pieces(escrows));
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? (*r)["quote"]["id"].get<std::string>() : "";
  }
  json Get(const std::string& rfq) { return env_.Ok(buyer_, "GET", "/v1/rfqs/" + rfq)["rfq"]; }
  json RcapJson(const std::string& id) { return env_.Ok(env_.admin_, "GET", "/v1/rcaps/" + id); }
  void ExpectRefused(const core::Result<json>& r, core::StatusCode code, const std::string& text) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status().message();
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
  }
  // Balances plus escrows of every account equal what was minted.
  void ExpectCreditsConserved() {
    core::Money sum;
    for (const core::PrivateKey* k : {&buyer_, &s1_, &s2_}) {
      sum = *sum.Add(*core::Money::Parse(env_.Balance(*k)));
      sum = *sum.Add(*core::Money::Parse(env_.Escrowed(*k)));
    }
    json broker = env_.Ok(env_.admin_, "GET", "/v1/accounts/" + env_.ledger_.public_key().ToText());
    sum = *sum.Add(*core::Money::Parse(broker["balance"].get<std::string>()));
    EXPECT_EQ(sum.ToString(), "1000.000000000");
  }

  int64_t t0_, nb_ = 0, na_ = 0, close_ = 0;
  core::ManualClock clock_;
  MarketEnv env_;
  core::PrivateKey buyer_ = NewKey(), s1_ = NewKey(), s2_ = NewKey();
  std::map<std::string, ledger::Rcap> roots1_, roots2_;
};

TEST_F(RfqTest, CheaperCompleteQuoteWinsAtTheClose) {
  std::string rfq = Open();
  EXPECT_EQ(env_.Balance(buyer_), "900.000000000");
  EXPECT_EQ(env_.Escrowed(buyer_), "100.000000000");
  std::string q1 =
      QuoteOk(s1_, rfq, "80", {Escrow(s1_, roots1_.at("n1")), Escrow(s1_, roots1_.at("n2"))});
  std::string q2 =
      QuoteOk(s2_, rfq, "60", {Escrow(s2_, roots2_.at("n3")), Escrow(s2_, roots2_.at("n2"))});
  Tick();  // before the close: nothing happens
  EXPECT_EQ(Get(rfq)["state"], "open");

  At(close_ - t0_);
  Tick();
  json r = Get(rfq);
  EXPECT_EQ(r["state"], "awarded");
  EXPECT_EQ(r["winner"], s2_.public_key().ToText());
  EXPECT_EQ(r["quote"], q2);
  EXPECT_EQ(r["price"], "60.000000000");
  ASSERT_EQ(r["rcaps"].size(), 2u);
  EXPECT_EQ(env_.Balance(buyer_), "940.000000000");
  EXPECT_EQ(env_.Escrowed(buyer_), "0.000000000");
  EXPECT_EQ(env_.Balance(s2_), "60.000000000");
  EXPECT_EQ(env_.Balance(s1_), "0.000000000");

  // The buyer's rcaps: exactly the rspec, held by the buyer, chains verify
  // offline against the sites' keys.
  std::vector<core::PublicKey> trust = {env_.pi_.public_key(), env_.pi2_.public_key()};
  for (size_t i = 0; i < 2; ++i) {
    std::string id = r["rcaps"][i];
    json chain = RcapJson(id)["chain"];
    auto parsed = ledger::ChainFromJson(chain);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    const ledger::Rcap& leaf = parsed->back();
    EXPECT_EQ(leaf.holder, buyer_.public_key());
    EXPECT_EQ(leaf.res, (core::ResourceVector{.cpu_mcores = 1000, .mem_mib = 512}));
    EXPECT_EQ(leaf.interval, (core::Interval{nb_, na_}));
    auto v = ledger::VerifyChain(*parsed, trust, leaf.node, clock_.NowSeconds());
    EXPECT_TRUE(v.ok()) << v.refusal().detail;
  }

  // The losing quote's escrows went back to seller 1, whole; it can quote them again.
  json lost;
  for (const json& q : r["quotes"]) {
    if (q["id"] == q1) lost = q;
    EXPECT_FALSE(q["price"].is_null());  // revealed after the award
  }
  EXPECT_EQ(lost["state"], "lost");
  ASSERT_EQ(lost["returned"].size(), 2u);
  // The award's ledger entry says what went back to whom.
  json entries = env_.Ok(
      env_.admin_, "GET",
      "/v1/ledger/entries?from=0&to=" + std::to_string(env_.broker_->LedgerSize()))["entries"];
  json awarded;
  for (const json& e : entries) {
    if (e["type"] == "rfq_awarded") awarded = e["body"];
  }
  ASSERT_EQ(awarded["released"].size(), 1u);
  EXPECT_EQ(awarded["released"][0]["quote"], q1);
  EXPECT_EQ(awarded["released"][0]["seller"], s1_.public_key().ToText());
  EXPECT_EQ(awarded["released"][0]["returned"], lost["returned"]);
  std::vector<ledger::Rcap> again;
  for (const json& id : lost["returned"]) {
    auto back = ledger::Rcap::FromJson(RcapJson(id.get<std::string>())["rcap"]);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->holder, s1_.public_key());
    again.push_back(Escrow(s1_, *back));
  }
  close_ = t0_ + 1200;
  std::string rfq2 = Open();
  QuoteOk(s1_, rfq2, "50", again);

  ExpectCreditsConserved();
  env_.ExpectLedgerVerifies();
}

// A winning quote whose award cannot settle (its stored escrow is not one the
// broker holds: only a broken store makes one, since escrows are committed to
// their quote) loses, and the next cheapest wins: one quote cannot sink an RFQ.
TEST_F(RfqTest, AQuoteThatCannotSettleLosesAndTheNextCheapestWins) {
  std::string rfq = Open();
  std::string q1 =
      QuoteOk(s1_, rfq, "80", {Escrow(s1_, roots1_.at("n1")), Escrow(s1_, roots1_.at("n2"))});
  std::string q2 =
      QuoteOk(s2_, rfq, "60", {Escrow(s2_, roots2_.at("n3")), Escrow(s2_, roots2_.at("n2"))});
  {
    storage::ConnectionOptions o;
    auto c = storage::Connection::Open(env_.db_, o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE((*c)->Exec("UPDATE m_rfq_quotes SET pieces=json_set(pieces,'$[0].escrow','gone') "
                           "WHERE id='" + q2 + "'").ok());
  }
  At(close_ - t0_);
  Tick();
  json r = Get(rfq);
  EXPECT_EQ(r["state"], "awarded");
  EXPECT_EQ(r["quote"], q1);
  EXPECT_EQ(r["winner"], s1_.public_key().ToText());
  for (const json& q : r["quotes"]) {
    if (q["id"] == q2) {
      EXPECT_EQ(q["state"], "lost");
    }
  }
  EXPECT_EQ(env_.Balance(s1_), "80.000000000");
  EXPECT_EQ(env_.Balance(buyer_), "920.000000000");
  ExpectCreditsConserved();
  env_.ExpectLedgerVerifies();
}

// Quote and withdraw cycles are bounded per seller (each leaves a row and
// ledger entries), and the piece count is checked before any signature.
TEST_F(RfqTest, QuoteWithdrawCyclesAreBoundedAndCheapChecksComeFirst) {
  using C = core::StatusCode;
  json body = OpenBody(1, 1, "100");
  body["res"] = MarketEnv::Res(100);
  std::string rfq = env_.Ok(buyer_, "POST", "/v1/rfqs", body)["rfq"]["id"];
  const core::ResourceVector small{.cpu_mcores = 100};
  for (int64_t i = 0; i < markets::Markets::kMaxQuotesPerSeller; ++i) {
    std::string q = QuoteOk(s1_, rfq, "5", {Escrow(s1_, roots1_.at("n1"), small)});
    env_.Ok(s1_, "DELETE", "/v1/rfqs/" + rfq + "/quotes/" + q);
  }
  int64_t size = env_.broker_->LedgerSize();
  ExpectRefused(Quote(s1_, rfq, "5", Pieces({Escrow(s1_, roots1_.at("n1"), small)})),
                C::kResourceExhausted, "times, the limit is 20");
  EXPECT_EQ(env_.broker_->LedgerSize(), size);
  QuoteOk(s2_, rfq, "6", {Escrow(s2_, roots2_.at("n2"), small)});  // others still quote
  ledger::Rcap bad = Escrow(s2_, roots2_.at("n3"), small);
  bad.sig[0] ^= 1;
  ExpectRefused(Quote(s2_, rfq, "6", Pieces({bad, bad})), C::kInvalidArgument,
                "the rfq asks for 1 nodes, the quote has 2");
  env_.ExpectLedgerVerifies();
}

TEST_F(RfqTest, WinnersEscrowRemainderGoesBackToTheSeller) {
  std::string rfq = Open(1, 1);
  // An escrow bigger than the rspec, over a longer interval.
  ledger::Rcap big = Escrow(s1_, roots1_.at("n1"), {.cpu_mcores = 3000, .mem_mib = 1024},
                            core::Interval{nb_ - 1800, na_ + 1800});
  std::string q = QuoteOk(s1_, rfq, "10", {big});
  auto acc = env_.C(buyer_).Call("POST", "/v1/rfqs/" + rfq + "/accept", {{"quote", q}});
  ASSERT_TRUE(acc.ok()) << acc.status().message();
  ASSERT_EQ((*acc)["chains"].size(), 1u);
  EXPECT_EQ((*acc)["rfq"]["state"], "awarded");
  json quote = (*acc)["rfq"]["quotes"][0];
  EXPECT_EQ(quote["state"], "won");
  ASSERT_EQ(quote["returned"].size(), 3u);  // the rest over the window, before and after it
  json mid = RcapJson(quote["returned"][0])["rcap"];
  EXPECT_EQ(mid["res"]["cpu_mcores"], 2000);
  EXPECT_EQ(mid["holder"], s1_.public_key().ToText());
  EXPECT_EQ(RcapJson(quote["returned"][1])["rcap"]["not_after"], nb_);
  EXPECT_EQ(RcapJson(quote["returned"][2])["rcap"]["not_before"], na_);
  EXPECT_EQ(env_.Balance(s1_), "10.000000000");
  ExpectCreditsConserved();
  env_.ExpectLedgerVerifies();
}

TEST_F(RfqTest, PricesAreSealedFromThirdPartiesUntilTheClose) {
  std::string rfq = Open();
  QuoteOk(s1_, rfq, "80", {Escrow(s1_, roots1_.at("n1")), Escrow(s1_, roots1_.at("n2"))});
  QuoteOk(s2_, rfq, "70", {Escrow(s2_, roots2_.at("n3")), Escrow(s2_, roots2_.at("n2"))});
  auto price_of = [&](const json& r, const core::PrivateKey& seller) {
    for (const json& q : r["quotes"]) {
      if (q["seller"] == seller.public_key().ToText()) return q["price"];
    }
    return json("missing");
  };
  json anon = *env_.Anon().Call("GET", "/v1/rfqs/" + rfq);
  EXPECT_TRUE(price_of(anon["rfq"], s1_).is_null());
  EXPECT_TRUE(price_of(anon["rfq"], s2_).is_null());
  json by_s1 = *env_.C(s1_).CallSigned("GET", "/v1/rfqs/" + rfq);
  EXPECT_EQ(price_of(by_s1["rfq"], s1_), "80.000000000");
  EXPECT_TRUE(price_of(by_s1["rfq"], s2_).is_null());
  json by_buyer = *env_.C(buyer_).CallSigned("GET", "/v1/rfqs?state=open");
  ASSERT_EQ(by_buyer["rfqs"].size(), 1u);
  EXPECT_EQ(price_of(by_buyer["rfqs"][0], s2_), "70.000000000");
  // The ledger (public) records the quote without its price.
  json entries = env_.Ok(
      env_.admin_, "GET",
      "/v1/ledger/entries?from=0&to=" + std::to_string(env_.broker_->LedgerSize()))["entries"];
  int quoted = 0;
  for (const json& e : entries) {
    if (e["type"] != "rfq_quoted") continue;
    ++quoted;
    EXPECT_FALSE(e["body"].contains("price"));
  }
  EXPECT_EQ(quoted, 2);
  At(close_ - t0_);
  json after = *env_.Anon().Call("GET", "/v1/rfqs/" + rfq);  // closed: revealed
  EXPECT_EQ(price_of(after["rfq"], s2_), "70.000000000");
}

TEST_F(RfqTest, NoQuoteUnderMaxPriceFailsAndReleasesEverything) {
  std::string rfq = Open(1, 1, "50");
  auto over = Quote(s1_, rfq, "60", Pieces({Escrow(s1_, roots1_.at("n1"))}));
  ExpectRefused(over, core::StatusCode::kInvalidArgument, "above the rfq's max_price");
  At(close_ - t0_);
  Tick();
  json r = Get(rfq);
  EXPECT_EQ(r["state"], "failed");
  EXPECT_EQ(env_.Balance(buyer_), "1000.000000000");
  EXPECT_EQ(env_.Escrowed(buyer_), "0.000000000");
  Tick();  // idempotent
  EXPECT_EQ(env_.Balance(buyer_), "1000.000000000");
  env_.ExpectLedgerVerifies();
}

TEST_F(RfqTest, ManualRfqNotAcceptedFailsAtTheClose) {
  std::string rfq = Open(1, 1, "50", "manual");
  std::string q = QuoteOk(s1_, rfq, "20", {Escrow(s1_, roots1_.at("n1"))});
  At(close_ - t0_);
  Tick();
  json r = Get(rfq);
  EXPECT_EQ(r["state"], "failed");
  EXPECT_EQ(r["quotes"][0]["state"], "lost");
  EXPECT_EQ(r["quotes"][0]["returned"].size(), 1u);
  EXPECT_EQ(env_.Balance(buyer_), "1000.000000000");
  env_.ExpectLedgerVerifies();
}

TEST_F(RfqTest, ManualAcceptAndItsRefusals) {
  std::string rfq = Open(1, 1, "50", "manual");
  std::string q = QuoteOk(s1_, rfq, "20", {Escrow(s1_, roots1_.at("n1"))});
  auto by_seller = env_.C(s1_).Call("POST", "/v1/rfqs/" + rfq + "/accept", {{"quote", q}});
  ExpectRefused(by_seller, core::StatusCode::kPermissionDenied, "only the buyer");
  auto unknown = env_.C(buyer_).Call("POST", "/v1/rfqs/" + rfq + "/accept", {{"quote", "qt_x"}});
  ExpectRefused(unknown, core::StatusCode::kNotFound, "qt_x");
  auto ok = env_.C(buyer_).Call("POST", "/v1/rfqs/" + rfq + "/accept", {{"quote", q}});
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ((*ok)["rfq"]["winner"], s1_.public_key().ToText());
  auto twice = env_.C(buyer_).Call("POST", "/v1/rfqs/" + rfq + "/accept", {{"quote", q}});
  ExpectRefused(twice, core::StatusCode::kFailedPrecondition, "is awarded");
  EXPECT_EQ(env_.Balance(buyer_), "980.000000000");
  EXPECT_EQ(env_.Balance(s1_), "20.000000000");
  At(close_ - t0_);
  Tick();  // already awarded: nothing more
  EXPECT_EQ(env_.Balance(buyer_), "980.000000000");
  ExpectCreditsConserved();
  env_.ExpectLedgerVerifies();
}

TEST_F(RfqTest, CancelAndWithdrawReleaseTheirEscrows) {
  std::string rfq = Open();
  std::string q1 =
      QuoteOk(s1_, rfq, "80", {Escrow(s1_, roots1_.at("n1")), Escrow(s1_, roots1_.at("n2"))});
  // One open quote per seller per RFQ.
  auto second =
      Quote(s1_, rfq, "70", Pieces({Escrow(s1_, roots1_.at("n3")), Escrow(s1_, roots1_.at("n2"))}));
  ExpectRefused(second, core::StatusCode::kFailedPrecondition, "already has an open quote");
  auto not_mine = env_.C(s2_).Call("DELETE", "/v1/rfqs/" + rfq + "/quotes/" + q1);
  ExpectRefused(not_mine, core::StatusCode::kPermissionDenied, "not the caller's");
  auto w = env_.C(s1_).Call("DELETE", "/v1/rfqs/" + rfq + "/quotes/" + q1);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ((*w)["quote"]["state"], "withdrawn");
  EXPECT_EQ((*w)["quote"]["returned"].size(), 2u);
  // Withdrawn, the seller may quote again (with new escrows).
  QuoteOk(s1_, rfq, "75", {Escrow(s1_, roots1_.at("n3")), Escrow(s1_, roots1_.at("n2"))});
  auto by_seller = env_.C(s1_).Call("DELETE", "/v1/rfqs/" + rfq);
  ExpectRefused(by_seller, core::StatusCode::kPermissionDenied, "only the buyer");
  auto c = env_.C(buyer_).Call("DELETE", "/v1/rfqs/" + rfq);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ((*c)["rfq"]["state"], "cancelled");
  EXPECT_EQ(env_.Balance(buyer_), "1000.000000000");
  auto late =
      Quote(s2_, rfq, "60", Pieces({Escrow(s2_, roots2_.at("n3")), Escrow(s2_, roots2_.at("n2"))}));
  ExpectRefused(late, core::StatusCode::kFailedPrecondition, "is cancelled");
  json list =
      env_.Ok(buyer_, "GET", "/v1/rfqs?state=cancelled&buyer=" + buyer_.public_key().ToText());
  ASSERT_EQ(list["rfqs"].size(), 1u);
  EXPECT_EQ(list["rfqs"][0]["id"], rfq);
  env_.ExpectLedgerVerifies();
}

TEST_F(RfqTest, IncompleteOrUncoveringQuotesAreRefusedWithTheReason) {
  std::string rfq = Open(2, 2);
  using C = core::StatusCode;
  ExpectRefused(Quote(s1_, rfq, "10", Pieces({Escrow(s1_, roots1_.at("n1"))})), C::kInvalidArgument,
                "asks for 2 nodes, the quote has 1");
  ExpectRefused(
      Quote(s1_, rfq, "10", Pieces({Escrow(s1_, roots1_.at("n1")), Escrow(s1_, roots1_.at("n3"))})),
      C::kInvalidArgument, "nodes are in 1 sites, the rfq asks for at least 2");
  ExpectRefused(Quote(s1_, rfq, "10",
                      Pieces({Escrow(s1_, roots1_.at("n1"), {.cpu_mcores = 1000, .mem_mib = 512},
                                     core::Interval{nb_, na_ - 60}),
                              Escrow(s1_, roots1_.at("n2"))})),
                C::kInvalidArgument, "rcaps[0].rcap.not_before/not_after");
  ExpectRefused(
      Quote(s1_, rfq, "10",
            Pieces({Escrow(s1_, roots1_.at("n1")),
                    Escrow(s1_, roots1_.at("n2"), {.cpu_mcores = 1000, .mem_mib = 256})})),
      C::kInvalidArgument, "rcaps[1].rcap.res: too little mem_mib: 256");
  json wrong_node = Pieces({Escrow(s1_, roots1_.at("n1")), Escrow(s1_, roots1_.at("n2"))});
  wrong_node[1]["node"] = "n3";
  ExpectRefused(Quote(s1_, rfq, "10", wrong_node), C::kInvalidArgument,
                "rcaps[1].node: is n3 but rcaps[1].rcap is on node n2");
  // Seller 1 offering seller 2's rcap: it signs, but does not hold the parent.
  auto stolen = ledger::Delegate(roots2_.at("n1"), s2_,
                                 {.id = "",
                                  .holder = env_.ledger_.public_key(),
                                  .res = {.cpu_mcores = 1000, .mem_mib = 512},
                                  .interval = {nb_, na_}});
  ASSERT_TRUE(stolen.ok());
  ledger::Rcap forged = *stolen;
  forged.issuer = s1_.public_key();
  forged.sig = s1_.Sign(forged.SigningBytes());
  ExpectRefused(Quote(s1_, rfq, "10", Pieces({forged, Escrow(s1_, roots1_.at("n2"))})),
                C::kPermissionDenied, "not the caller");
  // The buyer does not quote on its own RFQ.
  ExpectRefused(
      Quote(buyer_, rfq, "10",
            json::array({{{"rcap", "x"}, {"node", "n1"}}, {{"rcap", "y"}, {"node", "n2"}}})),
      C::kInvalidArgument, "buyer cannot quote");
  // Nothing was escrowed by the refusals: the whole half of each node is free.
  QuoteOk(s1_, rfq, "10",
          {Escrow(s1_, roots1_.at("n1"), {.cpu_mcores = 3000, .mem_mib = 4096}),
           Escrow(s1_, roots1_.at("n2"), {.cpu_mcores = 3000, .mem_mib = 4096})});
  env_.ExpectLedgerVerifies();
}

TEST_F(RfqTest, TheSameCapacityCannotBeQuotedInTwoRfqs) {
  std::string a = Open(1, 1);
  std::string b = Open(1, 1);
  QuoteOk(s1_, a, "10", {Escrow(s1_, roots1_.at("n1"), {.cpu_mcores = 3000, .mem_mib = 4096})});
  auto again = Quote(s1_, b, "10", Pieces({Escrow(s1_, roots1_.at("n1"))}));
  ExpectRefused(again, core::StatusCode::kFailedPrecondition, "oversubscribed");
  env_.ExpectLedgerVerifies();
}

TEST_F(RfqTest, OpenIsRefusedWithoutFundsOrWithABadRequest) {
  using C = core::StatusCode;
  auto poor = env_.C(buyer_).Call("POST", "/v1/rfqs", OpenBody(1, 1, "1000.5"));
  ExpectRefused(poor, C::kInsufficientFunds, "short by 0.5");
  EXPECT_EQ(env_.Balance(buyer_), "1000.000000000");
  json past = OpenBody(1, 1, "10");
  past["close"] = t0_ - 1;
  ExpectRefused(env_.C(buyer_).Call("POST", "/v1/rfqs", past), C::kInvalidArgument, "close:");
  json late = OpenBody(1, 1, "10");
  late["close"] = na_;
  ExpectRefused(env_.C(buyer_).Call("POST", "/v1/rfqs", late), C::kInvalidArgument,
                "close: must be before not_after");
  ExpectRefused(env_.C(buyer_).Call("POST", "/v1/rfqs", OpenBody(1, 2, "10")), C::kInvalidArgument,
                "min_sites");
  json list = env_.Ok(buyer_, "GET", "/v1/rfqs");
  EXPECT_TRUE(list["rfqs"].empty());
  ExpectRefused(env_.Anon().Call("GET", "/v1/rfqs?state=bogus"), C::kInvalidArgument, "state:");
}

TEST_F(RfqTest, PoolQuoteByAnAdminPaysTheBroker) {
  // Capacity in the broker's pool: a root granted to the broker.
  ledger::Rcap pool = env_.Grant(env_.pi_, "n3", env_.ledger_.public_key(), nb_, na_, 2000);
  std::string rfq = Open(1, 1);
  auto by_user = Quote(s1_, rfq, "5", json::array({{{"rcap", pool.id}, {"node", "n3"}}}));
  ExpectRefused(by_user, core::StatusCode::kPermissionDenied, "only an admin");
  auto q = Quote(env_.admin_, rfq, "5", json::array({{{"rcap", pool.id}, {"node", "n3"}}}));
  ASSERT_TRUE(q.ok()) << q.status().message();
  At(close_ - t0_);
  Tick();
  json r = Get(rfq);
  EXPECT_EQ(r["state"], "awarded");
  json broker = env_.Ok(env_.admin_, "GET", "/v1/accounts/" + env_.ledger_.public_key().ToText());
  EXPECT_EQ(broker["balance"], "5.000000000");
  ExpectCreditsConserved();
  env_.ExpectLedgerVerifies();
}

TEST_F(RfqTest, AnAwardSurvivesARestartAndIsNotRepeated) {
  std::string rfq = Open(1, 1);
  QuoteOk(s1_, rfq, "30", {Escrow(s1_, roots1_.at("n1"))});
  env_.Restart();
  At(close_ - t0_);
  Tick();
  env_.Restart();
  Tick();
  EXPECT_EQ(Get(rfq)["state"], "awarded");
  EXPECT_EQ(env_.Balance(buyer_), "970.000000000");
  EXPECT_EQ(env_.Balance(s1_), "30.000000000");
  env_.ExpectLedgerVerifies();
}

// A losing or withdrawn quote's escrow was not used: it is released
// (rcap_released), not split, so the seller's holding is whole again and
// quoted again in full, at the same link (docs/markets.md "Requests for quote").
TEST_F(RfqTest, LosingAndWithdrawnQuotesEscrowsAreReleasedWhole) {
  const ledger::Rcap& root = roots1_.at("n1");
  const core::Interval all{nb_ - 3600, na_ + 3600};
  auto whole = [&] { return Escrow(s1_, root, root.res, all); };
  std::string rfq = Open(1, 1);
  std::string lost_q = QuoteOk(s1_, rfq, "80", {whole()});
  QuoteOk(s2_, rfq, "60", {Escrow(s2_, roots2_.at("n2"))});
  At(close_ - t0_);
  Tick();
  json r = Get(rfq);
  ASSERT_EQ(r["state"], "awarded");
  json lost;
  for (const json& q : r["quotes"]) {
    if (q["id"] == lost_q) lost = q;
  }
  ASSERT_EQ(lost["state"], "lost");
  ASSERT_EQ(lost["returned"].size(), 1u);
  EXPECT_EQ(lost["returned"][0], root.id);  // the holding itself, no new child
  EXPECT_TRUE(RcapJson(root.id)["children"].empty());
  // Quoted again in full, then withdrawn, then quoted again: each escrow is
  // link 2, like the first.
  close_ = t0_ + 1800;
  std::string rfq2 = Open(1, 1);
  ledger::Rcap again = whole();
  std::string q2 = QuoteOk(s1_, rfq2, "50", {again});
  EXPECT_EQ(RcapJson(again.id)["chain"].size(), 2u);
  env_.Ok(s1_, "DELETE", "/v1/rfqs/" + rfq2 + "/quotes/" + q2);
  ledger::Rcap third = whole();
  QuoteOk(s1_, rfq2, "55", {third});
  EXPECT_EQ(RcapJson(third.id)["chain"].size(), 2u);
  json entries = env_.Ok(
      env_.admin_, "GET",
      "/v1/ledger/entries?from=0&to=" + std::to_string(env_.broker_->LedgerSize()))["entries"];
  size_t released = 0;
  for (const json& e : entries) released += e["type"] == "rcap_released";
  EXPECT_EQ(released, 2u);
  ExpectCreditsConserved();
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
