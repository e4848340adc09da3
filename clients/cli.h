// The `bourse` command line (DESIGN §8, docs/cli.md): one CLI11 App tree built
// by main_bourse.cc from one Add<Noun>Commands per command group, each in its
// own file (cli_config.cc, cli_key.cc, cli_plc.cc, ...), sharing a CliContext
// (clients/cli_context.h) and the argument syntax of clients/cli_args.h.
//
// The offline tools keep their own argument parsing: Run*Command gets the
// arguments after its group name
// (`bourse ledger verify --db x` -> RunLedgerCommand({"verify","--db","x"}))
// and returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/interval.h"
#include "core/resource_vector.h"
#include "core/status.h"
#include "ledger/rcap.h"

namespace bourse::clients {

class CliContext;

int RunLedgerCommand(const std::vector<std::string>& args);   // cli_ledger.cc
int RunAuctionCommand(const std::vector<std::string>& args);  // cli_auction.cc

void AddConfigCommands(CLI::App& app, CliContext& ctx);    // cli_config.cc
void AddKeyCommands(CLI::App& app, CliContext& ctx);       // cli_key.cc
void AddPlcCommands(CLI::App& app, CliContext& ctx);       // cli_plc.cc: site node principal
void AddSliceCommands(CLI::App& app, CliContext& ctx);     // cli_slice.cc
void AddCapacityCommands(CLI::App& app, CliContext& ctx);  // cli_capacity.cc: grant rcap holdings
void AddAccountCommands(CLI::App& app, CliContext& ctx);   // cli_account.cc: account mint transfer
void AddMarketCommands(CLI::App& app, CliContext& ctx);    // cli_market.cc
void AddRoundCommands(CLI::App& app, CliContext& ctx);     // cli_rounds.cc: acquire round share
void AddBrokerCommands(CLI::App& app, CliContext& ctx);    // cli_broker.cc: call seed-demo
void AddOfflineCommands(CLI::App& app, CliContext& ctx);   // cli_offline.cc: ledger auction
void AddCompletionCommands(CLI::App& app, CliContext& ctx);  // cli_completion.cc
void AddWatchCommands(CLI::App& app, CliContext& ctx);       // cli_watch.cc
void AddRfqCommands(CLI::App& app, CliContext& ctx);         // cli_rfq.cc

// The escrow a sell order or an RFQ quote carries: a child of `from` (an rcap
// the caller holds) with `res` over `window`, held by the broker (its ledger
// key) and signed with the caller's key (cli_market.cc).
core::Result<nlohmann::json> SignEscrow(CliContext& ctx, const ledger::Rcap& from,
                                        const core::ResourceVector& res,
                                        const core::Interval& window);

}  // namespace bourse::clients
