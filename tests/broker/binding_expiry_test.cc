// The end of a binding in the ledger (DESIGN 4, "rcap ... expired"): once a
// bound rcap's not_after passes, the broker's tick writes one rcap_expired
// {node, rcap, slice} entry per binding, in batches, exactly once across
// ticks and restarts, and `ledger verify` accepts it. Time is a ManualClock
// and the test calls Markets::Tick().
#include <gtest/gtest.h>

#include <set>

#include "core/clock.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class BindingExpiryTest : public ::testing::Test {
 protected:
  BindingExpiryTest()
      : t0_(core::SystemClock::Get().NowSeconds()),
        clock_(t0_ * 1000),
        env_({.clock = &clock_, .markets = {.tick_ms = 0}}) {}

  void SetUp() override {
    env_.SetupSites();
    alice_ = env_.AddUser("alice", "", "mit");
    env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  }
  // A root on n1 for alice over [t0, t0 + secs), bound to mit_web.
  ledger::Rcap BindFor(int64_t secs, int64_t cpu = 100) {
    ledger::Rcap r = env_.Grant(env_.pi_, "n1", alice_.public_key(), t0_, t0_ + secs, cpu);
    env_.Ok(alice_, "POST", "/v1/slices/mit_web/bindings",
            {{"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{r})}});
    return r;
  }
  std::vector<json> Expired() {
    int64_t size = env_.broker_->LedgerSize();
    json all = env_.Ok(env_.admin_, "GET",
                       "/v1/ledger/entries?from=0&to=" + std::to_string(size))["entries"];
    std::vector<json> out;
    for (const json& e : all) {
      if (e["type"] == "rcap_expired") out.push_back(e);
    }
    return out;
  }
  std::string State(const std::string& leaf) {
    json b = env_.Ok(alice_, "GET", "/v1/slices/mit_web/bindings")["bindings"];
    for (const json& x : b) {
      if (x["leaf"] == leaf) return x["state"];
    }
    return "";
  }
  void Tick() { ASSERT_TRUE(env_.markets().Tick().ok()); }

  int64_t t0_;
  core::ManualClock clock_;
  MarketEnv env_;
  core::PrivateKey alice_ = NewKey();
};

TEST_F(BindingExpiryTest, WritesEachEndOnceAcrossTicksAndRestarts) {
  ledger::Rcap brief = BindFor(60);
  ledger::Rcap longer = BindFor(3600);
  Tick();
  EXPECT_TRUE(Expired().empty());
  EXPECT_EQ(State(brief.id), "active");

  clock_.SetSeconds(t0_ + 60);  // brief's not_after
  EXPECT_EQ(State(brief.id), "expired");
  int64_t size = env_.broker_->LedgerSize();
  Tick();
  std::vector<json> e = Expired();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["seq"], size);
  EXPECT_EQ(e[0]["body"]["rcap"], brief.ToJson());
  EXPECT_EQ(e[0]["body"]["slice"], "mit_web");
  EXPECT_EQ(e[0]["body"]["node"], "n1");
  EXPECT_GE(e[0]["ts"].get<int64_t>(), brief.interval.not_after * 1000);

  // Nothing more on later ticks, nor after a restart; an idle tick writes
  // nothing at all.
  size = env_.broker_->LedgerSize();
  Tick();
  env_.Restart();
  Tick();
  EXPECT_EQ(env_.broker_->LedgerSize(), size);
  EXPECT_EQ(Expired().size(), 1u);

  clock_.SetSeconds(t0_ + 4000);
  Tick();
  e = Expired();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1]["body"]["rcap"]["id"], longer.id);
  EXPECT_EQ(State(longer.id), "expired");
  env_.ExpectLedgerVerifies();
}

TEST_F(BindingExpiryTest, ManyEndsAreWrittenInBoundedBatches) {
  // More bindings than one batch holds: children of one root of alice's,
  // each bound (chain root, child), ending between t0 + 30 and t0 + 36.
  ledger::Rcap root = env_.Grant(env_.pi_, "n1", alice_.public_key(), t0_, t0_ + 3600, 8000);
  const int n = Broker::kExpireBatch + 3;
  for (int i = 0; i < n; ++i) {
    auto c = ledger::Delegate(root, alice_,
                              {.id = "",
                               .holder = alice_.public_key(),
                               .res = {.cpu_mcores = 10},
                               .interval = {t0_, t0_ + 30 + i % 7}});
    ASSERT_TRUE(c.ok());
    env_.Ok(alice_, "POST", "/v1/slices/mit_web/bindings",
            {{"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{root, *c})}});
  }
  clock_.SetSeconds(t0_ + 100);
  int64_t size = env_.broker_->LedgerSize();
  ASSERT_TRUE(env_.broker_->ExpireBindings().ok());
  EXPECT_EQ(env_.broker_->LedgerSize(), size + n);
  std::vector<json> e = Expired();
  ASSERT_EQ(e.size(), static_cast<size_t>(n));
  std::set<std::string> ids;
  for (const json& x : e) ids.insert(x["body"]["rcap"]["id"].get<std::string>());
  EXPECT_EQ(ids.size(), static_cast<size_t>(n));
  ASSERT_TRUE(env_.broker_->ExpireBindings().ok());
  EXPECT_EQ(env_.broker_->LedgerSize(), size + n);
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
