// `bourse`: the command-line client. See clients/cli.h and docs/cli.md.
#include <cstdio>
#include <string>
#include <vector>

#include "clients/cli.h"

namespace {

void Usage() {
  std::fputs(
      "usage: bourse <group> <command> [args]\n"
      "  bourse ledger verify (--db PATH | --url URL)\n"
      "  bourse ledger head --url URL\n"
      "  bourse ledger proof inclusion SEQ [--size N] --url URL\n"
      "  bourse ledger proof consistency M N --url URL\n"
      "  bourse auction replay FILE\n"
      "  bourse auction clear FILE\n"
      "  bourse broker call --url URL [--key FILE] METHOD PATH [JSON]\n"
      "  bourse broker seed-demo --url URL --admin-key FILE --dir DIR\n",
      stderr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage();
    return 2;
  }
  std::string group = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (group == "ledger") return bourse::clients::RunLedgerCommand(args);
  if (group == "auction") return bourse::clients::RunAuctionCommand(args);
  if (group == "broker") return bourse::clients::RunBrokerCommand(args);
  if (group == "-h" || group == "--help" || group == "help") {
    Usage();
    return 0;
  }
  std::fprintf(stderr, "bourse: unknown command group \"%s\"\n", group.c_str());
  Usage();
  return 2;
}
