// nodeguard_boot: how fast a node guard boots with N redeemed slivers, how
// cheap an idle reconcile pass is, and how much memory the guard holds.
// Needs root (real cgroups, tc/HTB and nftables inside a private network
// namespace with a veth pair it creates; all removed at exit).
//
// Workloads (printed as one JSON object):
//   boot_cold_ms     spool of N chains -> verify + redeem (SQLite) + N cgroups
//                    (cpu, cpuacct, memory) + N HTB classes (one tc -batch) +
//                    the nft uid map (one transaction)
//   boot_restart_ms  a new guard on the same state and kernel: reload, verify
//                    the kernel matches, apply nothing
//   idle_pass_ms     mean of idle periodic passes (cached, no kernel re-read)
//   verify_pass_ms   an idle pass that re-reads every cgroup and the HTB tree
//   rss_mib          VmRSS of this process (the guard) with N slivers
//   *_cpu_ms         CPU time (user+system, children included) of the same work:
//                    what the wall time approaches on an idle machine
//
//   nodeguard_boot [--slivers N]        (default 1000)
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/clock.h"
#include "core/keys.h"
#include "ledger/rcap.h"
#include "nodeguard/guard.h"
#include "nodeguard/internal/exec.h"

namespace {

using bourse::nodeguard::internal::RunCommand;
namespace fs = std::filesystem;

double Ms(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// CPU time (user + system) of this process and its waited-for children (tc, nft, ip).
double CpuMs() {
  rusage self{}, kids{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  auto ms = [](const timeval& t) { return t.tv_sec * 1000.0 + t.tv_usec / 1000.0; };
  return ms(self.ru_utime) + ms(self.ru_stime) + ms(kids.ru_utime) + ms(kids.ru_stime);
}

double RssMib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 1000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--slivers") n = std::atoi(argv[i + 1]);
  }
  signal(SIGPIPE, SIG_IGN);  // a closed pipe on stderr must not skip the cleanup
  if (geteuid() != 0) {
    fprintf(stderr, "nodeguard_boot: needs root\n");
    return 2;
  }
  std::string tag = std::to_string(getpid());
  std::string ns = "ngbench" + tag;
  std::string dev = "ngb" + tag;
  char tmpl[] = "/tmp/ng_bench_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 2;
  fs::path dir = tmpl;
  auto cleanup = [&] {
    RunCommand({"ip", "netns", "del", ns}).status().IgnoreError();
    fs::remove_all(dir);
  };
  if (!RunCommand({"ip", "netns", "add", ns}).ok() ||
      !RunCommand({"ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", dev + "p"})
           .ok() ||
      !RunCommand({"ip", "-n", ns, "link", "set", dev, "up"}).ok()) {
    fprintf(stderr, "nodeguard_boot: cannot create netns/veth\n");
    cleanup();
    return 2;
  }

  // N chains root -> leaf, each leaf a slice of its own.
  auto site = bourse::core::PrivateKey::Generate().value();
  auto broker = bourse::core::PrivateKey::Generate().value();
  auto holder = bourse::core::PrivateKey::Generate().value();
  int64_t now = bourse::core::SystemClock::Get().NowSeconds();
  bourse::core::ResourceVector per{
      .cpu_mcores = 10, .mem_mib = 16, .disk_mib = 0, .net_min_kbps = 100, .net_max_kbps = 1000};
  auto cap = per.Times(n).value();
  cap.net_max_kbps = 1000000;
  auto root = bourse::ledger::IssueRoot(site, {.id = "",
                                               .holder = broker.public_key(),
                                               .node = "n1",
                                               .res = cap,
                                               .interval = {now - 60, now + 86400}})
                  .value();
  fs::create_directories(dir / "state/spool");
  std::ofstream(dir / "trust") << site.public_key().ToText() << "\n";
  for (int i = 0; i < n; ++i) {
    auto leaf = bourse::ledger::Delegate(root, broker,
                                         {.id = "",
                                          .holder = holder.public_key(),
                                          .res = per,
                                          .interval = {now - 1, now + 86000}})
                    .value();
    std::ofstream(dir / "state/spool" / ("b" + std::to_string(i) + ".json"))
        << bourse::ledger::ChainToJson(std::vector<bourse::ledger::Rcap>{root, leaf}).dump();
  }
  auto cfg = bourse::nodeguard::GuardConfig::Parse(
                 "node_id = n1\ntrust_file = " + (dir / "trust").string() +
                 "\nstate_dir = " + (dir / "state").string() + "\nlaunch = false\n")
                 .value();
  auto make_enforcer = [&] {
    bourse::nodeguard::EnforcerOptions o;
    o.cgroup =
        bourse::nodeguard::CgroupOptions::Detect("/sys/fs/cgroup", "bourse_bench" + tag).value();
    o.link.iface = dev;
    o.link.netns = ns;
    o.link.link_kbps = 1000000;
    o.run_dir = (dir / "state/run").string();
    o.launch = false;
    return bourse::nodeguard::Enforcer::Create(o);
  };
  int rc = 0;
  double cold = 0, restart = 0, idle = 0, verify = 0, rss = 0, cold_cpu = 0, idle_cpu = 0;
  {
    double c0 = CpuMs();
    auto t0 = std::chrono::steady_clock::now();
    auto e = make_enforcer();
    if (!e.ok()) {
      fprintf(stderr, "nodeguard_boot: %s\n", e.status().ToString().c_str());
      cleanup();
      return 1;
    }
    auto g =
        bourse::nodeguard::Guard::Create(cfg, &bourse::core::SystemClock::Get(), std::move(*e));
    auto st = g.value()->ReconcileOnce();
    auto t1 = std::chrono::steady_clock::now();
    if (!st.ok() || st->redeemed != n || st->enforce.created != n) {
      fprintf(stderr, "nodeguard_boot: cold boot failed: %s\n",
              st.ok() ? "wrong counts" : st.status().ToString().c_str());
      rc = 1;
    }
    cold = Ms(t0, t1);
    cold_cpu = CpuMs() - c0;
  }
  std::unique_ptr<bourse::nodeguard::Guard> g;
  {
    auto t0 = std::chrono::steady_clock::now();
    g = bourse::nodeguard::Guard::Create(cfg, &bourse::core::SystemClock::Get(),
                                         std::move(make_enforcer().value()))
            .value();
    auto st = g->ReconcileOnce();  // pass 0 verifies the kernel
    auto t1 = std::chrono::steady_clock::now();
    if (!st.ok() || st->enforce.unchanged != n || st->enforce.link_changed) {
      fprintf(stderr, "nodeguard_boot: restart applied changes\n");
      rc = 1;
    }
    restart = Ms(t0, t1);
  }
  const int kIdle = 9;  // passes 1..9 are cheap; pass 10 verifies the kernel
  double c0 = CpuMs();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kIdle; ++i) {
    if (!g->ReconcileOnce().ok()) rc = 1;
  }
  idle = Ms(t0, std::chrono::steady_clock::now()) / kIdle;
  idle_cpu = (CpuMs() - c0) / kIdle;
  t0 = std::chrono::steady_clock::now();
  auto vs = g->ReconcileOnce();
  verify = Ms(t0, std::chrono::steady_clock::now());
  if (!vs.ok() || vs->enforce.unchanged != n) rc = 1;
  rss = RssMib();
  if (!g->enforcer().TearDownAll().ok()) rc = 1;
  g.reset();
  cleanup();
  printf(
      "{\"slivers\":%d,\"boot_cold_ms\":%.1f,\"boot_cold_cpu_ms\":%.1f,\"boot_restart_ms\":%.1f,"
      "\"idle_pass_ms\":%.2f,\"idle_pass_cpu_ms\":%.2f,\"verify_pass_ms\":%.1f,\"rss_mib\":%.1f,"
      "\"ok\":%s}\n",
      n, cold, cold_cpu, restart, idle, idle_cpu, verify, rss, rc == 0 ? "true" : "false");
  return rc;
}
