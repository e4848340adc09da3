// `bourse ledger verify --db PATH` end to end: exit 0 on a sound ledger, a
// non-zero exit and the first violation with its seq on a tampered one.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "core/json_codec.h"
#include "ledger/accounts.h"
#include "ledger/store.h"
#include "ledger_test_util.h"

namespace bourse::ledger {
namespace {

using core::ResourceVectorToJson;
using testing::KeyFromByte;
using testing::TempDir;

struct CliRun {
  int exit_code;
  std::string out;
};

CliRun Bourse(const std::string& args) {
  std::string bin = std::string(BOURSE_BINARY_DIR) + "/clients/bourse";
  EXPECT_TRUE(std::filesystem::exists(bin)) << bin << " is not built";
  std::string cmd = bin + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(CliVerifyTest, ExitZeroWhenSoundAndTheFirstViolationOtherwise) {
  TempDir dir;
  std::string path = dir.File("l.db");
  auto key = KeyFromByte(80), admin = KeyFromByte(81);
  {
    StoreOptions o;
    o.signing_key = key;
    auto store = std::move(*Store::Open(path, o));
    ASSERT_TRUE(store
                    ->Commit([&](Txn& t) -> core::Status {
                      BOURSE_RETURN_IF_ERROR(Accounts::AddAdmin(t, admin.public_key(), nullptr));
                      return Accounts::Mint(t, admin.public_key(), "alice",
                                            *core::Money::Parse("10"));
                    })
                    .ok());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(store
                      ->Commit([&](Txn& t) {
                        return Accounts::Transfer(t, "alice", "bob", *core::Money::Parse("0.5"));
                      })
                      .ok());
    }
  }
  CliRun ok = Bourse("ledger verify --db " + path + " --key " + key.public_key().ToText());
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("ledger verify: OK"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("entries   12"), std::string::npos) << ok.out;

  CliRun wrong_key = Bourse("ledger verify --db " + path + " --key " + admin.public_key().ToText());
  EXPECT_EQ(wrong_key.exit_code, 1) << wrong_key.out;

  CliRun usage = Bourse("ledger verify");
  EXPECT_EQ(usage.exit_code, 2);
  CliRun missing = Bourse("ledger verify --db " + dir.File("none.db"));
  EXPECT_EQ(missing.exit_code, 3) << missing.out;

  // Raise a transfer's amount: the entry no longer hashes to its leaf.
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE ledger_entries SET data=replace(data,'0.500000000','9.500000000')"
                         " WHERE seq=5",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  CliRun bad = Bourse("ledger verify --db " + path);
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("seq 5"), std::string::npos) << bad.out;
}

// DESIGN 4.1: a ledger in which capacity was promised twice fails `verify`.
// A root above the node's capacity, forged with the ledger key.
TEST(CliVerifyTest, CapacityPromisedTwiceFailsAtItsSeq) {
  TempDir dir;
  std::string path = dir.File("l.db");
  auto key = KeyFromByte(82), site = KeyFromByte(83);
  core::ResourceVector cap{
      .cpu_mcores = 1000, .mem_mib = 64, .disk_mib = 0, .net_min_kbps = 0, .net_max_kbps = 0};
  auto root = [&](const std::string& id) {
    return *IssueRoot(site, {.id = id,
                             .holder = key.public_key(),
                             .node = "n1",
                             .res = cap,
                             .interval = {1'700'000'000, 1'700'003'600}});
  };
  uint64_t forged = 0;
  {
    StoreOptions o;
    o.signing_key = key;
    auto store = std::move(*Store::Open(path, o));
    ASSERT_TRUE(store
                    ->Commit([&](Txn& t) -> core::Status {
                      BOURSE_RETURN_IF_ERROR(CapacityLog::RecordNode(
                          t, "n1", cap, {{"node", "n1"}, {"capacity", ResourceVectorToJson(cap)}}));
                      return CapacityLog::RecordIssued(t, root("first"));
                    })
                    .ok());
    // The honest path refuses the second promise of the same capacity ...
    EXPECT_FALSE(
        store->Commit([&](Txn& t) { return CapacityLog::RecordIssued(t, root("second")); }).ok());
    // ... a dishonest broker writes it anyway.
    auto r = store->Append("rcap_issued", {{"rcap", root("second").ToJson()}});
    ASSERT_TRUE(r.ok());
    forged = r->first_seq;
  }
  CliRun bad = Bourse("ledger verify --db " + path);
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("seq " + std::to_string(forged) + ": capacity"), std::string::npos)
      << bad.out;
}

}  // namespace
}  // namespace bourse::ledger
