// bourse-nodeguard: the node guard daemon and its offline tools.
//
//   bourse-nodeguard run --config FILE [--once]     reconcile every reconcile_period_s
//   bourse-nodeguard redeem --state DIR --trust FILE --node ID [--slice NAME] CHAIN.json
//   bourse-nodeguard status --socket PATH [PATH_IN_API]
//   bourse-nodeguard teardown --config FILE         remove every sliver and the HTB tree
//   bourse-nodeguard authorized-keys --config FILE USER   sshd's AuthorizedKeysCommand
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/service_notify.h"
#include "nodeguard/guard.h"
#include "nodeguard/logins.h"
#include "storage/sqlite.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

int Usage() {
  fprintf(stderr,
          "usage:\n"
          "  bourse-nodeguard run --config FILE [--once]\n"
          "  bourse-nodeguard redeem --state DIR --trust FILE --node ID [--slice NAME] "
          "CHAIN.json\n"
          "  bourse-nodeguard status --socket PATH [/v1/status|/v1/slivers|/v1/refusals|"
          "/v1/usage]\n"
          "  bourse-nodeguard teardown --config FILE\n"
          "  bourse-nodeguard authorized-keys --config FILE USER\n");
  return 2;
}

std::string ConfigArg(const std::vector<std::string>& a, bool* once) {
  std::string cfg;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--config" && i + 1 < a.size()) cfg = a[++i];
    if (a[i] == "--once" && once) *once = true;
  }
  return cfg;
}

int Run(const std::vector<std::string>& a) {
  bool once = false;
  std::string path = ConfigArg(a, &once);
  if (path.empty()) return Usage();
  auto cfg = bourse::nodeguard::GuardConfig::Load(path);
  if (!cfg.ok()) {
    fprintf(stderr, "bourse-nodeguard: %s\n", cfg.status().ToString().c_str());
    return 2;
  }
  // One daemon per state directory (a one-shot pass may run beside it).
  std::unique_ptr<bourse::storage::ProcessLock> lock;
  if (!once) {
    auto l = bourse::nodeguard::StateStore::LockForDaemon(cfg->state_dir);
    if (!l.ok()) {
      fprintf(stderr, "bourse-nodeguard: %s\n", l.status().ToString().c_str());
      return 1;
    }
    lock = std::move(*l);
  }
  auto g = bourse::nodeguard::Guard::Create(*cfg, &bourse::core::SystemClock::Get());
  if (!g.ok()) {
    fprintf(stderr, "bourse-nodeguard: %s\n", g.status().ToString().c_str());
    return 1;
  }
  if (once) {
    (*g)->MeterEveryPass(true);
    auto r = (*g)->ReconcileOnce();
    if (!r.ok()) fprintf(stderr, "bourse-nodeguard: %s\n", r.status().ToString().c_str());
    // The status names what failed (slivers in state error, refusals) either way.
    printf("%s\n", (*g)->StatusJson().dump().c_str());
    return r.ok() ? 0 : 1;
  }
  auto st = (*g)->ServeStatus();
  if (!st.ok()) {
    fprintf(stderr, "bourse-nodeguard: %s\n", st.ToString().c_str());
    return 1;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  signal(SIGPIPE, SIG_IGN);
  fprintf(stderr, "bourse-nodeguard: node %s, status on %s\n", cfg->node_id.c_str(),
          cfg->status_socket.c_str());
  (*g)->Run(&g_stop);
  bourse::core::NotifyServiceManager("STOPPING=1").IgnoreError();
  (*g)->StopStatus();
  return 0;
}

int Status(const std::vector<std::string>& a) {
  std::string sock, target = "/v1/status";
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--socket" && i + 1 < a.size()) {
      sock = a[++i];
    } else if (!a[i].empty() && a[i][0] == '/') {
      target = a[i];
    }
  }
  if (sock.empty()) return Usage();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (sock.size() >= sizeof addr.sun_path) return Usage();
  memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    fprintf(stderr, "bourse-nodeguard: %s: %s\n", sock.c_str(), strerror(errno));
    return 1;
  }
  std::string req = "GET " + target + " HTTP/1.0\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return 1;
  std::string resp;
  char buf[65536];
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(r));
  close(fd);
  size_t body = resp.find("\r\n\r\n");
  printf("%s\n", body == std::string::npos ? resp.c_str() : resp.c_str() + body + 4);
  return resp.rfind("HTTP/1.1 200", 0) == 0 ? 0 : 1;
}

int Teardown(const std::vector<std::string>& a) {
  std::string path = ConfigArg(a, nullptr);
  if (path.empty()) return Usage();
  auto cfg = bourse::nodeguard::GuardConfig::Load(path);
  if (!cfg.ok()) {
    fprintf(stderr, "bourse-nodeguard: %s\n", cfg.status().ToString().c_str());
    return 2;
  }
  auto eo = cfg->ToEnforcerOptions();
  if (!eo.ok()) {
    fprintf(stderr, "bourse-nodeguard: %s\n", eo.status().ToString().c_str());
    return 1;
  }
  auto e = bourse::nodeguard::Enforcer::Create(*eo);
  if (!e.ok()) {
    fprintf(stderr, "bourse-nodeguard: %s\n", e.status().ToString().c_str());
    return 1;
  }
  if (cfg->ssh) {
    bourse::nodeguard::LoginOptions lo;
    lo.ssh_dir = cfg->state_dir + "/ssh";
    lo.login_shell = cfg->login_shell;
    auto l = bourse::nodeguard::Logins::Create(lo);
    bourse::core::Status r = l.ok() ? (*l)->RemoveAll() : l.status();
    if (!r.ok())
      fprintf(stderr, "bourse-nodeguard: removing sliver accounts: %s\n", r.ToString().c_str());
  }
  auto s = (*e)->TearDownAll();
  if (!s.ok()) {
    fprintf(stderr, "bourse-nodeguard: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  std::string cmd = argv[1];
  std::vector<std::string> rest(argv + 2, argv + argc);
  if (cmd == "run") return Run(rest);
  if (cmd == "status") return Status(rest);
  if (cmd == "teardown") return Teardown(rest);
  if (cmd == "authorized-keys") {
    auto out = bourse::nodeguard::RunAuthorizedKeysCommand(rest);
    fputs(out.stdout_text.c_str(), stdout);
    fputs(out.stderr_text.c_str(), stderr);
    return out.exit_code;
  }
  if (cmd == "redeem") {
    auto out = bourse::nodeguard::RunRedeemCommand(rest, bourse::core::SystemClock::Get());
    fputs(out.stdout_text.c_str(), stdout);
    fputs(out.stderr_text.c_str(), stderr);
    return out.exit_code;
  }
  return Usage();
}
