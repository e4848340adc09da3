// Placeholder until the auction tools land: refuses clearly instead of pretending.
#include <cstdio>

#include "clients/cli.h"

namespace bourse::clients {

int RunAuctionCommand(const std::vector<std::string>&) {
  std::fputs("bourse auction: not implemented yet\n", stderr);
  return 2;
}

}  // namespace bourse::clients
