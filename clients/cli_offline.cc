// `bourse ledger ...` and `bourse auction ...` under the CLI11 frame: each verb
// hands its arguments verbatim to the tool's own parser (cli_ledger.cc,
// cli_auction.cc), so their flags (`ledger verify --url`), output and exit
// codes stay exactly theirs. A ledger verb given neither --url nor --db gets
// the resolved URL (global --url, BOURSE_URL, the profile) as --url, and the
// global --json as --json.
#include <memory>
#include <string>
#include <vector>

#include "clients/cli.h"
#include "clients/cli_context.h"

namespace bourse::clients {
namespace {

using Runner = int (*)(const std::vector<std::string>&);

void AddPassThrough(CLI::App* noun, CliContext& ctx, Runner run, const std::string& verb,
                    const std::string& description) {
  CLI::App* cmd = noun->add_subcommand(verb, description);
  cmd->prefix_command(true);
  cmd->fallthrough(false);
  cmd->set_help_flag();  // the tool prints its own usage for --help
  cmd->callback([&ctx, cmd, run, verb] {
    std::vector<std::string> args = {verb};
    bool has_source = false, has_json = false;
    for (const std::string& a : cmd->remaining()) {
      has_source = has_source || a == "--url" || a == "--db";
      has_json = has_json || a == "--json";
      args.push_back(a);
    }
    // `bourse --json ledger head`: the global flag reaches the ledger tool.
    if (run == RunLedgerCommand && ctx.json && !has_json) args.push_back("--json");
    // `bourse --url U ledger verify` (or BOURSE_URL, or the profile): the
    // resolved URL when the tool was given no source of its own.
    std::string url = ctx.Url().value;
    if (run == RunLedgerCommand && !has_source && !url.empty()) {
      args.push_back("--url");
      args.push_back(url);
    }
    ctx.SetExit(run(args));
  });
}

}  // namespace

void AddOfflineCommands(CLI::App& app, CliContext& ctx) {
  CLI::App* ledger = app.add_subcommand("ledger", "Audit: verify a ledger, its heads and proofs");
  ledger->require_subcommand(1);
  ledger->footer("example: bourse ledger verify --url http://127.0.0.1:8080");
  AddPassThrough(ledger, ctx, RunLedgerCommand, "verify",
                 "verify (--db PATH | --url URL) [--key ed25519:..]: replay and check everything");
  AddPassThrough(ledger, ctx, RunLedgerCommand, "head", "the broker's signed tree head");
  AddPassThrough(ledger, ctx, RunLedgerCommand, "proof",
                 "proof inclusion SEQ [--size N] | consistency M N: fetch and verify a proof");

  CLI::App* auction = app.add_subcommand("auction", "Offline market tools (docs/auction.md)");
  auction->require_subcommand(1);
  auction->footer("example: bourse auction replay orders.jsonl");
  AddPassThrough(auction, ctx, RunAuctionCommand, "replay",
                 "replay FILE: JSON lines of order operations in, trades out");
  AddPassThrough(auction, ctx, RunAuctionCommand, "clear",
                 "clear FILE: one combinatorial round in, winners and payments out");
}

}  // namespace bourse::clients
