// `bourse watch market M --json` (docs/cli.md, "watch") as a user runs it: a
// child process following a real broker process's event stream. A trade
// shows up as one JSON line; after the broker is killed and restarted on
// the same port the watch reconnects with Last-Event-ID and shows the next
// trade, with nothing repeated.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/system/broker_process.h"

namespace bourse {
namespace {

using nlohmann::json;
using systest::BourseBinary;
using systest::BrokerProcess;
using systest::World;

// A `bourse` child process whose stdout is read line by line and whose
// stderr goes to a file.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& err_file) : err_(err_file) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      int e = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (e >= 0) dup2(e, 2);
      std::vector<char*> argv;
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGINT);
      int st;
      waitpid(pid_, &st, 0);
    }
    if (out_ >= 0) close(out_);
  }
  // The next stdout line, or "" after `ms` without one.
  std::string Line(int ms) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      end - std::chrono::steady_clock::now())
                                      .count());
      if (left <= 0) return "";
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      char chunk[4096];
      ssize_t n = read(out_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  std::string Err() const {
    std::ifstream in(err_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Waits up to `ms` for `text` on stderr.
  bool ErrHas(const std::string& text, int ms) const {
    for (int waited = 0; waited < ms; waited += 50) {
      if (Err().find(text) != std::string::npos) return true;
      usleep(50 * 1000);
    }
    return false;
  }

 private:
  std::string err_;
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buf_;
};

// The next `trade` event among the watch's lines (book events skipped).
json NextTrade(Child& w, int ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    std::string line = w.Line(200);
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not one JSON event: " << line;
    if (j.is_object() && j["event"] == "trade") return j;
  }
  return nullptr;
}

TEST(WatchTest, MarketTradesAcrossABrokerRestartWithNothingRepeated) {
  auto b = BrokerProcess::Create();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto& broker = *b;
  auto w = World::Seed(broker->url(), broker->admin_key());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  World& world = **w;
  clients::Client admin = world.As(world.admin);
  int64_t now = core::SystemClock::Get().NowSeconds();
  auto m = admin.Call("POST", "/v1/markets",
                      {{"node", "n1"},
                       {"unit",
                        {{"cpu_mcores", 100},
                         {"mem_mib", 0},
                         {"disk_mib", 0},
                         {"net_min_kbps", 0},
                         {"net_max_kbps", 0}}},
                       {"not_before", now + 3600},
                       {"not_after", now + 7200}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  std::string market = (*m)["market"]["id"];
  ASSERT_TRUE(admin
                  .Call("POST", "/v1/markets/" + market + "/orders",
                        {{"side", "sell"}, {"qty", 10}, {"price", "1"}, {"rcap", "root-n1"}})
                  .ok());

  Child watch({BourseBinary(), "--url", broker->url(), "watch", "market", market, "--json"},
              broker->dir() + "/watch.err");
  ASSERT_TRUE(watch.ErrHas("watch: following", 10000)) << watch.Err();
  // The broker counts the stream in /metrics (docs/broker.md, "Metrics").
  auto metrics = admin.Send("GET", "/metrics", "", false);
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("\nbourse_event_streams 1\n"), std::string::npos) << metrics->body;
  clients::Client user = world.As(world.user);
  auto buy = [&](int qty) {
    auto r = user.Call("POST", "/v1/markets/" + market + "/orders",
                       {{"side", "buy"}, {"qty", qty}, {"price", "1"}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  buy(2);
  json first = NextTrade(watch, 10000);
  ASSERT_TRUE(first.is_object()) << watch.Err();
  EXPECT_EQ(first["data"]["qty"], 2);
  EXPECT_EQ(first["data"]["market"], market);

  // The broker dies and comes back on the same port; a trade made before
  // the watch is back is replayed to it, once.
  broker->Kill9();
  ASSERT_TRUE(watch.ErrHas("watch: connection lost", 10000)) << watch.Err();
  ASSERT_TRUE(broker->Start().ok());
  buy(3);
  json second = NextTrade(watch, 20000);
  ASSERT_TRUE(second.is_object()) << watch.Err();
  EXPECT_EQ(second["data"]["qty"], 3);
  EXPECT_GT(second["id"].get<int64_t>(), first["id"].get<int64_t>());
  EXPECT_NE(second["data"]["id"], first["data"]["id"]);
  EXPECT_TRUE(watch.ErrHas("watch: reconnected", 1000)) << watch.Err();
  // Nothing else: no trade shown twice.
  EXPECT_TRUE(NextTrade(watch, 1500).is_null());
}

}  // namespace
}  // namespace bourse
