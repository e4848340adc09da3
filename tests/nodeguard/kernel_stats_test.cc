// Parsers and decisions behind the guard's disk resizes and limit events
// (nodeguard/internal/kernel_stats.h, DiskIsFull, SliverLogs::RecordPass on
// the dry-run backend): an ext4 superblock's size, built by hand and made
// by the real mkfs.ext4; `tc -s class show` counters as this machine's tc
// prints them; when a disk counts as full; a dry-run disk change is a
// disk_resized event, and a held resize is said once until its reason changes.
#include "nodeguard/internal/kernel_stats.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "nodeguard/internal/exec.h"
#include "nodeguard/sliver_logs.h"

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;
using internal::Ext4SizeBytes;
using internal::HtbClassStats;
using internal::ParseHtbClassStats;

void Put(std::string* sb, size_t off, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) (*sb)[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

TEST(KernelStatsTest, Ext4SuperblockSize) {
  std::string sb(1024, '\0');
  EXPECT_EQ(Ext4SizeBytes(sb), std::nullopt);  // no magic
  Put(&sb, 0x38, 0xEF53, 2);
  Put(&sb, 0x04, 65536, 4);  // blocks
  Put(&sb, 0x18, 0, 4);      // 1 KiB blocks
  EXPECT_EQ(Ext4SizeBytes(sb), 64LL << 20);
  Put(&sb, 0x18, 2, 4);  // 4 KiB blocks
  EXPECT_EQ(Ext4SizeBytes(sb), 256LL << 20);
  Put(&sb, 0x150, 1, 4);  // a high word without the 64bit feature
  EXPECT_EQ(Ext4SizeBytes(sb), 256LL << 20);
  Put(&sb, 0x60, 0x80, 4);  // 64bit: (2^32 + 65536) blocks of 4 KiB
  EXPECT_EQ(Ext4SizeBytes(sb), ((1LL << 32) + 65536) * 4096);
  Put(&sb, 0x18, 7, 4);  // 128 KiB blocks: not ext4
  EXPECT_EQ(Ext4SizeBytes(sb), std::nullopt);
  EXPECT_EQ(Ext4SizeBytes(sb.substr(0, 1000)), std::nullopt);  // short read

  // What the real mkfs.ext4 writes, read where the guard reads it.
  char tmpl[] = "/tmp/ng_ext4_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  fs::path img = fs::path(tmpl) / "a.img";
  { std::ofstream(img).close(); }
  fs::resize_file(img, 24LL << 20);
  auto r = internal::RunCommand({"mkfs.ext4", "-q", "-F", "-m", "0", img.string()});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string real(1024, '\0');
  int fd = open(img.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(pread(fd, real.data(), real.size(), 1024), 1024);
  close(fd);
  fs::remove_all(tmpl);
  EXPECT_EQ(Ext4SizeBytes(real), 24LL << 20);
}

TEST(KernelStatsTest, HtbClassCounters) {
  // `tc -s class show dev X` of iproute2 6.1, two leaves under 1:1.
  const std::string out =
      "class htb 1:1 root rate 20Mbit ceil 20Mbit burst 70000b cburst 70000b \n"
      " Sent 91234 bytes 120 pkt (dropped 0, overlimits 0 requeues 0) \n"
      " backlog 0b 0p requeues 0\n"
      " lended: 3 borrowed: 0 giants: 0\n"
      " tokens: 437500 ctokens: 437500\n"
      "\n"
      "class htb 1:21 parent 1:1 prio 0 rate 100Kbit ceil 100Kbit burst 70000b cburst 70000b \n"
      " Sent 1502000 bytes 1000 pkt (dropped 3812, overlimits 4100 requeues 0) \n"
      " backlog 1402000b 1000p requeues 0\n"
      "\n"
      "class htb 1:fffe parent 1:1 prio 0 rate 500Kbit ceil 20Mbit burst 70000b cburst 70000b \n"
      " Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) \n"
      "class fq_codel 8001:1 parent 8001: \n"
      " Sent 99 bytes 1 pkt (dropped 7, overlimits 0 requeues 0) \n";
  std::map<uint32_t, HtbClassStats> c = ParseHtbClassStats(out);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[1], (HtbClassStats{91234, 0}));
  EXPECT_EQ(c[0x21], (HtbClassStats{1502000, 3812}));
  EXPECT_EQ(c[0xfffe], (HtbClassStats{0, 0}));
  EXPECT_TRUE(ParseHtbClassStats("").empty());
  EXPECT_TRUE(ParseHtbClassStats("class htb 2:3 root\n Sent 5 bytes 1 pkt (dropped 1,\n").empty());
}

TEST(KernelStatsTest, DiskIsFullUnderOneMibOrOnePercent) {
  constexpr int64_t kMiB = 1 << 20;
  EXPECT_FALSE(DiskIsFull(0, 0));  // no disk
  EXPECT_TRUE(DiskIsFull(0, 64 * kMiB));
  EXPECT_TRUE(DiskIsFull(kMiB - 1, 64 * kMiB));
  EXPECT_FALSE(DiskIsFull(kMiB, 64 * kMiB));
  EXPECT_TRUE(DiskIsFull(10 * kMiB - 1, 1000 * kMiB));  // 1% of a large disk
  EXPECT_FALSE(DiskIsFull(10 * kMiB, 1000 * kMiB));
}

class ResizeEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ng_resize_ev_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto e = Enforcer::Create(DryRunOptions((dir_ / "dry").string()));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    enforcer_ = std::move(*e);
    auto s = StateStore::Open((dir_ / "state").string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    logs_ = std::make_unique<SliverLogs>(store_.get(), enforcer_.get(), &clock_);
  }
  void TearDown() override {
    logs_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }
  std::vector<SliverEvent> Events() { return store_->SliverEvents("web", 100).value(); }

  fs::path dir_;
  core::ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<Enforcer> enforcer_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<SliverLogs> logs_;
};

TEST_F(ResizeEventsTest, ADiskChangeIsAnEventAndAHeldOneIsSaidOnce) {
  SliverSpec s;
  s.name = "web";
  s.uid = 70001;
  s.class_minor = 3;
  s.res.disk_mib = 64;
  auto st = enforcer_->Reconcile({s});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_TRUE(st->disk_resizes.empty());  // made, not resized
  ASSERT_TRUE(logs_->RecordPass({s}, *st, {}, false).ok());
  s.res.disk_mib = 128;  // set_resources raised the disk
  st = enforcer_->Reconcile({s});
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->disk_resizes.count("web"), 1u);
  EXPECT_EQ(st->disk_resizes["web"],
            (DiskResize{.from_mib = 64, .to_mib = 128, .done = true, .online = false, .why = ""}));
  EXPECT_EQ(st->updated, 1);
  ASSERT_TRUE(logs_->RecordPass({s}, *st, {}, false).ok());
  ASSERT_EQ(Events().size(), 2u);
  EXPECT_EQ(Events()[1].kind, "disk_resized");
  EXPECT_EQ(Events()[1].message,
            "disk grown from 64 to 128 MiB while unmounted (no process of it ran)");
  // The logs report to the broker (POST /v1/nodes/{node}/logs) carries it.
  nlohmann::json body = logs_->ReportBody();
  ASSERT_EQ(body["slivers"].size(), 1u);
  EXPECT_EQ(body["slivers"][0]["events"].back()["kind"], "disk_resized");

  // A held shrink (as the real backend reports it) is said once per reason.
  ReconcileStats held;
  held.disk_resizes["web"].from_mib = 128;
  held.disk_resizes["web"].to_mib = 32;
  held.disk_resizes["web"].why = "its files use 90 MiB, more than the 32 MiB asked";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(logs_->RecordPass({s}, held, {}, false).ok());
  ASSERT_EQ(Events().size(), 3u);
  EXPECT_EQ(Events()[2].kind, "disk_resize_held");
  EXPECT_EQ(Events()[2].count, 1);
  EXPECT_EQ(Events()[2].message,
            "disk kept at 128 MiB, 32 MiB asked: its files use 90 MiB, more than the 32 MiB "
            "asked; tried again every pass");
  held.disk_resizes["web"].why = "ext4 shrinks only unmounted, and processes of the sliver run";
  ASSERT_TRUE(logs_->RecordPass({s}, held, {}, false).ok());
  ASSERT_EQ(Events().size(), 3u);  // the same kind: counted on the newest event
  EXPECT_EQ(Events()[2].count, 2);
  EXPECT_NE(Events()[2].message.find("processes of the sliver run"), std::string::npos);
}

}  // namespace
}  // namespace bourse::nodeguard
