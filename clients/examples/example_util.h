// What every example service (clients/examples/README.md) does the same way:
// its flags (CLI11), stopping on SIGINT/SIGTERM, one JSON line per action,
// passes that back off while the broker is unreachable, and the slice steps
// (create it if missing, keep it renewed, bind a chain, place slivers).
//
//   CLI::App app("bourse-example-x: ...");
//   ServiceFlags f;
//   AddServiceFlags(app, f);                       // --url, --key, --slice
//   if (int code = ParseFlags(app, argc, argv); code >= 0) return code;
//   auto client = Connect(f.url, f.key);
//   if (!client.ok()) return BadFlag("--key", client.status());
//   StopOnSignals();
//   return RunPasses(5, [&] { return OnePass(*client); });   // until SIGINT/SIGTERM
//
// Output: stdout gets one JSON object per line per action,
// {"ts":<unix ms>,"action":"rfq_opened",...}; stderr gets one per error,
// {"ts":..,"action":"bind","error":"failed_precondition","message":"..."}.
//
// Thread safety: one thread runs the passes; the signal handler only sets a flag.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "clients/client.h"
#include "core/keys.h"
#include "core/status.h"

namespace bourse::examples {

using nlohmann::json;

inline std::atomic<bool> g_stop{false};

inline bool Stopping() { return g_stop.load(); }

inline int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// SIGINT/SIGTERM ask the passes to stop; they exit 0 between two requests.
// A request can take up to the client's timeouts, so a watchdog ends the
// process 1.5 s after the signal if it is still running (exit 0: nothing a
// service does here needs more than the broker's own once-only rule).
inline void StopOnSignals() {
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::thread([] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    std::fflush(stdout);
    std::_Exit(0);
  }).detach();
}

// Sleeps `seconds`, waking early when asked to stop.
inline void SleepFor(double seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!Stopping() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// One action as one JSON line on stdout (flushed: the testbed tails it).
inline void LogAction(std::string_view action, json fields = json::object()) {
  json line = {{"ts", NowMillis()}, {"action", action}};
  line.update(fields);
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
}

// One refusal or failure as one JSON line on stderr.
inline void LogError(std::string_view action, const core::Status& st,
                     json fields = json::object()) {
  json line = {{"ts", NowMillis()},
               {"action", action},
               {"error", std::string(core::StatusCodeName(st.code()))},
               {"message", st.message()}};
  line.update(fields);
  std::fprintf(stderr, "%s\n", line.dump().c_str());
}

// The broker cannot be reached, or failed (5xx): try again later. Every
// other error is a refusal (4xx) the service logs and works around.
inline bool Unreachable(const core::Status& st) {
  return st.code() == core::StatusCode::kUnavailable || st.code() == core::StatusCode::kInternal;
}

// Parses the flags: -1 to go on, else the exit code (0 for --help, 2 for a
// usage error, which is printed).
inline int ParseFlags(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: invalid_argument: %s\n%s", e.what(), app.help().c_str());
    return 2;
  }
  return -1;
}

// The flags every example has: the broker, its key and (with_slice) its slice.
struct ServiceFlags {
  std::string url, key, slice;
};
inline void AddServiceFlags(CLI::App& app, ServiceFlags& f, bool with_slice = true) {
  app.add_option("--url", f.url, "the broker, e.g. http://127.0.0.1:8080")->required();
  app.add_option("--key", f.key,
                 with_slice ? "its PEM key (a user of the slice's site)"
                            : "an admin's PEM key (DB.admin-key.pem)")
      ->required();
  if (with_slice) {
    app.add_option("--slice", f.slice, "its slice, <site>_<name> (created if missing)")->required();
  }
}

// A flag whose value is wrong: the message names it; exit code 2.
inline int BadFlag(std::string_view flag, const core::Status& st) {
  std::fprintf(stderr, "error: invalid_argument: %.*s: %s\n", static_cast<int>(flag.size()),
               flag.data(), st.message().c_str());
  return 2;
}

// A client for `url` signing with the PEM key at `key_path`. Short timeouts:
// a service never waits long on a broker that went away (it retries).
inline core::Result<clients::Client> Connect(const std::string& url, const std::string& key_path) {
  auto key = core::PrivateKey::LoadPem(key_path);
  if (!key.ok()) return key.status();
  clients::ClientOptions options;
  options.connect_timeout_s = 2;
  options.read_timeout_s = 10;
  return clients::Client(url, *key, options);
}

// Runs `pass` until SIGINT/SIGTERM, every `every_s` seconds. While the
// broker is unreachable it waits 0.5 s, doubling to 5 s, saying so once; a
// pass that ends with a refusal is logged and the next pass goes on.
// Returns the exit code (0).
inline int RunPasses(double every_s, const std::function<core::Status()>& pass) {
  double backoff = 0.5;
  bool told = false;
  while (!Stopping()) {
    core::Status st = pass();
    if (Unreachable(st)) {
      if (!told) LogError("broker_unreachable", st, {{"retry_s", backoff}});
      told = true;
      SleepFor(backoff);
      backoff = std::min(backoff * 2, 5.0);
      continue;
    }
    if (told) LogAction("broker_reachable");
    told = false;
    backoff = 0.5;
    if (!st.ok()) LogError("pass", st);
    SleepFor(every_s);
  }
  LogAction("stopped");
  return 0;
}

// ---- the slice: every service buys capacity for one ----

inline std::string SlicePath(const std::string& slice, const std::string& suffix = "") {
  return "/v1/slices/" + clients::EscapeSegment(slice) + suffix;
}

// Creates the slice if it does not exist (its name is `<site>_<x>` and the
// site must be the caller's), and renews it when it expires within a week
// (a slice lives two weeks; its bindings end with it).
inline core::Status EnsureSlice(clients::Client& c, const std::string& slice) {
  auto got = c.Call("GET", SlicePath(slice));
  if (!got.ok() && got.status().code() == core::StatusCode::kNotFound) {
    BOURSE_RETURN_IF_ERROR(
        c.Call("POST", "/v1/slices", {{"name", slice}, {"description", "a bourse example service"}})
            .status());
    LogAction("slice_created", {{"slice", slice}});
    return core::Status::Ok();
  }
  BOURSE_RETURN_IF_ERROR(got.status());
  int64_t expires = got->value("expires", int64_t{0});
  if (expires - NowSeconds() < 7 * 86400) {
    BOURSE_ASSIGN_OR_RETURN(json renewed,
                            c.Call("POST", SlicePath(slice, "/renew"), json::object()));
    LogAction("slice_renewed", {{"slice", slice}, {"expires", renewed.value("expires", 0)}});
  }
  return core::Status::Ok();
}

// Binds a chain (root first, the leaf ours) to the slice: the node guard of
// the leaf's node then redeems and enforces it.
inline core::Status BindChain(clients::Client& c, const std::string& slice, const json& chain) {
  BOURSE_ASSIGN_OR_RETURN(json b,
                          c.Call("POST", SlicePath(slice, "/bindings"), {{"chain", chain}}));
  LogAction("bound", {{"slice", slice},
                      {"rcap", b.value("leaf", "")},
                      {"node", b.value("node", "")},
                      {"state", b.value("state", "")}});
  return core::Status::Ok();
}

// Binds an rcap we hold by id: its recorded chain comes from the broker.
inline core::Status BindRcap(clients::Client& c, const std::string& slice,
                             const std::string& rcap) {
  BOURSE_ASSIGN_OR_RETURN(json got, c.Call("GET", "/v1/rcaps/" + clients::EscapeSegment(rcap)));
  return BindChain(c, slice, got["chain"]);
}

// instantiate_slice: the slice gets slivers on these nodes.
inline core::Status Instantiate(clients::Client& c, const std::string& slice,
                                const std::vector<std::string>& nodes) {
  if (nodes.empty()) return core::Status::Ok();
  BOURSE_RETURN_IF_ERROR(
      c.Call("POST", SlicePath(slice, "/instantiate"), {{"nodes", nodes}}).status());
  LogAction("instantiated", {{"slice", slice}, {"nodes", nodes}});
  return core::Status::Ok();
}

}  // namespace bourse::examples
