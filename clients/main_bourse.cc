// `bourse`: the command-line client (DESIGN §8). See clients/cli.h and docs/cli.md.
#include <cstdio>
#include <string>

#include "clients/cli.h"
#include "clients/cli_context.h"

namespace {

constexpr const char* kFooter =
    "Global flags may also follow the noun and verb. URL and key: the flags, else\n"
    "BOURSE_URL / BOURSE_KEY, else the profile (bourse config). Exit codes: 0 done,\n"
    "1 refused or a check failed, 2 usage, 3 broker unreachable or failing.\n"
    "example: bourse --url http://127.0.0.1:8080 --key admin.pem site list";

void BuildApp(CLI::App& app, bourse::clients::CliContext& ctx) {
  using namespace bourse::clients;
  app.fallthrough();  // global flags are accepted after the noun and verb too
  app.require_subcommand(1);
  app.footer(kFooter);
  ctx.AddGlobalFlags(app);
  AddKeyCommands(app, ctx);
  AddConfigCommands(app, ctx);
  AddPlcCommands(app, ctx);
  AddCapacityCommands(app, ctx);
  AddAccountCommands(app, ctx);
  AddSliceCommands(app, ctx);
  AddMarketCommands(app, ctx);
  AddRoundCommands(app, ctx);
  AddRfqCommands(app, ctx);
  AddOfflineCommands(app, ctx);
  AddBrokerCommands(app, ctx);
  AddWatchCommands(app, ctx);
  AddCompletionCommands(app, ctx);
}

// The error and usage lines for a parse error, at the deepest command reached.
void PrintUsageError(const CLI::App& app, const CLI::ParseError& e) {
  const CLI::App* at = &app;
  std::string path = "bourse";
  for (;;) {
    auto subs = at->get_subcommands();
    if (subs.empty()) break;
    at = subs.front();
    path += " " + at->get_name();
  }
  bool wants_verb = at->get_require_subcommand_min() > 0;
  std::vector<std::string> extra = at->remaining();
  if (extra.empty()) extra = app.remaining();  // fell through to the root
  if (wants_verb && !extra.empty()) {
    std::fprintf(stderr, "error: invalid_argument: unknown command \"%s\" for `%s`\n",
                 extra.front().c_str(), path.c_str());
  } else {
    std::fprintf(stderr, "error: invalid_argument: %s\n", e.what());
  }
  std::fprintf(stderr, "usage: %s%s (see `%s --help`)\n", path.c_str(),
               !wants_verb  ? " [ARGS]"
               : at == &app ? " NOUN VERB [ARGS]"
                            : " VERB [ARGS]",
               path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("bourse: the command line for the bourse broker (docs/cli.md)", "bourse");
  bourse::clients::CliContext ctx;
  BuildApp(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    PrintUsageError(app, e);
    return bourse::clients::kExitUsage;
  }
  return ctx.exit_code();
}
