// kill -9: clients create slices, bind chains and transfer credits while the
// broker is SIGKILLed at random moments (12 times) and restarted. Afterwards
// every acknowledged request is there, `bourse ledger verify` (by file and by
// URL) passes, and credits are conserved.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/money.h"
#include "ledger/audit.h"
#include "tests/system/broker_process.h"

namespace bourse::systest {
namespace {

using nlohmann::json;

TEST(BrokerKill9Test, AcknowledgedRequestsSurviveSigkill) {
  auto p = BrokerProcess::Create();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  BrokerProcess& proc = **p;
  auto w = World::Seed(proc.url(), proc.admin_key());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  World& world = **w;
  const std::string url = proc.url();
  const std::string alice = world.user.public_key().ToText();
  const std::string pool = world.agent.public_key().ToText();

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> acked_slices;                            // guarded by mu
  std::vector<std::pair<std::string, std::string>> acked_binds;  // (slice, leaf)
  int64_t acked_transfers = 0, attempted_transfers = 0;

  // Writer 1: slices + binds (admin splits a piece of root-n1, alice binds it).
  std::thread slicer([&] {
    clients::Client user(url, world.user);
    clients::Client admin(url, world.admin);
    int64_t now = core::SystemClock::Get().NowSeconds();
    for (int i = 0; !stop; ++i) {
      std::string name = "mit_k" + std::to_string(i);
      auto s = user.Call("POST", "/v1/slices", {{"name", name}});
      if (!s.ok() && s.status().code() != core::StatusCode::kAlreadyExists) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        --i;  // retry the same name: a lost ack shows up as already_exists
        continue;
      }
      {
        std::lock_guard<std::mutex> l(mu);
        acked_slices.insert(name);
      }
      std::string piece = "kp-" + std::to_string(i);
      json split;
      while (!stop) {
        auto r = admin.Call("POST", "/v1/rcaps/root-n1/split",
                            {{"children",
                              {{{"id", piece},
                                {"holder", alice},
                                {"res",
                                 {{"cpu_mcores", 1},
                                  {"mem_mib", 1},
                                  {"disk_mib", 1},
                                  {"net_min_kbps", 1},
                                  {"net_max_kbps", 10}}},
                                {"not_before", now - 10},
                                {"not_after", now + 3600}}}}});
        if (r.ok()) {
          split = (*r)["rcaps"][0];
          break;
        }
        if (r.status().code() == core::StatusCode::kAlreadyExists) {
          auto g = admin.Call("GET", "/v1/rcaps/" + piece);  // committed, ack lost
          if (g.ok()) {
            split = (*g)["rcap"];
            break;
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (stop) break;
      while (!stop) {
        auto b = user.Call("POST", "/v1/slices/" + name + "/bindings",
                           {{"chain", {world.root1, split}}});
        if (b.ok() || b.status().code() == core::StatusCode::kAlreadyExists) {
          if (b.ok()) {
            std::lock_guard<std::mutex> l(mu);
            acked_binds.emplace_back(name, piece);
          }
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  });
  // Writer 2: transfers of 0.001 from alice to the pool.
  std::thread payer([&] {
    clients::Client user(url, world.user);
    while (!stop) {
      {
        std::lock_guard<std::mutex> l(mu);
        ++attempted_transfers;
      }
      auto t = user.Call("POST", "/v1/accounts/transfer", {{"to", pool}, {"amount", "0.001"}});
      if (t.ok()) {
        std::lock_guard<std::mutex> l(mu);
        ++acked_transfers;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  });

  std::mt19937 rng(12345);
  const int kKills = 12;
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 250));
    proc.Kill9();
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 50));
    auto st = proc.Start();
    ASSERT_TRUE(st.ok()) << "restart " << k << ": " << st.ToString();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  slicer.join();
  payer.join();

  clients::Client c(proc.url());
  ASSERT_GT(acked_slices.size(), 3u);
  ASSERT_GT(acked_transfers, 3);
  for (const std::string& s : acked_slices) EXPECT_TRUE(c.Call("GET", "/v1/slices/" + s).ok()) << s;
  for (const auto& [slice, leaf] : acked_binds) {
    auto b = c.Call("GET", "/v1/slices/" + slice + "/bindings");
    ASSERT_TRUE(b.ok());
    bool found = false;
    for (const json& x : (*b)["bindings"]) found = found || x["leaf"] == leaf;
    EXPECT_TRUE(found) << slice << " " << leaf;
  }
  // alice started with 1000; every acknowledged transfer left, and at most
  // the attempted ones (an ack lost in a kill may still have committed).
  auto a = c.Call("GET", "/v1/accounts/" + alice);
  ASSERT_TRUE(a.ok());
  core::Money bal = core::Money::Parse((*a)["balance"].get<std::string>()).value();
  core::Money start = core::Money::FromCredits(1000).value();
  core::Money step = core::Money::Parse("0.001").value();
  EXPECT_LE(bal, start.Sub(step.MulInt(acked_transfers).value()).value());
  EXPECT_GE(bal, start.Sub(step.MulInt(attempted_transfers).value()).value());
  auto pa = c.Call("GET", "/v1/accounts/" + pool);
  ASSERT_TRUE(pa.ok());
  core::Money pbal = core::Money::Parse((*pa)["balance"].get<std::string>()).value();
  EXPECT_EQ(bal.Add(pbal).value(), core::Money::FromCredits(2000).value());  // conserved

  // bourse ledger verify over HTTP and on the file (after a clean stop).
  std::string out = proc.dir() + "/verify-url.txt";
  EXPECT_EQ(
      std::system(
          (BourseBinary() + " ledger verify --url " + proc.url() + " > " + out + " 2>&1").c_str()),
      0);
  EXPECT_EQ(proc.Terminate(), 0);
  auto rep = ledger::AuditStore(proc.db(), std::nullopt, {});
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->ok()) << rep->violation->ToString();
  EXPECT_EQ(rep->summary.minted, rep->summary.balances.Add(rep->summary.escrowed).value());
  EXPECT_EQ(
      std::system(
          (BourseBinary() + " ledger verify --db " + proc.db() + " > " + out + " 2>&1").c_str()),
      0);
}

}  // namespace
}  // namespace bourse::systest
