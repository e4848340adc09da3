// ledger/sliver_settings.h: the best-effort sliver rule the broker applies and
// `ledger verify` replays (issue #20): settings within the site's limits,
// disks no larger than the node, a site's shares on a node bounded, a PI that
// may only tighten its limits; the replay book accepts what the rule accepts
// and names what it refuses.
#include "ledger/sliver_settings.h"

#include <gtest/gtest.h>

namespace bourse::ledger {
namespace {

using nlohmann::json;

TEST(SliverSettingsTest, ParsesStrictlyWithDefaults) {
  auto d = SliverSettings::FromJson(json::object(), "resources");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, SliverSettings{});
  EXPECT_EQ(d->ToJson(), json({{"share", 1}, {"disk_mib", 64}, {"mem_mib", 256}}));
  auto rv = SliverSettings::FromJson({{"cpu_mcores", 1}}, "resources");
  ASSERT_FALSE(rv.ok());
  EXPECT_NE(rv.status().message().find("resources.cpu_mcores: unknown member"), std::string::npos);
  EXPECT_FALSE(SliverSettings::FromJson({{"share", -1}}, "resources").ok());
  EXPECT_FALSE(SliverSettings::FromJson({{"share", 2.5}}, "resources").ok());
  // What an older broker stored (a ResourceVector) is the defaults.
  EXPECT_EQ(SliverSettings::FromStored({{"cpu_mcores", 500}, {"mem_mib", 1}}), SliverSettings{});
  EXPECT_EQ(SliverSettings::FromStored(nullptr), SliverSettings{});
  auto l = SliverLimits::FromJson({{"max_share", 1}}, "limits");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("limits.max_disk_mib: missing"), std::string::npos);
  EXPECT_FALSE(
      SliverLimits::FromJson(
          {{"max_share", 10001}, {"max_disk_mib", 1}, {"max_mem_mib", 1}, {"max_site_share", 1}},
          "limits")
          .ok());
}

TEST(SliverSettingsTest, RuleRefusesWhatTheLimitsDoNotAllow) {
  SliverLimits l;  // defaults: share 10, disk 1024, mem 2048, site share 20
  std::vector<NodeLoad> n1 = {{"n1", 500, 0}};
  EXPECT_TRUE(CheckSliceSettings({.share = 10, .disk_mib = 500, .mem_mib = 2048}, l, n1).ok());
  auto big = CheckSliceSettings({.share = 11}, l, n1);
  EXPECT_EQ(big.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(big.message().find("resources.share: 11 is above the site's limit of 10"),
            std::string::npos);
  EXPECT_FALSE(CheckSliceSettings({.share = 0}, l, n1).ok());
  EXPECT_FALSE(CheckSliceSettings({.mem_mib = 0}, l, n1).ok());
  EXPECT_FALSE(CheckSliceSettings({.mem_mib = 2049}, l, n1).ok());
  auto disk = CheckSliceSettings({.disk_mib = 501}, l, n1);
  EXPECT_EQ(disk.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(disk.message().find("501 MiB is larger than node n1's disk of 500 MiB"),
            std::string::npos);
  std::vector<NodeLoad> crowded = {{"n1", 500, 15}};
  EXPECT_TRUE(CheckSliceSettings({.share = 5}, l, crowded).ok());
  auto many = CheckSliceSettings({.share = 6}, l, crowded);
  EXPECT_EQ(many.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(many.message().find("node n1 would hold shares of 21, above its limit of 20"),
            std::string::npos);
  // Limits: a PI tightens only; the admin within the hard bounds.
  EXPECT_TRUE(CheckLimitsChange({.max_share = 2}, false).ok());
  EXPECT_EQ(CheckLimitsChange({.max_share = 11}, false).code(),
            core::StatusCode::kPermissionDenied);
  EXPECT_TRUE(CheckLimitsChange({.max_share = 5000}, true).ok());
  // Clamp: what a node is told after a limit was lowered.
  SliverLimits tight{.max_share = 2, .max_disk_mib = 10, .max_mem_mib = 100, .max_site_share = 4};
  SliverSettings c = tight.Clamp({.share = 8, .disk_mib = 64, .mem_mib = 256});
  EXPECT_EQ(c, (SliverSettings{.share = 2, .disk_mib = 10, .mem_mib = 100}));
}

TEST(SliverSettingsTest, ReplayAcceptsWhatTheBrokerAcceptsAndCatchesTheRest) {
  SliverSettingsBook b;
  const int64_t t = 1700000000;
  b.Note("node_added", {{"node", "n1"}, {"capacity", {{"disk_mib", 1000}}}});
  for (const char* s : {"mit_a", "mit_b", "mit_c"}) {
    b.Note("slice_created", {{"slice", s}, {"site", "mit"}, {"expires", t + 100}});
  }
  auto set = [&](const char* slice, int64_t share) {
    return b.Apply(kEntrySliceResourcesSet,
                   {{"slice", slice},
                    {"by", "k"},
                    {"resources", {{"share", share}, {"disk_mib", 64}, {"mem_mib", 256}}}},
                   t * 1000, false);
  };
  auto place = [&](const char* slice, int64_t at_s) {
    return b.Apply(kEntrySliceInstantiated, {{"slice", slice}, {"by", "k"}, {"nodes", {"n1"}}},
                   at_s * 1000, false);
  };
  ASSERT_TRUE(set("mit_a", 10).ok());
  ASSERT_TRUE(set("mit_b", 10).ok());
  ASSERT_TRUE(set("mit_c", 10).ok());
  ASSERT_TRUE(place("mit_a", t).ok());
  ASSERT_TRUE(place("mit_b", t).ok());
  core::Status third = place("mit_c", t);
  EXPECT_EQ(third.code(), core::StatusCode::kFailedPrecondition) << third.ToString();
  // A ledger in which the broker let a share past the limit fails.
  EXPECT_FALSE(set("mit_a", 11).ok());
  // Removing b from the node, or b's expiry, frees its part.
  ASSERT_TRUE(
      b.Apply(kEntrySliceNodesRemoved,
              {{"slice", "mit_b"}, {"by", "k"}, {"nodes", json::array()}, {"removed", {"n1"}}},
              t * 1000, false)
          .ok());
  EXPECT_TRUE(place("mit_c", t).ok());
  // A PI's limits above the defaults are refused on replay, an admin's are not.
  json wide = {
      {"site", "mit"},
      {"by", "k"},
      {"limits",
       {{"max_share", 50}, {"max_disk_mib", 10}, {"max_mem_mib", 10}, {"max_site_share", 99}}}};
  EXPECT_EQ(b.Apply(kEntrySiteSliverLimitsSet, wide, t * 1000, false).code(),
            core::StatusCode::kPermissionDenied);
  EXPECT_TRUE(b.Apply(kEntrySiteSliverLimitsSet, wide, t * 1000, true).ok());
  // An older broker's ResourceVector entry is replayed without a check.
  EXPECT_TRUE(b.Apply(kEntrySliceResourcesSet,
                      {{"slice", "mit_a"}, {"by", "k"}, {"resources", {{"cpu_mcores", 99999}}}},
                      t * 1000, false)
                  .ok());
  EXPECT_EQ(
      b.Apply(kEntrySliceInstantiated, {{"slice", "nope"}, {"nodes", {"n1"}}}, t * 1000, false)
          .code(),
      core::StatusCode::kNotFound);
}

}  // namespace
}  // namespace bourse::ledger
