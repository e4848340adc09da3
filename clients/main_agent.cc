// bourse-agent: a pooling agent (DESIGN §10, docs/agent.md).
//
//   bourse-agent run --config FILE
//   bourse-agent status --config FILE [--json]
//
// Exit codes: 0 done (run: stopped by SIGINT/SIGTERM); 1 refused by the
// broker; 2 usage or a bad config (the message names the key and line);
// 3 the broker unreachable (status only: `run` backs off and retries).
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "clients/agent/agent.h"
#include "clients/agent/config.h"
#include "clients/agent/status.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

constexpr const char* kUsage =
    "usage: bourse-agent run --config FILE\n"
    "       bourse-agent status --config FILE [--json]\n";

int Usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "error: usage: %s\n", why.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}

int ExitFor(const bourse::core::Status& s) {
  std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
  switch (s.code()) {
    case bourse::core::StatusCode::kUnavailable:
    case bourse::core::StatusCode::kInternal:
      return 3;
    case bourse::core::StatusCode::kInvalidArgument:
      return 2;
    default:
      return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  using bourse::agent::Agent;
  using bourse::agent::AgentConfig;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Usage("a command is required (run or status)");
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string cmd = args[0];
  if (cmd != "run" && cmd != "status") return Usage("unknown command '" + cmd + "'");
  std::string config_path;
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (args[i].starts_with("--config=")) {
      config_path = args[i].substr(9);
    } else if (args[i] == "--json" && cmd == "status") {
      json = true;
    } else {
      return Usage("unexpected argument '" + args[i] + "'");
    }
  }
  if (config_path.empty()) return Usage("--config FILE is required");
  bourse::core::Result<AgentConfig> cfg = AgentConfig::Load(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "error: %s\n", cfg.status().message().c_str());  // Load names the file
    return 2;
  }
  bourse::core::Result<std::unique_ptr<Agent>> agent = Agent::Create(*cfg, cmd == "run");
  if (!agent.ok()) return ExitFor(agent.status());
  if (cmd == "run") {
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    (*agent)->Run(g_stop);
    return 0;
  }
  bourse::core::Result<nlohmann::json> st = (*agent)->StatusJson();
  if (!st.ok()) return ExitFor(st.status());
  if (json) {
    std::printf("%s\n", st->dump(2).c_str());
  } else {
    std::fputs(bourse::agent::RenderStatus(*st).c_str(), stdout);
  }
  return 0;
}
