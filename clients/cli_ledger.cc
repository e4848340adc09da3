// Placeholder until the ledger tools land: refuses clearly instead of pretending.
#include <cstdio>

#include "clients/cli.h"

namespace bourse::clients {

int RunLedgerCommand(const std::vector<std::string>&) {
  std::fputs("bourse ledger: not implemented yet\n", stderr);
  return 2;
}

}  // namespace bourse::clients
