// The durable store of signed requests' nonces (b_nonces, issue #13), with
// time driven by a ManualClock: it refuses a replay after a restart of the
// broker in the same process, and it stays bounded: rows older than the
// skew window plus its margin are dropped by later commits.

#include "core/clock.h"
#include "core/request_signing.h"
#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;

class RequestOnceTest : public ::testing::Test {
 protected:
  RequestOnceTest()
      : clock_(core::SystemClock::Get().NowMillis()),
        env_(MarketEnvOptions{.clock = &clock_, .markets = {}}) {}

  int64_t NonceRows() {
    int64_t n = -1;
    auto st = env_.broker_->store().Read([&](storage::Connection* db) -> core::Status {
      BOURSE_ASSIGN_OR_RETURN(storage::Statement s, db->Prepare("SELECT COUNT(*) FROM b_nonces"));
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) n = s.Int(0);
      return core::Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.message();
    return n;
  }

  // A signed mint of 1 credit to the admin, as headers and body.
  std::pair<std::map<std::string, std::string>, std::string> SignedMint() {
    std::string body = json({{"to", env_.admin_.public_key().ToText()}, {"amount", "1"}}).dump();
    auto h = core::SignRequest(env_.admin_, "POST", "/v1/accounts/mint", body, clock_.NowSeconds());
    return {{{"Bourse-Key", h.key},
             {"Bourse-Timestamp", h.timestamp},
             {"Bourse-Nonce", h.nonce},
             {"Bourse-Signature", h.signature}},
            body};
  }

  core::ManualClock clock_;
  MarketEnv env_;
};

TEST_F(RequestOnceTest, ReplayAfterRestartIsRefusedAndTheStoreStaysBounded) {
  const int64_t base = NonceRows();
  ASSERT_GE(base, 0);
  auto [headers, body] = SignedMint();
  auto c = env_.C(env_.admin_);
  auto first = c.Send("POST", "/v1/accounts/mint", body, false, headers);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->status, 201) << first->body;
  for (int i = 0; i < 19; ++i) env_.Ok(env_.admin_, "POST", "/v1/accounts/mint", json::parse(body));
  EXPECT_EQ(NonceRows(), base + 20);

  // In the same process, after a restart of the broker: refused, nothing applied.
  const std::string balance =
      env_.Ok(env_.admin_, "GET", "/v1/accounts/" + env_.admin_.public_key().ToText())["balance"];
  env_.Restart();
  auto c2 = env_.C(env_.admin_);
  auto replay = c2.Send("POST", "/v1/accounts/mint", body, false, headers);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->status, 401) << replay->body;
  EXPECT_NE(replay->error_message().find("replayed"), std::string::npos) << replay->body;
  EXPECT_EQ(
      env_.Ok(env_.admin_, "GET", "/v1/accounts/" + env_.admin_.public_key().ToText())["balance"],
      balance);

  // 361 s later every row so far is past the window plus margin: every 32nd
  // signed commit drops up to 128 of them, so 40 commits leave only their own.
  clock_.AdvanceSeconds(core::kMaxClockSkewSeconds + 61);
  auto stale = c2.Send("POST", "/v1/accounts/mint", body, false, headers);
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->status, 401) << stale->body;  // refused as stale: its row is not needed
  for (int i = 0; i < 40; ++i) env_.Ok(env_.admin_, "POST", "/v1/accounts/mint", json::parse(body));
  EXPECT_EQ(NonceRows(), 40);
  env_.ExpectLedgerVerifies();
}

}  // namespace
}  // namespace bourse::broker::testing
