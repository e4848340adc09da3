// `bourse acquire|round|share`: acquire(rspec), sealed-bid rounds and
// proportional share (DESIGN §8; routes in broker/market_acquire.cc,
// market_rounds.cc, market_shares.cc; rules in docs/markets.md).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"
#include "core/json_codec.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

struct RoundArgs {
  std::string res, from, until, close, max_price, slice, round, limit, bundles, node, rate, budget,
      id;
  int64_t nodes = 0, min_sites = 0;
  bool all = false, fallback_rfq = false;
  std::vector<std::string> offers;
};

struct Window {
  int64_t from = 0, until = 0;
};

core::Result<Window> ParseWindow(const RoundArgs& a) {
  int64_t now = NowSeconds();
  BOURSE_ASSIGN_OR_RETURN(int64_t from, ParseTime(a.from, now, "--from"));
  BOURSE_ASSIGN_OR_RETURN(int64_t until, ParseTime(a.until, now, "--until"));
  return Window{from, until};
}

core::Status Acquire(CliContext& ctx, const RoundArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector res, ParseResources(a.res, "--res"));
  BOURSE_ASSIGN_OR_RETURN(Window w, ParseWindow(a));
  BOURSE_ASSIGN_OR_RETURN(core::Money max, ParseAmount(a.max_price, "--max-price"));
  json rspec = {{"res", core::ResourceVectorToJson(res)},
                {"nodes", a.nodes},
                {"not_before", w.from},
                {"not_after", w.until}};
  if (a.min_sites > 0) rspec["min_sites"] = a.min_sites;
  json body = {{"rspec", rspec}, {"max_price", max.ToString()}};
  if (a.fallback_rfq) body["fallback"] = "rfq";
  BOURSE_ASSIGN_OR_RETURN(json got, ctx.Call("POST", "/v1/acquire", body));
  if (got.value("fallback", false)) {  // the books could not fill it: an RFQ is open instead
    ctx.Emit(got, [&] {
      std::printf("the books could not fill it (%s)\nopened rfq %s instead: bourse rfq show %s\n",
                  Text(got["refused"]).c_str(), Text(got["rfq"]).c_str(),
                  Text(got["rfq"]).c_str());
    });
    return core::Status::Ok();
  }
  json bound = json::array();
  for (const json& chain : got["chains"]) {
    if (a.slice.empty()) break;
    BOURSE_ASSIGN_OR_RETURN(
        json b,
        ctx.Call("POST", "/v1/slices/" + EscapeSegment(a.slice) + "/bindings", {{"chain", chain}}));
    bound.push_back(b);
  }
  if (!a.slice.empty()) got["bindings"] = bound;
  ctx.Emit(got, [&] {
    std::string nodes;
    for (const json& n : got["nodes"]) nodes += " " + Text(n);
    std::printf("acquired %zu chain(s) on%s, paid %s%s\n", got["chains"].size(), nodes.c_str(),
                FormatMoneyJson(got["paid"]).c_str(),
                a.slice.empty() ? "" : ("; bound to " + a.slice).c_str());
    // The broker says when it bought more than asked (whole units, whole windows).
    if (got.contains("note")) std::printf("note: %s\n", Text(got["note"]).c_str());
  });
  return core::Status::Ok();
}

void PrintRounds(const json& j) {
  Table t({"ID", "STATE", "CLOSE", "OFFERS", "BIDS"});
  int64_t now = NowSeconds();
  for (const json& r : j["rounds"]) {
    t.Row({Text(r["id"]), Text(r["state"]), FormatTime(r.value("close", int64_t{0}), now),
           std::to_string(r["offers"].size()), Text(r["bids"])});
  }
  t.Print();
}

core::Status OpenRound(CliContext& ctx, const RoundArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(Window w, ParseWindow(a));
  BOURSE_ASSIGN_OR_RETURN(int64_t close, ParseTime(a.close, NowSeconds(), "--close"));
  json body = {
      {"offers", a.offers}, {"not_before", w.from}, {"not_after", w.until}, {"close", close}};
  return ctx.Do("POST", "/v1/rounds", body, [](const json& j) {
    std::printf("round %s open\n", Text(j.contains("round") ? j["round"]["id"] : j["id"]).c_str());
  });
}

core::Status BidRound(CliContext& ctx, const RoundArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(core::Money limit, ParseAmount(a.limit, "--limit"));
  BOURSE_ASSIGN_OR_RETURN(std::string text, ReadFileOrStdin(a.bundles, "--bundles"));
  json bundles = json::parse(text, nullptr, false);
  if (bundles.is_object() && bundles.contains("bundles")) bundles = bundles["bundles"];
  if (!bundles.is_array()) {
    return core::InvalidArgument("--bundles: " + a.bundles + " is not a JSON array of bundles");
  }
  return ctx.Do("POST", "/v1/rounds/" + EscapeSegment(a.round) + "/bids",
                {{"limit", limit.ToString()}, {"bundles", bundles}}, [](const json& j) {
                  std::printf("bid %s sealed\n", Text(j["bid"]["id"]).c_str());
                });
}

void AddRound(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("round", "Sealed-bid combinatorial rounds");
  noun->require_subcommand(1);
  noun->footer("example: bourse round bid r_1 --limit 10 --bundles bundles.json");
  auto a = std::make_shared<RoundArgs>();
  CLI::App* open = noun->add_subcommand("open", "--offers ID... --from T --until T --close T");
  open->add_option("--offers", a->offers, "broker-held rcap ids, one per node")->required();
  open->add_option("--from", a->from, "window start")->required();
  open->add_option("--until", a->until, "window end")->required();
  open->add_option("--close", a->close, "bids accepted until then")->required();
  ctx.Bind(open, [&ctx, a] { return OpenRound(ctx, *a); });
  CLI::App* list = noun->add_subcommand("list", "rounds, newest first");
  ctx.Bind(list, [&ctx] { return ctx.Do("GET", "/v1/rounds", nullptr, PrintRounds); });
  CLI::App* show = noun->add_subcommand("show", "R: a round (results once cleared)");
  show->add_option("R", a->round, "round id")->required();
  ctx.Bind(show, [&ctx, a] {
    return ctx.Do("GET", "/v1/rounds/" + EscapeSegment(a->round), nullptr,
                  [](const json& j) { PrintObject(j.contains("round") ? j["round"] : j); });
  });
  CLI::App* bid = noun->add_subcommand("bid", "R --limit P --bundles FILE: a sealed bid");
  bid->add_option("R", a->round, "round id")->required();
  bid->add_option("--limit", a->limit, "the most you pay (escrowed)")->required();
  bid->add_option("--bundles", a->bundles, "JSON array of XOR bundles (- = stdin)")->required();
  ctx.Bind(bid, [&ctx, a] { return BidRound(ctx, *a); });
  CLI::App* clear = noun->add_subcommand("clear", "R: clear a round past its close (admin)");
  clear->add_option("R", a->round, "round id")->required();
  ctx.Bind(clear, [&ctx, a] {
    return ctx.Do("POST", "/v1/rounds/" + EscapeSegment(a->round) + "/clear", nullptr,
                  [](const json& j) { PrintObject(j.contains("round") ? j["round"] : j); });
  });
}

core::Status ShareBid(CliContext& ctx, const RoundArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(core::Money rate, ParseAmount(a.rate, "--rate"));
  BOURSE_ASSIGN_OR_RETURN(core::Money budget, ParseAmount(a.budget, "--budget"));
  return ctx.Do("POST", "/v1/nodes/" + EscapeSegment(a.node) + "/share_bids",
                {{"slice", a.slice}, {"rate", rate.ToString()}, {"budget", budget.ToString()}},
                [](const json& j) { PrintObject(j["bid"]); });
}

void PrintShares(const json& j) {
  Table t({"SLICE", "CPU_WEIGHT", "NET_KBPS"});
  for (const json& s : j["shares"]) {
    t.Row({Text(s["slice"]), Text(s["cpu_weight"]), Text(s["net_kbps"])});
  }
  t.Print();
}

void PrintShareBids(const json& j) {
  Table t({"ID", "NODE", "SLICE", "RATE", "REMAINING", "CHARGED", "STATE"});
  for (const json& b : j["bids"]) {
    t.Row({Text(b["id"]), Text(b["node"]), Text(b["slice"]), FormatMoneyJson(b["rate"]),
           FormatMoneyJson(b["remaining"]), FormatMoneyJson(b["charged"]), Text(b["state"])});
  }
  t.Print();
}

// GET /v1/share_bids for the caller, active ones unless --all.
core::Status ShareList(CliContext& ctx, const RoundArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(std::string me, ctx.KeyOrSelf(""));
  std::string path = "/v1/share_bids?holder=" + EscapeSegment(me) + (a.all ? "&state=all" : "");
  if (!a.node.empty()) path += "&node=" + EscapeSegment(a.node);
  return ctx.Do("GET", path, nullptr, PrintShareBids);
}

void AddShare(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("share", "Proportional share: bid a rate on a node");
  noun->require_subcommand(1);
  noun->footer("example: bourse share bid n1 --slice mit_web --rate 0.01 --budget 50");
  auto a = std::make_shared<RoundArgs>();
  CLI::App* bid = noun->add_subcommand("bid", "NODE --slice S --rate R --budget B");
  bid->add_option("NODE", a->node, "node id")->required();
  bid->add_option("--slice", a->slice, "a slice you own")->required();
  bid->add_option("--rate", a->rate, "credits per second")->required();
  bid->add_option("--budget", a->budget, "credits escrowed and spent at the rate")->required();
  ctx.Bind(bid, [&ctx, a] { return ShareBid(ctx, *a); });
  auto l = std::make_shared<RoundArgs>();
  CLI::App* list = noun->add_subcommand("list", "[--node N] [--all]: your share bids");
  list->add_option("--node", l->node, "only bids on this node");
  list->add_flag("--all", l->all, "also exhausted and withdrawn bids");
  ctx.Bind(list, [&ctx, l] { return ShareList(ctx, *l); });
  CLI::App* withdraw = noun->add_subcommand("withdraw", "ID: stop a bid; the rest is released");
  withdraw->add_option("ID", a->id, "share bid id")->required();
  ctx.Bind(withdraw, [&ctx, a] {
    return ctx.Do("DELETE", "/v1/share_bids/" + EscapeSegment(a->id), nullptr,
                  [](const json& j) { PrintObject(j["bid"]); });
  });
  CLI::App* table = noun->add_subcommand("table", "NODE: the node's current share table");
  table->add_option("NODE", a->node, "node id")->required();
  ctx.Bind(table, [&ctx, a] {
    return ctx.Do("GET", "/v1/nodes/" + EscapeSegment(a->node) + "/shares", nullptr, PrintShares);
  });
}

}  // namespace

void AddRoundCommands(CLI::App& app, CliContext& ctx) {
  auto a = std::make_shared<RoundArgs>();
  CLI::App* acquire = app.add_subcommand(
      "acquire",
      "--res RES --nodes N [--min-sites K] --from T --until T --max-price P [--slice S] "
      "[--fallback-rfq]");
  acquire->footer(
      "example: bourse acquire --res cpu_mcores=100 --nodes 2 --from +1h --until +1d "
      "--max-price 20 --slice mit_web");
  acquire->add_option("--res", a->res, "per node")->required();
  acquire->add_option("--nodes", a->nodes, "how many nodes")->required();
  acquire->add_option("--min-sites", a->min_sites, "in at least this many sites");
  acquire->add_option("--from", a->from, "window start")->required();
  acquire->add_option("--until", a->until, "window end")->required();
  acquire->add_option("--max-price", a->max_price, "the most paid in total")->required();
  acquire->add_option("--slice", a->slice, "bind the chains to this slice too");
  acquire->add_flag("--fallback-rfq", a->fallback_rfq,
                    "when the books cannot fill it, open an RFQ for the same rspec instead");
  ctx.Bind(acquire, [&ctx, a] { return Acquire(ctx, *a); });
  AddRound(app, ctx);
  AddShare(app, ctx);
}

}  // namespace bourse::clients
