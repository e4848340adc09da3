// Adversarial chains through `bourse-nodeguard redeem` (RunRedeemCommand, the
// code the binary runs) and the StateStore: each refused with its DESIGN §7
// reason and nothing applied; scheduled and non-overlapping chains accepted.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "core/clock.h"
#include "nodeguard/guard.h"
#include "tests/nodeguard/chain_util.h"

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;
using testing::Child;
using testing::Forge;
using testing::Res;
using testing::Root;

constexpr int64_t kNow = 1700000000;
constexpr int64_t kDay = 86400;

class RedeemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ng_redeem_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ / "trust") << "# site keys\n" << p_.site.public_key().ToText() << "\n";
    root_.emplace(Root(p_, "n1", kNow - kDay, kNow + 7 * kDay, "root1"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes the chain and runs the command; returns (exit code, parsed stdout).
  std::pair<int, nlohmann::json> Redeem(const std::string& chain_text,
                                        const std::string& name = "site_svc",
                                        const std::string& node = "n1") {
    std::string file = (dir_ / (name + ".json")).string();
    std::ofstream(file) << chain_text;
    auto out = RunRedeemCommand({"--state", (dir_ / "state").string(), "--trust",
                                 (dir_ / "trust").string(), "--node", node, file},
                                clock_);
    auto j = nlohmann::json::parse(out.stdout_text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out.stdout_text << out.stderr_text;
    return {out.exit_code, j};
  }
  std::string Reason(const std::pair<int, nlohmann::json>& r) {
    EXPECT_EQ(r.first, 1) << r.second.dump();
    return r.second.value("refused", std::string("<none>"));
  }
  size_t Live() {
    auto s = StateStore::Open((dir_ / "state").string());
    EXPECT_TRUE(s.ok());
    auto l = (*s)->LiveLeaves();
    EXPECT_TRUE(l.ok());
    return l->size();
  }

  fs::path dir_;
  testing::Principals p_;
  core::ManualClock clock_{kNow * 1000};
  std::optional<ledger::Rcap> root_;
  const ledger::Rcap& R() const { return *root_; }
};

TEST_F(RedeemTest, ValidChainIsActiveWithEffectiveResources) {
  auto leaf = Child(R(), p_.broker, p_.alice.public_key(), Res(500, 256, 64, 1000, 5000), kNow,
                    kNow + kDay);
  auto r = Redeem(testing::ChainText({R(), leaf}));
  ASSERT_EQ(r.first, 0) << r.second.dump();
  EXPECT_EQ(r.second["state"], "active");
  EXPECT_EQ(r.second["res"]["cpu_mcores"], 500);
  EXPECT_EQ(r.second["res"]["net_max_kbps"], 5000);
  EXPECT_EQ(r.second["id"], leaf.id);
  EXPECT_EQ(r.second["slice"], "site_svc");
  EXPECT_EQ(Live(), 1u);
}

TEST_F(RedeemTest, ForgedSignatureRefused) {
  auto leaf = Child(R(), p_.broker, p_.alice.public_key(), Res(500, 256, 64, 1000, 5000), kNow,
                    kNow + kDay);
  leaf.res.cpu_mcores = 4000;  // tampered after signing
  EXPECT_EQ(Reason(Redeem(testing::ChainText({R(), leaf}))), "bad_signature");
  EXPECT_EQ(Live(), 0u);
}

TEST_F(RedeemTest, ChildAboveParentRefused) {
  auto leaf = Forge(p_.broker, p_.alice.public_key(), "big", "n1", Res(8000, 256, 64, 1000, 5000),
                    kNow, kNow + kDay, R().id);
  EXPECT_EQ(Reason(Redeem(testing::ChainText({R(), leaf}))), "exceeds_parent");
  EXPECT_EQ(Live(), 0u);
}

TEST_F(RedeemTest, IntervalOutsideParentRefused) {
  auto leaf = Forge(p_.broker, p_.alice.public_key(), "long", "n1", Res(100, 1, 1, 1, 1), kNow,
                    kNow + 30 * kDay, R().id);
  EXPECT_EQ(Reason(Redeem(testing::ChainText({R(), leaf}))), "outside_interval");
  EXPECT_EQ(Live(), 0u);
}

TEST_F(RedeemTest, WrongIssuerLinkRefused) {
  // Mallory signs a child of a ticket she does not hold.
  auto leaf = Forge(p_.mallory, p_.alice.public_key(), "stolen", "n1", Res(100, 1, 1, 1, 1), kNow,
                    kNow + kDay, R().id);
  EXPECT_EQ(Reason(Redeem(testing::ChainText({R(), leaf}))), "broken_link");
  EXPECT_EQ(Live(), 0u);
}

TEST_F(RedeemTest, DoubleRedemptionRefused) {
  auto leaf = Child(R(), p_.broker, p_.alice.public_key(), Res(500, 256, 64, 1000, 5000), kNow,
                    kNow + kDay);
  ASSERT_EQ(Redeem(testing::ChainText({R(), leaf}), "first").first, 0);
  // The same leaf presented for another slice.
  EXPECT_EQ(Reason(Redeem(testing::ChainText({R(), leaf}), "second")), "double_redemption");
  EXPECT_EQ(Live(), 1u);
  // Presented again for the same slice: idempotent, nothing new.
  auto again = Redeem(testing::ChainText({R(), leaf}), "first");
  EXPECT_EQ(again.first, 0);
  EXPECT_EQ(again.second["already_redeemed"], true);
  EXPECT_EQ(Live(), 1u);
}

TEST_F(RedeemTest, SiblingsOversubscribedAtOneInstantRefused) {
  // Two children of the root that overlap in [kNow+10h, kNow+12h) and together
  // ask for 5000 mcores of the root's 4000. The broker "sold twice".
  auto a = Forge(p_.broker, p_.alice.public_key(), "sa", "n1", Res(2500, 1, 1, 1, 1), kNow,
                 kNow + 12 * 3600, R().id);
  auto b = Forge(p_.broker, p_.bob.public_key(), "sb", "n1", Res(2500, 1, 1, 1, 1),
                 kNow + 10 * 3600, kNow + kDay, R().id);
  ASSERT_EQ(Redeem(testing::ChainText({R(), a}), "slice_a").first, 0);
  EXPECT_EQ(Reason(Redeem(testing::ChainText({R(), b}), "slice_b")), "oversubscribed");
  EXPECT_EQ(Live(), 1u);
}

TEST_F(RedeemTest, NonOverlappingSiblingsBothAccepted) {
  auto a = Child(R(), p_.broker, p_.alice.public_key(), Res(4000, 8192, 100, 100000, 100000), kNow,
                 kNow + kDay);
  auto b = Child(R(), p_.broker, p_.bob.public_key(), Res(4000, 8192, 100, 100000, 100000),
                 kNow + kDay, kNow + 2 * kDay);
  auto ra = Redeem(testing::ChainText({R(), a}), "slice_a");
  auto rb = Redeem(testing::ChainText({R(), b}), "slice_b");
  EXPECT_EQ(ra.first, 0) << ra.second.dump();
  EXPECT_EQ(rb.first, 0) << rb.second.dump();
  EXPECT_EQ(ra.second["state"], "active");
  EXPECT_EQ(rb.second["state"], "scheduled");
  EXPECT_EQ(Live(), 2u);
}

TEST_F(RedeemTest, LaterStartingChainIsScheduled) {
  auto leaf =
      Child(R(), p_.broker, p_.alice.public_key(), Res(100, 1, 1, 1, 1), kNow + 3600, kNow + 7200);
  auto r = Redeem(testing::ChainText({R(), leaf}));
  ASSERT_EQ(r.first, 0) << r.second.dump();
  EXPECT_EQ(r.second["state"], "scheduled");
  EXPECT_EQ(r.second["not_before"], kNow + 3600);
}

TEST_F(RedeemTest, ExpiredRefused) {
  auto leaf =
      Child(R(), p_.broker, p_.alice.public_key(), Res(100, 1, 1, 1, 1), kNow - 7200, kNow - 3600);
  EXPECT_EQ(Reason(Redeem(testing::ChainText({R(), leaf}))), "expired");
  EXPECT_EQ(Live(), 0u);
}

TEST_F(RedeemTest, ForeignNodeRefused) {
  auto other = Root(p_, "n2", kNow - kDay, kNow + kDay);
  auto leaf =
      Child(other, p_.broker, p_.alice.public_key(), Res(100, 1, 1, 1, 1), kNow, kNow + 3600);
  EXPECT_EQ(Reason(Redeem(testing::ChainText({other, leaf}))), "wrong_node");
  EXPECT_EQ(Live(), 0u);
}

TEST_F(RedeemTest, UntrustedRootRefused) {
  auto rogue = ledger::IssueRoot(p_.mallory, {.id = "",
                                              .holder = p_.broker.public_key(),
                                              .node = "n1",
                                              .res = Res(4000, 1, 1, 1, 1),
                                              .interval = {kNow - 1, kNow + kDay}});
  ASSERT_TRUE(rogue.ok());
  auto leaf =
      Child(*rogue, p_.broker, p_.alice.public_key(), Res(100, 1, 1, 1, 1), kNow, kNow + 3600);
  EXPECT_EQ(Reason(Redeem(testing::ChainText({*rogue, leaf}))), "untrusted_root");
  EXPECT_EQ(Live(), 0u);
}

TEST_F(RedeemTest, MalformedRefused) {
  EXPECT_EQ(Reason(Redeem("{\"not\":\"a chain\"")), "malformed");
  EXPECT_EQ(Reason(Redeem("[]")), "malformed");
  auto leaf = Child(R(), p_.broker, p_.alice.public_key(), Res(100, 1, 1, 1, 1), kNow, kNow + 3600);
  nlohmann::json j = ledger::ChainToJson(std::vector<ledger::Rcap>{R(), leaf});
  j[1]["res"]["cpu_mcores"] = 1.5;  // floats are not allowed
  EXPECT_EQ(Reason(Redeem(j.dump())), "malformed");
  j[1]["res"]["cpu_mcores"] = 100;
  j[1]["extra"] = true;  // unknown member
  EXPECT_EQ(Reason(Redeem(j.dump())), "malformed");
  EXPECT_EQ(Live(), 0u);
}

TEST_F(RedeemTest, RefusalsAreRecordedWithReason) {
  auto leaf =
      Child(R(), p_.broker, p_.alice.public_key(), Res(100, 1, 1, 1, 1), kNow - 7200, kNow - 3600);
  Reason(Redeem(testing::ChainText({R(), leaf})));
  Reason(Redeem(testing::ChainText({R(), leaf})));  // recorded once
  auto s = StateStore::Open((dir_ / "state").string());
  ASSERT_TRUE(s.ok());
  auto refs = (*s)->Refusals(false);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ((*refs)[0].reason, "expired");
  EXPECT_EQ((*refs)[0].leaf_id, leaf.id);
}

TEST_F(RedeemTest, UsageErrorsExitTwo) {
  auto out = RunRedeemCommand({"--state", "/tmp/x"}, clock_);
  EXPECT_EQ(out.exit_code, 2);
  out = RunRedeemCommand({"--state", (dir_ / "s").string(), "--trust", "/nonexistent", "--node",
                          "n1", "/nonexistent.json"},
                         clock_);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_NE(out.stderr_text.find("trust file"), std::string::npos);
}

}  // namespace
}  // namespace bourse::nodeguard
