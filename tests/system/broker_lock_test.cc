// Issue #14: a second `bourse-broker` on the same database used to start and
// serve, after which the first failed every write while /healthz said ok.
// Now the second exits at start naming the holder; the first keeps serving;
// the lock goes with the process (a restart after kill -9 works).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/system/broker_process.h"

namespace bourse::systest {
namespace {

struct Outcome {
  bool exited = false;  // false: still running after the wait (killed)
  int code = -1;
  std::string output;
};

// Runs a second broker on `db` and waits up to 10 s for it to exit.
Outcome RunSecondBroker(const std::string& dir, const std::string& db) {
  const std::string out = dir + "/second.txt";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(BrokerBinary().c_str(), BrokerBinary().c_str(), "--db", db.c_str(), "--listen",
          "127.0.0.1:0", static_cast<char*>(nullptr));
    _exit(127);
  }
  Outcome o;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int st = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &st, WNOHANG) == pid) {
      o.exited = true;
      o.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!o.exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  o.output = ss.str();
  return o;
}

TEST(BrokerLockTest, SecondBrokerOnTheSameDatabaseExitsNamingTheHolder) {
  auto b = BrokerProcess::Create();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  BrokerProcess& first = **b;
  clients::Client admin(first.url(), first.admin_key());
  auto mint = [&](const char* amount) {
    return admin.Call("POST", "/v1/accounts/mint",
                      {{"to", first.admin_key().public_key().ToText()}, {"amount", amount}});
  };
  ASSERT_TRUE(mint("1").ok());

  Outcome second = RunSecondBroker(first.dir(), first.db());
  EXPECT_TRUE(second.exited) << "the second broker kept running: " << second.output;
  EXPECT_NE(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("database " + first.db() + " is in use by pid " +
                               std::to_string(first.pid()) + " (bourse-broker)"),
            std::string::npos)
      << second.output;

  // The first still takes writes.
  auto after = mint("2");
  EXPECT_TRUE(after.ok()) << after.status().ToString();

  // The lock dies with its process: a restart after kill -9 serves again.
  first.Kill9();
  ASSERT_TRUE(first.Start().ok());
  clients::Client again(first.url(), first.admin_key());
  auto r = again.Call("POST", "/v1/accounts/mint",
                      {{"to", first.admin_key().public_key().ToText()}, {"amount", "3"}});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

}  // namespace
}  // namespace bourse::systest
