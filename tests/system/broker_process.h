// Test helper: runs the real `bourse-broker` binary in a temporary directory
// on a free port (--listen 127.0.0.1:0), and a seeded "world" of principals
// talking to it over HTTP through the client library.
//
//   auto b = BrokerProcess::Create();           // init + start
//   clients::Client admin(b->url(), b->admin_key());
//   b->Kill9();  b->Start();                    // crash and restart
//
// Everything (process, directory) is cleaned up by the destructor, even when
// an assertion fails.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "child_process.h"
#include "clients/client.h"
#include "core/clock.h"
#include "core/keys.h"
#include "core/status.h"
#include "ledger/rcap.h"

namespace bourse::systest {

inline std::string BrokerBinary() {
  return std::string(BOURSE_BINARY_DIR) + "/broker/bourse-broker";
}
inline std::string BourseBinary() { return std::string(BOURSE_BINARY_DIR) + "/clients/bourse"; }

class BrokerProcess {
 public:
  // Initialises a fresh database and starts the broker.
  static core::Result<std::unique_ptr<BrokerProcess>> Create(std::vector<std::string> extra = {}) {
    std::unique_ptr<BrokerProcess> p(new BrokerProcess());
    char tmpl[] = "/tmp/bourse-systest-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return core::Unavailable("mkdtemp failed");
    p->dir_ = tmpl;
    p->db_ = p->dir_ + "/bourse.db";
    p->extra_ = std::move(extra);
    std::string cmd = BrokerBinary() + " init --db " + p->db_ + " > " + p->dir_ + "/init.txt 2>&1";
    if (std::system(cmd.c_str()) != 0) return core::Internal("bourse-broker init failed");
    BOURSE_ASSIGN_OR_RETURN(core::PrivateKey admin,
                            core::PrivateKey::LoadPem(p->db_ + ".admin-key.pem"));
    p->admin_.emplace(std::move(admin));
    BOURSE_RETURN_IF_ERROR(p->Start());
    return p;
  }

  ~BrokerProcess() {
    Kill9();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the binary and waits for its "listening" line.
  core::Status Start() {
    int fds[2];
    if (pipe(fds) != 0) return core::Unavailable("pipe failed");
    pid_t pid = fork();
    if (pid < 0) return core::Unavailable("fork failed");
    if (pid == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      std::string log = dir_ + "/broker.log";
      FILE* f = std::fopen(log.c_str(), "a");
      if (f != nullptr) dup2(fileno(f), 2);
      std::vector<std::string> args = {BrokerBinary(), "--db", db_, "--listen",
                                       "127.0.0.1:" + std::to_string(port_)};
      for (const auto& e : extra_) args.push_back(e);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    pid_ = pid;
    std::string line;
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    close(fds[0]);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("listening")) {
      Kill9();
      return core::Internal("broker did not start: " + line);
    }
    url_ = j["listening"].get<std::string>();
    port_ = std::stoi(url_.substr(url_.rfind(':') + 1));  // restart on the same port
    return core::Status::Ok();
  }

  void Kill9() { KillChild(pid_); }

  // SIGTERM and wait; returns the exit status (or -1 if killed by a signal).
  int Terminate() { return TerminateChild(pid_); }

  const std::string& url() const { return url_; }
  const std::string& dir() const { return dir_; }
  const std::string& db() const { return db_; }
  const core::PrivateKey& admin_key() const { return *admin_; }
  pid_t pid() const { return pid_; }

 private:
  BrokerProcess() = default;
  std::string dir_, db_, url_;
  std::vector<std::string> extra_;
  std::optional<core::PrivateKey> admin_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A seeded world: site "mit" with a PI, two nodes, a user, an agent, credits,
// and a root grant per node held by the broker.
struct World {
  std::string url;
  core::PrivateKey admin, pi, user, agent, other_pi, n1, n2;
  std::string broker_key;
  nlohmann::json root1, root2;  // granted roots (broker-held)

  static core::Result<core::PrivateKey> Key() { return core::PrivateKey::Generate(); }

  static core::Result<std::unique_ptr<World>> Seed(const std::string& url,
                                                   const core::PrivateKey& admin_key);
  clients::Client As(const core::PrivateKey& k) const { return clients::Client(url, k); }
};

inline core::Result<std::unique_ptr<World>> World::Seed(const std::string& url,
                                                        const core::PrivateKey& admin_key) {
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey pi, Key());
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey user, Key());
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey agent, Key());
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey other_pi, Key());
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey n1, Key());
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey n2, Key());
  std::unique_ptr<World> w(
      new World{url, admin_key, pi, user, agent, other_pi, n1, n2, "", {}, {}});
  clients::Client admin(url, admin_key);
  BOURSE_ASSIGN_OR_RETURN(nlohmann::json k, admin.Call("GET", "/v1/ledger/key"));
  w->broker_key = k["key"];
  BOURSE_RETURN_IF_ERROR(
      admin
          .Call("POST", "/v1/sites",
                {{"name", "mit"}, {"pi", pi.public_key().ToText()}, {"slice_limit", 50}})
          .status());
  BOURSE_RETURN_IF_ERROR(
      admin.Call("POST", "/v1/sites", {{"name", "ucb"}, {"pi", other_pi.public_key().ToText()}})
          .status());
  BOURSE_RETURN_IF_ERROR(
      admin
          .Call("POST", "/v1/principals",
                {{"key", agent.public_key().ToText()}, {"kind", "agent"}, {"name", "pool1"}})
          .status());
  clients::Client pic(url, pi);
  BOURSE_RETURN_IF_ERROR(pic.Call("POST", "/v1/principals",
                                  {{"key", user.public_key().ToText()},
                                   {"kind", "user"},
                                   {"name", "alice"},
                                   {"site", "mit"}})
                             .status());
  nlohmann::json cap = {{"cpu_mcores", 4000},
                        {"mem_mib", 8192},
                        {"disk_mib", 100000},
                        {"net_min_kbps", 10000},
                        {"net_max_kbps", 100000}};
  BOURSE_RETURN_IF_ERROR(
      pic.Call("POST", "/v1/sites/mit/nodes",
               {{"id", "n1"}, {"key", n1.public_key().ToText()}, {"capacity", cap}})
          .status());
  BOURSE_RETURN_IF_ERROR(
      pic.Call("POST", "/v1/sites/mit/nodes",
               {{"id", "n2"}, {"key", n2.public_key().ToText()}, {"capacity", cap}})
          .status());
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey bk, core::PublicKey::FromText(w->broker_key));
  int64_t now = core::SystemClock::Get().NowSeconds();
  core::ResourceVector half{.cpu_mcores = 2000,
                            .mem_mib = 4096,
                            .disk_mib = 50000,
                            .net_min_kbps = 5000,
                            .net_max_kbps = 100000};
  for (const char* node : {"n1", "n2"}) {
    BOURSE_ASSIGN_OR_RETURN(ledger::Rcap root,
                            ledger::IssueRoot(pi, {.id = std::string("root-") + node,
                                                   .holder = bk,
                                                   .node = node,
                                                   .res = half,
                                                   .interval = {now - 60, now + 30 * 86400}}));
    BOURSE_RETURN_IF_ERROR(pic.Call("POST", "/v1/grants", {{"rcap", root.ToJson()}}).status());
    (std::string(node) == "n1" ? w->root1 : w->root2) = root.ToJson();
  }
  for (const core::PrivateKey* k : {&user, &agent, &pi}) {
    BOURSE_RETURN_IF_ERROR(admin
                               .Call("POST", "/v1/accounts/mint",
                                     {{"to", k->public_key().ToText()}, {"amount", "1000"}})
                               .status());
  }
  return w;
}

}  // namespace bourse::systest
