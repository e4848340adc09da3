// Crash safety: a child process appends batches and reports each batch whose
// append returned success through a pipe; the parent kills it with SIGKILL at
// random points, 24 times. After every kill the store must open, audit clean,
// and hold every acknowledged batch, whole and in order.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include "core/random.h"
#include "ledger/audit.h"
#include "ledger/store.h"
#include "ledger_test_util.h"

namespace bourse::ledger {
namespace {

using testing::KeyFromByte;
using testing::TempDir;

constexpr int kBatch = 25;
constexpr int kKills = 24;

// The child: appends numbered batches forever, acknowledging each one.
[[noreturn]] void ChildAppend(const std::string& path, int ack_fd) {
  StoreOptions o;
  o.signing_key = KeyFromByte(90);
  auto s = Store::Open(path, o);
  if (!s.ok()) _exit(3);
  Store& store = **s;
  int64_t next = 0;
  uint64_t size = store.Head().size;
  if (size > 0) {
    auto last = store.Entries(size - 1, size);
    if (!last.ok()) _exit(4);
    next = (*last)[0].body["batch"].get<int64_t>() + 1;
  }
  for (;; ++next) {
    std::vector<EntryInput> batch;
    for (int k = 0; k < kBatch; ++k) {
      batch.push_back({"note", {{"batch", next}, {"k", k}, {"pad", std::string(100, 'x')}}});
    }
    auto r = store.AppendBatch(std::move(batch));
    if (!r.ok()) _exit(5);
    if (::write(ack_fd, &next, sizeof next) != sizeof next) _exit(6);
  }
}

TEST(CrashTest, KilledAppenderLosesNoAcknowledgedBatch) {
  TempDir dir;
  std::string path = dir.File("crash.db");
  core::DeterministicRandom rng(20261124);
  int64_t max_acked = -1;
  int64_t total_acks = 0;
  for (int round = 0; round < kKills; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      ChildAppend(path, fds[1]);
    }
    ::close(fds[1]);
    // Let it run until its first acknowledgement, then a random while more.
    int64_t b;
    ASSERT_EQ(::read(fds[0], &b, sizeof b), static_cast<ssize_t>(sizeof b)) << "child died early";
    max_acked = std::max(max_acked, b);
    ++total_acks;
    std::this_thread::sleep_for(std::chrono::microseconds(rng.Uniform(40'000)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child exited " << status;
    // Every acknowledgement that reached the pipe before the kill.
    while (::read(fds[0], &b, sizeof b) == static_cast<ssize_t>(sizeof b)) {
      max_acked = std::max(max_acked, b);
      ++total_acks;
    }
    ::close(fds[0]);

    // The store opens (its last head checks out) and audits clean...
    StoreOptions o;
    o.signing_key = KeyFromByte(90);
    auto s = Store::Open(path, o);
    ASSERT_TRUE(s.ok()) << "round " << round << ": " << s.status().ToString();
    auto audit = AuditStore(path, KeyFromByte(90).public_key());
    ASSERT_TRUE(audit.ok());
    ASSERT_TRUE(audit->ok()) << "round " << round << ": " << audit->violation->ToString();
    // ...and holds every acknowledged batch, whole, in order.
    uint64_t size = (*s)->Head().size;
    ASSERT_EQ(size % kBatch, 0u) << "a batch was half-applied";
    ASSERT_GE(static_cast<int64_t>(size / kBatch), max_acked + 1)
        << "round " << round << ": acknowledged batch " << max_acked << " lost";
    auto entries = (*s)->Entries(0, size);
    ASSERT_TRUE(entries.ok());
    for (uint64_t i = 0; i < size; ++i) {
      ASSERT_EQ((*entries)[i].body["batch"].get<int64_t>(), static_cast<int64_t>(i / kBatch));
      ASSERT_EQ((*entries)[i].body["k"].get<int>(), static_cast<int>(i % kBatch));
    }
  }
  std::printf("crash test: %d kills, %lld acknowledged batches, all present\n", kKills,
              static_cast<long long>(total_acks));
}

}  // namespace
}  // namespace bourse::ledger
