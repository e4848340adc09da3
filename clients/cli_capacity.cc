// `bourse grant|rcap|holdings`: capacity tickets (DESIGN §8). The CLI builds
// and signs rcaps with ledger/rcap.h (IssueRoot, Delegate), the same canonical
// JSON the broker and node guards verify. Routes: broker/capacity_routes.cc.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"
#include "core/json_codec.h"
#include "ledger/rcap.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

struct CapArgs {
  std::string node, res, from, until, to, id;
};

core::Result<core::PublicKey> BrokerKey(CliContext& ctx) {
  BOURSE_ASSIGN_OR_RETURN(json k, ctx.Call("GET", "/v1/ledger/key"));
  return core::PublicKey::FromText(Text(k["key"]));
}

// --from/--until: both given, or (when `fallback`) both taken from it.
core::Result<core::Interval> ParseInterval(const CapArgs& a,
                                           std::optional<core::Interval> fallback) {
  int64_t now = NowSeconds();
  if (a.from.empty() != a.until.empty() || (a.from.empty() && !fallback)) {
    return core::InvalidArgument("--from and --until: give both");
  }
  if (a.from.empty()) return *fallback;
  BOURSE_ASSIGN_OR_RETURN(int64_t from, ParseTime(a.from, now, "--from"));
  BOURSE_ASSIGN_OR_RETURN(int64_t until, ParseTime(a.until, now, "--until"));
  if (until <= from) return core::InvalidArgument("--until: must be after --from");
  return core::Interval{.not_before = from, .not_after = until};
}

void PrintRcaps(const json& list) {
  Table t({"ID", "NODE", "RES", "FROM", "UNTIL", "HOLDER"});
  int64_t now = NowSeconds();
  for (const json& r : list) {
    t.Row({Text(r["id"]), Text(r["node"]), FormatResourcesJson(r["res"]),
           FormatTime(r.value("not_before", int64_t{0}), now),
           FormatTime(r.value("not_after", int64_t{0}), now), Text(r["holder"])});
  }
  t.Print();
}

core::Status Grant(CliContext& ctx, const CapArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector res, ParseResources(a.res, "--res"));
  BOURSE_ASSIGN_OR_RETURN(core::Interval iv, ParseInterval(a, std::nullopt));
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey pi, ctx.Key());
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey holder,
                          a.to.empty() ? BrokerKey(ctx) : ParseKeyArg(a.to, "--to"));
  BOURSE_ASSIGN_OR_RETURN(
      ledger::Rcap root,
      ledger::IssueRoot(
          pi, {.id = a.id, .holder = holder, .node = a.node, .res = res, .interval = iv}));
  return ctx.Do("POST", "/v1/grants", {{"rcap", root.ToJson()}}, [](const json& j) {
    std::printf("granted %s on %s to %s\n", Text(j["rcap"]["id"]).c_str(),
                Text(j["rcap"]["node"]).c_str(),
                j.value("pooled", false) ? "the broker's pool" : Text(j["rcap"]["holder"]).c_str());
  });
}

// The child as the caller signs it (its own rcap) or as a spec the broker
// signs (an rcap the broker holds; admin only).
core::Result<json> SplitChild(CliContext& ctx, const ledger::Rcap& parent, const CapArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey to, ParseKeyArg(a.to, "--to"));
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector res, ParseResources(a.res, "--res"));
  BOURSE_ASSIGN_OR_RETURN(core::Interval iv, ParseInterval(a, parent.interval));
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey me, ctx.Key());
  if (parent.holder != me.public_key()) {
    json spec = {{"holder", to.ToText()},
                 {"res", core::ResourceVectorToJson(res)},
                 {"not_before", iv.not_before},
                 {"not_after", iv.not_after}};
    if (!a.id.empty()) spec["id"] = a.id;
    return spec;
  }
  BOURSE_ASSIGN_OR_RETURN(
      ledger::Rcap child,
      ledger::Delegate(parent, me, {.id = a.id, .holder = to, .res = res, .interval = iv}));
  return child.ToJson();
}

core::Status Split(CliContext& ctx, const std::string& id, const CapArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(json got, ctx.Call("GET", "/v1/rcaps/" + EscapeSegment(id)));
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap parent, ledger::Rcap::FromJson(got["rcap"]));
  BOURSE_ASSIGN_OR_RETURN(json child, SplitChild(ctx, parent, a));
  return ctx.Do("POST", "/v1/rcaps/" + EscapeSegment(id) + "/split",
                {{"children", json::array({child})}},
                [](const json& j) { PrintRcaps(j["rcaps"]); });
}

void ShowRcap(const json& j) {
  PrintObject(j["rcap"]);
  std::printf("\nchain (root first):\n");
  PrintRcaps(j["chain"]);
  std::string kids;
  for (const json& c : j["children"]) kids += (kids.empty() ? "" : " ") + Text(c);
  std::printf("\nchildren: %s\n", kids.empty() ? "(none)" : kids.c_str());
}

void AddRcap(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("rcap", "Resource tickets: show one, split one");
  noun->require_subcommand(1);
  noun->footer(
      "example: bourse rcap split rc_x --to alice.pem --res cpu_mcores=500 --from now "
      "--until +2h");
  auto id = std::make_shared<std::string>();
  auto a = std::make_shared<CapArgs>();
  CLI::App* show = noun->add_subcommand("show", "ID: an rcap, its chain and its children");
  show->add_option("ID", *id, "rcap id")->required();
  ctx.Bind(show, [&ctx, id] {
    return ctx.Do("GET", "/v1/rcaps/" + EscapeSegment(*id), nullptr, ShowRcap);
  });
  CLI::App* split = noun->add_subcommand(
      "split", "ID --to KEY --res RES [--from T --until T]: delegate a piece (you sign it)");
  split->add_option("ID", *id, "the rcap to split (yours, or the broker's pool as admin)")
      ->required();
  split->add_option("--to", a->to, "the child's holder (ed25519:.. or a PEM file)")->required();
  split->add_option("--res", a->res, "the child's resources")->required();
  split->add_option("--from", a->from, "start (default: the parent's)");
  split->add_option("--until", a->until, "end (default: the parent's)");
  split->add_option("--id", a->id, "the child's id (default: a fresh rc_...)");
  ctx.Bind(split, [&ctx, id, a] { return Split(ctx, *id, *a); });
}

}  // namespace

void AddCapacityCommands(CLI::App& app, CliContext& ctx) {
  auto a = std::make_shared<CapArgs>();
  CLI::App* grant = app.add_subcommand(
      "grant", "NODE --res RES --from T --until T [--to KEY] [--id ID]: a site PI grants capacity");
  grant->footer(
      "example: bourse grant n1 --res cpu_mcores=2000,mem_mib=4096 --from now --until +28d");
  grant->add_option("NODE", a->node, "the node")->required();
  grant->add_option("--res", a->res, "resources, e.g. cpu_mcores=2000,mem_mib=4096")->required();
  grant->add_option("--from", a->from, "start: unix s, RFC 3339, now, +90m")->required();
  grant->add_option("--until", a->until, "end")->required();
  grant->add_option("--to", a->to, "holder (default: the broker's pool)");
  grant->add_option("--id", a->id, "rcap id (default: a fresh rc_...)");
  ctx.Bind(grant, [&ctx, a] { return Grant(ctx, *a); });
  AddRcap(app, ctx);
  auto key = std::make_shared<std::string>();
  CLI::App* holdings =
      app.add_subcommand("holdings", "[KEY]: unexpired rcaps held (yours by default)");
  holdings->footer("example: bourse holdings ed25519:...");
  holdings->add_option("KEY", *key, "whose (ed25519:.. or a PEM file)");
  ctx.Bind(holdings, [&ctx, key]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(std::string who, ctx.KeyOrSelf(*key));
    return ctx.Do("GET", "/v1/holdings/" + EscapeSegment(who), nullptr,
                  [](const json& j) { PrintRcaps(j["rcaps"]); });
  });
}

}  // namespace bourse::clients
