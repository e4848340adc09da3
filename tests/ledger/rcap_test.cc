// rcaps: the DESIGN §3 format byte for byte, strict parsing, issuing,
// splitting and every chain rule with its own refusal reason.
#include "ledger/rcap.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/canonical_json.h"
#include "core/encoding.h"
#include "ledger_test_util.h"

namespace bourse::ledger {
namespace {

using testing::KeyFromByte;

constexpr int64_t kT0 = 1'700'000'000;
constexpr int64_t kDay = 86400;

core::ResourceVector Res(int64_t cpu, int64_t mem = 1024, int64_t disk = 2048,
                         int64_t net_min = 100, int64_t net_max = 1000) {
  return {.cpu_mcores = cpu,
          .mem_mib = mem,
          .disk_mib = disk,
          .net_min_kbps = net_min,
          .net_max_kbps = net_max};
}

// Signs whatever fields are given, bypassing Delegate's own checks, to build
// chains that break one rule at a time.
Rcap Forge(const core::PrivateKey& signer, std::string id, const core::PublicKey& holder,
           std::string node, core::ResourceVector res, core::Interval iv,
           std::optional<std::string> parent) {
  Rcap r{.id = std::move(id),
         .issuer = signer.public_key(),
         .holder = holder,
         .node = std::move(node),
         .res = res,
         .interval = iv,
         .parent = std::move(parent),
         .sig = {}};
  r.sig = signer.Sign(r.SigningBytes());
  return r;
}

class RcapTest : public ::testing::Test {
 protected:
  core::PrivateKey site_a_ = KeyFromByte(0x11), site_b_ = KeyFromByte(0x12);
  core::PrivateKey broker_ = KeyFromByte(0x21), agent_ = KeyFromByte(0x22);
  core::PrivateKey alice_ = KeyFromByte(0x31), bob_ = KeyFromByte(0x32), carol_ = KeyFromByte(0x33);
  std::vector<core::PublicKey> trusted_{site_a_.public_key()};
  core::Interval week_{kT0, kT0 + 7 * kDay};

  Rcap Root(const std::string& node = "n1") {
    return *IssueRoot(site_a_, {.id = "root-" + node,
                                .holder = broker_.public_key(),
                                .node = node,
                                .res = Res(4000, 8192, 100000, 10000, 100000),
                                .interval = week_});
  }
};

TEST_F(RcapTest, FormatIsDesignByteForByte) {
  Rcap r = *IssueRoot(site_a_, {.id = "rc1",
                                .holder = broker_.public_key(),
                                .node = "n1",
                                .res = Res(2000, 4096, 10240, 1000, 10000),
                                .interval = {1700000000, 1700086400}});
  std::string expected_unsigned =
      "{\"holder\":\"" + broker_.public_key().ToText() + "\",\"id\":\"rc1\",\"issuer\":\"" +
      site_a_.public_key().ToText() +
      "\",\"node\":\"n1\",\"not_after\":1700086400,\"not_before\":1700000000,\"parent\":null,"
      "\"res\":{\"cpu_mcores\":2000,\"disk_mib\":10240,\"mem_mib\":4096,\"net_max_kbps\":10000,"
      "\"net_min_kbps\":1000},\"v\":1}";
  EXPECT_EQ(r.SigningBytes(), expected_unsigned);
  EXPECT_TRUE(site_a_.public_key().Verify(core::AsBytes(expected_unsigned), r.sig).ok());
  std::string canonical = r.Canonical();
  EXPECT_EQ(canonical, expected_unsigned.substr(0, expected_unsigned.size() - 7) + ",\"sig\":\"" +
                           core::SignatureToText(r.sig) + "\",\"v\":1}");
  auto back = Rcap::Parse(canonical);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  EXPECT_TRUE(back->CheckSignature().ok());
  // Ed25519 is deterministic: same key and bytes, same signature text.
  EXPECT_EQ(core::SignatureToText(r.sig), core::SignatureToText(site_a_.Sign(expected_unsigned)));
}

TEST_F(RcapTest, ParsingRefusesAnythingMalformedNamingTheField) {
  nlohmann::json good = Root().ToJson();
  ASSERT_TRUE(Rcap::FromJson(good).ok());
  struct Case {
    std::string name;
    std::function<void(nlohmann::json&)> mutate;
    std::string field;
  };
  std::vector<Case> cases = {
      {"unknown", [](auto& j) { j["extra"] = 1; }, "rcap.extra"},
      {"v2", [](auto& j) { j["v"] = 2; }, "rcap.v"},
      {"vstring", [](auto& j) { j["v"] = "1"; }, "rcap.v"},
      {"float", [](auto& j) { j["res"]["cpu_mcores"] = 1.5; }, "rcap.res.cpu_mcores"},
      {"huge", [](auto& j) { j["res"]["mem_mib"] = int64_t{1} << 53; }, "rcap.res.mem_mib"},
      {"negative", [](auto& j) { j["res"]["disk_mib"] = -1; }, "rcap.res.disk_mib"},
      {"nb_float", [](auto& j) { j["not_before"] = 1.0; }, "rcap.not_before"},
      {"order", [](auto& j) { j["not_after"] = j["not_before"]; }, "rcap.not_after"},
      {"parent_num", [](auto& j) { j["parent"] = 7; }, "rcap.parent"},
      {"parent_empty", [](auto& j) { j["parent"] = ""; }, "rcap.parent"},
      {"id_empty", [](auto& j) { j["id"] = ""; }, "rcap.id"},
      {"id_long", [](auto& j) { j["id"] = std::string(200, 'x'); }, "rcap.id"},
      {"issuer", [](auto& j) { j["issuer"] = "ed25519:abc"; }, "rcap.issuer"},
      {"holder", [](auto& j) { j["holder"] = 5; }, "rcap.holder"},
      {"sig", [](auto& j) { j["sig"] = "AAAA"; }, "rcap.sig"},
      {"node", [](auto& j) { j["node"] = nullptr; }, "rcap.node"},
      {"res_extra", [](auto& j) { j["res"]["gpu"] = 1; }, "rcap.res.gpu"},
      {"net", [](auto& j) { j["res"]["net_min_kbps"] = 999999999; }, "rcap.res"},
  };
  for (const char* k :
       {"v", "id", "issuer", "holder", "node", "res", "not_before", "not_after", "parent", "sig"}) {
    cases.push_back(
        {std::string("missing_") + k, [k](auto& j) { j.erase(k); }, std::string("rcap.") + k});
  }
  for (const auto& c : cases) {
    nlohmann::json j = good;
    c.mutate(j);
    auto r = Rcap::FromJson(j);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(r.status().message().find(c.field), std::string::npos)
        << c.name << ": " << r.status().message();
  }
  EXPECT_FALSE(Rcap::Parse("{\"v\":1,\"v\":1}").ok());  // duplicate keys
  EXPECT_FALSE(Rcap::Parse("not json").ok());
  EXPECT_FALSE(ParseChain("[]").ok());
  EXPECT_FALSE(ParseChain("{}").ok());
  auto chain_err = ChainFromJson(nlohmann::json::array({good, nlohmann::json::object()}));
  ASSERT_FALSE(chain_err.ok());
  EXPECT_NE(chain_err.status().message().find("chain[1]"), std::string::npos);
}

TEST_F(RcapTest, ValidChainsAcrossSitesBrokersAndHolders) {
  Rcap root = Root();
  // The broker splits the week into two days for alice and bob, who may each
  // take everything (no overlap); alice delegates half of hers to carol.
  auto kids = Split(root, broker_,
                    std::vector<ChildSpec>{{.id = "alice-d1",
                                            .holder = alice_.public_key(),
                                            .res = root.res,
                                            .interval = {kT0, kT0 + kDay}},
                                           {.id = "bob-d2",
                                            .holder = bob_.public_key(),
                                            .res = root.res,
                                            .interval = {kT0 + kDay, kT0 + 2 * kDay}}});
  ASSERT_TRUE(kids.ok()) << kids.status().ToString();
  auto carol = Delegate((*kids)[0], alice_,
                        {.id = "carol",
                         .holder = carol_.public_key(),
                         .res = Res(2000, 4096, 50000, 5000, 50000),
                         .interval = {kT0 + 3600, kT0 + 7200}});
  ASSERT_TRUE(carol.ok()) << carol.status().ToString();

  std::vector<Rcap> chain{root, (*kids)[0], *carol};
  auto v = VerifyChain(chain, trusted_, "n1", kT0 + 4000);
  ASSERT_TRUE(v.ok()) << v.refusal().detail;
  EXPECT_EQ(v->state, LeafState::kActive);
  EXPECT_EQ(v->leaf.id, "carol");
  EXPECT_EQ(v->ToJson()["state"], "active");
  // Before it starts: scheduled.
  auto s = VerifyChain(chain, trusted_, "n1", kT0 + 10);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->state, LeafState::kScheduled);
  // Bob's chain, with several trusted sites.
  std::vector<core::PublicKey> two{site_b_.public_key(), site_a_.public_key()};
  EXPECT_TRUE(VerifyChain(std::vector<Rcap>{root, (*kids)[1]}, two, "n1", kT0).ok());
  // A chain through a pooling agent from site B's node.
  Rcap rb = *IssueRoot(site_b_, {.id = "",
                                 .holder = agent_.public_key(),
                                 .node = "b-n7",
                                 .res = Res(1000),
                                 .interval = week_});
  EXPECT_EQ(rb.id.rfind("rc_", 0), 0u);
  auto piece = *Delegate(
      rb, agent_, {.id = "", .holder = alice_.public_key(), .res = Res(250), .interval = week_});
  EXPECT_TRUE(VerifyChain(std::vector<Rcap>{rb, piece}, two, "b-n7", kT0).ok());
  // JSON round trip of the chain.
  auto json_v = VerifyChainJson(ChainToJson(chain).dump(), trusted_, "n1", kT0 + 4000);
  EXPECT_TRUE(json_v.ok());
}

TEST_F(RcapTest, EachBrokenRuleHasItsOwnReason) {
  Rcap root = Root();
  Rcap alice = *Delegate(root, broker_,
                         {.id = "alice",
                          .holder = alice_.public_key(),
                          .res = Res(1000),
                          .interval = {kT0, kT0 + kDay}});
  auto expect = [&](std::vector<Rcap> chain, RefusalReason want, std::string_view node = "n1",
                    int64_t now = kT0 + 10) {
    auto v = VerifyChain(chain, trusted_, node, now);
    ASSERT_FALSE(v.ok()) << RefusalReasonName(want);
    EXPECT_EQ(v.refusal().reason, want) << v.refusal().detail;
    EXPECT_FALSE(v.refusal().detail.empty());
    EXPECT_EQ(v.refusal().ToJson()["refused"], std::string(RefusalReasonName(want)));
  };
  // bad_signature: a field changed after signing (root and child).
  Rcap tampered = alice;
  tampered.res.cpu_mcores = 999;
  expect({root, tampered}, RefusalReason::kBadSignature);
  Rcap tampered_root = root;
  tampered_root.res.cpu_mcores += 1;
  expect({tampered_root, alice}, RefusalReason::kBadSignature);
  // broken_link: wrong parent id; issuer not the parent's holder; root with a parent.
  expect({root, Forge(broker_, "x", alice_.public_key(), "n1", Res(10), {kT0, kT0 + 10}, "nope")},
         RefusalReason::kBrokenLink);
  expect({root, Forge(bob_, "x", alice_.public_key(), "n1", Res(10), {kT0, kT0 + 10}, root.id)},
         RefusalReason::kBrokenLink);
  expect({Forge(site_a_, "r", broker_.public_key(), "n1", Res(10), week_, "p")},
         RefusalReason::kBrokenLink);
  // exceeds_parent: every component, the ceiling included.
  expect({root, alice,
          Forge(alice_, "c", carol_.public_key(), "n1", Res(1001), {kT0, kT0 + 10}, "alice")},
         RefusalReason::kExceedsParent);
  expect({root, alice,
          Forge(alice_, "c", carol_.public_key(), "n1", Res(10, 1024, 2048, 100, 1001),
                {kT0, kT0 + 10}, "alice")},
         RefusalReason::kExceedsParent);
  // outside_interval.
  expect({root, alice,
          Forge(alice_, "c", carol_.public_key(), "n1", Res(10), {kT0, kT0 + kDay + 1}, "alice")},
         RefusalReason::kOutsideInterval);
  expect({root, alice,
          Forge(alice_, "c", carol_.public_key(), "n1", Res(10), {kT0 - 1, kT0 + 5}, "alice")},
         RefusalReason::kOutsideInterval);
  // expired.
  expect({root, alice}, RefusalReason::kExpired, "n1", kT0 + kDay);
  // untrusted_root.
  Rcap foreign = *IssueRoot(site_b_, {.id = "f",
                                      .holder = broker_.public_key(),
                                      .node = "n1",
                                      .res = Res(4000),
                                      .interval = week_});
  expect({foreign}, RefusalReason::kUntrustedRoot);
  // wrong_node: the chain is for another node; a child names another node.
  expect({root, alice}, RefusalReason::kWrongNode, "n2");
  expect({root, Forge(broker_, "x", alice_.public_key(), "n2", Res(10), {kT0, kT0 + 10}, root.id)},
         RefusalReason::kWrongNode);
  // malformed.
  auto empty = VerifyChain({}, trusted_, "n1", kT0);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.refusal().reason, RefusalReason::kMalformed);
  auto bad_json = VerifyChainJson("[{\"v\":1}]", trusted_, "n1", kT0);
  ASSERT_FALSE(bad_json.ok());
  EXPECT_EQ(bad_json.refusal().reason, RefusalReason::kMalformed);
  // Every name of DESIGN §7 round-trips.
  for (const char* n :
       {"bad_signature", "broken_link", "exceeds_parent", "outside_interval", "expired",
        "untrusted_root", "wrong_node", "double_redemption", "oversubscribed", "malformed"}) {
    auto r = RefusalReasonFromName(n);
    ASSERT_TRUE(r.has_value()) << n;
    EXPECT_EQ(RefusalReasonName(*r), n);
  }
}

TEST_F(RcapTest, DelegateAndSplitRefuseWhatWouldNotVerify) {
  Rcap root = Root();
  auto not_holder = Delegate(
      root, alice_, {.id = "", .holder = bob_.public_key(), .res = Res(1), .interval = week_});
  EXPECT_EQ(not_holder.status().code(), core::StatusCode::kPermissionDenied);
  auto too_big = Delegate(
      root, broker_, {.id = "", .holder = bob_.public_key(), .res = Res(4001), .interval = week_});
  EXPECT_EQ(too_big.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(too_big.status().message().rfind("exceeds_parent", 0), 0u);
  auto too_long = Delegate(
      root, broker_,
      {.id = "", .holder = bob_.public_key(), .res = Res(1), .interval = {kT0, kT0 + 8 * kDay}});
  EXPECT_EQ(too_long.status().message().rfind("outside_interval", 0), 0u);
  // Overlapping siblings that together exceed the parent at some instant.
  auto over = Split(root, broker_,
                    std::vector<ChildSpec>{{.id = "a",
                                            .holder = alice_.public_key(),
                                            .res = Res(3000),
                                            .interval = {kT0, kT0 + 100}},
                                           {.id = "b",
                                            .holder = bob_.public_key(),
                                            .res = Res(1000),
                                            .interval = {kT0 + 50, kT0 + 150}},
                                           {.id = "c",
                                            .holder = carol_.public_key(),
                                            .res = Res(1),
                                            .interval = {kT0 + 99, kT0 + 101}}});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().message().rfind("oversubscribed", 0), 0u) << over.status().message();
  EXPECT_NE(over.status().message().find("children[2]"), std::string::npos);
  // The same siblings, the third shifted past the overlap: fine.
  auto fine = Split(root, broker_,
                    std::vector<ChildSpec>{{.id = "a",
                                            .holder = alice_.public_key(),
                                            .res = Res(3000),
                                            .interval = {kT0, kT0 + 100}},
                                           {.id = "b",
                                            .holder = bob_.public_key(),
                                            .res = Res(1000),
                                            .interval = {kT0 + 50, kT0 + 150}},
                                           {.id = "c",
                                            .holder = carol_.public_key(),
                                            .res = Res(3000),
                                            .interval = {kT0 + 100, kT0 + 101}}});
  EXPECT_TRUE(fine.ok()) << fine.status().ToString();
  // net_max_kbps is a ceiling: siblings may each have the parent's.
  auto ceilings = Split(root, broker_,
                        std::vector<ChildSpec>{{.id = "a",
                                                .holder = alice_.public_key(),
                                                .res = Res(10, 1, 1, 1, 100000),
                                                .interval = week_},
                                               {.id = "b",
                                                .holder = bob_.public_key(),
                                                .res = Res(10, 1, 1, 1, 100000),
                                                .interval = week_}});
  EXPECT_TRUE(ceilings.ok()) << ceilings.status().ToString();
}

TEST(TrustFileTest, ParsesKeysSkippingCommentsAndBlankLines) {
  auto a = KeyFromByte(1).public_key().ToText(), b = KeyFromByte(2).public_key().ToText();
  auto keys = ParseTrustText("# sites we trust\n\n  " + a + "  \r\n   # indented comment\n" + b);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[1].ToText(), b);
  auto bad = ParseTrustText(a + "\nnot-a-key\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos);
  testing::TempDir dir;
  std::ofstream(dir.File("trust")) << a << "\n";
  auto loaded = LoadTrustFile(dir.File("trust"));
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->size(), 1u);
  EXPECT_EQ(LoadTrustFile(dir.File("missing")).status().code(), core::StatusCode::kNotFound);
}

}  // namespace
}  // namespace bourse::ledger
