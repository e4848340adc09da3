// `bourse ledger head`, `ledger proof inclusion|consistency` and
// `ledger verify --url` as processes against the real bourse-broker binary:
// output, --json and the exit codes of DESIGN §8 (0 ok, 1 a check failed or
// the broker refused, 2 usage, 3 broker unreachable).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "broker_process.h"
#include "ledger/entry.h"

namespace bourse::systest {
namespace {

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

// Runs `bourse ARGS` with stdout and stderr apart.
CliRun Bourse(const std::string& dir, const std::string& args) {
  std::string err_file = dir + "/cli-stderr.txt";
  std::string cmd = BourseBinary() + " " + args + " 2>" + err_file;
  CliRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (FILE* f = std::fopen(err_file.c_str(), "r"); f != nullptr) {
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) r.err.append(buf.data(), n);
    std::fclose(f);
  }
  return r;
}

class CliLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("BOURSE_URL");
    auto p = BrokerProcess::Create();
    ASSERT_TRUE(p.ok()) << p.status().message();
    proc_ = std::move(*p);
    auto w = World::Seed(proc_->url(), proc_->admin_key());  // many commit batches
    ASSERT_TRUE(w.ok()) << w.status().message();
    world_ = std::move(*w);
    clients::Client c(proc_->url());
    auto h = c.Call("GET", "/v1/ledger/head");
    ASSERT_TRUE(h.ok());
    size_ = (*h)["size"].get<uint64_t>();
    ASSERT_GT(size_, 10u);
  }
  CliRun B(const std::string& args) { return Bourse(proc_->dir(), args); }
  std::string Url() const { return " --url " + proc_->url(); }

  std::unique_ptr<BrokerProcess> proc_;
  std::unique_ptr<World> world_;
  uint64_t size_ = 0;
};

TEST_F(CliLedgerTest, HeadPrintsTheVerifiedHead) {
  CliRun r = B("ledger head" + Url());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ledger head: OK (signature verified)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("size  " + std::to_string(size_)), std::string::npos) << r.out;
  CliRun j = B("ledger head --json" + Url());
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["size"], size_);
  EXPECT_EQ(doc["verified"], true);
  EXPECT_EQ(doc["key"], world_->broker_key);
  EXPECT_TRUE(
      ledger::TreeHeadFromJson(
          {{"size", doc["size"]}, {"root", doc["root"]}, {"ts", doc["ts"]}, {"sig", doc["sig"]}})
          .ok());
  // Another ledger key than the broker's: the check fails (exit 1).
  CliRun wrong = B("ledger head --ledger-key " + world_->pi.public_key().ToText() + Url());
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out << wrong.err;
  EXPECT_NE(wrong.err.find("error: unauthenticated:"), std::string::npos) << wrong.err;
}

TEST_F(CliLedgerTest, ProofsVerifyAndPrintThePath) {
  CliRun inc = B("ledger proof inclusion 3" + Url());
  EXPECT_EQ(inc.exit_code, 0) << inc.out << inc.err;
  EXPECT_NE(inc.out.find("OK: seq 3 is in the tree of size " + std::to_string(size_)),
            std::string::npos)
      << inc.out;
  EXPECT_NE(inc.out.find("path  "), std::string::npos) << inc.out;
  CliRun at = B("ledger proof inclusion 3 --size 7 --json" + Url());
  ASSERT_EQ(at.exit_code, 0) << at.err;
  auto doc = nlohmann::json::parse(at.out);
  EXPECT_EQ(doc["ok"], true);
  EXPECT_EQ(doc["size"], 7);
  EXPECT_EQ(doc["path"].size(), 3u);  // RFC 9162: leaf 3 of 7 needs three hashes
  CliRun cons = B("ledger proof consistency 5 " + std::to_string(size_) + Url());
  EXPECT_EQ(cons.exit_code, 0) << cons.out << cons.err;
  EXPECT_NE(cons.out.find("ledger proof consistency: OK"), std::string::npos) << cons.out;
  CliRun cj = B("ledger proof consistency 4 9 --json" + Url());
  ASSERT_EQ(cj.exit_code, 0) << cj.err;
  EXPECT_EQ(nlohmann::json::parse(cj.out)["ok"], true);
}

TEST_F(CliLedgerTest, VerifyUrlChecksHeadsAndProofs) {
  CliRun r = B("ledger verify" + Url());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("proofs verified: "), std::string::npos) << r.out;
  CliRun j = B("ledger verify --json" + Url());
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["ok"], true);
  EXPECT_GE(doc["inclusion_proofs"].get<int>(), 2);
  EXPECT_GE(doc["consistency_proofs"].get<int>(), 2);
}

TEST_F(CliLedgerTest, ExitCodes) {
  // 1: the broker refuses (seq beyond the ledger, M > N).
  CliRun beyond = B("ledger proof inclusion " + std::to_string(size_) + Url());
  EXPECT_EQ(beyond.exit_code, 1) << beyond.err;
  EXPECT_NE(beyond.err.find("error: invalid_argument:"), std::string::npos) << beyond.err;
  EXPECT_EQ(B("ledger proof consistency 9 4" + Url()).exit_code, 1);
  EXPECT_EQ(B("ledger proof inclusion 1 --size " + std::to_string(size_ + 5) + Url()).exit_code, 1);
  // 2: usage.
  for (const char* bad : {"ledger proof inclusion", "ledger proof inclusion x",
                          "ledger proof consistency 1", "ledger proof", "ledger head extra",
                          "ledger proof inclusion 1 --size", "ledger head --frobnicate"}) {
    CliRun u = B(std::string(bad) + Url());
    EXPECT_EQ(u.exit_code, 2) << bad << ": " << u.err;
  }
  EXPECT_EQ(B("ledger head").exit_code, 2);  // no URL at all
  // 3: the broker is down.
  std::string url = proc_->url();
  proc_->Kill9();
  for (const char* cmd : {"ledger head", "ledger proof inclusion 1", "ledger proof consistency 1 2",
                          "ledger verify"}) {
    CliRun down = B(std::string(cmd) + " --url " + url);
    EXPECT_EQ(down.exit_code, 3) << cmd << ": " << down.err;
    EXPECT_NE(down.err.find("error: unavailable:"), std::string::npos) << down.err;
  }
}

}  // namespace
}  // namespace bourse::systest
