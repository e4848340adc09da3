// kill -9 during trading: clients place and cancel orders (buys that rest,
// pool sells that cross them) while the real bourse-broker is killed with
// SIGKILL at random moments (10 times) and restarted. Afterwards every
// acknowledged order is present, every trade's rcap is recorded (no
// half-settled fill), the books are consistent with the orders' states, and
// the ledger audit passes (credits conserved, no capacity sold twice).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "ledger/audit.h"
#include "tests/system/broker_process.h"

namespace bourse::systest {
namespace {

using nlohmann::json;

TEST(MarketKill9Test, NoHalfSettledFillAndEveryAckedOrderSurvives) {
  auto bp = BrokerProcess::Create();
  ASSERT_TRUE(bp.ok()) << bp.status().message();
  BrokerProcess& b = **bp;
  auto w = World::Seed(b.url(), b.admin_key());
  ASSERT_TRUE(w.ok()) << w.status().message();
  int64_t now = core::SystemClock::Get().NowSeconds();
  clients::Client admin(b.url(), b.admin_key());
  auto m = admin.Call("POST", "/v1/markets",
                      {{"node", "n1"},
                       {"unit",
                        {{"cpu_mcores", 10},
                         {"mem_mib", 0},
                         {"disk_mib", 0},
                         {"net_min_kbps", 0},
                         {"net_max_kbps", 0}}},
                       {"not_before", now + 3600},
                       {"not_after", now + 7200}});
  ASSERT_TRUE(m.ok()) << m.status().message();
  const std::string orders = "/v1/markets/" + (*m)["market"]["id"].get<std::string>() + "/orders";

  std::mutex mu;
  std::string url = b.url();
  std::vector<int64_t> acked;
  std::atomic<bool> stop{false};
  auto trader = [&](int who, uint64_t seed) {
    std::mt19937_64 rng(seed);
    const core::PrivateKey& key = who == 0 ? (*w)->user : b.admin_key();
    std::string my_url;
    std::optional<clients::Client> c;
    while (!stop) {
      {
        std::lock_guard<std::mutex> l(mu);
        if (url != my_url || !c) {
          my_url = url;
          c.emplace(
              my_url, key,
              clients::ClientOptions{
                  .connect_timeout_s = 1, .read_timeout_s = 5, .ca_file = "", .clock = nullptr});
        }
      }
      int64_t qty = 1 + static_cast<int64_t>(rng() % 3);
      std::string price = std::to_string(1 + rng() % 5);
      json body = {{"side", who == 0 ? "buy" : "sell"}, {"qty", qty}, {"price", price}};
      if (who == 1) body["rcap"] = "root-n1";
      auto r = c->Call("POST", orders, body);
      if (r.ok()) {
        std::lock_guard<std::mutex> l(mu);
        acked.push_back((*r)["order"]["id"].get<int64_t>());
        if (who == 0 && rng() % 3 == 0) {
          (void)c->Call("DELETE",
                        orders + "/" + std::to_string((*r)["order"]["id"].get<int64_t>()));
        }
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        c.reset();
      }
    }
  };
  std::thread t0(trader, 0, 1), t1(trader, 1, 2);
  std::mt19937_64 rng(7);
  for (int kill = 0; kill < 10; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 250));
    b.Kill9();
    ASSERT_TRUE(b.Start().ok());
    std::lock_guard<std::mutex> l(mu);
    url = b.url();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  t0.join();
  t1.join();
  ASSERT_GT(acked.size(), 20u);

  clients::Client reader(b.url());
  for (int64_t id : acked) {
    auto r = reader.Call("GET", orders + "/" + std::to_string(id));
    ASSERT_TRUE(r.ok()) << "acknowledged order " << id << " lost: " << r.status().message();
  }
  // Every trade's child rcap is recorded and held by its buyer.
  auto trades =
      reader.Call("GET", "/v1" + orders.substr(3, orders.size() - 10) + "/trades?limit=1000");
  ASSERT_TRUE(trades.ok()) << trades.status().message();
  for (const json& t : (*trades)["trades"]) {
    auto rc = reader.Call("GET", "/v1/rcaps/" + t["rcap"].get<std::string>());
    ASSERT_TRUE(rc.ok());
    EXPECT_EQ((*rc)["rcap"]["holder"], t["buyer"]);
  }
  // Resting orders in the book are exactly the orders in state resting.
  auto book = reader.Call("GET", orders);
  ASSERT_TRUE(book.ok());
  for (const char* side : {"bids", "asks"}) {
    for (const json& o : (*book)[side]) EXPECT_EQ(o["state"], "resting");
  }
  b.Kill9();
  auto rep = ledger::AuditStore(b.db(), std::nullopt);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  EXPECT_TRUE(rep->ok()) << rep->violation->ToString();
}

}  // namespace
}  // namespace bourse::systest
