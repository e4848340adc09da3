// DESIGN 4.1 through the broker's HTTP API: each way capacity was promised
// twice or used by someone who does not hold it (issue #13) is refused with
// nothing written, and the ledger still verifies afterwards.
//   - a slice owner cannot make the broker (or an admin, a node) a co-owner,
//     nor bind the broker's pool or another user's rcap to her slice;
//   - sell part of X, then bind X; bind X, then sell or split part of it;
//   - a root above the node's remaining capacity, through bind or a grant;
//   - a round offers only what is free of an rcap over its window.
#include <gtest/gtest.h>

#include "core/random.h"
#include "market_fixture.h"

namespace bourse::broker {
namespace {

using nlohmann::json;
using testing::MarketEnv;
using testing::NewKey;

class CapacityRuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.SetupSites();  // n1, n3 at mit; n2 at ucb; 8000 mcores each
    now_ = core::SystemClock::Get().NowSeconds();
    nb_ = now_ + 3600;
    na_ = now_ + 7200;
    alice_ = env_.AddUser("alice", "1000", "mit");
    bob_ = env_.AddUser("bob", "1000", "mit");
    env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_alice"}});
    env_.Ok(bob_, "POST", "/v1/slices", {{"name", "mit_bob"}});
  }
  // A root the site PI signs for `holder`, granted through POST /v1/grants.
  ledger::Rcap GrantTo(const core::PrivateKey& holder, int64_t cpu = 2000,
                       const std::string& node = "n1") {
    return env_.Grant(env_.pi_, node, holder.public_key(), now_, now_ + 86400, cpu);
  }
  core::Result<json> Bind(const core::PrivateKey& k, const std::string& slice,
                          const std::vector<ledger::Rcap>& chain) {
    return env_.C(k).Call("POST", "/v1/slices/" + slice + "/bindings",
                          {{"chain", ledger::ChainToJson(chain)}});
  }
  ledger::Rcap Child(const ledger::Rcap& parent, const core::PrivateKey& holder_key,
                     const core::PublicKey& to, int64_t cpu, core::Interval iv) {
    auto c = ledger::Delegate(parent, holder_key,
                              {.id = "", .holder = to, .res = {.cpu_mcores = cpu}, .interval = iv});
    EXPECT_TRUE(c.ok());
    return *c;
  }
  std::string Market(const std::string& node) { return env_.NodeMarket(node, nb_, na_); }
  core::Result<json> Sell(const core::PrivateKey& k, const std::string& market,
                          const ledger::Rcap& from, int64_t qty) {
    ledger::Rcap e = Child(from, k, env_.broker_->broker_key(), qty * 100, {nb_, na_});
    return env_.C(k).Call("POST", "/v1/markets/" + market + "/orders",
                          {{"side", "sell"}, {"qty", qty}, {"price", "1"}, {"escrow", e.ToJson()}});
  }
  // `call` is refused with `code` and the ledger does not move.
  template <typename F>
  void ExpectRefused(F call, core::StatusCode code, std::string_view words) {
    int64_t size = env_.broker_->LedgerSize();
    core::Result<json> r = call();
    ASSERT_FALSE(r.ok()) << r->dump();
    EXPECT_EQ(r.status().code(), code) << r.status().message();
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
    EXPECT_EQ(env_.broker_->LedgerSize(), size) << "a refused request wrote to the ledger";
  }

  MarketEnv env_;
  int64_t now_ = 0, nb_ = 0, na_ = 0;
  core::PrivateKey alice_ = NewKey(), bob_ = NewKey();
};

TEST_F(CapacityRuleTest, OwnersCannotBindWhatTheyDoNotHold) {
  auto ac = env_.C(alice_);
  // The broker's, the admin's and a node's keys are never owners.
  for (const std::string& key :
       {env_.broker_->broker_key().ToText(), env_.admin_.public_key().ToText(),
        env_.node_keys_[0].public_key().ToText(), env_.pi_.public_key().ToText()}) {
    ExpectRefused(
        [&] {
          return ac.Call("PUT", "/v1/slices/mit_alice/owners",
                         {{"owners", {alice_.public_key().ToText(), key}}});
        },
        core::StatusCode::kPermissionDenied, "slice owners are user or agent principals");
  }
  // Bob as a co-owner is allowed, but it gives alice nothing of his.
  env_.Ok(alice_, "PUT", "/v1/slices/mit_alice/owners",
          {{"owners", {alice_.public_key().ToText(), bob_.public_key().ToText()}}});
  ledger::Rcap pool = env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), now_, now_ + 86400);
  ledger::Rcap bobs = GrantTo(bob_);
  ExpectRefused([&] { return Bind(alice_, "mit_alice", {pool}); },
                core::StatusCode::kPermissionDenied, "is held by " + pool.holder.ToText());
  ExpectRefused([&] { return Bind(alice_, "mit_alice", {bobs}); },
                core::StatusCode::kPermissionDenied, "only an rcap's holder");
  // Nor may the site's PI, who manages every slice of its site.
  ExpectRefused([&] { return Bind(env_.pi_, "mit_alice", {bobs}); },
                core::StatusCode::kPermissionDenied, "not the caller");
  // Bob binds his own rcap to the slice he co-owns.
  json b = env_.Ok(bob_, "POST", "/v1/slices/mit_alice/bindings",
                   {{"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{bobs})}});
  EXPECT_EQ(b["leaf"], bobs.id);
  env_.ExpectLedgerVerifies();
}

TEST_F(CapacityRuleTest, SoldPartThenBindTheWholeIsRefused) {
  ledger::Rcap x = GrantTo(alice_);
  std::string m = Market("n1");
  ASSERT_TRUE(Sell(alice_, m, x, 5).ok());
  env_.Ok(bob_, "POST", "/v1/markets/" + m + "/orders",
          {{"side", "buy"}, {"qty", 5}, {"price", "1"}});
  ExpectRefused([&] { return Bind(alice_, "mit_alice", {x}); },
                core::StatusCode::kFailedPrecondition, "has_children: rcap " + x.id);
  env_.ExpectLedgerVerifies();
}

TEST_F(CapacityRuleTest, BoundThenSellOrSplitIsRefused) {
  ledger::Rcap x = GrantTo(alice_);
  ASSERT_TRUE(Bind(alice_, "mit_alice", {x}).ok());
  std::string m = Market("n1");
  ExpectRefused([&] { return Sell(alice_, m, x, 5); }, core::StatusCode::kFailedPrecondition,
                "bound: rcap " + x.id);
  // A child split off the bound rcap, to be bound elsewhere.
  ledger::Rcap kid = Child(x, alice_, bob_.public_key(), 100, {now_, now_ + 60});
  ExpectRefused(
      [&] {
        return env_.C(alice_).Call("POST", "/v1/rcaps/" + x.id + "/split",
                                   {{"children", {kid.ToJson()}}});
      },
      core::StatusCode::kFailedPrecondition, "bound");
  // The unrecorded child inside a chain, bound by its holder: refused too.
  ExpectRefused(
      [&] {
        return Bind(bob_, "mit_bob", {x, kid});
      },
      core::StatusCode::kFailedPrecondition, "bound: rcap " + x.id);
  // And the same leaf twice.
  ExpectRefused([&] { return Bind(alice_, "mit_alice", {x}); },
                core::StatusCode::kFailedPrecondition, "already bound");
  env_.ExpectLedgerVerifies();
}

// A node accepts chains of at most 32 links. Splits stop at the 32nd link,
// and a sale, which adds up to three (escrow, fill, narrowed delegation), is
// refused for an rcap deeper than 29 links before anything is written.
TEST_F(CapacityRuleTest, ChainsNeverGrowPastWhatANodeAccepts) {
  std::vector<ledger::Rcap> chain{GrantTo(alice_, 4000)};
  auto split = [&](const ledger::Rcap& from) {  // leaves room for the sale below
    ledger::Rcap kid = Child(from, alice_, alice_.public_key(), from.res.cpu_mcores - 100,
                             {now_, now_ + 86400});
    return std::make_pair(kid, env_.C(alice_).Call("POST", "/v1/rcaps/" + from.id + "/split",
                                                   {{"children", {kid.ToJson()}}}));
  };
  std::string m = Market("n1");
  while (chain.size() < ledger::kMaxChainLength) {
    if (chain.size() == 29) {
      ASSERT_TRUE(Sell(alice_, m, chain.back(), 1).ok());
    }
    if (chain.size() == 30) {
      ExpectRefused([&] { return Sell(alice_, m, chain.back(), 1); },
                    core::StatusCode::kFailedPrecondition, "chain_too_long: rcap");
    }
    auto [kid, r] = split(chain.back());
    ASSERT_TRUE(r.ok()) << chain.size() << ": " << r.status().message();
    chain.push_back(kid);
  }
  ExpectRefused([&] { return split(chain.back()).second; },
                core::StatusCode::kFailedPrecondition, "chain_too_long: a child of rcap");
  // The 32-link chain itself is what a node accepts, so it can be bound.
  ASSERT_TRUE(Bind(alice_, "mit_alice", chain).ok());
  env_.ExpectLedgerVerifies();
}

TEST_F(CapacityRuleTest, SplitThenBindChildElsewhereAfterBindingParentIsRefused) {
  // The reverse of the above: the child was split first, then the parent bound.
  ledger::Rcap x = GrantTo(alice_);
  ledger::Rcap kid = Child(x, alice_, bob_.public_key(), 100, {now_, now_ + 60});
  env_.Ok(alice_, "POST", "/v1/rcaps/" + x.id + "/split", {{"children", {kid.ToJson()}}});
  ExpectRefused([&] { return Bind(alice_, "mit_alice", {x}); },
                core::StatusCode::kFailedPrecondition, "has_children");
  ASSERT_TRUE(Bind(bob_, "mit_bob", {x, kid}).ok());
  env_.ExpectLedgerVerifies();
}

TEST_F(CapacityRuleTest, RootAboveTheNodeIsRefusedThroughBindAsThroughGrants) {
  // n1 has 8000 mcores: 4000 pooled and 4000 granted to alice fill it.
  env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), now_, now_ + 86400, 4000);
  GrantTo(alice_, 4000);
  auto extra = ledger::IssueRoot(env_.pi_, {.id = "",
                                            .holder = alice_.public_key(),
                                            .node = "n1",
                                            .res = {.cpu_mcores = 1000},
                                            .interval = {now_ + 100, now_ + 200}});
  ASSERT_TRUE(extra.ok());
  ExpectRefused([&] { return Bind(alice_, "mit_alice", {*extra}); },
                core::StatusCode::kFailedPrecondition, "oversubscribed: root rcap " + extra->id);
  ExpectRefused(
      [&] {
        return env_.C(env_.pi_).Call("POST", "/v1/grants", {{"rcap", extra->ToJson()}});
      },
      core::StatusCode::kFailedPrecondition, "t=" + std::to_string(now_ + 100));
  // After the other grants end, the same node is free again.
  auto later = ledger::IssueRoot(env_.pi_, {.id = "",
                                            .holder = alice_.public_key(),
                                            .node = "n1",
                                            .res = {.cpu_mcores = 8000},
                                            .interval = {now_ + 86400, now_ + 90000}});
  ASSERT_TRUE(Bind(alice_, "mit_alice", {*later}).ok());
  env_.ExpectLedgerVerifies();
}

TEST_F(CapacityRuleTest, RoundOffersOnlyWhatIsFreeOverItsWindow) {
  ledger::Rcap pool =
      env_.Grant(env_.pi2_, "n2", env_.broker_->broker_key(), now_, now_ + 86400, 4000);
  // 3000 of the 4000 go to alice over the round's window.
  env_.Ok(env_.admin_, "POST", "/v1/rcaps/" + pool.id + "/split",
          {{"children",
            {{{"holder", alice_.public_key().ToText()},
              {"res", MarketEnv::Res(3000)},
              {"not_before", nb_},
              {"not_after", na_}}}}});
  json round = env_.Ok(env_.admin_, "POST", "/v1/rounds",
                       {{"offers", {pool.id}},
                        {"not_before", nb_},
                        {"not_after", na_},
                        {"close", now_ + 600}})["round"];
  ASSERT_EQ(round["offers"].size(), 1u);
  EXPECT_EQ(round["offers"][0]["res"]["cpu_mcores"], 1000) << round;
  EXPECT_EQ(round["offers"][0]["from"], pool.id);
  const std::string id = round["id"];
  // GET /v1/rounds?state= lists it (DESIGN 4.1).
  json open = env_.Ok(env_.admin_, "GET", "/v1/rounds?state=open")["rounds"];
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0]["id"], id);
  EXPECT_EQ(open[0]["offers"][0]["res"]["cpu_mcores"], 1000);
  EXPECT_TRUE(env_.Ok(env_.admin_, "GET", "/v1/rounds?state=cleared")["rounds"].empty());
  EXPECT_EQ(env_.Ok(env_.admin_, "GET", "/v1/rounds")["rounds"].size(), 1u);
  EXPECT_EQ(env_.C(bob_).Call("GET", "/v1/rounds?state=bogus").status().code(),
            core::StatusCode::kInvalidArgument);
  auto bc = env_.C(bob_);
  auto too_much =
      bc.Call("POST", "/v1/rounds/" + id + "/bids",
              {{"limit", "5"},
               {"bundles", {{{"items", {{{"node", "n2"}, {"res", MarketEnv::Res(2000)}}}}}}}});
  EXPECT_FALSE(too_much.ok());
  EXPECT_EQ(too_much.status().code(), core::StatusCode::kInvalidArgument)
      << too_much.status().message();
  EXPECT_NE(too_much.status().message().find("more than node n2 offers"), std::string::npos)
      << too_much.status().message();
  env_.Ok(bob_, "POST", "/v1/rounds/" + id + "/bids",
          {{"limit", "5"},
           {"bundles", {{{"items", {{{"node", "n2"}, {"res", MarketEnv::Res(1000)}}}}}}}});
  // The round's escrow is broker-held but committed: an admin cannot sell it,
  // split it or offer it in another round while the round is open.
  const std::string esc = round["offers"][0]["rcap"];
  auto admin = env_.C(env_.admin_);
  std::string m2 = Market("n2");
  ExpectRefused(
      [&] {
        return admin.Call("POST", "/v1/markets/" + m2 + "/orders",
                          {{"side", "sell"}, {"qty", 1}, {"price", "1"}, {"rcap", esc}});
      },
      core::StatusCode::kFailedPrecondition, "is escrowed for open round " + id);
  ExpectRefused(
      [&] {
        return admin.Call("POST", "/v1/rcaps/" + esc + "/split",
                          {{"children",
                            {{{"holder", bob_.public_key().ToText()},
                              {"res", MarketEnv::Res(100)},
                              {"not_before", nb_},
                              {"not_after", na_}}}}});
      },
      core::StatusCode::kFailedPrecondition, "is escrowed for open round");
  ExpectRefused(
      [&] {
        return admin.Call(
            "POST", "/v1/rounds",
            {{"offers", {esc}}, {"not_before", nb_}, {"not_after", na_}, {"close", now_ + 600}});
      },
      core::StatusCode::kFailedPrecondition, "is escrowed for open round");
  // The escrowed offer is taken: the same 1000 cannot be sold meanwhile.
  ExpectRefused(
      [&] {
        return env_.C(env_.admin_)
            .Call("POST", "/v1/markets/" + m2 + "/orders",
                  {{"side", "sell"}, {"qty", 1}, {"price", "1"}, {"rcap", pool.id}});
      },
      core::StatusCode::kFailedPrecondition, "oversubscribed");
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker
