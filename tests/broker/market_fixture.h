// A real broker (SQLite file in a temp dir, HTTP on loopback port 0) with a
// site, nodes, principals and credits, for the market tests.
//
// Tests that drive time by hand pass a core::ManualClock and markets.tick_ms
// = 0: the broker, the HTTP server (signature freshness, request time) and
// the signing clients all use that clock, and the test calls Tick().
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "broker/broker.h"
#include "broker/server.h"
#include "clients/client.h"
#include "core/keys.h"
#include "core/random.h"
#include "ledger/audit.h"
#include "ledger/rcap.h"

namespace bourse::broker::testing {

inline core::PrivateKey NewKey() { return core::PrivateKey::Generate().value(); }

struct MarketEnvOptions {
  const core::Clock* clock = nullptr;  // nullptr: SystemClock
  MarketsOptions markets;
};

class MarketEnv {
 public:
  explicit MarketEnv(MarketEnvOptions options = {}, EventHubOptions events = {})
      : options_(options),
        events_(events),
        dir_(std::filesystem::temp_directory_path() /
             ("bourse_market_" + std::to_string(::getpid()) + "_" + core::NewId())),
        ledger_(NewKey()),
        admin_(NewKey()),
        pi_(NewKey()),
        pi2_(NewKey()) {
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "bourse.db").string();
    EXPECT_TRUE(Broker::Initialize(db_, ledger_, admin_.public_key()).ok());
    Start();
  }
  ~MarketEnv() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void Start() {
    auto b = Broker::Open({.db_path = db_,
                           .ledger_key = ledger_,
                           .clock = options_.clock,
                           .markets = options_.markets,
                           .events = events_});
    ASSERT_TRUE(b.ok()) << b.status().message();
    broker_ = std::move(*b);
    HttpServer::Options o;
    o.port = 0;
    o.access_log = nullptr;
    o.rate_limit_per_s = 0;
    o.threads = 16;
    o.clock = options_.clock;
    server_ = std::make_unique<HttpServer>(&broker_->router(), o, &broker_->metrics(),
                                           [b = broker_.get()] { return b->LedgerSize(); });
    ASSERT_TRUE(server_->Bind().ok());
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    thread_ = std::thread([s = server_.get()] { s->Run(); });
  }
  void Stop() {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    broker_.reset();
  }
  void Restart() {
    Stop();
    Start();
  }

  clients::Client C(const core::PrivateKey& k) {
    clients::ClientOptions o;
    o.clock = options_.clock;
    return clients::Client(url_, k, o);
  }
  Markets& markets() { return broker_->markets(); }
  clients::Client Anon() { return clients::Client(url_); }

  // POST/GET that must succeed.
  nlohmann::json Ok(const core::PrivateKey& k, std::string_view method, std::string_view path,
                    const nlohmann::json& body = nullptr) {
    auto c = C(k);
    auto r = c.Call(method, path, body);
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.status().message();
    return r.ok() ? *r : nlohmann::json();
  }

  // site "mit" with PI pi_, site "ucb" with pi2_; node n1 (mit) and n2 (ucb).
  void SetupSites() {
    Ok(admin_, "POST", "/v1/sites", {{"name", "mit"}, {"pi", pi_.public_key().ToText()}});
    Ok(admin_, "POST", "/v1/sites", {{"name", "ucb"}, {"pi", pi2_.public_key().ToText()}});
    AddNode(pi_, "mit", "n1");
    AddNode(pi_, "mit", "n3");
    AddNode(pi2_, "ucb", "n2");
  }
  void AddNode(const core::PrivateKey& pi, const std::string& site, const std::string& id) {
    node_keys_.push_back(NewKey());
    Ok(pi, "POST", "/v1/sites/" + site + "/nodes",
       {{"id", id},
        {"key", node_keys_.back().public_key().ToText()},
        {"capacity", Res(8000, 16384, 100000, 100000, 100000)}});
  }
  core::PrivateKey AddUser(const std::string& name, const std::string& credits,
                           const std::string& site = "") {
    core::PrivateKey k = NewKey();
    nlohmann::json body = {{"key", k.public_key().ToText()}, {"kind", "user"}, {"name", name}};
    if (!site.empty()) body["site"] = site;
    Ok(admin_, "POST", "/v1/principals", body);
    if (!credits.empty()) {
      Ok(admin_, "POST", "/v1/accounts/mint",
         {{"to", k.public_key().ToText()}, {"amount", credits}});
    }
    return k;
  }
  static nlohmann::json Res(int64_t cpu, int64_t mem = 0, int64_t disk = 0, int64_t nmin = 0,
                            int64_t nmax = 0) {
    return {{"cpu_mcores", cpu},
            {"mem_mib", mem},
            {"disk_mib", disk},
            {"net_min_kbps", nmin},
            {"net_max_kbps", nmax}};
  }
  // A root rcap for `node` signed by the site PI, granted to `holder`.
  ledger::Rcap Grant(const core::PrivateKey& pi, const std::string& node,
                     const core::PublicKey& holder, int64_t nb, int64_t na, int64_t cpu = 4000) {
    auto root = ledger::IssueRoot(pi, {.id = "",
                                       .holder = holder,
                                       .node = node,
                                       .res = {.cpu_mcores = cpu, .mem_mib = 4096},
                                       .interval = {nb, na}});
    EXPECT_TRUE(root.ok());
    Ok(pi, "POST", "/v1/grants", {{"rcap", root->ToJson()}});
    return *root;
  }

  // A node market over [nb, na) with a unit of 100 mcores, opened by the admin.
  std::string NodeMarket(const std::string& node, int64_t nb, int64_t na) {
    return Ok(admin_, "POST", "/v1/markets",
              {{"node", node},
               {"unit", Res(100)},
               {"not_before", nb},
               {"not_after", na}})["market"]["id"];
  }

  std::string Balance(const core::PrivateKey& k) {
    return Ok(admin_, "GET", "/v1/accounts/" + k.public_key().ToText())["balance"];
  }
  std::string Escrowed(const core::PrivateKey& k) {
    return Ok(admin_, "GET", "/v1/accounts/" + k.public_key().ToText())["escrow"];
  }
  void ExpectLedgerVerifies() {
    auto rep = ledger::AuditStore(db_, ledger_.public_key());
    ASSERT_TRUE(rep.ok()) << rep.status().message();
    EXPECT_TRUE(rep->ok()) << rep->violation->ToString();
  }

  MarketEnvOptions options_;
  EventHubOptions events_;
  std::filesystem::path dir_;
  std::string db_;
  core::PrivateKey ledger_, admin_, pi_, pi2_;
  std::vector<core::PrivateKey> node_keys_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::string url_;
};

}  // namespace bourse::broker::testing
