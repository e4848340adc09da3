#include "broker/router.h"

#include <cstdio>
#include <cstdlib>

#include "http/message.h"

namespace bourse::broker {

const std::string& ApiRequest::Param(const std::string& name) const {
  static const std::string kEmpty;
  auto it = params.find(name);
  return it == params.end() ? kEmpty : it->second;
}

core::Result<std::optional<std::string>> ApiRequest::Query(const std::string& name) const {
  auto [lo, hi] = query.equal_range(name);
  if (lo == hi) return std::optional<std::string>();
  auto next = lo;
  ++next;
  if (next != hi)
    return core::InvalidArgument("query parameter " + name + ": given more than once");
  return std::optional<std::string>(lo->second);
}

core::Result<int64_t> ApiRequest::QueryInt(const std::string& name, int64_t min, int64_t max,
                                           std::optional<int64_t> fallback) const {
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> v, Query(name));
  if (!v) {
    if (fallback) return *fallback;
    return core::InvalidArgument("query parameter " + name + ": missing");
  }
  const std::string& s = *v;
  bool ok = !s.empty() && s.size() <= 18;
  for (size_t i = 0; ok && i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') ok = false;
  }
  if (ok && s.size() > 1 && s[0] == '0') ok = false;
  if (!ok) {
    return core::InvalidArgument("query parameter " + name +
                                 ": must be a non-negative decimal integer");
  }
  int64_t n = std::strtoll(s.c_str(), nullptr, 10);
  if (n < min || n > max) {
    return core::InvalidArgument("query parameter " + name + ": must be in [" +
                                 std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return n;
}

namespace {
struct CurrentRequest {
  const ApiRequest* q = nullptr;
  bool claimed = false;
};
thread_local CurrentRequest current_request;
}  // namespace

ScopedCurrentRequest::ScopedCurrentRequest(const ApiRequest& q)
    : prev_(current_request.q), prev_claimed_(current_request.claimed) {
  current_request.q = &q;
  current_request.claimed = false;
}

ScopedCurrentRequest::~ScopedCurrentRequest() {
  current_request.q = prev_;
  current_request.claimed = prev_claimed_;
}

std::optional<RequestOnce> ClaimCurrentRequest() {
  CurrentRequest& c = current_request;
  if (c.q == nullptr || c.claimed || c.q->nonce.empty() || c.q->caller_text.empty()) {
    return std::nullopt;
  }
  c.claimed = true;
  return RequestOnce{c.q->caller_text, c.q->nonce, c.q->signed_ts};
}

void UnclaimCurrentRequest() {
  if (current_request.q != nullptr) current_request.claimed = false;
}

ApiResponse JsonResponse(int status, const nlohmann::json& doc) {
  ApiResponse r;
  r.status = status;
  r.body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

void Router::Add(Route route) {
  for (const Route& r : routes_) {
    if (r.method == route.method && r.pattern == route.pattern) {
      std::fprintf(stderr, "router: duplicate route %s %s\n", r.method.c_str(), r.pattern.c_str());
      std::abort();
    }
  }
  if (static_cast<int>(static_cast<bool>(route.handler)) +
          static_cast<bool>(route.async_handler) + static_cast<bool>(route.stream_handler) !=
      1) {
    std::fprintf(stderr,
                 "router: route %s %s needs exactly one of handler, async_handler and "
                 "stream_handler\n",
                 route.method.c_str(), route.pattern.c_str());
    std::abort();
  }
  Compiled c;
  for (std::string_view s : http::SplitPath(route.pattern)) {
    c.segments.emplace_back(s);
    if (s.empty() || s.front() != '{') ++c.literal_count;
  }
  compiled_.push_back(std::move(c));
  routes_.push_back(std::move(route));
}

const Route* Router::Match(std::string_view method, std::string_view path,
                           std::map<std::string, std::string>* params, bool* path_known) const {
  // Segments are split on the raw path and decoded one by one: "%2F" is
  // part of a segment, never a separator.
  std::vector<std::string> segs;
  for (std::string_view raw : http::SplitPath(path)) {
    std::string& seg = segs.emplace_back();
    if (raw.find('%') == std::string_view::npos) {
      seg.assign(raw);
    } else if (!http::PercentDecode(raw, false, &seg)) {
      *path_known = false;
      return nullptr;
    }
  }
  const Route* best = nullptr;
  int best_literals = -1;
  *path_known = false;
  for (size_t i = 0; i < routes_.size(); ++i) {
    const Compiled& c = compiled_[i];
    if (c.segments.size() != segs.size()) continue;
    bool ok = true;
    for (size_t k = 0; k < segs.size() && ok; ++k) {
      const std::string& p = c.segments[k];
      if (!p.empty() && p.front() == '{') {
        ok = !segs[k].empty();
      } else {
        ok = p == segs[k];
      }
    }
    if (!ok) continue;
    *path_known = true;
    if (routes_[i].method != method) continue;
    if (c.literal_count > best_literals) {
      best = &routes_[i];
      best_literals = c.literal_count;
    }
  }
  if (best != nullptr) {
    params->clear();
    const Compiled& c = compiled_[best - routes_.data()];
    for (size_t k = 0; k < segs.size(); ++k) {
      const std::string& p = c.segments[k];
      if (!p.empty() && p.front() == '{') {
        (*params)[p.substr(1, p.size() - 2)] = std::move(segs[k]);
      }
    }
  }
  return best;
}

}  // namespace bourse::broker
