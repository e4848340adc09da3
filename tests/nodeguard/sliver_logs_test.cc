// The guard's sliver events and boot-log tails (nodeguard/sliver_logs.h) over
// the dry-run backend and a real state database: events for set-up, failure,
// limits read from the cgroup files, teardown; kept bounded and across a
// restart (a new SliverLogs on the same database repeats nothing); the report
// body within the broker's bounds; log text cleaned to valid UTF-8.
#include "nodeguard/sliver_logs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace bourse::nodeguard {
namespace {

namespace fs = std::filesystem;

class SliverLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ng_logs_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    opts_ = DryRunOptions((dir_ / "dry").string());
    opts_.launch = true;  // BootLogPath names the files; no script is given
    auto e = Enforcer::Create(opts_);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    enforcer_ = std::move(*e);
    OpenStore();
  }
  void TearDown() override {
    logs_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }
  void OpenStore() {
    logs_.reset();
    store_.reset();
    auto s = StateStore::Open((dir_ / "state").string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    logs_ = std::make_unique<SliverLogs>(store_.get(), enforcer_.get(), &clock_);
  }
  static SliverSpec Spec(const std::string& name, uint32_t n) {
    return {.name = name, .uid = 70000 + n, .class_minor = 2 + n, .res = {.cpu_mcores = 500}};
  }
  // One pass over `desired`, as the guard runs it.
  void Pass(const std::vector<SliverSpec>& desired, bool read_limits = false) {
    auto st = enforcer_->Reconcile(desired);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    ASSERT_TRUE(logs_->RecordPass(desired, *st, enforcer_->Failures(), read_limits).ok());
    clock_.AdvanceMillis(1000);
  }
  std::vector<std::string> Kinds(const std::string& slice) {
    std::vector<std::string> k;
    std::vector<SliverEvent> events = store_->SliverEvents(slice, 100).value();
    for (const SliverEvent& e : events) k.push_back(e.kind);
    return k;
  }
  // The file a v1 dry-run cgroup keeps `file` of sliver `name` in.
  fs::path MemFile(const std::string& name, const std::string& file) {
    return fs::path(opts_.cgroup.memory_root) / opts_.cgroup.prefix / name / file;
  }

  fs::path dir_;
  EnforcerOptions opts_;
  core::ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<Enforcer> enforcer_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<SliverLogs> logs_;
};

TEST_F(SliverLogsTest, SetUpLimitsAndTeardownAreEventsKeptAcrossARestart) {
  Pass({Spec("mit_web", 1)}, /*read_limits=*/true);  // the limits' baseline
  EXPECT_EQ(Kinds("mit_web"), (std::vector<std::string>{"started"}));
  Pass({Spec("mit_web", 1)}, true);
  EXPECT_EQ(Kinds("mit_web"), (std::vector<std::string>{"started"}));  // nothing new

  // The kernel counts an OOM kill (v1 memory.oom_control), then throttling.
  std::ofstream(MemFile("mit_web", "memory.oom_control"))
      << "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
  std::ofstream(MemFile("mit_web", "memory.failcnt")) << "5\n";
  Pass({Spec("mit_web", 1)}, true);
  auto ev = store_->SliverEvents("mit_web", 100).value();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].kind, "oom");
  EXPECT_EQ(ev[1].message,
            "memory limit reached 5 times, 2 processes killed by the OOM killer (2 in all)");

  // A restart: a new SliverLogs on the same database repeats nothing, and
  // its first reading of the counters is a new baseline.
  OpenStore();
  Pass({Spec("mit_web", 1), Spec("mit_db", 2)}, true);
  EXPECT_EQ(Kinds("mit_web"), (std::vector<std::string>{"started", "oom"}));
  EXPECT_EQ(Kinds("mit_db"), (std::vector<std::string>{"started"}));

  // mit_web goes: torn_down, and its events stay for the report.
  Pass({Spec("mit_db", 2)});
  EXPECT_EQ(Kinds("mit_web"), (std::vector<std::string>{"started", "oom", "torn_down"}));
  nlohmann::json body = logs_->ReportBody();
  ASSERT_EQ(body["slivers"].size(), 2u) << body.dump();
  EXPECT_EQ(body["slivers"][0]["slice"], "mit_db");
  EXPECT_EQ(body["slivers"][1]["slice"], "mit_web");
  EXPECT_EQ(body["slivers"][1]["events"].back()["kind"], "torn_down");
  EXPECT_EQ(body["slivers"][1]["log"], nullptr);  // no boot log: no script ran
  // Kept for 24 hours after its last event, then forgotten.
  clock_.AdvanceMillis(kGoneSliverEventsMs);
  Pass({Spec("mit_db", 2)});
  for (int i = 0; i < 100; ++i) Pass({Spec("mit_db", 2)});  // pruning runs every 100 passes
  EXPECT_TRUE(Kinds("mit_web").empty());
  EXPECT_EQ(Kinds("mit_db"), (std::vector<std::string>{"started"}));
}

TEST_F(SliverLogsTest, EventsAreBoundedPerSliverAndRepeatsAreCounted) {
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(
        store_->AddSliverEvent("s", {i, i % 2 ? "a" : "b", "m" + std::to_string(i), 1}).ok());
  }
  auto ev = store_->SliverEvents("s", 100).value();
  ASSERT_EQ(ev.size(), static_cast<size_t>(kMaxSliverEvents));
  EXPECT_EQ(ev.back().message, "m39");
  EXPECT_EQ(ev.front().message, "m8");
  ASSERT_TRUE(store_->AddSliverEvent("s", {50, "a", "again", 1}).ok());  // same kind as m39
  ev = store_->SliverEvents("s", 2).value();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].message, "again");
  EXPECT_EQ(ev[1].count, 2);
  EXPECT_EQ(ev[1].ts_ms, 50);
}

TEST_F(SliverLogsTest, LogTailsStartAtALineAndAreValidUtf8) {
  EXPECT_EQ(CleanLogText("ok\tline\n"), "ok\tline\n");
  EXPECT_EQ(CleanLogText("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");
  EXPECT_EQ(CleanLogText(std::string("a\x00"
                                     "b\x1b[31m\xff\xc3",
                                     10)),
            "a?b?[31m??");
  EXPECT_EQ(CleanLogText("\xed\xa0\x80"), "???");  // a surrogate is not UTF-8
  fs::path f = dir_ / "t.log";
  std::ofstream(f) << "first line\nsecond line\nthird\n";
  int64_t size = 0;
  EXPECT_EQ(ReadLogTail(f.string(), 1000, &size), "first line\nsecond line\nthird\n");
  EXPECT_EQ(size, 29);
  EXPECT_EQ(ReadLogTail(f.string(), 15, &size), "third\n");  // "ond line\nthird\n" cut at a line
  EXPECT_EQ(ReadLogTail((dir_ / "none").string(), 10, &size), "");
  EXPECT_EQ(size, -1);
}

TEST_F(SliverLogsTest, TheReportFitsTheBrokersBoundsWithManySlivers) {
  // 500 slivers whose logs are full of 2-byte escapes: tails are shortened.
  std::vector<SliverSpec> desired;
  fs::create_directories(opts_.run_dir);
  for (uint32_t i = 0; i < 500; ++i) {
    desired.push_back(Spec("s" + std::to_string(i), i));
    std::ofstream(fs::path(opts_.run_dir) / ("s" + std::to_string(i) + ".log"))
        << std::string(8000, '"');
  }
  Pass(desired);
  nlohmann::json body = logs_->ReportBody();
  EXPECT_EQ(body["slivers"].size(), 500u);
  EXPECT_LE(body.dump().size(), kMaxLogReportBytes);
  EXPECT_GT(body["slivers"][0]["log"]["tail"].get<std::string>().size(), 0u);
  EXPECT_EQ(body["slivers"][0]["log"]["size"], 8000);
  EXPECT_EQ(body["slivers"][0]["events"][0]["kind"], "started");
}

}  // namespace
}  // namespace bourse::nodeguard
