// The `bourse` command line: one entry point per command group, each in its
// own file (cli_ledger.cc, cli_auction.cc, ...), dispatched by main_bourse.cc.
//
// Each Run*Command gets the arguments after its group name
// (`bourse ledger verify --db x` -> RunLedgerCommand({"verify","--db","x"}))
// and returns the process exit code. Output goes to stdout/stderr.
#pragma once

#include <string>
#include <vector>

namespace bourse::clients {

int RunLedgerCommand(const std::vector<std::string>& args);
int RunAuctionCommand(const std::vector<std::string>& args);
int RunBrokerCommand(const std::vector<std::string>& args);  // cli_broker.cc

}  // namespace bourse::clients
