// The SQLite Merkle log: appends, group commit, caller tables, proofs against
// the reference implementation, reopening checks and tamper detection.
#include "ledger/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "ledger/audit.h"
#include "ledger_test_util.h"

namespace bourse::ledger {
namespace {

using testing::KeyFromByte;
using testing::TempDir;

StoreOptions Opts(const core::PrivateKey& key, const core::Clock* clock = nullptr) {
  StoreOptions o;
  o.signing_key = key;
  o.clock = clock;
  return o;
}

// Raw SQL on a closed store file, to tamper with it.
void Sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

std::unique_ptr<Store> MakeStore(const std::string& path, const core::PrivateKey& key, int n,
                                 int per_batch = 1) {
  auto s = Store::Open(path, Opts(key));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  for (int i = 0; i < n; i += per_batch) {
    std::vector<EntryInput> batch;
    for (int k = i; k < std::min(n, i + per_batch); ++k) {
      batch.push_back({"note", {{"i", k}, {"text", "entry " + std::to_string(k)}}});
    }
    auto r = (*s)->AppendBatch(std::move(batch));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  return std::move(*s);
}

TEST(StoreTest, CreateAppendAndReadBack) {
  TempDir dir;
  auto key = KeyFromByte(1);
  core::ManualClock clock(1'700'000'000'000);
  auto s = Store::Open(dir.File("l.db"), Opts(key, &clock));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Store& store = **s;
  EXPECT_EQ(store.Head().size, 0u);
  EXPECT_EQ(store.Head().root, EmptyTreeRoot());
  EXPECT_TRUE(VerifyTreeHead(store.Head(), key.public_key()).ok());

  auto r = store.AppendBatch({{"mint", {{"a", 1}}}, {"transfer", {{"b", "x"}}}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_seq, 0u);
  EXPECT_EQ(r->count, 2u);
  EXPECT_EQ(r->head.size, 2u);
  EXPECT_EQ(r->head.ts, 1'700'000'000'000);
  EXPECT_TRUE(VerifyTreeHead(r->head, key.public_key()).ok());

  auto texts = store.EntryTexts(0, 2);
  ASSERT_TRUE(texts.ok());
  EXPECT_EQ((*texts)[0],
            "{\"body\":{\"a\":1},\"prev\":\"\",\"seq\":0,\"ts\":1700000000000,\"type\":\"mint\"}");
  std::string prev = HashToHex(LeafHash((*texts)[0]));
  EXPECT_EQ((*texts)[1], "{\"body\":{\"b\":\"x\"},\"prev\":\"" + prev +
                             "\",\"seq\":1,\"ts\":1700000000000,\"type\":\"transfer\"}");
  EXPECT_EQ(r->head.root,
            RootFromLeafHashes(std::vector<Hash>{LeafHash((*texts)[0]), LeafHash((*texts)[1])}));
  auto entries = store.Entries(1, 2);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ((*entries)[0].type, "transfer");
  EXPECT_EQ((*entries)[0].prev, prev);

  // Tree head JSON exactly as DESIGN §7.
  nlohmann::json hj = TreeHeadToJson(r->head);
  EXPECT_EQ(hj.size(), 4u);
  EXPECT_EQ(hj["size"], 2);
  EXPECT_EQ(hj["root"], HashToHex(r->head.root));
  auto back = TreeHeadFromJson(hj);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, r->head);
  EXPECT_EQ(TreeHeadSigningBytes(r->head),
            "{\"root\":\"" + HashToHex(r->head.root) + "\",\"size\":2,\"ts\":1700000000000}");

  EXPECT_FALSE(store.Entries(0, 3).ok());
  EXPECT_FALSE(store.Append("Bad Type", nlohmann::json::object()).ok());
  EXPECT_FALSE(store.Append("x", nlohmann::json::array()).ok());
  EXPECT_FALSE(store.Append("x", {{"f", 1.5}}).ok());
  EXPECT_EQ(store.Head().size, 2u);
}

TEST(StoreTest, ProofsMatchTheReferenceAtEverySize) {
  TempDir dir;
  auto key = KeyFromByte(2);
  auto store = MakeStore(dir.File("l.db"), key, 67, 5);
  auto texts = store->EntryTexts(0, 67);
  ASSERT_TRUE(texts.ok());
  std::vector<Hash> leaves;
  for (const auto& t : *texts) leaves.push_back(LeafHash(t));
  for (uint64_t n = 1; n <= 67; ++n) {
    auto span = std::span<const Hash>(leaves).first(n);
    Hash root = RootFromLeafHashes(span);
    auto sroot = store->RootAt(n);
    ASSERT_TRUE(sroot.ok());
    EXPECT_EQ(*sroot, root);
    for (uint64_t i = 0; i < n; i += 3) {
      auto p = store->InclusionProof(i, n);
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      EXPECT_EQ(*p, InclusionPathFromLeafHashes(span, i));
      EXPECT_TRUE(VerifyInclusion(i, n, leaves[i], *p, root).ok());
    }
    for (uint64_t m = 0; m <= n; m += 2) {
      auto c = store->ConsistencyProof(m, n);
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(*c, ConsistencyPathFromLeafHashes(span, m));
    }
  }
  EXPECT_FALSE(store->InclusionProof(67, 67).ok());
  EXPECT_FALSE(store->InclusionProof(0, 68).ok());
  EXPECT_FALSE(store->ConsistencyProof(5, 4).ok());
  EXPECT_FALSE(store->ConsistencyProof(5, 68).ok());
}

TEST(StoreTest, ReopenContinuesTheChain) {
  TempDir dir;
  auto key = KeyFromByte(3);
  std::string path = dir.File("l.db");
  TreeHead h;
  {
    auto store = MakeStore(path, key, 10, 3);
    h = store->Head();
  }
  auto s = Store::Open(path, Opts(key));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Head(), h);
  ASSERT_TRUE((*s)->Append("note", {{"after", true}}).ok());
  auto audit = AuditStore(path, key.public_key());
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->ok()) << audit->violation->ToString();
  EXPECT_EQ(audit->summary.entries, 11u);
  // Heads: the creation head (0) and one per batch.
  auto heads = (*s)->Heads(0, 1000);
  ASSERT_TRUE(heads.ok());
  EXPECT_EQ(heads->size(), 6u);
}

// Issue #14: two writers on one file would each extend their own in-memory
// tree and fork the log; the second is refused, naming the holder, while a
// read-only store (the auditor's, `bourse ledger verify`) still opens.
TEST(StoreTest, ASecondWriterIsRefusedNamingTheHolder) {
  TempDir dir;
  auto key = KeyFromByte(4);
  std::string path = dir.File("l.db");
  auto first = Store::Open(path, Opts(key));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = Store::Open(path, Opts(key));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("database " + path + " is in use by pid " +
                                           std::to_string(getpid())),
            std::string::npos)
      << second.status().message();
  StoreOptions ro;
  ro.expected_key = key.public_key();
  ro.create_if_missing = false;
  auto reader = Store::Open(path, ro);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_TRUE((*first)->Append("note", {{"still", "writing"}}).ok());
  first->reset();
  EXPECT_TRUE(Store::Open(path, Opts(key)).ok());  // released on close
}

TEST(StoreTest, OpeningChecksKeys) {
  TempDir dir;
  auto key = KeyFromByte(4);
  std::string path = dir.File("l.db");
  MakeStore(path, key, 3);
  auto other = KeyFromByte(5);
  auto wrong = Store::Open(path, Opts(other));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), core::StatusCode::kFailedPrecondition);
  StoreOptions ro;
  ro.expected_key = other.public_key();
  EXPECT_FALSE(Store::Open(path, ro).ok());
  ro.expected_key = key.public_key();
  auto readonly = Store::Open(path, ro);
  ASSERT_TRUE(readonly.ok());
  auto c = (*readonly)->Append("x", nlohmann::json::object());
  EXPECT_EQ(c.status().code(), core::StatusCode::kFailedPrecondition);
  StoreOptions none;
  none.create_if_missing = true;
  EXPECT_EQ(Store::Open(dir.File("new.db"), none).status().code(), core::StatusCode::kNotFound);
  StoreOptions nocreate = Opts(key);
  nocreate.create_if_missing = false;
  EXPECT_EQ(Store::Open(dir.File("new2.db"), nocreate).status().code(),
            core::StatusCode::kNotFound);
}

TEST(StoreTest, CallerTablesCommitWithEntriesAndFailuresRollBackOnlyTheirOwnPart) {
  TempDir dir;
  auto key = KeyFromByte(6);
  auto s = Store::Open(dir.File("l.db"), Opts(key));
  ASSERT_TRUE(s.ok());
  Store& store = **s;
  ASSERT_TRUE(
      store.Commit([](Txn& t) { return t.Exec("CREATE TABLE orders(id TEXT PRIMARY KEY)"); }).ok());
  EXPECT_EQ(store.Head().size, 0u);  // no entries, no new head

  auto good = store.Commit([](Txn& t) -> core::Status {
    BOURSE_RETURN_IF_ERROR(t.Exec("INSERT INTO orders VALUES('o1')"));
    auto seq = t.Append("order_placed", {{"order", "o1"}});
    if (!seq.ok()) return seq.status();
    EXPECT_EQ(*seq, 0u);
    return core::Status::Ok();
  });
  ASSERT_TRUE(good.ok());
  auto bad = store.Commit([](Txn& t) -> core::Status {
    BOURSE_RETURN_IF_ERROR(t.Exec("INSERT INTO orders VALUES('o2')"));
    BOURSE_RETURN_IF_ERROR(t.Append("order_placed", {{"order", "o2"}}).status());
    return core::FailedPrecondition("caller changed its mind");
  });
  EXPECT_EQ(bad.status().message(), "caller changed its mind");
  EXPECT_EQ(store.Head().size, 1u);
  int rows = -1;
  ASSERT_TRUE(store
                  .Read([&](storage::Connection* db) -> core::Status {
                    BOURSE_ASSIGN_OR_RETURN(storage::Statement st,
                                            db->Prepare("SELECT count(*) FROM orders"));
                    BOURSE_RETURN_IF_ERROR(st.Step().status());
                    rows = static_cast<int>(st.Int(0));
                    return core::Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(rows, 1);
  // A caller whose SQL fails gets its own error.
  auto sqlfail = store.Commit([](Txn& t) { return t.Exec("INSERT INTO orders VALUES('o1')"); });
  EXPECT_FALSE(sqlfail.ok());
  // storage's one mapping: the precise code, the table and column, no SQL.
  EXPECT_EQ(sqlfail.status().code(), core::StatusCode::kAlreadyExists);
  EXPECT_NE(sqlfail.status().message().find("orders.id"), std::string::npos)
      << sqlfail.status().message();
  EXPECT_EQ(sqlfail.status().message().find("INSERT"), std::string::npos)
      << sqlfail.status().message();
}

TEST(StoreTest, GroupCommitBatchesConcurrentCallersAndIsolatesFailures) {
  TempDir dir;
  auto key = KeyFromByte(7);
  std::string path = dir.File("l.db");
  auto s = Store::Open(path, Opts(key));
  ASSERT_TRUE(s.ok());
  Store& store = **s;
  constexpr int kThreads = 8, kPerThread = 40;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        bool fail = (i % 7) == 3;
        auto r = store.Commit([&](Txn& txn) -> core::Status {
          BOURSE_RETURN_IF_ERROR(txn.Append("note", {{"t", t}, {"i", i}}).status());
          BOURSE_RETURN_IF_ERROR(
              txn.Append("note", {{"t", t}, {"i", i}, {"second", true}}).status());
          if (fail) return core::InvalidArgument("planned failure");
          return core::Status::Ok();
        });
        if (fail) {
          EXPECT_FALSE(r.ok());
          EXPECT_EQ(r.status().message(), "planned failure");
          ++failed;
        } else {
          ASSERT_TRUE(r.ok()) << r.status().ToString();
          EXPECT_EQ(r->count, 2u);
          EXPECT_GE(r->head.size, r->first_seq + 2);
          ++ok;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store.Head().size, static_cast<uint64_t>(ok.load()) * 2);
  auto heads = store.Heads(1, UINT64_MAX);
  ASSERT_TRUE(heads.ok());
  // Fewer heads than successful commits means callers were batched together
  // (not guaranteed by timing, so only report it).
  std::printf("group commit: %d commits in %zu tree heads\n", ok.load(), heads->size());
  // Each pair of a caller is adjacent (one caller's entries are contiguous).
  auto entries = store.Entries(0, store.Head().size);
  ASSERT_TRUE(entries.ok());
  for (size_t i = 0; i < entries->size(); i += 2) {
    EXPECT_EQ((*entries)[i].body["t"], (*entries)[i + 1].body["t"]);
    EXPECT_EQ((*entries)[i].body["i"], (*entries)[i + 1].body["i"]);
    EXPECT_TRUE((*entries)[i + 1].body.contains("second"));
  }
  auto audit = AuditStore(path, key.public_key());
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->ok()) << audit->violation->ToString();
}

TEST(StoreTest, CommitAsyncAnswersEachCallerOnceAfterTheCommitIsDurable) {
  TempDir dir;
  auto key = KeyFromByte(12);
  std::string path = dir.File("l.db");
  auto s = Store::Open(path, Opts(key));
  ASSERT_TRUE(s.ok());
  Store& store = **s;
  constexpr int kCalls = 300;
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, ok = 0;
  std::vector<uint64_t> seqs;
  std::vector<int> calls(kCalls, 0);
  for (int i = 0; i < kCalls; ++i) {
    const bool fail = i % 5 == 2;
    store.CommitAsync(
        [i, fail](Txn& txn) -> core::Status {
          BOURSE_RETURN_IF_ERROR(txn.Exec("CREATE TABLE IF NOT EXISTS t(i INTEGER PRIMARY KEY)"));
          BOURSE_RETURN_IF_ERROR(txn.Exec("INSERT INTO t(i) VALUES(" + std::to_string(i) + ")"));
          BOURSE_RETURN_IF_ERROR(txn.Append("note", {{"i", i}}).status());
          if (fail) return core::FailedPrecondition("planned failure " + std::to_string(i));
          return core::Status::Ok();
        },
        [&, i, fail](core::Result<CommitResult> r) {
          std::lock_guard<std::mutex> l(mu);
          ++calls[i];
          ++answered;
          if (fail) {
            EXPECT_FALSE(r.ok());
            EXPECT_EQ(r.status().message(), "planned failure " + std::to_string(i));
          } else if (r.ok()) {
            ++ok;
            EXPECT_EQ(r->count, 1u);
            // Durable and visible: the head that answers covers the entry.
            EXPECT_GT(r->head.size, r->first_seq);
            EXPECT_GE(store.Head().size, r->head.size);
            seqs.push_back(r->first_seq);
          } else {
            ADD_FAILURE() << r.status().ToString();
          }
          cv.notify_all();
        });
  }
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(60), [&] { return answered == kCalls; }));
  }
  for (int c : calls) EXPECT_EQ(c, 1);
  EXPECT_EQ(ok, kCalls - kCalls / 5);
  EXPECT_EQ(store.Head().size, static_cast<uint64_t>(ok));
  // Callers are answered in the order they were queued: their seqs ascend.
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  // A failed caller left no row behind; every successful one did.
  int rows = -1;
  ASSERT_TRUE(store
                  .Read([&](storage::Connection* db) -> core::Status {
                    BOURSE_ASSIGN_OR_RETURN(storage::Statement st,
                                            db->Prepare("SELECT count(*) FROM t WHERE i % 5 = 2"));
                    BOURSE_RETURN_IF_ERROR(st.Step().status());
                    rows = static_cast<int>(st.Int(0));
                    return core::Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(rows, 0);
  s->reset();  // the writer finishes and stops
  auto audit = AuditStore(path, key.public_key());
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->ok()) << audit->violation->ToString();
}

TEST(StoreTest, PacingGathersConcurrentCallersIntoFewerBatchesAndSyncs) {
  TempDir dir;
  auto key = KeyFromByte(14);
  std::string path = dir.File("l.db");
  StoreOptions o = Opts(key);
  o.batch_interval_us = 3000;
  o.sync_interval_us = 3000;
  auto s = Store::Open(path, o);
  ASSERT_TRUE(s.ok());
  Store& store = **s;
  // A lone caller is never held back: one batch and one sync per commit.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store.Append("note", {{"lone", i}}).ok());
  StoreStats lone = store.Stats();
  EXPECT_EQ(lone.callers, 5u);
  EXPECT_EQ(lone.batches, 5u);
  EXPECT_EQ(lone.syncs, 5u);
  constexpr int kThreads = 8, kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!store.Append("note", {{"t", t}, {"i", i}}).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  StoreStats st = store.Stats();
  const uint64_t calls = st.callers - lone.callers;
  const uint64_t batches = st.batches - lone.batches;
  const uint64_t syncs = st.syncs - lone.syncs;
  EXPECT_EQ(calls, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LT(batches, calls);  // callers shared transactions
  EXPECT_LE(syncs, batches);  // and syncs covered one or more batches
  std::printf("pacing: %llu calls in %llu batches and %llu syncs\n",
              static_cast<unsigned long long>(calls), static_cast<unsigned long long>(batches),
              static_cast<unsigned long long>(syncs));
  EXPECT_EQ(store.Head().size, 5u + kThreads * kPerThread);
  s->reset();
  auto audit = AuditStore(path, key.public_key());
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->ok()) << audit->violation->ToString();
}

TEST(StoreTest, CommitAsyncOnAReadOnlyStoreAnswersAtOnce) {
  TempDir dir;
  auto key = KeyFromByte(13);
  std::string path = dir.File("l.db");
  { auto w = MakeStore(path, key, 3); }
  StoreOptions ro;
  ro.create_if_missing = false;
  auto s = Store::Open(path, ro);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  bool called = false;
  (*s)->CommitAsync([](Txn&) { return core::Status::Ok(); },
                    [&](core::Result<CommitResult> r) {
                      called = true;
                      EXPECT_EQ(r.status().code(), core::StatusCode::kFailedPrecondition);
                    });
  EXPECT_TRUE(called);
}

TEST(StoreTest, ReadsRunConcurrentlyWithWrites) {
  TempDir dir;
  auto key = KeyFromByte(8);
  auto store = MakeStore(dir.File("l.db"), key, 20);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 200 && !stop; ++i) ASSERT_TRUE(store->Append("note", {{"w", i}}).ok());
    stop = true;
  });
  int checked = 0;
  while (!stop) {
    TreeHead h = store->Head();
    if (h.size < 2) continue;
    uint64_t seq = h.size / 2;
    auto p = store->InclusionProof(seq, h.size);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    auto t = store->EntryTexts(seq, seq + 1);
    ASSERT_TRUE(t.ok());
    EXPECT_TRUE(VerifyInclusion(seq, h.size, LeafHash((*t)[0]), *p, h.root).ok());
    auto c = store->ConsistencyProof(h.size / 3, h.size);
    ASSERT_TRUE(c.ok());
    ++checked;
  }
  writer.join();
  EXPECT_GT(checked, 0);
}

// Checkpoints happen in the background: the store disables SQLite's
// checkpoint-on-commit, so if its own checkpointer did not run, everything
// written would stay in the -wal file and the database file would not grow.
TEST(StoreTest, WalIsCheckpointedInTheBackground) {
  TempDir dir;
  auto key = KeyFromByte(9);
  const std::string path = dir.File("l.db");
  auto s = Store::Open(path, Opts(key, nullptr));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const std::string pad(400, 'x');
  // ~60k entries of ~0.5 KiB: well past the 4,096-page (16 MiB) threshold.
  for (int b = 0; b < 60; ++b) {
    std::vector<EntryInput> batch;
    for (int i = 0; i < 1000; ++i) batch.push_back({"note", {{"i", b * 1000 + i}, {"pad", pad}}});
    ASSERT_TRUE((*s)->AppendBatch(std::move(batch)).ok());
  }
  // The checkpointer copies the WAL back without any caller asking.
  uintmax_t db_size = 0;
  for (int i = 0; i < 500 && db_size < (16u << 20); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    db_size = std::filesystem::file_size(path);
  }
  EXPECT_GE(db_size, 16u << 20) << "the database file did not grow: no checkpoint ran";
  // And the store reads back whole after reopening.
  s->reset();
  auto again = Store::Open(path, Opts(key, nullptr));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->Head().size, 60000u);
}

// ---- Tamper tests: open or audit fails and says where. ----

class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("l.db");
    MakeStore(path_, key_, 30, 4);
  }
  std::optional<Violation> Audit() {
    auto a = AuditStore(path_, key_.public_key());
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->violation : std::nullopt;
  }
  TempDir dir_;
  core::PrivateKey key_ = KeyFromByte(9);
  std::string path_;
};

TEST_F(TamperTest, UntouchedStoreAudits) {
  EXPECT_FALSE(Audit().has_value());
  EXPECT_TRUE(Store::Open(path_, Opts(key_)).ok());
}

TEST_F(TamperTest, OneByteOfABodyChanged) {
  Sql(path_, "UPDATE ledger_entries SET data=replace(data,'entry 17','entry 18') WHERE seq=17");
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, 17u);
  EXPECT_EQ(v->rule, "hash_chain");
  // Even with the stored leaf hash forged too, the signed head catches it.
  Sql(path_, "DELETE FROM ledger_nodes WHERE id=34");
  v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, 18u);  // the next entry's prev no longer matches
  EXPECT_EQ(v->rule, "hash_chain");
}

TEST_F(TamperTest, LastEntryChangedIsCaughtByOpen) {
  Sql(path_, "UPDATE ledger_entries SET data=replace(data,'entry 29','entry 28') WHERE seq=29");
  auto s = Store::Open(path_, Opts(key_));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("entry 29"), std::string::npos) << s.status().message();
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, 29u);
}

TEST_F(TamperTest, EntryDeleted) {
  Sql(path_, "DELETE FROM ledger_entries WHERE seq=11");
  auto s = Store::Open(path_, Opts(key_));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("missing"), std::string::npos) << s.status().message();
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, 11u);
}

TEST_F(TamperTest, LastEntryDeleted) {
  Sql(path_, "DELETE FROM ledger_entries WHERE seq=29");
  auto s = Store::Open(path_, Opts(key_));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("covers 30"), std::string::npos) << s.status().message();
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->where, "head");
  EXPECT_EQ(v->seq, 30u);
}

TEST_F(TamperTest, TwoEntriesSwapped) {
  Sql(path_,
      "UPDATE ledger_entries SET seq=-1 WHERE seq=5; UPDATE ledger_entries SET seq=5 WHERE seq=6;"
      "UPDATE ledger_entries SET seq=6 WHERE seq=-1;");
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->seq, 5u);
}

TEST_F(TamperTest, TreeHeadReplaced) {
  // Replace the last head by one signed with another key: open refuses.
  auto forger = KeyFromByte(10);
  auto s = Store::Open(path_, Opts(key_));
  ASSERT_TRUE(s.ok());
  TreeHead h = (*s)->Head();
  s = core::Result<std::unique_ptr<Store>>(core::Internal("closed"));
  TreeHead forged = SignTreeHead(h.size, h.root, h.ts + 1, forger);
  Sql(path_, "UPDATE ledger_heads SET sig=x'" + core::HexEncode(forged.sig) +
                 "', ts=" + std::to_string(forged.ts) + " WHERE size=" + std::to_string(h.size));
  auto reopened = Store::Open(path_, Opts(key_));
  ASSERT_FALSE(reopened.ok());
  EXPECT_NE(reopened.status().message().find("signature"), std::string::npos);
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->where, "head");
  EXPECT_EQ(v->seq, h.size);
}

TEST_F(TamperTest, OlderTreeHeadWithWrongRoot) {
  // A validly signed (by the real key) head whose root lies: only the audit
  // can catch an old one, and it names the size.
  auto s = Store::Open(path_, Opts(key_));
  ASSERT_TRUE(s.ok());
  auto heads = (*s)->Heads(1, 100);
  ASSERT_TRUE(heads.ok());
  TreeHead old = (*heads)[2];
  s = core::Result<std::unique_ptr<Store>>(core::Internal("closed"));
  TreeHead lie = SignTreeHead(old.size, LeafHash("lie"), old.ts, key_);
  Sql(path_, "UPDATE ledger_heads SET root=x'" + core::HexEncode(lie.root) + "', sig=x'" +
                 core::HexEncode(lie.sig) + "' WHERE size=" + std::to_string(old.size));
  EXPECT_TRUE(Store::Open(path_, Opts(key_)).ok());
  auto v = Audit();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->where, "head");
  EXPECT_EQ(v->seq, old.size);
  EXPECT_EQ(v->rule, "tree_head");
}

TEST_F(TamperTest, InteriorNodeDamagedIsCaughtByOpen) {
  Sql(path_, "UPDATE ledger_nodes SET hash=zeroblob(32) WHERE id=15");  // level 3, index 0
  auto s = Store::Open(path_, Opts(key_));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("root"), std::string::npos) << s.status().message();
}

}  // namespace
}  // namespace bourse::ledger
