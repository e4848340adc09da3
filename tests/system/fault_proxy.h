// Test helper: an HTTP proxy on loopback port 0 in front of a real broker
// that passes every request through unchanged (signatures stay valid) unless
// a hook answers it instead: to make one request fail, corrupt one reply, or
// count requests. Used to put a client (the agent) in front of failures a
// real broker does not produce on demand.
//
//   FaultProxy p(broker_url);
//   p.SetHook([](const httplib::Request& q, httplib::Response& r) {
//     if (q.path != "/v1/orders:batch") return false;   // pass it through
//     r.status = 400; r.set_content(R"({"error":...})", "application/json");
//     return true;                                      // answered here
//   });
//   clients::Client c(p.url(), key);
//
// Thread safety: SetHook and Count may be called from any thread.
#pragma once

#include <httplib.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace bourse::systest {

class FaultProxy {
 public:
  // Returns true when it answered the request itself.
  using Hook = std::function<bool(const httplib::Request&, httplib::Response&)>;

  explicit FaultProxy(const std::string& upstream) : upstream_(upstream) {
    // Route handlers, not a pre-routing one: those run before the body is read.
    auto forward = [this](const httplib::Request& q, httplib::Response& r) { Forward(q, r); };
    server_.Get(".*", forward);
    server_.Post(".*", forward);
    server_.Put(".*", forward);
    server_.Patch(".*", forward);
    server_.Delete(".*", forward);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~FaultProxy() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void SetHook(Hook h) {
    std::lock_guard<std::mutex> l(mu_);
    hook_ = std::move(h);
  }
  // Changes the broker's replies (after they came back) before the client sees them.
  using Rewrite = std::function<void(const httplib::Request&, httplib::Response&)>;
  void SetRewrite(Rewrite w) {
    std::lock_guard<std::mutex> l(mu_);
    rewrite_ = std::move(w);
  }
  // Requests seen whose path (without the query) starts with `prefix`.
  int Count(const std::string& prefix) {
    std::lock_guard<std::mutex> l(mu_);
    int n = 0;
    for (const auto& [path, k] : seen_) n += path.rfind(prefix, 0) == 0 ? k : 0;
    return n;
  }
  void ResetCounts() {
    std::lock_guard<std::mutex> l(mu_);
    seen_.clear();
  }

 private:
  void Forward(const httplib::Request& q, httplib::Response& r) {
    Hook hook;
    Rewrite rewrite;
    {
      std::lock_guard<std::mutex> l(mu_);
      ++seen_[q.path];
      hook = hook_;
      rewrite = rewrite_;
    }
    if (hook && hook(q, r)) return;
    httplib::Client up(upstream_);
    up.set_url_encode(false);  // the target as the client sent it: it is signed
    httplib::Request out;
    out.method = q.method;
    out.path = q.target;
    for (const auto& [k, v] : q.headers) {
      if (k == "Host" || k == "Content-Length" || k.rfind("REMOTE_", 0) == 0 ||
          k.rfind("LOCAL_", 0) == 0) {
        continue;
      }
      out.headers.emplace(k, v);
    }
    out.body = q.body;
    httplib::Response got;
    httplib::Error err = httplib::Error::Success;
    if (!up.send(out, got, err)) {
      r.status = 502;
      return;
    }
    r.status = got.status;
    for (const auto& [k, v] : got.headers) {
      if (k != "Content-Length" && k != "Transfer-Encoding") r.headers.emplace(k, v);
    }
    r.body = got.body;
    if (rewrite) rewrite(q, r);
  }

  std::string upstream_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  Hook hook_;
  Rewrite rewrite_;
  std::map<std::string, int> seen_;
};

}  // namespace bourse::systest
