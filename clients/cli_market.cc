// `bourse market|buy|sell|cancel|move|reduce`: order-book markets (DESIGN §8;
// routes in broker/market_routes.cc, rules in docs/markets.md). `sell`
// escrows exactly the child the market needs: unit x QTY over the market's
// window, delegated to the broker and signed by the caller (ledger/rcap.h);
// for an rcap the broker holds (its pool) it names the rcap instead (admin).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"
#include "clients/escrow.h"
#include "core/json_codec.h"
#include "ledger/rcap.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

struct MarketArgs {
  std::string market, node, site, unit, from, until, close, price, qty, rcap, order, owner;
  int64_t interval = 0;
  bool ioc = false, all = false;
};

std::string MarketPath(const std::string& m, const std::string& suffix = "") {
  return "/v1/markets/" + EscapeSegment(m) + suffix;
}

void PrintMarkets(const json& j) {
  Table t({"ID", "POOL", "UNIT", "FROM", "UNTIL", "STATE"});
  int64_t now = NowSeconds();
  for (const json& m : j["markets"]) {
    std::string pool =
        m["node"].is_string() ? "node " + Text(m["node"]) : "site " + Text(m["site"]);
    t.Row({Text(m["id"]), pool, FormatResourcesJson(m["unit"]),
           FormatTime(m.value("not_before", int64_t{0}), now),
           FormatTime(m.value("not_after", int64_t{0}), now), Text(m["state"])});
  }
  t.Print();
}

// One side of the book: price, size, orders and a bar of the size.
void BookSide(Table& t, const char* side, const json& levels, int64_t biggest) {
  for (const json& l : levels) {
    int64_t qty = l.value("qty", int64_t{0});
    size_t bar = biggest <= 0 ? 0 : static_cast<size_t>((qty * 30 + biggest - 1) / biggest);
    t.Row({side, FormatMoneyJson(l["price"]), std::to_string(qty), Text(l["orders"]),
           std::string(bar, '#')});
  }
}

void PrintBook(const json& j) {
  int64_t biggest = 0;
  for (const char* s : {"asks", "bids"}) {
    for (const json& l : j[s]) biggest = std::max(biggest, l.value("qty", int64_t{0}));
  }
  Table t({"SIDE", "PRICE", "QTY", "ORDERS", "SIZE"});
  json asks = j["asks"];  // best (lowest) first: print highest first, above the bids
  std::reverse(asks.begin(), asks.end());
  BookSide(t, "ask", asks, biggest);
  BookSide(t, "bid", j["bids"], biggest);
  t.Print();
}

void PrintTrades(const json& j) {
  Table t({"ID", "QTY", "PRICE", "BUY", "SELL", "RCAP"});
  for (const json& x : j["trades"]) {
    t.Row({Text(x["id"]), Text(x["qty"]), FormatMoneyJson(x["price"]), Text(x["buy"]),
           Text(x["sell"]), Text(x["rcap"])});
  }
  t.Print();
}

void PrintCandles(const json& j) {
  Table t({"T", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"});
  int64_t now = NowSeconds();
  for (const json& c : j["candles"]) {
    t.Row({FormatTime(c.value("t", int64_t{0}), now), FormatMoneyJson(c["open"]),
           FormatMoneyJson(c["high"]), FormatMoneyJson(c["low"]), FormatMoneyJson(c["close"]),
           Text(c["volume"])});
  }
  t.Print();
}

void PrintMarket(const json& j) {
  PrintObject(j.contains("market") ? j["market"] : j);
  std::vector<std::pair<std::string, std::string>> rest;
  for (const auto& [k, v] : j.items()) {
    if (k != "market") rest.push_back({k, k.rfind("best", 0) == 0 ? FormatMoneyJson(v) : Text(v)});
  }
  PrintFields(rest);
}

void PrintOp(const json& j) {
  const json& o = j["order"];
  std::printf("order %s: %s %s of %s at %s: %s filled, %s remaining, %s\n", Text(o["id"]).c_str(),
              Text(o["side"]).c_str(), Text(o["qty"]).c_str(), Text(o["market"]).c_str(),
              o["price"].is_null() ? "market" : FormatMoneyJson(o["price"]).c_str(),
              Text(o["filled"]).c_str(), Text(o["remaining"]).c_str(), Text(o["state"]).c_str());
  if (!j["trades"].empty()) PrintTrades(j);
}

// A principal's orders across markets, newest first; CREATED last so its
// varying age never moves the other columns.
void PrintOrders(const json& j) {
  Table t({"ID", "MARKET", "SIDE", "QTY", "PRICE", "FILLED", "REMAINING", "STATE", "CREATED"});
  for (const json& o : j["orders"]) {
    t.Row({Text(o["id"]), Text(o["market"]), Text(o["side"]), Text(o["qty"]),
           o["price"].is_null() ? "market" : FormatMoneyJson(o["price"]), Text(o["filled"]),
           Text(o["remaining"]), StateWithReason(o["state"], o["reason"]), FormatCreatedMs(o)});
  }
  t.Print();
}

// GET /v1/orders for KEY (default: the caller), resting ones unless --all.
core::Status Orders(CliContext& ctx, const MarketArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(std::string who, ctx.KeyOrSelf(a.owner));
  std::string path = "/v1/orders?owner=" + EscapeSegment(who) + (a.all ? "&state=all" : "");
  if (!a.market.empty()) path += "&market=" + EscapeSegment(a.market);
  return ctx.Do("GET", path, nullptr, PrintOrders);
}

core::Status Create(CliContext& ctx, const MarketArgs& a) {
  if (a.node.empty() == a.site.empty()) return core::InvalidArgument("give one of --node, --site");
  int64_t now = NowSeconds();
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector unit, ParseResources(a.unit, "--unit"));
  BOURSE_ASSIGN_OR_RETURN(int64_t from, ParseTime(a.from, now, "--from"));
  BOURSE_ASSIGN_OR_RETURN(int64_t until, ParseTime(a.until, now, "--until"));
  json body = {
      {"unit", core::ResourceVectorToJson(unit)}, {"not_before", from}, {"not_after", until}};
  body[a.node.empty() ? "site" : "node"] = a.node.empty() ? a.site : a.node;
  if (!a.close.empty()) {
    BOURSE_ASSIGN_OR_RETURN(int64_t close, ParseTime(a.close, now, "--close"));
    body["close"] = close;
  }
  return ctx.Do("POST", "/v1/markets", body, [](const json& j) {
    std::printf("market %s created\n", Text(j["market"]["id"]).c_str());
  });
}

core::Status Buy(CliContext& ctx, const MarketArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(int64_t qty, ParseCount(a.qty, "QTY"));
  json body = {{"side", "buy"}, {"qty", qty}, {"tif", a.ioc ? "ioc" : "gtc"}};
  if (a.price.empty()) {
    body["type"] = "market";
  } else {
    BOURSE_ASSIGN_OR_RETURN(core::Money p, ParseAmount(a.price, "--price"));
    body["price"] = p.ToString();
  }
  return ctx.Do("POST", MarketPath(a.market, "/orders"), body, PrintOp);
}

// The escrow child E of the caller's rcap (clients/escrow.h).
core::Result<json> SellEscrowJson(CliContext& ctx, const json& market, const ledger::Rcap& from,
                                  int64_t qty) {
  BOURSE_ASSIGN_OR_RETURN(json k, ctx.Call("GET", "/v1/ledger/key"));
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey broker, core::PublicKey::FromText(Text(k["key"])));
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey me, ctx.Key());
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap e, SellEscrow(market, from, me, broker, qty));
  return e.ToJson();
}

core::Status Sell(CliContext& ctx, const MarketArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(int64_t qty, ParseCount(a.qty, "QTY"));
  BOURSE_ASSIGN_OR_RETURN(core::Money p, ParseAmount(a.price, "--price"));
  BOURSE_ASSIGN_OR_RETURN(json m, ctx.Call("GET", MarketPath(a.market)));
  BOURSE_ASSIGN_OR_RETURN(json got, ctx.Call("GET", "/v1/rcaps/" + EscapeSegment(a.rcap)));
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(got["rcap"], "rcap"));
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey me, ctx.Key());
  json body = {{"side", "sell"}, {"qty", qty}, {"price", p.ToString()}};
  if (r.holder == me.public_key()) {
    const json& market = m.contains("market") ? m["market"] : m;
    BOURSE_ASSIGN_OR_RETURN(body["escrow"], SellEscrowJson(ctx, market, r, qty));
  } else {
    body["rcap"] = a.rcap;  // the broker's pool: the broker escrows it (admin only)
  }
  return ctx.Do("POST", MarketPath(a.market, "/orders"), body, PrintOp);
}

void AddMarketReads(CLI::App* noun, CliContext& ctx, std::shared_ptr<MarketArgs> a) {
  CLI::App* list = noun->add_subcommand("list", "all markets");
  ctx.Bind(list, [&ctx] { return ctx.Do("GET", "/v1/markets", nullptr, PrintMarkets); });
  auto read = [&](const char* verb, const char* what, auto path, auto print) {
    CLI::App* cmd = noun->add_subcommand(verb, what);
    cmd->add_option("M", a->market, "market id")->required();
    if (std::string(verb) == "candles") {
      cmd->add_option("--interval", a->interval, "bucket seconds (default 60)");
    }
    ctx.Bind(cmd, [&ctx, a, path, print] { return ctx.Do("GET", path(*a), nullptr, print); });
  };
  read(
      "show", "M: one market with its best bid and ask",
      [](const MarketArgs& x) { return MarketPath(x.market); }, PrintMarket);
  read(
      "book", "M: price levels, with a bar of their size",
      [](const MarketArgs& x) { return MarketPath(x.market, "/depth"); }, PrintBook);
  read(
      "trades", "M: trades in execution order",
      [](const MarketArgs& x) { return MarketPath(x.market, "/trades"); }, PrintTrades);
  read(
      "candles", "M [--interval S]: OHLC and volume per bucket",
      [](const MarketArgs& x) {
        return MarketPath(x.market, "/candles") +
               (x.interval > 0 ? "?interval=" + std::to_string(x.interval) : "");
      },
      PrintCandles);
}

void AddMarketNoun(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("market", "Order-book markets: create, list, book, trades");
  noun->require_subcommand(1);
  noun->footer(
      "example: bourse market create --node n1 --unit cpu_mcores=100 --from +1h --until +1d");
  auto a = std::make_shared<MarketArgs>();
  CLI::App* create = noun->add_subcommand(
      "create", "(--node N | --site S) --unit RES --from T --until T [--close T]");
  create->add_option("--node", a->node, "a node market");
  create->add_option("--site", a->site, "a site market (any node of the site)");
  create->add_option("--unit", a->unit, "one unit, e.g. cpu_mcores=100,mem_mib=256")->required();
  create->add_option("--from", a->from, "window start")->required();
  create->add_option("--until", a->until, "window end")->required();
  create->add_option("--close", a->close, "trading ends (default --from)");
  ctx.Bind(create, [&ctx, a] { return Create(ctx, *a); });
  AddMarketReads(noun, ctx, a);
}

void AddTrading(CLI::App& app, CliContext& ctx) {
  auto a = std::make_shared<MarketArgs>();
  CLI::App* buy = app.add_subcommand("buy", "M QTY [--price P] [--ioc]: buy units");
  buy->footer("example: bourse buy m_1 4 --price 1.5");
  buy->add_option("M", a->market, "market id")->required();
  buy->add_option("QTY", a->qty, "units")->required();
  buy->add_option("--price", a->price, "limit price per unit (none: a market order)");
  buy->add_flag("--ioc", a->ioc, "immediate or cancel: never rest");
  ctx.Bind(buy, [&ctx, a] { return Buy(ctx, *a); });
  CLI::App* sell = app.add_subcommand("sell", "M QTY --price P --rcap ID: sell from an rcap");
  sell->footer("example: bourse sell m_1 4 --price 2 --rcap rc_x");
  sell->add_option("M", a->market, "market id")->required();
  sell->add_option("QTY", a->qty, "units")->required();
  sell->add_option("--price", a->price, "price per unit")->required();
  sell->add_option("--rcap", a->rcap, "the rcap to sell from (yours, or the pool's as admin)")
      ->required();
  ctx.Bind(sell, [&ctx, a] { return Sell(ctx, *a); });
  auto o = std::make_shared<MarketArgs>();
  CLI::App* orders =
      app.add_subcommand("orders", "[KEY] [--market M] [--all]: orders (yours by default)");
  orders->footer("example: bourse orders --market mk_x --all");
  orders->add_option("KEY", o->owner, "whose (ed25519:.. or a PEM file)");
  orders->add_option("--market", o->market, "only this market's");
  orders->add_flag("--all", o->all, "every state, not only the resting ones");
  ctx.Bind(orders, [&ctx, o] { return Orders(ctx, *o); });
  CLI::App* cancel = app.add_subcommand("cancel", "M ORDER: cancel a resting order");
  cancel->add_option("M", a->market, "market id")->required();
  cancel->add_option("ORDER", a->order, "order id")->required();
  ctx.Bind(cancel, [&ctx, a] {
    return ctx.Do("DELETE", MarketPath(a->market, "/orders/" + EscapeSegment(a->order)), nullptr,
                  PrintOp);
  });
  CLI::App* move = app.add_subcommand("move", "M ORDER PRICE: re-price a resting order");
  move->add_option("M", a->market, "market id")->required();
  move->add_option("ORDER", a->order, "order id")->required();
  move->add_option("PRICE", a->price, "the new price")->required();
  ctx.Bind(move, [&ctx, a]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(core::Money p, ParseAmount(a->price, "PRICE"));
    return ctx.Do("POST", MarketPath(a->market, "/orders/" + EscapeSegment(a->order) + "/move"),
                  {{"price", p.ToString()}}, PrintOp);
  });
  CLI::App* reduce = app.add_subcommand("reduce", "M ORDER QTY: take units off a resting order");
  reduce->add_option("M", a->market, "market id")->required();
  reduce->add_option("ORDER", a->order, "order id")->required();
  reduce->add_option("QTY", a->qty, "units to take off")->required();
  ctx.Bind(reduce, [&ctx, a]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(int64_t qty, ParseCount(a->qty, "QTY"));
    return ctx.Do("POST", MarketPath(a->market, "/orders/" + EscapeSegment(a->order) + "/reduce"),
                  {{"qty", qty}}, PrintOp);
  });
}

}  // namespace

core::Result<json> SignEscrow(CliContext& ctx, const ledger::Rcap& from,
                              const core::ResourceVector& res, const core::Interval& window) {
  BOURSE_ASSIGN_OR_RETURN(json k, ctx.Call("GET", "/v1/ledger/key"));
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey broker, core::PublicKey::FromText(Text(k["key"])));
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey me, ctx.Key());
  BOURSE_ASSIGN_OR_RETURN(
      ledger::Rcap e,
      ledger::Delegate(from, me, {.id = "", .holder = broker, .res = res, .interval = window}));
  return e.ToJson();
}

void AddMarketCommands(CLI::App& app, CliContext& ctx) {
  AddMarketNoun(app, ctx);
  AddTrading(app, ctx);
}

}  // namespace bourse::clients
