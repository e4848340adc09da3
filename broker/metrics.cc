#include "broker/metrics.h"

#include <cstdio>

#include "core/money.h"

namespace bourse::broker {
namespace {

std::string Escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o.push_back('\\');
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o.push_back(c);
  }
  return o;
}

std::string Num(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", d);
  return buf;
}

void RenderHistogram(std::string* out, const std::string& name, const std::string& labels,
                     const std::array<uint64_t, Metrics::kBuckets.size()>& counts, uint64_t count,
                     double sum) {
  std::string sep = labels.empty() ? "" : ",";
  uint64_t cum = 0;
  for (size_t i = 0; i < Metrics::kBuckets.size(); ++i) {
    cum += counts[i];
    *out += name + "_bucket{" + labels + sep + "le=\"" + Num(Metrics::kBuckets[i]) + "\"} " +
            std::to_string(cum) + "\n";
  }
  *out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(count) + "\n";
  std::string l = labels.empty() ? "" : "{" + labels + "}";
  *out += name + "_sum" + l + " " + Num(sum) + "\n";
  *out += name + "_count" + l + " " + std::to_string(count) + "\n";
}

// One metric without labels: its HELP and TYPE lines and its value.
template <typename T>
void AppendScalar(std::string* out, const char* name, const char* type, const char* help, T v) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
          name + " " + std::to_string(v) + "\n";
}

void AppendHeader(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

// name{labels} value, the labels already rendered (k="v",...).
void AppendSample(std::string* out, const char* name, const std::string& labels,
                  const std::string& value) {
  *out += std::string(name) + "{" + labels + "} " + value + "\n";
}

std::string Label(const char* key, const std::string& value) {
  return std::string(key) + "=\"" + Escape(value) + "\"";
}

// One family with one sample per market.
void AppendMarketFamily(std::string* out, const char* name, const char* type, const char* help,
                        const std::vector<markets::MarketStats>& ms,
                        const std::function<std::string(const markets::MarketStats&)>& value) {
  AppendHeader(out, name, type, help);
  for (const markets::MarketStats& m : ms) {
    std::string v = value(m);
    if (!v.empty()) AppendSample(out, name, Label("market", m.market), v);
  }
}

void RenderMarkets(std::string* out, const std::vector<markets::MarketStats>& ms) {
  AppendMarketFamily(out, "bourse_market_last_price", "gauge",
                     "Price (credits per unit) of the market's newest trade.", ms,
                     [](const markets::MarketStats& m) {
                       return m.last_price_nanos
                                  ? core::Money::FromNanos(*m.last_price_nanos).ToMinimalString()
                                  : std::string();
                     });
  AppendMarketFamily(out, "bourse_market_volume_units_total", "counter", "Units traded.", ms,
                     [](const markets::MarketStats& m) { return std::to_string(m.volume_units); });
  AppendMarketFamily(out, "bourse_market_volume_credits_total", "counter",
                     "Credits traded (sum of quantity x price).", ms,
                     [](const markets::MarketStats& m) { return m.volume.ToMinimalString(); });
  AppendMarketFamily(out, "bourse_market_trades_total", "counter", "Trades made.", ms,
                     [](const markets::MarketStats& m) { return std::to_string(m.trades); });
  AppendHeader(out, "bourse_market_resting_orders", "gauge", "Orders resting in the book by side.");
  for (const markets::MarketStats& m : ms) {
    for (auto [side, n] : {std::pair{"buy", m.resting_buy}, std::pair{"sell", m.resting_sell}}) {
      AppendSample(out, "bourse_market_resting_orders",
                   Label("market", m.market) + "," + Label("side", side), std::to_string(n));
    }
  }
}

// The summed quantities of a ResourceVector (net_max_kbps is a ceiling).
constexpr std::pair<const char*, int64_t core::ResourceVector::*> kQuantities[] = {
    {"cpu_mcores", &core::ResourceVector::cpu_mcores},
    {"mem_mib", &core::ResourceVector::mem_mib},
    {"disk_mib", &core::ResourceVector::disk_mib},
    {"net_min_kbps", &core::ResourceVector::net_min_kbps}};

void AppendNodeFamily(
    std::string* out, const char* name, const char* help, const std::vector<NodeGauges>& nodes,
    const std::function<int64_t(const NodeGauges&, int64_t core::ResourceVector::*)>& value) {
  AppendHeader(out, name, "gauge", help);
  for (const NodeGauges& n : nodes) {
    for (const auto& [res, field] : kQuantities) {
      AppendSample(out, name, Label("node", n.node) + "," + Label("resource", res),
                   std::to_string(value(n, field)));
    }
  }
}

void RenderNodes(std::string* out, const std::vector<NodeGauges>& nodes) {
  using RV = core::ResourceVector;
  AppendNodeFamily(out, "bourse_node_capacity", "The node's registered capacity.", nodes,
                   [](const NodeGauges& n, int64_t RV::*f) { return n.capacity.*f; });
  AppendNodeFamily(out, "bourse_node_sold",
                   "Capacity valid now that has left the broker's pool (docs/broker.md).", nodes,
                   [](const NodeGauges& n, int64_t RV::*f) { return n.sold.*f; });
  AppendNodeFamily(out, "bourse_node_free", "Registered capacity less what is sold, now.", nodes,
                   [](const NodeGauges& n, int64_t RV::*f) { return n.capacity.*f - n.sold.*f; });
}

}  // namespace

void Metrics::SetEventStreamCounter(std::function<int64_t()> count) {
  core::MutexLock l(&mu_);
  event_streams_ = std::move(count);
}

int64_t Metrics::EventStreams() const {
  std::function<int64_t()> f;
  {
    core::MutexLock l(&mu_);
    f = event_streams_;
  }
  return f ? f() : 0;
}

void Metrics::Histogram::Add(double s) {
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (s <= kBuckets[i]) {
      ++counts[i];
      break;
    }
  }
  ++count;
  sum += s;
}

void Metrics::RecordRequest(const std::string& route, int status, double seconds) {
  core::MutexLock l(&mu_);
  ++requests_[{route, status}];
  latency_[route].Add(seconds);
}

void Metrics::RecordCommit(double seconds) {
  core::MutexLock l(&mu_);
  commits_.Add(seconds);
}

std::string Metrics::Render(const LedgerCounters& ledger, const ScrapeGauges& gauges) const {
  core::MutexLock l(&mu_);
  std::string out;
  out += "# HELP bourse_http_requests_total HTTP requests by route and status.\n";
  out += "# TYPE bourse_http_requests_total counter\n";
  for (const auto& [k, n] : requests_) {
    out += "bourse_http_requests_total{route=\"" + Escape(k.first) + "\",status=\"" +
           std::to_string(k.second) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP bourse_http_request_duration_seconds Request latency by route.\n";
  out += "# TYPE bourse_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    RenderHistogram(&out, "bourse_http_request_duration_seconds", "route=\"" + Escape(route) + "\"",
                    h.counts, h.count, h.sum);
  }
  AppendScalar(&out, "bourse_ledger_size", "gauge", "Entries in the ledger.", ledger.size);
  AppendScalar(&out, "bourse_ledger_batches_total", "counter", "Group-commit transactions.",
               ledger.batches);
  AppendScalar(&out, "bourse_ledger_commit_calls_total", "counter",
               "Mutations committed or refused by them.", ledger.commit_calls);
  AppendScalar(&out, "bourse_ledger_syncs_total", "counter", "fdatasyncs of the ledger's WAL.",
               ledger.syncs);
  out += "# HELP bourse_ledger_commit_duration_seconds Time of each mutation's commit.\n";
  out += "# TYPE bourse_ledger_commit_duration_seconds histogram\n";
  RenderHistogram(&out, "bourse_ledger_commit_duration_seconds", "", commits_.counts,
                  commits_.count, commits_.sum);
  AppendScalar(&out, "bourse_rate_limited_total", "counter",
               "Requests refused by the per-key rate limit.", rate_limited_);
  RenderMarkets(&out, gauges.markets);
  RenderNodes(&out, gauges.nodes);
  AppendScalar(&out, "bourse_event_streams", "gauge", "Event streams (GET /v1/events) open.",
               gauges.event_streams);
  return out;
}

}  // namespace bourse::broker
