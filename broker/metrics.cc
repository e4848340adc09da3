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
  std::lock_guard<std::mutex> l(mu_);
  ++requests_[{route, status}];
  latency_[route].Add(seconds);
}

void Metrics::RecordCommit(double seconds) {
  std::lock_guard<std::mutex> l(mu_);
  commits_.Add(seconds);
}

std::string Metrics::Render(int64_t ledger_size) const {
  std::lock_guard<std::mutex> l(mu_);
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
  out += "# HELP bourse_ledger_size Entries in the ledger.\n";
  out += "# TYPE bourse_ledger_size gauge\n";
  out += "bourse_ledger_size " + std::to_string(ledger_size) + "\n";
  out += "# HELP bourse_ledger_commit_duration_seconds Time of each mutation's commit.\n";
  out += "# TYPE bourse_ledger_commit_duration_seconds histogram\n";
  RenderHistogram(&out, "bourse_ledger_commit_duration_seconds", "", commits_.counts,
                  commits_.count, commits_.sum);
  out += "# HELP bourse_rate_limited_total Requests refused by the per-key rate limit.\n";
  out += "# TYPE bourse_rate_limited_total counter\n";
  out += "bourse_rate_limited_total " + std::to_string(rate_limited_) + "\n";
  return out;
}

}  // namespace bourse::broker
