// `bourse ledger ...`: verify a ledger (a file or a running broker) and audit
// a broker's signed heads and proofs.
//
//   bourse ledger verify (--db PATH | --url URL) [--key ed25519:<b64url>]
//                        [--skip-rcap-signatures] [--json]
//   bourse ledger head [--url URL] [--ledger-key K] [--json]
//   bourse ledger proof inclusion SEQ [--size N] [--url URL] [--ledger-key K] [--json]
//   bourse ledger proof consistency M N [--url URL] [--ledger-key K] [--json]
//
// verify --db replays the whole file with ledger::AuditStore; verify --url
// runs clients::AuditUrl (replay, published heads, sampled proofs). head and
// proof fetch from the broker and verify locally (clients/ledger_fetch.h).
// The URL is --url, else $BOURSE_URL. The commands are functions with plain
// parameters (cli_ledger.h); this file's parsing is only their front.
// Exit codes and what each checks: cli_ledger.h, docs/ledger.md.
#include "clients/cli_ledger.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "clients/cli.h"
#include "clients/ledger_fetch.h"
#include "core/keys.h"
#include "ledger/audit.h"
#include "ledger/merkle.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

void LedgerUsage() {
  std::fputs(
      "usage: bourse ledger verify (--db PATH | --url URL) [--key ed25519:<b64url>]\n"
      "                            [--skip-rcap-signatures] [--json]\n"
      "       bourse ledger head [--url URL] [--ledger-key ed25519:<b64url>] [--json]\n"
      "       bourse ledger proof inclusion SEQ [--size N] [--url URL] [--ledger-key K] [--json]\n"
      "       bourse ledger proof consistency M N [--url URL] [--ledger-key K] [--json]\n",
      stderr);
}

// DESIGN §8: 3 when the broker is unreachable or failed (5xx), else 1.
int ErrorExit(const char* cmd, const core::Status& st) {
  std::fprintf(stderr, "error: %s: %s: %s\n", std::string(core::StatusCodeName(st.code())).c_str(),
               cmd, st.message().c_str());
  bool broker_down =
      st.code() == core::StatusCode::kUnavailable || st.code() == core::StatusCode::kInternal;
  return broker_down ? 3 : 1;
}

void PrintJson(const json& j) { std::printf("%s\n", j.dump(2).c_str()); }

json PathJson(const std::vector<ledger::Hash>& path) {
  json a = json::array();
  for (const auto& h : path) a.push_back(ledger::HashToHex(h));
  return a;
}

void PrintPath(const std::vector<ledger::Hash>& path) {
  std::printf("  path  %zu hash%s\n", path.size(), path.size() == 1 ? "" : "es");
  for (const auto& h : path) std::printf("    %s\n", ledger::HashToHex(h).c_str());
}

unsigned long long U(uint64_t v) { return static_cast<unsigned long long>(v); }

json ReportJson(const ledger::AuditReport& rep) {
  const auto& s = rep.summary;
  json j = {{"ok", rep.ok()},
            {"key", rep.key},
            {"entries", s.entries},
            {"heads", s.heads},
            {"accounts", s.accounts},
            {"rcaps", s.rcaps},
            {"minted", s.minted.ToString()},
            {"balances", s.balances.ToString()},
            {"escrowed", s.escrowed.ToString()},
            {"types", s.types}};
  if (rep.violation) {
    j["violation"] = {{"where", rep.violation->where},
                      {"seq", rep.violation->seq},
                      {"rule", rep.violation->rule},
                      {"detail", rep.violation->detail}};
  }
  return j;
}

int PrintReport(const ledger::AuditReport& rep) {
  if (!rep.ok()) {
    std::printf("ledger verify: FAILED at %s\n", rep.violation->ToString().c_str());
    std::printf("  (%llu entries and %llu tree heads checked before it)\n", U(rep.summary.entries),
                U(rep.summary.heads));
    return 1;
  }
  const auto& s = rep.summary;
  std::printf("ledger verify: OK\n");
  std::printf("  key       %s\n", rep.key.c_str());
  std::printf("  entries   %llu\n", U(s.entries));
  std::printf("  heads     %llu (every signature and root checked)\n", U(s.heads));
  std::printf("  accounts  %llu\n", U(s.accounts));
  std::printf("  minted    %s = balances %s + escrow %s\n", s.minted.ToString().c_str(),
              s.balances.ToString().c_str(), s.escrowed.ToString().c_str());
  std::printf("  rcaps     %llu (links and capacity at every instant checked)\n", U(s.rcaps));
  for (const auto& [type, n] : s.types) std::printf("    %-16s %llu\n", type.c_str(), U(n));
  return 0;
}

// Strict decimal, at most 2^53 - 1 (the API's integers).
std::optional<uint64_t> ParseSize(const std::string& s) {
  if (s.empty() || s.size() > 16 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t v = std::strtoull(s.c_str(), nullptr, 10);
  if (v >= (uint64_t{1} << 53)) return std::nullopt;
  return v;
}

// The flags every `ledger` command takes, in any position.
struct LedgerArgs {
  std::string url, db;
  std::optional<core::PublicKey> ledger_key;
  std::optional<uint64_t> size;
  bool json = false;
  ledger::AuditOptions audit;
  std::vector<std::string> pos;
};

// Parses args for `cmd`; `flags` lists the value flags it accepts besides
// --url and --ledger-key. Returns 0, or 2 after printing the usage error.
int ParseArgs(const std::string& cmd, const std::vector<std::string>& args,
              const std::vector<std::string>& flags, LedgerArgs* out) {
  auto usage = [&](const std::string& msg) {
    std::fprintf(stderr, "error: usage: bourse ledger %s: %s\n", cmd.c_str(), msg.c_str());
    LedgerUsage();
    return 2;
  };
  auto takes = [&](const std::string& f) {
    return f == "--url" || f == "--ledger-key" ||
           std::find(flags.begin(), flags.end(), f) != flags.end();
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") {
      out->json = true;
    } else if (a == "--skip-rcap-signatures" && cmd == "verify") {
      out->audit.check_rcap_signatures = false;
    } else if (takes(a)) {
      if (i + 1 >= args.size()) return usage(a + " needs a value");
      const std::string& v = args[++i];
      if (a == "--url") {
        out->url = v;
      } else if (a == "--db") {
        out->db = v;
      } else if (a == "--size") {
        out->size = ParseSize(v);
        if (!out->size) return usage("--size: must be a non-negative integer");
      } else {  // --ledger-key, or verify's --key
        auto k = core::PublicKey::FromText(v);
        if (!k.ok()) return usage(a + ": " + k.status().message());
        out->ledger_key = *k;
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return usage("unknown flag \"" + a + "\"");
    } else {
      out->pos.push_back(a);
    }
  }
  if (out->url.empty() && out->db.empty()) {
    if (const char* env = std::getenv("BOURSE_URL"); env != nullptr) out->url = env;
  }
  return 0;
}

int Verify(const std::vector<std::string>& args) {
  LedgerArgs a;
  std::vector<std::string> raw_flags = {"--db", "--key"};
  if (int rc = ParseArgs("verify", args, raw_flags, &a); rc != 0) return rc;
  if (!a.pos.empty() || a.db.empty() == a.url.empty()) {
    std::fputs("error: usage: bourse ledger verify: give one of --db PATH or --url URL\n", stderr);
    LedgerUsage();
    return 2;
  }
  return a.db.empty() ? LedgerVerifyUrl(a.url, a.ledger_key, a.audit, a.json)
                      : LedgerVerifyDb(a.db, a.ledger_key, a.audit, a.json);
}

// Positional integer `i` of `a` (usage error naming `what` otherwise).
std::optional<uint64_t> Positional(const LedgerArgs& a, size_t i, const char* what) {
  std::optional<uint64_t> v = i < a.pos.size() ? ParseSize(a.pos[i]) : std::nullopt;
  if (!v) std::fprintf(stderr, "error: usage: %s: must be a non-negative integer\n", what);
  return v;
}

int Head(const std::vector<std::string>& args) {
  LedgerArgs a;
  if (int rc = ParseArgs("head", args, {}, &a); rc != 0) return rc;
  if (a.url.empty() || !a.pos.empty()) {
    std::fputs("error: usage: bourse ledger head: needs --url URL (or BOURSE_URL)\n", stderr);
    return 2;
  }
  return LedgerHead(a.url, a.ledger_key, a.json);
}

int Proof(const std::vector<std::string>& args) {
  std::string kind = args.empty() ? "" : args[0];
  if (kind != "inclusion" && kind != "consistency") {
    std::fputs("error: usage: bourse ledger proof (inclusion SEQ | consistency M N)\n", stderr);
    LedgerUsage();
    return 2;
  }
  LedgerArgs a;
  std::vector<std::string> flags;
  if (kind == "inclusion") flags.push_back("--size");
  if (int rc = ParseArgs("proof " + kind, {args.begin() + 1, args.end()}, flags, &a); rc != 0) {
    return rc;
  }
  size_t want = kind == "inclusion" ? 1 : 2;
  if (a.url.empty() || a.pos.size() != want) {
    std::fprintf(stderr, "error: usage: bourse ledger proof %s: needs %s and --url URL\n",
                 kind.c_str(), want == 1 ? "SEQ" : "M N");
    return 2;
  }
  if (kind == "inclusion") {
    auto seq = Positional(a, 0, "SEQ");
    if (!seq) return 2;
    return LedgerProofInclusion(a.url, *seq, a.size, a.ledger_key, a.json);
  }
  auto m = Positional(a, 0, "M"), n = Positional(a, 1, "N");
  if (!m || !n) return 2;
  return LedgerProofConsistency(a.url, *m, *n, a.ledger_key, a.json);
}

}  // namespace

int LedgerVerifyDb(const std::string& db, const std::optional<core::PublicKey>& ledger_key,
                   const ledger::AuditOptions& options, bool json) {
  auto rep = ledger::AuditStore(db, ledger_key, options);
  if (!rep.ok()) {
    std::fprintf(stderr, "error: %s: ledger verify: %s\n",
                 std::string(core::StatusCodeName(rep.status().code())).c_str(),
                 rep.status().message().c_str());
    return 3;
  }
  if (!json) return PrintReport(*rep);
  PrintJson(ReportJson(*rep));
  return rep->ok() ? 0 : 1;
}

int LedgerVerifyUrl(const std::string& url, const std::optional<core::PublicKey>& ledger_key,
                    const ledger::AuditOptions& options, bool json) {
  auto rep = AuditUrl(url, ledger_key, options);
  if (!rep.ok()) return ErrorExit("ledger verify", rep.status());
  if (json) {
    nlohmann::json j = ReportJson(*rep);
    j["heads_fetched"] = rep->heads_fetched;
    j["inclusion_proofs"] = rep->inclusion_proofs;
    j["consistency_proofs"] = rep->consistency_proofs;
    PrintJson(j);
    return rep->ok() ? 0 : 1;
  }
  int rc = PrintReport(*rep);
  std::printf("  published heads %llu read; proofs verified: %llu inclusion, %llu consistency\n",
              U(rep->heads_fetched), U(rep->inclusion_proofs), U(rep->consistency_proofs));
  return rc;
}

int LedgerHead(const std::string& url, const std::optional<core::PublicKey>& ledger_key,
               bool json) {
  auto hc = CheckHead(url, ledger_key);
  if (!hc.ok()) return ErrorExit("ledger head", hc.status());
  const ledger::TreeHead& h = hc->head;
  if (json) {
    nlohmann::json j = ledger::TreeHeadToJson(h);
    j["key"] = hc->key;
    j["verified"] = hc->verdict.ok();
    PrintJson(j);
  } else {
    std::printf("ledger head: %s\n", hc->verdict.ok() ? "OK (signature verified)" : "FAILED");
    std::printf("  size  %llu\n", U(h.size));
    std::printf("  root  %s\n", ledger::HashToHex(h.root).c_str());
    std::printf("  ts    %lld (unix ms)\n", static_cast<long long>(h.ts));
    std::printf("  sig   %s\n", core::SignatureToText(h.sig).c_str());
    std::printf("  key   %s\n", hc->key.c_str());
  }
  if (!hc->verdict.ok()) return ErrorExit("ledger head", hc->verdict);
  return 0;
}

int LedgerProofInclusion(const std::string& url, uint64_t seq, std::optional<uint64_t> size,
                         const std::optional<core::PublicKey>& ledger_key, bool json) {
  auto ic = CheckInclusion(url, seq, size, ledger_key);
  if (!ic.ok()) return ErrorExit("ledger proof inclusion", ic.status());
  if (json) {
    PrintJson({{"ok", ic->verdict.ok()},
               {"seq", ic->seq},
               {"size", ic->at.size},
               {"leaf", ledger::HashToHex(ic->leaf)},
               {"root", ledger::HashToHex(ic->at.root)},
               {"root_source", ic->at.source},
               {"path", PathJson(ic->path)}});
  } else if (ic->verdict.ok()) {
    std::printf("ledger proof inclusion: OK: seq %llu is in the tree of size %llu\n", U(ic->seq),
                U(ic->at.size));
    std::printf("  leaf  %s\n", ledger::HashToHex(ic->leaf).c_str());
    std::printf("  root  %s (%s)\n", ledger::HashToHex(ic->at.root).c_str(), ic->at.source.c_str());
    PrintPath(ic->path);
  }
  if (!ic->verdict.ok()) return ErrorExit("ledger proof inclusion", ic->verdict);
  return 0;
}

int LedgerProofConsistency(const std::string& url, uint64_t first, uint64_t second,
                           const std::optional<core::PublicKey>& ledger_key, bool json) {
  auto cc = CheckConsistency(url, first, second, ledger_key);
  if (!cc.ok()) return ErrorExit("ledger proof consistency", cc.status());
  if (json) {
    PrintJson({{"ok", cc->verdict.ok()},
               {"first", first},
               {"second", second},
               {"first_root", ledger::HashToHex(cc->first.root)},
               {"first_root_source", cc->first.source},
               {"second_root", ledger::HashToHex(cc->second.root)},
               {"second_root_source", cc->second.source},
               {"path", PathJson(cc->path)}});
  } else if (cc->verdict.ok()) {
    std::printf("ledger proof consistency: OK: the tree of size %llu is a prefix of size %llu\n",
                U(first), U(second));
    std::printf("  root %llu  %s (%s)\n", U(first), ledger::HashToHex(cc->first.root).c_str(),
                cc->first.source.c_str());
    std::printf("  root %llu  %s (%s)\n", U(second), ledger::HashToHex(cc->second.root).c_str(),
                cc->second.source.c_str());
    PrintPath(cc->path);
  }
  if (!cc->verdict.ok()) return ErrorExit("ledger proof consistency", cc->verdict);
  return 0;
}

int RunLedgerCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    LedgerUsage();
    return args.empty() ? 2 : 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "verify") return Verify(rest);
  if (args[0] == "head") return Head(rest);
  if (args[0] == "proof") return Proof(rest);
  std::fprintf(stderr, "error: usage: bourse ledger: unknown command \"%s\"\n", args[0].c_str());
  LedgerUsage();
  return 2;
}

}  // namespace bourse::clients
