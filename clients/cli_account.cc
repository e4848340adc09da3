// `bourse account|mint|transfer`: credits (DESIGN §8; routes in
// broker/account_routes.cc). Amounts are decimal strings, printed canonical.
#include <cstdio>
#include <memory>
#include <string>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

void PrintAccount(const json& j) {
  PrintFields({{"account", Text(j["account"])},
               {"balance", FormatMoneyJson(j["balance"])},
               {"escrow", FormatMoneyJson(j["escrow"])}});
  if (!j["escrows"].empty()) {
    std::printf("\n");
    Table t({"ESCROW", "REMAINING"});
    for (const json& e : j["escrows"]) t.Row({Text(e["id"]), FormatMoneyJson(e["remaining"])});
    t.Print();
  }
}

// One ledger entry's money-moving fields, as far as it has them.
std::string EntrySummary(const json& e) {
  std::string out;
  const json& body = e.contains("body") ? e["body"] : e;
  for (const char* k : {"from", "to", "amount", "price", "escrow"}) {
    if (!body.contains(k)) continue;
    std::string v = std::string(k) == "amount" || std::string(k) == "price"
                        ? FormatMoneyJson(body[k])
                        : Text(body[k]);
    out += (out.empty() ? "" : " ") + std::string(k) + "=" + v;
  }
  return out;
}

void PrintHistory(const json& j) {
  Table t({"SEQ", "TYPE", "WHAT"});
  for (const json& e : j["entries"]) {
    t.Row({Text(e["seq"]), Text(e["type"]), EntrySummary(e)});
  }
  t.Print();
}

struct Movement {
  std::string to, amount;
};

core::Status Move(CliContext& ctx, const std::string& path, const Movement& m) {
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey to, ParseKeyArg(m.to, "TO"));
  BOURSE_ASSIGN_OR_RETURN(core::Money amount, ParseAmount(m.amount, "AMOUNT"));
  return ctx.Do("POST", path, {{"to", to.ToText()}, {"amount", amount.ToString()}},
                [](const json& j) {
                  std::printf("moved %s to %s (seq %s); balance now %s\n",
                              FormatMoneyJson(j["amount"]).c_str(), Text(j["to"]).c_str(),
                              Text(j["seq"]).c_str(), FormatMoneyJson(j["balance"]).c_str());
                });
}

void AddMovement(CLI::App& app, CliContext& ctx, const std::string& name, const std::string& path,
                 const std::string& what) {
  auto m = std::make_shared<Movement>();
  CLI::App* cmd = app.add_subcommand(name, "TO AMOUNT: " + what);
  cmd->footer("example: bourse " + name + " alice.pem 100.5");
  cmd->add_option("TO", m->to, "recipient (ed25519:.. or a PEM file)")->required();
  cmd->add_option("AMOUNT", m->amount, "credits, a decimal string")->required();
  ctx.Bind(cmd, [&ctx, path, m] { return Move(ctx, path, *m); });
}

}  // namespace

void AddAccountCommands(CLI::App& app, CliContext& ctx) {
  auto key = std::make_shared<std::string>();
  CLI::App* account =
      app.add_subcommand("account", "[KEY]: balance and escrow (yours by default); history");
  account->footer("example: bourse account; bourse account history alice.pem");
  account->add_option("KEY", *key, "whose (ed25519:.. or a PEM file)");
  CLI::App* history = account->add_subcommand("history", "[KEY]: the entries that moved credits");
  history->add_option("KEY", *key, "whose (ed25519:.. or a PEM file)");
  ctx.Bind(history, [&ctx, key]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(std::string who, ctx.KeyOrSelf(*key));
    return ctx.Do("GET", "/v1/accounts/" + EscapeSegment(who) + "/history", nullptr, PrintHistory);
  });
  ctx.Bind(account, [&ctx, key, account]() -> core::Status {
    if (account->got_subcommand("history")) return core::Status::Ok();
    BOURSE_ASSIGN_OR_RETURN(std::string who, ctx.KeyOrSelf(*key));
    return ctx.Do("GET", "/v1/accounts/" + EscapeSegment(who), nullptr, PrintAccount);
  });
  AddMovement(app, ctx, "mint", "/v1/accounts/mint", "create credits (admin only)");
  AddMovement(app, ctx, "transfer", "/v1/accounts/transfer", "send your credits");
}

}  // namespace bourse::clients
