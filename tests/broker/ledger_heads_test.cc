// GET /v1/ledger/heads against a real broker over loopback HTTP: the signed
// heads it has published, oldest first, each exactly GET /v1/ledger/head's
// object and signed by the ledger key over the canonical JSON without "sig";
// from/limit bounds and their refusals.
#include <gtest/gtest.h>

#include "core/canonical_json.h"
#include "core/encoding.h"
#include "ledger/entry.h"
#include "market_fixture.h"

namespace bourse::broker {
namespace {

using nlohmann::json;
using testing::MarketEnv;

class LedgerHeadsTest : public ::testing::Test {
 protected:
  json Heads(const std::string& query) {
    return env_.Ok(env_.admin_, "GET", "/v1/ledger/heads" + query)["heads"];
  }
  // The signature checked independently of ledger/'s helpers.
  void ExpectSigned(const json& h) {
    json unsigned_head = h;
    unsigned_head.erase("sig");
    auto bytes = core::CanonicalJson(unsigned_head);
    ASSERT_TRUE(bytes.ok());
    auto sig = core::Base64UrlDecode(h["sig"].get<std::string>());
    ASSERT_TRUE(sig.ok());
    EXPECT_TRUE(env_.ledger_.public_key().Verify(core::AsBytes(*bytes), *sig).ok()) << h.dump();
  }
  MarketEnv env_;
};

TEST_F(LedgerHeadsTest, PublishedHeadsGrowAndAreSigned) {
  json before = Heads("?from=0");
  ASSERT_GE(before.size(), 1u);
  EXPECT_EQ(before[0]["size"], 0);  // the empty tree's head
  env_.SetupSites();
  env_.AddUser("alice", "100");
  json after = Heads("");  // from defaults to 0
  ASSERT_GT(after.size(), before.size() + 4);
  json head = env_.Ok(env_.admin_, "GET", "/v1/ledger/head");
  EXPECT_EQ(after.back(), head);  // exactly GET /v1/ledger/head's object
  for (size_t i = 0; i < after.size(); ++i) {
    ASSERT_EQ(after[i].size(), 4u) << after[i].dump();
    ExpectSigned(after[i]);
    if (i > 0) {
      EXPECT_GT(after[i]["size"], after[i - 1]["size"]);
    }
    if (i < before.size()) {
      EXPECT_EQ(after[i], before[i]);  // published heads never change
    }
  }
}

TEST_F(LedgerHeadsTest, FromAndLimitBoundTheAnswer) {
  env_.SetupSites();
  json all = Heads("?from=0");
  ASSERT_GE(all.size(), 4u);
  // from between two sizes: the first head at or above it.
  uint64_t mid = all[1]["size"].get<uint64_t>() + 1;
  json from_mid = Heads("?from=" + std::to_string(mid));
  ASSERT_FALSE(from_mid.empty());
  EXPECT_GE(from_mid[0]["size"].get<uint64_t>(), mid);
  EXPECT_LE(from_mid[0]["size"], all[2]["size"]);
  EXPECT_EQ(from_mid.back(), all.back());
  json two = Heads("?from=0&limit=2");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0], all[0]);
  EXPECT_EQ(two[1], all[1]);
  EXPECT_TRUE(Heads("?from=" + std::to_string(all.back()["size"].get<uint64_t>() + 1)).empty());
  EXPECT_EQ(Heads("?limit=1000").size(), all.size());
}

TEST_F(LedgerHeadsTest, BadParametersAreRefusedNamingThem) {
  auto c = env_.Anon();
  for (const char* q : {"?from=-1", "?from=abc", "?from=01", "?from=1&from=2"}) {
    auto r = c.Send("GET", std::string("/v1/ledger/heads") + q, "", false);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << q;
    EXPECT_NE(r->error_message().find("from"), std::string::npos) << q << r->body;
  }
  for (const char* q : {"?limit=0", "?limit=1001", "?from=0&limit=x"}) {
    auto r = c.Send("GET", std::string("/v1/ledger/heads") + q, "", false);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << q;
    EXPECT_NE(r->error_message().find("limit"), std::string::npos) << q << r->body;
  }
}

TEST_F(LedgerHeadsTest, TheOpenApiDocumentListsIt) {
  json doc = env_.Ok(env_.admin_, "GET", "/openapi.json");
  ASSERT_TRUE(doc["paths"].contains("/v1/ledger/heads")) << doc["paths"].dump();
  EXPECT_TRUE(doc["paths"]["/v1/ledger/heads"].contains("get"));
}

}  // namespace
}  // namespace bourse::broker
