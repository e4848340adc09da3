#include "broker/metrics.h"

#include <cstdio>

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

}  // namespace

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

std::string Metrics::Render(const LedgerCounters& ledger) const {
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
  return out;
}

}  // namespace bourse::broker
