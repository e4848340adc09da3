// GET /v1/events (DESIGN §9, docs/events.md) on a real broker over loopback:
// live trades, orders, book snapshots and heads with the filters; resuming
// with Last-Event-ID after a restart with nothing lost or repeated (the
// resumed stream equals a fresh replay of the whole ledger); a consumer that
// never reads is dropped while orders keep flowing; bad requests refused.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/broker/market_fixture.h"

namespace bourse::broker::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Ev {
  uint64_t id = 0;
  std::string type;
  json data;
  bool operator==(const Ev& o) const { return id == o.id && type == o.type && data == o.data; }
};

// A raw SSE client: one connection, events parsed as they come.
class SseClient {
 public:
  SseClient(int port, const std::string& target, const std::string& last_event_id = "",
            int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n";
    if (!last_event_id.empty()) req += "Last-Event-ID: " + last_event_id + "\r\n";
    req += "\r\n";
    EXPECT_EQ(::send(fd_, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  }
  ~SseClient() { ::close(fd_); }

  // Reads until `done(events)` or `timeout`; false on timeout or EOF first.
  template <class F>
  bool ReadUntil(F done, std::chrono::milliseconds timeout = 5000ms) {
    timeval tv{.tv_sec = 0, .tv_usec = 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!done(events)) {
      if (std::chrono::steady_clock::now() >= end) return false;
      char buf[16384];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return false;
      if (n > 0) Parse(std::string_view(buf, static_cast<size_t>(n)));
    }
    return true;
  }
  bool UntilId(uint64_t id) {
    return ReadUntil([&](const std::vector<Ev>& e) { return !e.empty() && e.back().id >= id; });
  }

  std::string head;  // the HTTP head
  std::vector<Ev> events;

 private:
  void Parse(std::string_view in) {
    buf_ += in;
    if (head.empty()) {
      size_t e = buf_.find("\r\n\r\n");
      if (e == std::string::npos) return;
      head = buf_.substr(0, e + 4);
      buf_.erase(0, e + 4);
    }
    size_t e;
    while ((e = buf_.find("\n\n")) != std::string::npos) {
      std::string block = buf_.substr(0, e);
      buf_.erase(0, e + 2);
      Ev ev;
      size_t start = 0;
      while (start < block.size()) {
        size_t nl = block.find('\n', start);
        if (nl == std::string::npos) nl = block.size();
        std::string line = block.substr(start, nl - start);
        start = nl + 1;
        if (line.rfind("id: ", 0) == 0) ev.id = std::stoull(line.substr(4));
        if (line.rfind("event: ", 0) == 0) ev.type = line.substr(7);
        if (line.rfind("data: ", 0) == 0) ev.data = json::parse(line.substr(6));
      }
      if (!ev.type.empty()) events.push_back(std::move(ev));
    }
  }
  int fd_ = -1;
  std::string buf_;
};

std::vector<Ev> Without(const std::vector<Ev>& in, const std::string& type) {
  std::vector<Ev> out;
  for (const Ev& e : in) {
    if (e.type != type) out.push_back(e);
  }
  return out;
}

class EventsTest : public ::testing::Test {
 protected:
  explicit EventsTest(EventHubOptions o = {}) : env_({}, o) {}
  void SetUp() override {
    env_.SetupSites();
    int64_t now = core::SystemClock::Get().NowSeconds();
    alice_ = env_.AddUser("alice", "100000", "mit");
    pool_ = env_.Grant(env_.pi_, "n1", env_.broker_->broker_key(), now, now + 86400).id;
    a_ = env_.NodeMarket("n1", now + 3600, now + 7200);
    b_ = env_.NodeMarket("n3", now + 3600, now + 7200);
  }
  int Port() { return std::stoi(env_.url_.substr(env_.url_.rfind(':') + 1)); }
  uint64_t Size() { return static_cast<uint64_t>(env_.broker_->LedgerSize()); }
  void Sell(const std::string& m, int64_t qty, const std::string& price) {
    env_.Ok(env_.admin_, "POST", "/v1/markets/" + m + "/orders",
            {{"side", "sell"}, {"qty", qty}, {"price", price}, {"rcap", pool_}});
  }
  json Buy(const std::string& m, int64_t qty, const std::string& price) {
    return env_.Ok(alice_, "POST", "/v1/markets/" + m + "/orders",
                   {{"side", "buy"}, {"qty", qty}, {"price", price}});
  }
  // Every event of a fresh replay of the whole ledger (all topics).
  std::vector<Ev> ReplayAll() {
    SseClient c(Port(), "/v1/events", "0");
    EXPECT_TRUE(c.UntilId(Size()));
    return c.events;
  }

  MarketEnv env_;
  core::PrivateKey alice_ = NewKey();
  std::string pool_;  // the broker's root rcap on n1
  std::string a_, b_;
};

TEST_F(EventsTest, LiveTradesOrdersBookAndHeadsFilteredByMarket) {
  SseClient c(Port(), "/v1/events?topics=trades,orders,book,ledger&market=" + a_);
  ASSERT_TRUE(c.ReadUntil([&](auto&) { return !c.head.empty(); }));
  EXPECT_NE(c.head.find("200 OK"), std::string::npos) << c.head;
  EXPECT_NE(c.head.find("Content-Type: text/event-stream"), std::string::npos);
  Sell(a_, 2, "3");
  Buy(b_, 1, "1");  // another market: no trade/order/book event here
  Buy(a_, 1, "5");
  ASSERT_TRUE(c.UntilId(Size()));
  uint64_t last = 0;
  std::vector<std::string> kinds;
  for (const Ev& e : c.events) {
    EXPECT_GE(e.id, last);
    last = e.id;
    if (e.type != "head") {
      EXPECT_EQ(e.data["market"], a_) << e.data;
    }
    if (e.type == "order") kinds.push_back("order:" + e.data["action"].get<std::string>());
    if (e.type == "trade") {
      kinds.push_back("trade");
      EXPECT_EQ(e.data["price"], "3.000000000");
      EXPECT_EQ(e.data["qty"], 1);
      EXPECT_EQ(e.data["seq"].get<uint64_t>() + 1, e.id);
    }
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"order:placed", "order:placed", "trade"}));
  // The last book snapshot shows the one unit still for sale at 3.
  auto book = std::find_if(c.events.rbegin(), c.events.rend(),
                           [](const Ev& e) { return e.type == "book"; });
  ASSERT_NE(book, c.events.rend());
  EXPECT_EQ(book->data["asks"], json::parse(R"([{"price":"3.000000000","qty":1,"orders":1}])"));
  // The last head is the ledger's head.
  json head = env_.Ok(alice_, "GET", "/v1/ledger/head");
  EXPECT_EQ(c.events.back().type, "head");
  EXPECT_EQ(c.events.back().data, head);
}

TEST_F(EventsTest, ResumeAfterRestartLosesAndRepeatsNothing) {
  Sell(a_, 5, "2");
  uint64_t seen_upto = 0;
  std::vector<Ev> got;
  {
    SseClient c(Port(), "/v1/events", "0");  // from the beginning
    Buy(a_, 1, "2");
    ASSERT_TRUE(c.UntilId(Size()));
    got = c.events;
    seen_upto = got.back().id;
  }
  env_.Restart();
  Buy(a_, 2, "2");
  Buy(b_, 1, "4");
  {
    SseClient c(Port(), "/v1/events", std::to_string(seen_upto));
    ASSERT_TRUE(c.UntilId(Size()));
    EXPECT_GT(c.events.front().id, seen_upto);
    got.insert(got.end(), c.events.begin(), c.events.end());
  }
  // Book and head events are snapshots, coalesced per delivery; everything
  // else is a function of the ledger: the two streams together equal one
  // replay.
  std::vector<Ev> all = ReplayAll();
  EXPECT_EQ(Without(Without(got, "book"), "head"), Without(Without(all, "book"), "head"));
  uint64_t head_size = 0;
  for (const Ev& e : got) {
    if (e.type != "head") continue;
    EXPECT_GT(e.data["size"].get<uint64_t>(), head_size);  // newer each time
    head_size = e.data["size"];
  }
  EXPECT_EQ(head_size, Size());
  size_t trades = 0;
  for (const Ev& e : all) trades += e.type == "trade";
  EXPECT_EQ(trades, 2u);
}

TEST_F(EventsTest, BadRequestsAreRefusedNamingTheProblem) {
  auto anon = env_.Anon();
  auto r = anon.Call("GET", "/v1/events?topics=trades,gossip");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("gossip"), std::string::npos) << r.status().message();
  r = anon.Call("GET", "/v1/events?last_event_id=" + std::to_string(Size() + 10));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("beyond"), std::string::npos) << r.status().message();
  r = anon.Call("GET", "/v1/events?last_event_id=12x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("last_event_id"), std::string::npos);
  SseClient c(Port(), "/v1/events", "abc");
  c.ReadUntil([&](auto&) { return !c.head.empty(); });
  EXPECT_NE(c.head.find("400"), std::string::npos) << c.head;
}

TEST_F(EventsTest, BindingEventsOfOneSlice) {
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_web"}});
  env_.Ok(alice_, "POST", "/v1/slices", {{"name", "mit_db"}});
  SseClient c(Port(), "/v1/events?topics=bindings&slice=mit_web");
  int64_t now = core::SystemClock::Get().NowSeconds();
  for (const char* slice : {"mit_db", "mit_web"}) {
    ledger::Rcap r = env_.Grant(env_.pi_, "n3", alice_.public_key(), now, now + 3600, 500);
    env_.Ok(alice_, "POST", std::string("/v1/slices/") + slice + "/bindings",
            {{"chain", ledger::ChainToJson(std::vector<ledger::Rcap>{r})}});
  }
  ASSERT_TRUE(c.UntilId(Size()));
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].type, "binding");
  EXPECT_EQ(c.events[0].data["state"], "bound");
  EXPECT_EQ(c.events[0].data["slice"], "mit_web");
  EXPECT_EQ(c.events[0].data["node"], "n3");
}

// RFQ entries (rfq_*) become `rfq` events with the entry's suffix as action.
TEST_F(EventsTest, RfqEventsCarryTheirAction) {
  SseClient c(Port(), "/v1/events?topics=rfqs");
  int64_t now = core::SystemClock::Get().NowSeconds();
  std::string rfq = env_.Ok(alice_, "POST", "/v1/rfqs",
                            {{"res", MarketEnv::Res(100)},
                             {"nodes", 1},
                             {"not_before", now + 3600},
                             {"not_after", now + 7200},
                             {"max_price", "10"},
                             {"close", now + 600}})["rfq"]["id"];
  env_.Ok(env_.admin_, "POST", "/v1/rfqs/" + rfq + "/quotes",
          {{"price", "5"}, {"rcaps", {{{"rcap", pool_}, {"node", "n1"}}}}});
  env_.Ok(alice_, "DELETE", "/v1/rfqs/" + rfq);
  ASSERT_TRUE(c.UntilId(Size()));
  ASSERT_EQ(c.events.size(), 3u);
  std::vector<std::string> actions;
  for (const Ev& e : c.events) {
    EXPECT_EQ(e.type, "rfq");
    EXPECT_EQ(e.data["rfq"], rfq);
    actions.push_back(e.data["action"]);
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"opened", "quoted", "cancelled"}));
  EXPECT_FALSE(c.events[1].data.contains("price"));  // sealed until the award
}

class SlowConsumerTest : public EventsTest {
 protected:
  SlowConsumerTest() : EventsTest(Options()) {}
  static EventHubOptions Options() {
    EventHubOptions o;
    o.max_queued_bytes = 32 * 1024;
    return o;
  }
};

TEST_F(SlowConsumerTest, ConsumerThatNeverReadsIsDroppedWhileOrdersFlow) {
  SseClient idle(Port(), "/v1/events", "", 2048);  // never read after this
  SseClient live(Port(), "/v1/events?topics=orders");
  for (int i = 0; i < 100 && env_.broker_->events().streams() < 2; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(env_.broker_->events().streams(), 2);
  // The live consumer reads all along, on its own thread.
  std::atomic<int> placed{0};
  std::atomic<size_t> read{0};
  std::atomic<bool> done{false};
  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    live.ReadUntil(
        [&](const std::vector<Ev>& e) {
          read = e.size();
          return done.load() && e.size() >= static_cast<size_t>(placed.load());
        },
        120000ms);
    reader_done = true;
  });
  // Orders flow (each answered) until the idle stream is gone. The orders wait when
  // the live consumer falls 50 behind, so what waits for it stays far under the bound
  // however the threads are scheduled (a loaded machine once starved it).
  auto t0 = std::chrono::steady_clock::now();
  while (env_.broker_->events().streams() > 1 && std::chrono::steady_clock::now() - t0 < 60s) {
    for (int i = 0; i < 50; ++i, ++placed) Buy(a_, 1, "0.01");
    while (read.load() + 50 < static_cast<size_t>(placed.load()) && !reader_done.load() &&
           std::chrono::steady_clock::now() - t0 < 60s) {
      std::this_thread::sleep_for(1ms);
    }
  }
  EXPECT_EQ(env_.broker_->events().streams(), 1) << "after " << placed << " orders";
  done = true;
  reader.join();
  // The reading consumer got every order.
  EXPECT_EQ(live.events.size(), static_cast<size_t>(placed.load()));
}

class StreamLimitTest : public EventsTest {
 protected:
  StreamLimitTest() : EventsTest(Options()) {}
  static EventHubOptions Options() {
    EventHubOptions o;
    o.max_streams_per_peer = 2;
    return o;
  }
};

TEST_F(StreamLimitTest, OneClientCannotTakeEverySlot) {
  auto a = std::make_unique<SseClient>(Port(), "/v1/events");
  SseClient b(Port(), "/v1/events");
  for (int i = 0; i < 100 && env_.broker_->events().streams() < 2; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(env_.broker_->events().streams(), 2);
  SseClient c(Port(), "/v1/events");  // a third from the same address
  ASSERT_TRUE(c.ReadUntil([&](auto&) { return !c.head.empty(); }));
  EXPECT_NE(c.head.find("429"), std::string::npos) << c.head;
  // Closing one makes room again.
  a.reset();
  for (int i = 0; i < 300 && env_.broker_->events().streams() > 1; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  SseClient d(Port(), "/v1/events");
  ASSERT_TRUE(d.ReadUntil([&](auto&) { return !d.head.empty(); }));
  EXPECT_NE(d.head.find("200 OK"), std::string::npos) << d.head;
}

}  // namespace
}  // namespace bourse::broker::testing
