// clients::AuditUrl, CheckInclusion and CheckConsistency (clients/ledger_fetch.h)
// against a real broker over loopback HTTP with several commit batches, and
// against a tampered broker: a loopback proxy in front of the real one that
// rewrites some answers (a forked head signed with the ledger key, a wrong
// proof), which the auditor must catch and name.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "clients/ledger_fetch.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "market_fixture.h"

namespace bourse::broker {
namespace {

using nlohmann::json;
using testing::MarketEnv;

// Forwards GETs to `upstream`; `tamper(path_with_query, body)` may rewrite
// each answer's body.
class TamperProxy {
 public:
  using Tamper = std::function<void(const std::string& target, json& body)>;
  TamperProxy(const std::string& upstream, Tamper tamper)
      : upstream_(upstream), tamper_(std::move(tamper)) {
    svr_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
      std::string target = req.target;
      httplib::Client up(upstream_);
      auto r = up.Get(target);
      if (!r) {
        res.status = 502;
        return;
      }
      json body = json::parse(r->body, nullptr, false);
      if (r->status == 200 && !body.is_discarded()) {
        std::lock_guard<std::mutex> l(mu_);
        tamper_(target, body);
      }
      res.status = r->status;
      res.set_content(body.is_discarded() ? r->body : body.dump(), "application/json");
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    while (!svr_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~TamperProxy() {
    svr_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string upstream_;
  Tamper tamper_;
  std::mutex mu_;
  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
};

bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

class LedgerAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.SetupSites();  // several commit batches
    for (int i = 0; i < 4; ++i) env_.AddUser("u" + std::to_string(i), "10");
    heads_ = env_.Ok(env_.admin_, "GET", "/v1/ledger/heads?from=0")["heads"];
    ASSERT_GE(heads_.size(), 8u);
  }
  core::PublicKey key() const { return env_.ledger_.public_key(); }
  uint64_t newest() const { return heads_.back()["size"].get<uint64_t>(); }
  // A head of `size` with another root, signed with the ledger key: what a
  // broker forking its log would publish.
  json Forged(uint64_t size) const {
    ledger::Hash root = ledger::LeafHash(std::string_view("fork"));
    return ledger::TreeHeadToJson(ledger::SignTreeHead(size, root, 1, env_.ledger_));
  }
  // A published size s with s - 1 not published (a size only entries give).
  uint64_t UnpublishedSize() const {
    for (size_t i = 1; i < heads_.size(); ++i) {
      uint64_t s = heads_[i]["size"].get<uint64_t>();
      if (s - heads_[i - 1]["size"].get<uint64_t>() > 1) return s - 1;
    }
    return 0;
  }
  // Replaces, in a GET /v1/ledger/heads answer, the head of `size` by a fork.
  void ForgeInHeads(json& body, uint64_t size) const {
    for (json& h : body["heads"]) {
      if (h["size"] == size) h = Forged(size);
    }
  }
  static void ExpectViolation(const core::Result<clients::UrlAuditReport>& rep,
                              const std::string& where, const std::string& rule,
                              std::optional<uint64_t> seq) {
    ASSERT_TRUE(rep.ok()) << rep.status().message();
    ASSERT_FALSE(rep->ok());
    EXPECT_EQ(rep->violation->where, where) << rep->violation->ToString();
    EXPECT_EQ(rep->violation->rule, rule) << rep->violation->ToString();
    if (seq) {
      EXPECT_EQ(rep->violation->seq, *seq) << rep->violation->ToString();
    }
  }
  MarketEnv env_;
  json heads_;
};

TEST_F(LedgerAuditTest, HappyPathChecksHeadsAndProofs) {
  auto rep = clients::AuditUrl(env_.url_, key(), {});
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  ASSERT_TRUE(rep->ok()) << rep->violation->ToString();
  EXPECT_EQ(rep->summary.entries, newest());
  EXPECT_EQ(rep->summary.heads, heads_.size());
  EXPECT_EQ(rep->heads_fetched, heads_.size());
  EXPECT_GE(rep->inclusion_proofs, 2u);
  EXPECT_GE(rep->consistency_proofs, 2u);
  // Bounded by the options: no sample, only the first and last pair.
  clients::UrlAuditOptions few;
  few.inclusion_samples = 0;
  few.consistency_samples = 0;
  auto small = clients::AuditUrl(env_.url_, key(), {}, few);
  ASSERT_TRUE(small.ok() && small->ok());
  EXPECT_EQ(small->inclusion_proofs, 2u);
  EXPECT_EQ(small->consistency_proofs, 2u);
}

TEST_F(LedgerAuditTest, SingleProofsVerify) {
  auto h = clients::CheckHead(env_.url_, key());
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->verdict.ok());
  EXPECT_EQ(h->head.size, newest());
  for (uint64_t seq : {uint64_t{0}, newest() / 2, newest() - 1}) {
    auto inc = clients::CheckInclusion(env_.url_, seq, std::nullopt, key());
    ASSERT_TRUE(inc.ok()) << inc.status().message();
    EXPECT_TRUE(inc->verdict.ok()) << inc->verdict.message();
    EXPECT_EQ(inc->at.source, "signed head");
  }
  uint64_t gap = UnpublishedSize();
  ASSERT_GT(gap, 0u) << "every size is a published head; the test needs a batch of 2+";
  auto inc = clients::CheckInclusion(env_.url_, 0, gap, key());
  ASSERT_TRUE(inc.ok());
  EXPECT_TRUE(inc->verdict.ok()) << inc->verdict.message();
  EXPECT_NE(inc->at.source.find("entries"), std::string::npos) << inc->at.source;
  auto cc = clients::CheckConsistency(env_.url_, gap, newest(), key());
  ASSERT_TRUE(cc.ok());
  EXPECT_TRUE(cc->verdict.ok()) << cc->verdict.message();
  EXPECT_EQ(cc->second.source, "signed head");
  auto cc0 = clients::CheckConsistency(env_.url_, 0, heads_[3]["size"].get<uint64_t>(), key());
  ASSERT_TRUE(cc0.ok());
  EXPECT_TRUE(cc0->verdict.ok()) << cc0->verdict.message();
  // Refusals, not verdicts.
  EXPECT_FALSE(clients::CheckInclusion(env_.url_, newest(), std::nullopt, key()).ok());
  EXPECT_FALSE(clients::CheckConsistency(env_.url_, 3, 2, key()).ok());
  EXPECT_FALSE(clients::CheckConsistency(env_.url_, 0, newest() + 1, key()).ok());
}

TEST_F(LedgerAuditTest, AWrongInclusionProofIsNamed) {
  TamperProxy proxy(env_.url_, [](const std::string& target, json& body) {
    if (StartsWith(target, "/v1/ledger/proof/inclusion?seq=0&") && !body["path"].empty()) {
      body["path"][0] = ledger::HashToHex(ledger::LeafHash(std::string_view("x")));
    }
  });
  clients::UrlAuditOptions none;
  none.inclusion_samples = 0;
  ExpectViolation(clients::AuditUrl(proxy.url(), key(), {}, none), "entry", "inclusion", 0);
  auto inc = clients::CheckInclusion(proxy.url(), 0, std::nullopt, key());
  ASSERT_TRUE(inc.ok());
  EXPECT_FALSE(inc->verdict.ok());
  EXPECT_NE(inc->verdict.message().find("seq 0"), std::string::npos) << inc->verdict.message();
}

TEST_F(LedgerAuditTest, AForkedHeadAfterTheAuditedOneIsCaught) {
  // The audit starts at an older published head; the broker then publishes a
  // newest head whose root does not extend it (signed with the ledger key).
  json older = heads_[heads_.size() / 2];
  uint64_t fork = newest();
  std::atomic<int> head_calls{0};
  TamperProxy proxy(env_.url_, [&](const std::string& target, json& body) {
    if (target == "/v1/ledger/head") {
      body = head_calls++ == 0 ? older : Forged(fork);
    } else if (StartsWith(target, "/v1/ledger/heads")) {
      ForgeInHeads(body, fork);
    }
  });
  ExpectViolation(clients::AuditUrl(proxy.url(), key(), {}), "head", "consistency", fork);
  auto cc = clients::CheckConsistency(proxy.url(), older["size"].get<uint64_t>(), fork, key());
  ASSERT_TRUE(cc.ok()) << cc.status().message();
  EXPECT_FALSE(cc->verdict.ok());
}

TEST_F(LedgerAuditTest, APublishedHeadThatDisagreesWithTheEntriesIsCaught) {
  uint64_t bad = heads_[3]["size"].get<uint64_t>();
  TamperProxy proxy(env_.url_, [&](const std::string& target, json& body) {
    if (StartsWith(target, "/v1/ledger/heads")) ForgeInHeads(body, bad);
  });
  ExpectViolation(clients::AuditUrl(proxy.url(), key(), {}), "head", "tree_head", bad);
}

TEST_F(LedgerAuditTest, AWrongConsistencyProofBetweenPublishedHeadsIsCaught) {
  TamperProxy proxy(env_.url_, [](const std::string& target, json& body) {
    if (StartsWith(target, "/v1/ledger/proof/consistency") && !body["path"].empty()) {
      body["path"].erase(body["path"].size() - 1);
    }
  });
  ExpectViolation(clients::AuditUrl(proxy.url(), key(), {}), "head", "consistency", std::nullopt);
}

TEST_F(LedgerAuditTest, AnUnreachableBrokerIsAnError) {
  std::string url = env_.url_;
  env_.Stop();
  auto rep = clients::AuditUrl(url, key(), {});
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.status().code(), core::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace bourse::broker
