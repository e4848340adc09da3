// nodeguard/best_effort.h: the broker's list of slices instantiated on the
// node, checked entry by entry, and the mapping of rcaps, share-table grants
// and best-effort shares onto one sliver's weights, rates and limits (the
// worked example of docs/nodeguard.md "Best-effort slivers", number for number).
#include "nodeguard/best_effort.h"

#include <gtest/gtest.h>

#include "nodeguard/share_table.h"

namespace bourse::nodeguard {
namespace {

using nlohmann::json;

json Entry(const char* slice, int64_t share, int64_t disk = 64, int64_t mem = 256) {
  return {{"slice", slice}, {"expires", 2000},  {"boot_script", ""},
          {"share", share}, {"disk_mib", disk}, {"mem_mib", mem}};
}

TEST(BestEffortTest, ParseSkipsAndNamesBadEntries) {
  json bad_name = Entry("x", 1);
  bad_name["slice"] = "../etc";
  json no_expiry = Entry("y", 1);
  no_expiry.erase("expires");
  json list = json::array({Entry("b", 2), Entry("a", 1), Entry("big", 10001), bad_name, no_expiry,
                           Entry("neg", 1, -1), Entry("a", 5), "nope"});
  BestEffortParse p = ParseBestEffort(list);
  ASSERT_EQ(p.slices.size(), 2u);
  EXPECT_EQ(p.slices[0].slice, "a");  // sorted; the first "a" kept
  EXPECT_EQ(p.slices[0].share, 1);
  EXPECT_EQ(p.slices[1].share, 2);
  ASSERT_EQ(p.errors.size(), 6u);
  EXPECT_EQ(p.errors[0], "slices[2].share: 10001 outside [1, 10000]");
  EXPECT_EQ(p.errors[1], "slices[3].slice: not 1..64 chars of [A-Za-z0-9_.-]");
  EXPECT_EQ(p.errors[2], "slices[4].expires: missing or not an integer");
  EXPECT_EQ(p.errors[3], "slices[5].disk_mib: -1 outside [0, 1099511627776]");
  EXPECT_EQ(p.errors[4], "slices[6].slice: a listed twice");
  EXPECT_EQ(p.errors[5], "slices[7]: not an object");
  EXPECT_TRUE(ParseBestEffort(nullptr).slices.empty());  // an older broker: none
  EXPECT_EQ(ParseBestEffort(BestEffortToJson(p.slices)).slices, p.slices);
}

// docs/nodeguard.md's worked example.
TEST(BestEffortTest, WorkedExampleOfTheDocs) {
  SliverSpec web{.name = "mit_web", .uid = 200001, .class_minor = 3};
  web.res = {.cpu_mcores = 1000,
             .mem_mib = 512,
             .disk_mib = 1024,
             .net_min_kbps = 10000,
             .net_max_kbps = 20000};
  SliverSpec crawl{.name = "mit_crawl", .uid = 200002, .class_minor = 4};
  SliverSpec test{.name = "ucb_test", .uid = 200003, .class_minor = 5};
  std::vector<SliverSpec> desired = {web, crawl, test};
  std::vector<BestEffortSlice> list = {
      {.slice = "mit_web", .expires = 2000, .share = 1, .disk_mib = 64, .mem_mib = 256},
      {.slice = "mit_crawl", .expires = 2000, .share = 3, .disk_mib = 256, .mem_mib = 512},
      {.slice = "ucb_test", .expires = 2000, .share = 1, .disk_mib = 64, .mem_mib = 256},
      {.slice = "gone", .expires = 1000, .share = 9}};  // expired: neither a sliver nor a share
  auto g = ApplyBestEffort(
      list, {.cpu_mcores = 4000, .link_kbps = 100000, .default_min_kbps = 1000}, 1500, &desired);
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g["mit_web"].cpu_mcores, 600);
  EXPECT_EQ(g["mit_crawl"].cpu_mcores, 1800);
  EXPECT_EQ(desired[0].res, (core::ResourceVector{.cpu_mcores = 1600,
                                                  .mem_mib = 768,
                                                  .disk_mib = 1088,
                                                  .net_min_kbps = 27800,
                                                  .net_max_kbps = 100000}));
  EXPECT_EQ(desired[1].res, (core::ResourceVector{.cpu_mcores = 1800,
                                                  .mem_mib = 512,
                                                  .disk_mib = 256,
                                                  .net_min_kbps = 53400,
                                                  .net_max_kbps = 100000}));
  EXPECT_EQ(desired[2].res, (core::ResourceVector{.cpu_mcores = 600,
                                                  .mem_mib = 256,
                                                  .disk_mib = 64,
                                                  .net_min_kbps = 17800,
                                                  .net_max_kbps = 100000}));
  // What the enforcer writes for them (v1 cpu.shares, v2 cpu.weight).
  EXPECT_EQ(CpuSharesFor(1600), 1638);
  EXPECT_EQ(CpuSharesFor(1800), 1843);
  EXPECT_EQ(CpuSharesFor(600), 614);
  EXPECT_EQ(CpuWeightFromShares(1638), 159);
  EXPECT_EQ(CpuWeightFromShares(1843), 179);
  EXPECT_EQ(CpuWeightFromShares(614), 59);
}

TEST(BestEffortTest, NeverDilutesAGuaranteeAndComesAfterTheShareTable) {
  // The rcaps take all of the CPU: the best-effort slivers add nothing, and
  // the paid one keeps exactly what it bought.
  std::vector<SliverSpec> desired = {
      {.name = "paid", .uid = 1, .class_minor = 2, .res = {.cpu_mcores = 2000}},
      {.name = "free", .uid = 2, .class_minor = 3}};
  std::vector<BestEffortSlice> list = {{.slice = "free", .expires = 10, .share = 10000}};
  auto g = ApplyBestEffort(list, {.cpu_mcores = 2000}, 5, &desired);
  EXPECT_EQ(desired[0].res.cpu_mcores, 2000);
  EXPECT_EQ(desired[1].res.cpu_mcores, 0);
  EXPECT_EQ(desired[1].res.net_max_kbps, 0);  // no link enforced: no ceiling to raise
  // A share-table grant (paid proportional share) is taken out of the spare first.
  std::vector<SliverSpec> d2 = {{.name = "bidder", .uid = 1, .class_minor = 2},
                                {.name = "free", .uid = 2, .class_minor = 3}};
  ShareTable t{.node = "n1", .ts_ms = 1, .shares = {{"bidder", 5000, 0}}};
  ApplyShares(t, {.cpu_mcores = 4000}, &d2);
  ApplyBestEffort(list, {.cpu_mcores = 4000}, 5, &d2);
  EXPECT_EQ(d2[0].res.cpu_mcores, 2000);
  EXPECT_EQ(d2[1].res.cpu_mcores, 2000);
}

}  // namespace
}  // namespace bourse::nodeguard
