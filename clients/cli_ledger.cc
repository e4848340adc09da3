// `bourse ledger ...`: offline ledger tools.
//
//   bourse ledger verify --db PATH [--key ed25519:<b64url>] [--skip-rcap-signatures]
//
// verify replays the whole ledger with bourse::ledger::AuditStore (ledger/audit.h):
// hash chain, every signed tree head, credit rules and conservation, rcap links
// and time-aware capacity. Exit 0 when everything holds (a summary on stdout);
// 1 with the first violation and its seq on stdout; 2 for usage errors; 3 when
// the store cannot be read. Other sources (--url) feed the same LedgerAuditor.
#include <cstdio>
#include <optional>
#include <string>

#include "clients/cli.h"
#include "clients/ledger_fetch.h"
#include "core/keys.h"
#include "ledger/audit.h"

namespace bourse::clients {
namespace {

void LedgerUsage() {
  std::fputs(
      "usage: bourse ledger verify (--db PATH | --url URL) [--key ed25519:<b64url>]\n"
      "                            [--skip-rcap-signatures]\n",
      stderr);
}

int PrintReport(const ledger::AuditReport& rep) {
  if (!rep.ok()) {
    std::printf("ledger verify: FAILED at %s\n", rep.violation->ToString().c_str());
    std::printf("  (%llu entries and %llu tree heads checked before it)\n",
                static_cast<unsigned long long>(rep.summary.entries),
                static_cast<unsigned long long>(rep.summary.heads));
    return 1;
  }
  const auto& s = rep.summary;
  std::printf("ledger verify: OK\n");
  std::printf("  key       %s\n", rep.key.c_str());
  std::printf("  entries   %llu\n", static_cast<unsigned long long>(s.entries));
  std::printf("  heads     %llu (every signature and root checked)\n",
              static_cast<unsigned long long>(s.heads));
  std::printf("  accounts  %llu\n", static_cast<unsigned long long>(s.accounts));
  std::printf("  minted    %s = balances %s + escrow %s\n", s.minted.ToString().c_str(),
              s.balances.ToString().c_str(), s.escrowed.ToString().c_str());
  std::printf("  rcaps     %llu (links and capacity at every instant checked)\n",
              static_cast<unsigned long long>(s.rcaps));
  for (const auto& [type, n] : s.types) {
    std::printf("    %-16s %llu\n", type.c_str(), static_cast<unsigned long long>(n));
  }
  return 0;
}

int Verify(const std::vector<std::string>& args) {
  std::string db;
  std::string url;  // --url: audit a running broker over HTTP (clients/ledger_fetch.h)
  std::optional<core::PublicKey> key;
  ledger::AuditOptions opts;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--db" || a == "--key" || a == "--url") && i + 1 >= args.size()) {
      std::fprintf(stderr, "bourse ledger verify: %s needs a value\n", a.c_str());
      return 2;
    }
    if (a == "--db") {
      db = args[++i];
    } else if (a == "--url") {
      url = args[++i];
    } else if (a == "--key") {
      auto k = core::PublicKey::FromText(args[++i]);
      if (!k.ok()) {
        std::fprintf(stderr, "bourse ledger verify: --key: %s\n", k.status().message().c_str());
        return 2;
      }
      key = *k;
    } else if (a == "--skip-rcap-signatures") {
      opts.check_rcap_signatures = false;
    } else {
      std::fprintf(stderr, "bourse ledger verify: unknown argument \"%s\"\n", a.c_str());
      LedgerUsage();
      return 2;
    }
  }
  if (!url.empty() && db.empty()) {
    auto rep = AuditUrl(url, key, opts);
    if (!rep.ok()) {
      std::fprintf(stderr, "bourse ledger verify: %s\n", rep.status().ToString().c_str());
      return 3;
    }
    return PrintReport(*rep);
  }
  if (db.empty() || !url.empty()) {
    std::fputs("bourse ledger verify: give one of --db PATH or --url URL\n", stderr);
    LedgerUsage();
    return 2;
  }
  auto rep = ledger::AuditStore(db, key, opts);
  if (!rep.ok()) {
    std::fprintf(stderr, "bourse ledger verify: %s\n", rep.status().ToString().c_str());
    return 3;
  }
  return PrintReport(*rep);
}

}  // namespace

int RunLedgerCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    LedgerUsage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "verify") return Verify({args.begin() + 1, args.end()});
  std::fprintf(stderr, "bourse ledger: unknown command \"%s\"\n", args[0].c_str());
  LedgerUsage();
  return 2;
}

}  // namespace bourse::clients
