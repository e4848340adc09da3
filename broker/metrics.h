// Prometheus text-format metrics for GET /metrics: requests by route and
// status, request latency histograms by route, ledger size and commit times;
// and the gauges read from the store at each scrape (markets, nodes) and
// the event streams open (docs/broker.md, "Metrics").
//
//   Metrics m;
//   m.RecordRequest("GET /v1/slices/{name}", 200, 0.0004);
//   m.RecordCommit(0.0009);
//   m.SetEventStreamCounter([&hub] { return hub.open_streams(); });
//   std::string text = m.Render({.size = ledger_size},
//                               {.markets = ..., .nodes = ..., .event_streams = m.EventStreams()});
//
// Thread safety: all methods are safe from any thread (one mutex; the
// critical sections are a few map updates).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "broker/markets/markets.h"
#include "core/mutex.h"
#include "core/resource_vector.h"

namespace bourse::broker {

// The ledger's gauges and counters, read when rendering.
struct LedgerCounters {
  int64_t size = 0;           // entries
  uint64_t batches = 0;       // group-commit transactions
  uint64_t commit_calls = 0;  // mutations answered by them
  uint64_t syncs = 0;         // WAL fdatasyncs
};

// One registered node's capacity and what of it is sold now
// (internal/node_capacity.h defines "sold").
struct NodeGauges {
  std::string node;
  core::ResourceVector capacity;
  core::ResourceVector sold;
};

// What a scrape reads besides the counters kept here.
struct ScrapeGauges {
  std::vector<markets::MarketStats> markets;
  std::vector<NodeGauges> nodes;
  int64_t event_streams = 0;
};

class Metrics {
 public:
  // Upper bounds (seconds) of the latency histogram buckets.
  static constexpr std::array<double, 12> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.5,    2.5};
  void RecordRequest(const std::string& route, int status, double seconds);
  void RecordCommit(double seconds);
  void RecordRateLimited() EXCLUDES(mu_) {
    core::MutexLock l(&mu_);
    ++rate_limited_;
  }
  // The count of event streams open, as bourse_event_streams shows it: the
  // broker's event hub sets it; until then it is 0.
  void SetEventStreamCounter(std::function<int64_t()> count) EXCLUDES(mu_);
  // The counter's value now (called without mu_ held).
  int64_t EventStreams() const EXCLUDES(mu_);
  std::string Render(const LedgerCounters& ledger, const ScrapeGauges& gauges = {}) const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> counts{};
    uint64_t count = 0;
    double sum = 0;
    void Add(double s);
  };
  mutable core::Mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_ GUARDED_BY(mu_);
  std::map<std::string, Histogram> latency_ GUARDED_BY(mu_);
  Histogram commits_ GUARDED_BY(mu_);
  uint64_t rate_limited_ GUARDED_BY(mu_) = 0;
  std::function<int64_t()> event_streams_ GUARDED_BY(mu_);
};

}  // namespace bourse::broker
