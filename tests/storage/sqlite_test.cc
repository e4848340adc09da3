// storage/: error mapping (precise codes, never SQL text), schema versions
// and migrations, the process lock. Real SQLite files in a temp directory.
#include "storage/sqlite.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace bourse::storage {
namespace {

namespace fs = std::filesystem;

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bourse-storage-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "t.db").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<Connection> Open() {
    ConnectionOptions o;
    o.create = true;
    auto c = Connection::Open(path_, o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(StorageTest, ConstraintErrorsMapToPreciseCodesWithoutSql) {
  auto c = Open();
  ASSERT_TRUE(c->Exec("CREATE TABLE t(k TEXT PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0),"
                      " u TEXT UNIQUE)")
                  .ok());
  ASSERT_TRUE(c->Exec("INSERT INTO t VALUES('a', 1, 'x')").ok());
  auto ins = [&](const char* k, std::optional<int64_t> n, const char* u) {
    auto s = c->Prepare("INSERT INTO t(k, n, u) VALUES(?,?,?)");
    EXPECT_TRUE(s.ok());
    s->Bind(1, k);
    if (n) {
      s->Bind(2, *n);
    } else {
      s->BindNull(2);
    }
    s->Bind(3, u);
    return s->Run();
  };
  core::Status pk = ins("a", 2, "y");
  EXPECT_EQ(pk.code(), core::StatusCode::kAlreadyExists) << pk.ToString();
  EXPECT_NE(pk.message().find("t.k"), std::string::npos) << pk.message();
  core::Status uniq = ins("b", 2, "x");
  EXPECT_EQ(uniq.code(), core::StatusCode::kAlreadyExists) << uniq.ToString();
  EXPECT_NE(uniq.message().find("t.u"), std::string::npos) << uniq.message();
  core::Status nn = ins("c", std::nullopt, "z");
  EXPECT_EQ(nn.code(), core::StatusCode::kInvalidArgument) << nn.ToString();
  EXPECT_NE(nn.message().find("t.n"), std::string::npos) << nn.message();
  core::Status check = ins("d", -5, "w");
  EXPECT_EQ(check.code(), core::StatusCode::kFailedPrecondition) << check.ToString();
  // The CHECK expression is SQL: it must not be quoted.
  EXPECT_EQ(check.message().find(">="), std::string::npos) << check.message();
  EXPECT_NE(check.message().find("t:"), std::string::npos) << check.message();
  for (const core::Status& st : {pk, uniq, nn, check}) {
    EXPECT_EQ(st.message().find("INSERT"), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find("VALUES"), std::string::npos) << st.message();
  }
}

TEST_F(StorageTest, ForeignKeyIsFailedPrecondition) {
  auto c = Open();
  ASSERT_TRUE(c->Exec("PRAGMA foreign_keys=ON; CREATE TABLE p(id TEXT PRIMARY KEY);"
                      "CREATE TABLE ch(id TEXT, p TEXT REFERENCES p(id))")
                  .ok());
  core::Status st = c->Exec("INSERT INTO ch VALUES('1','nope')");
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("ch"), std::string::npos) << st.message();
}

TEST_F(StorageTest, SyntaxAndMissingTableErrorsQuoteNoSql) {
  auto c = Open();
  auto bad = c->Prepare("SELEKT secret_column FROM nowhere WHERE x = 'pw'");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInternal);
  EXPECT_EQ(bad.status().message().find("SELEKT"), std::string::npos) << bad.status().message();
  EXPECT_EQ(bad.status().message().find("'pw'"), std::string::npos) << bad.status().message();
  core::Status ex = c->Exec("DELETE FROM missing_table WHERE secret = 'pw'");
  EXPECT_EQ(ex.code(), core::StatusCode::kInternal);
  EXPECT_EQ(ex.message().find("'pw'"), std::string::npos) << ex.message();
  EXPECT_NE(ex.message().find("missing_table"), std::string::npos) << ex.message();
}

TEST_F(StorageTest, BusyIsUnavailable) {
  auto a = Open();
  ConnectionOptions o;
  o.busy_timeout_ms = 0;
  auto b = Connection::Open(path_, o);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(a->Exec("CREATE TABLE t(x)").ok());
  auto txn = Transaction::Begin(*a);
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(a->Exec("INSERT INTO t VALUES(1)").ok());
  core::Status st = (*b)->Exec("INSERT INTO t VALUES(2)");
  EXPECT_EQ(st.code(), core::StatusCode::kUnavailable) << st.ToString();
}

TEST_F(StorageTest, TransactionRollsBackUnlessCommitted) {
  auto c = Open();
  ASSERT_TRUE(c->Exec("CREATE TABLE t(x)").ok());
  {
    auto txn = Transaction::Begin(*c);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(c->Exec("INSERT INTO t VALUES(1)").ok());
  }
  {
    auto txn = Transaction::Begin(*c);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(c->Exec("INSERT INTO t VALUES(2)").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  auto s = c->Prepare("SELECT group_concat(x) FROM t");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(*s->Step());
  EXPECT_EQ(s->Text(0), "2");
}

Schema TwoStep(int* applied) {
  return Schema{"demo",
                {{1, "table t",
                  [applied](Connection& c) {
                    ++*applied;
                    return c.Exec("CREATE TABLE IF NOT EXISTS t(x)");
                  }},
                 {2, "column y", [applied](Connection& c) {
                    ++*applied;
                    return c.Exec("ALTER TABLE t ADD COLUMN y INTEGER NOT NULL DEFAULT 7");
                  }}}};
}

TEST_F(StorageTest, MigrationsRunInOrderOnceAndRecordTheVersion) {
  auto c = Open();
  // A file from before versions: the table exists, no version row.
  ASSERT_TRUE(c->Exec("CREATE TABLE t(x); INSERT INTO t VALUES(42)").ok());
  int applied = 0;
  Schema s = TwoStep(&applied);
  ASSERT_TRUE(Migrate(*c, s).ok());
  EXPECT_EQ(applied, 2);
  EXPECT_EQ(*SchemaVersion(*c, "demo"), 2);
  ASSERT_TRUE(Migrate(*c, s).ok());
  EXPECT_EQ(applied, 2);  // nothing pending
  auto q = c->Prepare("SELECT x, y FROM t");
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(*q->Step());
  EXPECT_EQ(q->Int(0), 42);
  EXPECT_EQ(q->Int(1), 7);
}

TEST_F(StorageTest, FailedMigrationLeavesTheEarlierVersion) {
  auto c = Open();
  Schema s{"demo",
           {{1, "table t", [](Connection& c) { return c.Exec("CREATE TABLE t(x)"); }},
            {2, "broken", [](Connection& c) {
               BOURSE_RETURN_IF_ERROR(c.Exec("CREATE TABLE u(x)"));
               return core::Internal("boom");
             }}}};
  core::Status st = Migrate(*c, s);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("migration 2 (broken)"), std::string::npos) << st.message();
  EXPECT_EQ(*SchemaVersion(*c, "demo"), 1);
  EXPECT_FALSE(c->Exec("SELECT * FROM u").ok());  // rolled back with its migration
}

TEST_F(StorageTest, NewerVersionIsRefused) {
  auto c = Open();
  int applied = 0;
  Schema s = TwoStep(&applied);
  ASSERT_TRUE(Migrate(*c, s).ok());
  ASSERT_TRUE(c->Exec("UPDATE storage_schema SET version=9 WHERE component='demo'").ok());
  core::Status st = Migrate(*c, s);
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("version 9 is newer than this program knows (2)"), std::string::npos)
      << st.message();
}

TEST_F(StorageTest, LockNamesTheHolderAndDiesWithIt) {
  auto first = ProcessLock::Acquire(path_, "first-owner");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = ProcessLock::Acquire(path_, "second");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), core::StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(), "database " + path_ + " is in use by pid " +
                                           std::to_string(getpid()) + " (first-owner)");
  first->reset();
  EXPECT_TRUE(ProcessLock::Acquire(path_, "third").ok());

  // A child holds it and is killed with SIGKILL: the lock goes with it.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto l = ProcessLock::Acquire(path_, "child");
    char b = l.ok() ? 'y' : 'n';
    (void)!write(ready[1], &b, 1);
    pause();
    _exit(0);
  }
  char b = 0;
  ASSERT_EQ(read(ready[0], &b, 1), 1);
  ASSERT_EQ(b, 'y');
  auto busy = ProcessLock::Acquire(path_, "parent");
  EXPECT_FALSE(busy.ok());
  EXPECT_NE(busy.status().message().find("pid " + std::to_string(pid) + " (child)"),
            std::string::npos)
      << busy.status().message();
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  EXPECT_TRUE(ProcessLock::Acquire(path_, "parent").ok());
  close(ready[0]);
  close(ready[1]);
}

}  // namespace
}  // namespace bourse::storage
