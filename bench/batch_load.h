// broker_load --mix batch (bench/broker_load_driver.cc): each connection
// keeps its own book of resting buys and reprices it with POST
// /v1/orders:batch (docs/markets.md "Batch orders"): 80 % moves, 10 %
// cancels, 10 % new placements per batch, so its book stays at N orders.
//
//   BatchLoad load;
//   BOURSE_RETURN_IF_ERROR(load.Setup(client, connections, 100));  // N resting buys each
//   std::string body = load.Next(c, i);   // connection c's i-th batch
//   load.Done(c, status, reply_body);     // its reply: learns the new orders' ids
//
// Thread safety: Setup before the run; then Next and Done of one connection
// from one thread at a time (the event loop that drives it); the counters
// are atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clients/client.h"
#include "core/status.h"

class BatchLoad {
 public:
  // Every open market; `n` resting GTC buys of 1 unit per connection, spread
  // over them, placed with one batch per connection.
  bourse::core::Status Setup(bourse::clients::Client& client, int connections, int n) {
    n_ = n;
    auto ms = client.Call("GET", "/v1/markets?state=open");
    if (!ms.ok()) return ms.status();
    for (const auto& m : (*ms)["markets"]) markets_.push_back(m["id"]);
    if (markets_.empty()) return bourse::core::FailedPrecondition("no open market");
    auto mint = client.Call("POST", "/v1/accounts/mint",
                            {{"to", client.key()->public_key().ToText()}, {"amount", "1000000"}});
    if (!mint.ok()) return mint.status().WithContext("minting the buys' credits");
    conns_.resize(static_cast<size_t>(connections));
    for (int c = 0; c < connections; ++c) {
      Conn& k = conns_[static_cast<size_t>(c)];
      std::string body = "{\"ops\":[";
      for (int j = 0; j < n; ++j) {
        if (j > 0) body += ',';
        AppendPlace(&body, markets_[static_cast<size_t>(c + j) % markets_.size()], c + j);
      }
      body += "]}";
      auto r = client.Call("POST", "/v1/orders:batch", nlohmann::json::parse(body));
      if (!r.ok()) return r.status().WithContext("placing the first orders");
      k.place_from = 0;
      Learn(k, (*r)["results"]);
      if (k.orders.size() != static_cast<size_t>(n)) {
        return bourse::core::Internal("placing the first orders: " + r->dump().substr(0, 300));
      }
    }
    op_errors_ = 0;
    ops_done_ = 0;
    return bourse::core::Status::Ok();
  }

  // The body of connection c's i-th batch.
  std::string Next(int c, uint64_t i) {
    Conn& k = conns_[static_cast<size_t>(c)];
    const int churn = n_ >= 10 ? n_ / 10 : 0;
    const int moves = n_ - 2 * churn;
    std::string body;
    body.reserve(static_cast<size_t>(n_) * 96 + 16);
    body += "{\"ops\":[";
    int ops = 0;
    auto sep = [&] {
      if (ops++ > 0) body += ',';
    };
    for (int j = 0; j < moves && !k.orders.empty(); ++j) {
      const Order& o = k.orders[(k.next + static_cast<size_t>(j)) % k.orders.size()];
      sep();
      body += "{\"op\":\"move\",\"market\":\"" + o.market + "\",\"order\":\"" + o.id +
              "\",\"price\":\"" + Price(static_cast<int64_t>(i) * 7 + j + c) + "\"}";
    }
    k.next += static_cast<size_t>(moves);
    for (int j = 0; j < churn && !k.orders.empty(); ++j) {
      sep();
      body += "{\"op\":\"cancel\",\"market\":\"" + k.orders.back().market + "\",\"order\":\"" +
              k.orders.back().id + "\"}";
      k.orders.pop_back();
    }
    k.place_from = static_cast<size_t>(ops);
    for (int j = 0; j < churn; ++j) {
      sep();
      AppendPlace(&body,
                  markets_[(static_cast<size_t>(c) + i + static_cast<size_t>(j)) % markets_.size()],
                  static_cast<int64_t>(i) + j + c);
    }
    body += "]}";
    return body;
  }

  // Connection c's reply to its last batch.
  void Done(int c, int status, std::string_view body) {
    if (status != 200) return;  // counted by the driver
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.contains("results")) {
      op_errors_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Learn(conns_[static_cast<size_t>(c)], doc["results"]);
  }

  int64_t op_errors() const { return op_errors_.load(); }
  int64_t ops_done() const { return ops_done_.load(); }

 private:
  struct Order {
    std::string market;
    std::string id;
  };
  struct Conn {
    std::vector<Order> orders;  // resting, this connection's own
    size_t next = 0;            // where the next batch's moves start
    size_t place_from = 0;      // the last batch's first placement
  };

  // 0.000001 .. 0.000100 credits: buys that rest (the books hold no sells).
  static std::string Price(int64_t k) { return "0.000" + std::to_string(1001 + k % 100).substr(1); }
  static void AppendPlace(std::string* body, const std::string& market, int64_t k) {
    *body += "{\"op\":\"place\",\"market\":\"" + market +
             "\",\"side\":\"buy\",\"qty\":1,\"price\":\"" + Price(k) + "\"}";
  }
  // Counts the results and keeps the ids of the orders placed.
  void Learn(Conn& k, const nlohmann::json& results) {
    for (size_t i = 0; i < results.size(); ++i) {
      const nlohmann::json& r = results[i];
      ops_done_.fetch_add(1, std::memory_order_relaxed);
      if (!r.value("ok", false)) {
        if (op_errors_.fetch_add(1, std::memory_order_relaxed) < 3) {
          std::fprintf(stderr, "broker_load: batch op failed: %s\n", r.dump().c_str());
        }
        continue;
      }
      if (i >= k.place_from && r["order"]["state"] == "resting") {
        k.orders.push_back({r["order"]["market"], std::to_string(r["order"]["id"].get<int64_t>())});
      }
    }
  }

  int n_ = 0;
  std::vector<std::string> markets_;
  std::vector<Conn> conns_;
  std::atomic<int64_t> op_errors_{0};
  std::atomic<int64_t> ops_done_{0};
};
