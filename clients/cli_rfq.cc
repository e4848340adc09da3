// `bourse rfq`: requests for quote (DESIGN §8 and §10; routes in
// broker/rfq_routes.cc, rules in docs/markets.md "Requests for quote").
// `rfq quote` escrows, per node, exactly the RFQ's rspec: a child of the
// caller's rcap over the RFQ's interval, delegated to the broker and signed
// with the caller's key (as `sell` does); an rcap the broker holds (its
// pool) is named instead (admin). Reads are signed when a key is configured,
// so a buyer and a seller see the sealed prices that are theirs.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"
#include "core/json_codec.h"
#include "ledger/rcap.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

struct RfqArgs {
  std::string res, from, until, close, max_price, state, rfq, quote, price;
  int64_t nodes = 0, min_sites = 0;
  bool manual = false;
  std::vector<std::string> rcaps;  // ID@NODE
};

std::string RfqPath(const std::string& rfq, const std::string& suffix = "") {
  return "/v1/rfqs/" + EscapeSegment(rfq) + suffix;
}

// A GET, signed when the caller has a key (sealed prices are shown to
// their buyer and seller).
core::Status Read(CliContext& ctx, const std::string& path,
                  const std::function<void(const json&)>& human) {
  BOURSE_ASSIGN_OR_RETURN(json got, ctx.Call("GET", path, nullptr, !ctx.KeyPath().value.empty()));
  ctx.Emit(got, [&] { human(got); });
  return core::Status::Ok();
}

std::string Price(const json& p) { return p.is_null() ? "sealed" : FormatMoneyJson(p); }

void PrintRfqs(const json& j) {
  Table t({"ID", "STATE", "NODES", "SITES", "RES", "FROM", "UNTIL", "MAX_PRICE", "CLOSE", "QUOTES",
           "AWARD"});
  int64_t now = NowSeconds();
  for (const json& r : j["rfqs"]) {
    t.Row({Text(r["id"]), Text(r["state"]), Text(r["nodes"]), ">=" + Text(r["min_sites"]),
           FormatResourcesJson(r["res"]), FormatTime(r.value("not_before", int64_t{0}), now),
           FormatTime(r.value("not_after", int64_t{0}), now), FormatMoneyJson(r["max_price"]),
           FormatTime(r.value("close", int64_t{0}), now), std::to_string(r["quotes"].size()),
           Text(r["award"])});
  }
  t.Print();
}

void PrintRfq(const json& j) {
  json r = j.contains("rfq") ? j["rfq"] : j;
  json quotes = r["quotes"];
  r.erase("quotes");
  PrintObject(r);
  if (quotes.empty()) {
    std::printf("no quotes\n");
    return;
  }
  Table t({"QUOTE", "SELLER", "PRICE", "NODES", "STATE"});
  for (const json& q : quotes) {
    std::string nodes;
    for (const json& n : q["nodes"]) nodes += (nodes.empty() ? "" : ",") + Text(n);
    t.Row({Text(q["id"]), Text(q["seller"]), Price(q["price"]), nodes, Text(q["state"])});
  }
  t.Print();
}

core::Status Open(CliContext& ctx, const RfqArgs& a) {
  int64_t now = NowSeconds();
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector res, ParseResources(a.res, "--res"));
  BOURSE_ASSIGN_OR_RETURN(int64_t from, ParseTime(a.from, now, "--from"));
  BOURSE_ASSIGN_OR_RETURN(int64_t until, ParseTime(a.until, now, "--until"));
  BOURSE_ASSIGN_OR_RETURN(core::Money max, ParseAmount(a.max_price, "--max-price"));
  if (a.nodes <= 0) return core::InvalidArgument("--nodes: must be at least 1");
  json body = {{"res", core::ResourceVectorToJson(res)},
               {"nodes", a.nodes},
               {"not_before", from},
               {"not_after", until},
               {"max_price", max.ToString()},
               {"award", a.manual ? "manual" : "auto"}};
  if (a.min_sites > 0) body["min_sites"] = a.min_sites;
  if (!a.close.empty()) {
    BOURSE_ASSIGN_OR_RETURN(int64_t close, ParseTime(a.close, now, "--close"));
    body["close"] = close;
  }
  return ctx.Do("POST", "/v1/rfqs", body, [now](const json& j) {
    const json& r = j["rfq"];
    std::printf("rfq %s open: %s escrowed, quotes until %s\n", Text(r["id"]).c_str(),
                FormatMoneyJson(r["max_price"]).c_str(),
                FormatTime(r.value("close", int64_t{0}), now).c_str());
  });
}

// One ID@NODE of `rfq quote`: a signed escrow of the rspec from the
// caller's rcap, or the pool rcap's id (the broker escrows it; admin).
core::Result<json> QuotePiece(CliContext& ctx, const json& rfq, const std::string& arg) {
  size_t at = arg.rfind('@');
  std::string id = arg.substr(0, at);
  BOURSE_ASSIGN_OR_RETURN(json got, ctx.Call("GET", "/v1/rcaps/" + EscapeSegment(id)));
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(got["rcap"], "rcap"));
  std::string node = at == std::string::npos ? r.node : arg.substr(at + 1);
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey me, ctx.Key());
  if (!(r.holder == me.public_key())) return json{{"rcap", id}, {"node", node}};
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector res,
                          core::ResourceVectorFromJson(rfq["res"], "rfq.res"));
  core::Interval window{.not_before = rfq.value("not_before", int64_t{0}),
                        .not_after = rfq.value("not_after", int64_t{0})};
  BOURSE_ASSIGN_OR_RETURN(json escrow, SignEscrow(ctx, r, res, window));
  return json{{"rcap", escrow}, {"node", node}};
}

core::Status Quote(CliContext& ctx, const RfqArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(core::Money price, ParseAmount(a.price, "--price"));
  BOURSE_ASSIGN_OR_RETURN(json got, ctx.Call("GET", RfqPath(a.rfq)));
  json pieces = json::array();
  for (const std::string& arg : a.rcaps) {
    if (arg.empty() || arg.front() == '@') {
      return core::InvalidArgument("--rcap: " + arg + " is not ID or ID@NODE");
    }
    BOURSE_ASSIGN_OR_RETURN(json piece, QuotePiece(ctx, got["rfq"], arg));
    pieces.push_back(std::move(piece));
  }
  return ctx.Do("POST", RfqPath(a.rfq, "/quotes"), {{"price", price.ToString()}, {"rcaps", pieces}},
                [](const json& j) {
                  const json& q = j["quote"];
                  std::printf("quote %s on rfq %s: %s for %zu node(s)\n", Text(q["id"]).c_str(),
                              Text(q["rfq"]).c_str(), Price(q["price"]).c_str(), q["nodes"].size());
                });
}

void AddReads(CLI::App* noun, CliContext& ctx, std::shared_ptr<RfqArgs> a) {
  auto l = std::make_shared<RfqArgs>();
  CLI::App* list = noun->add_subcommand("list", "[--state S]: RFQs, newest first");
  list->add_option("--state", l->state, "open|awarded|failed|cancelled");
  ctx.Bind(list, [&ctx, l] {
    return Read(ctx, "/v1/rfqs" + (l->state.empty() ? "" : "?state=" + EscapeSegment(l->state)),
                PrintRfqs);
  });
  CLI::App* show = noun->add_subcommand("show", "ID: an RFQ and its quotes");
  show->add_option("ID", a->rfq, "rfq id")->required();
  ctx.Bind(show, [&ctx, a] { return Read(ctx, RfqPath(a->rfq), PrintRfq); });
}

void AddWrites(CLI::App* noun, CliContext& ctx, std::shared_ptr<RfqArgs> a) {
  CLI::App* accept = noun->add_subcommand("accept", "ID QUOTE: award the RFQ to a quote now");
  accept->add_option("ID", a->rfq, "rfq id")->required();
  accept->add_option("QUOTE", a->quote, "quote id")->required();
  ctx.Bind(accept, [&ctx, a] {
    return ctx.Do("POST", RfqPath(a->rfq, "/accept"), {{"quote", a->quote}}, [](const json& j) {
      const json& r = j["rfq"];
      std::printf("rfq %s awarded to quote %s at %s: %zu chain(s)\n", Text(r["id"]).c_str(),
                  Text(r["quote"]).c_str(), FormatMoneyJson(r["price"]).c_str(),
                  j["chains"].size());
    });
  });
  CLI::App* quote =
      noun->add_subcommand("quote", "ID --price P --rcap ID@NODE...: quote on an open RFQ");
  quote->footer("example: bourse rfq quote rfq_x --price 12 --rcap rc_a@n1 --rcap rc_b@n2");
  quote->add_option("ID", a->rfq, "rfq id")->required();
  quote->add_option("--price", a->price, "the total price for the whole rspec")->required();
  quote->add_option("--rcap", a->rcaps, "an rcap per node (yours, or the pool's as admin)")
      ->required();
  ctx.Bind(quote, [&ctx, a] { return Quote(ctx, *a); });
  CLI::App* withdraw = noun->add_subcommand("withdraw", "ID QUOTE: withdraw your open quote");
  withdraw->add_option("ID", a->rfq, "rfq id")->required();
  withdraw->add_option("QUOTE", a->quote, "quote id")->required();
  ctx.Bind(withdraw, [&ctx, a] {
    return ctx.Done("DELETE", RfqPath(a->rfq, "/quotes/" + EscapeSegment(a->quote)), nullptr,
                    "quote " + a->quote + " withdrawn; its escrows are yours again");
  });
  CLI::App* cancel = noun->add_subcommand("cancel", "ID: cancel your open RFQ");
  cancel->add_option("ID", a->rfq, "rfq id")->required();
  ctx.Bind(cancel, [&ctx, a] {
    return ctx.Done("DELETE", RfqPath(a->rfq), nullptr,
                    "rfq " + a->rfq + " cancelled; its escrow is released");
  });
}

}  // namespace

void AddRfqCommands(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("rfq", "Requests for quote: open, quote, accept");
  noun->require_subcommand(1);
  noun->footer(
      "example: bourse rfq open --res cpu_mcores=500 --nodes 4 --min-sites 2 --from +1h "
      "--until +1d --max-price 40 --close +30m");
  auto a = std::make_shared<RfqArgs>();
  CLI::App* open = noun->add_subcommand(
      "open",
      "--res RES --nodes N [--min-sites K] --from T --until T --max-price P [--close T] "
      "[--manual]");
  open->add_option("--res", a->res, "resources per node, e.g. cpu_mcores=500")->required();
  open->add_option("--nodes", a->nodes, "number of nodes")->required();
  open->add_option("--min-sites", a->min_sites, "in at least this many sites (default 1)");
  open->add_option("--from", a->from, "interval start")->required();
  open->add_option("--until", a->until, "interval end")->required();
  open->add_option("--max-price", a->max_price, "the most you pay in all (escrowed)")->required();
  open->add_option("--close", a->close, "quotes accepted until then (default --from)");
  open->add_flag("--manual", a->manual, "you accept a quote yourself (no award at the close)");
  ctx.Bind(open, [&ctx, a] { return Open(ctx, *a); });
  AddReads(noun, ctx, a);
  AddWrites(noun, ctx, a);
}

}  // namespace bourse::clients
