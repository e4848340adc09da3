// `bourse site|node|principal ...`: the PLC registry (DESIGN §8; routes in
// broker/plc_routes.cc, docs/broker.md).
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"
#include "core/clock.h"
#include "core/json_codec.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

void PrintSites(const json& j) {
  Table t({"NAME", "PI", "SLICES", "LIMIT", "CREATED"});
  for (const json& s : j["sites"]) {
    t.Row({Text(s["name"]), Text(s["pi"]), Text(s["slices"]), Text(s["slice_limit"]),
           FormatCreatedMs(s)});
  }
  t.Print();
}

void PrintNodes(const json& j) {
  Table t({"ID", "SITE", "CAPACITY", "KEY"});
  for (const json& n : j["nodes"]) {
    t.Row({Text(n["id"]), Text(n["site"]), FormatResourcesJson(n["capacity"]), Text(n["key"])});
  }
  t.Print();
}

void PrintPrincipals(const json& j) {
  Table t({"NAME", "KIND", "SITE", "KEY"});
  for (const json& p : j["principals"]) {
    t.Row({Text(p["name"]), Text(p["kind"]), Text(p["site"]), Text(p["key"])});
  }
  t.Print();
}

struct PlcArgs {
  std::string name, key, kind, site, id, res;
  std::map<std::string, std::optional<int64_t>> limits;  // site sliver-limits flags
};

// `site sliver-limits NAME [--max-share N ...]`: shows the limits, or sets
// the ones given (the others kept).
core::Status SliverLimits(CliContext& ctx, const PlcArgs& a) {
  std::string path = "/v1/sites/" + EscapeSegment(a.name) + "/sliver_limits";
  BOURSE_ASSIGN_OR_RETURN(nlohmann::json cur, ctx.Call("GET", path));
  cur.erase("site");
  bool changed = false;
  for (const auto& [k, v] : a.limits) {
    if (v) {
      cur[k] = *v;
      changed = true;
    }
  }
  if (!changed) {
    ctx.Emit(cur, [&] { PrintObject(cur); });
    return core::Status::Ok();
  }
  return ctx.Done("PUT", path, cur, "site " + a.name + ": sliver limits set");
}

void AddSite(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("site", "Sites: add (admin), list, show, rekey");
  noun->require_subcommand(1);
  noun->footer("example: bourse site add mit --pi pi.pem; bourse site rekey mit --pi pi-2027.pem");
  auto a = std::make_shared<PlcArgs>();
  CLI::App* add = noun->add_subcommand("add", "NAME --pi KEY: register a site and its PI key");
  add->add_option("NAME", a->name, "site name ([a-z0-9.]{1,32})")->required();
  add->add_option("--pi", a->key, "the PI's key (ed25519:.. or a PEM file)")->required();
  ctx.Bind(add, [&ctx, a]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey pi, ParseKeyArg(a->key, "--pi"));
    return ctx.Done("POST", "/v1/sites", {{"name", a->name}, {"pi", pi.ToText()}},
                    "site " + a->name + " added");
  });
  CLI::App* list = noun->add_subcommand("list", "all sites");
  ctx.Bind(list, [&ctx] { return ctx.Do("GET", "/v1/sites", nullptr, PrintSites); });
  CLI::App* show = noun->add_subcommand("show", "NAME: one site");
  show->add_option("NAME", a->name, "site name")->required();
  ctx.Bind(show, [&ctx, a] {
    return ctx.Do("GET", "/v1/sites/" + EscapeSegment(a->name), nullptr, PrintObject);
  });
  CLI::App* lim = noun->add_subcommand(
      "sliver-limits",
      "NAME [--max-share N] [--max-disk-mib N] [--max-mem-mib N] [--max-site-share N]: "
      "what its slices may ask with set_resources (PI: tighten only; admin: raise)");
  lim->add_option("NAME", a->name, "site name")->required();
  for (const char* k : {"max_share", "max_disk_mib", "max_mem_mib", "max_site_share"}) {
    std::string flag = std::string("--") + k;
    for (char& c : flag) c = c == '_' ? '-' : c;
    lim->add_option(flag, a->limits[k], k);
  }
  ctx.Bind(lim, [&ctx, a] { return SliverLimits(ctx, *a); });
  CLI::App* rekey = noun->add_subcommand(
      "rekey", "NAME --pi KEY: rotate the site's PI key (the current PI or an admin)");
  rekey->add_option("NAME", a->name, "site name")->required();
  rekey->add_option("--pi", a->key, "the PI's new key (ed25519:.. or a PEM file)")->required();
  ctx.Bind(rekey, [&ctx, a]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey pi, ParseKeyArg(a->key, "--pi"));
    return ctx.Done("POST", "/v1/sites/" + EscapeSegment(a->name) + "/pi", {{"pi", pi.ToText()}},
                    "site " + a->name + ": PI key is now " + pi.ToText() +
                        " (add it to every node's trust file; keep the old key there until "
                        "the last root it signed ends)");
  });
}

void AddNode(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("node", "Nodes: add and rekey (the site's PI), list, show");
  noun->require_subcommand(1);
  noun->footer(
      "example: bourse node add mit n1 --key n1.pem --res cpu_mcores=4000,mem_mib=8192; "
      "bourse node rekey n1 --key n1-new.pem");
  auto a = std::make_shared<PlcArgs>();
  CLI::App* add = noun->add_subcommand("add", "SITE ID --key KEY --res RES: register a node");
  add->add_option("SITE", a->site, "its site")->required();
  add->add_option("ID", a->id, "node id")->required();
  add->add_option("--key", a->key, "the node guard's key (ed25519:.. or a PEM file)")->required();
  add->add_option("--res", a->res, "its capacity, e.g. cpu_mcores=4000,mem_mib=8192")->required();
  ctx.Bind(add, [&ctx, a]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey k, ParseKeyArg(a->key, "--key"));
    BOURSE_ASSIGN_OR_RETURN(core::ResourceVector res, ParseResources(a->res, "--res"));
    json body = {{"id", a->id}, {"key", k.ToText()}, {"capacity", core::ResourceVectorToJson(res)}};
    return ctx.Done("POST", "/v1/sites/" + EscapeSegment(a->site) + "/nodes", body,
                    "node " + a->id + " added to site " + a->site);
  });
  CLI::App* list = noun->add_subcommand("list", "[--site S]: nodes, of one site or all");
  list->add_option("--site", a->site, "only this site's nodes");
  ctx.Bind(list, [&ctx, a] {
    return ctx.Do("GET", "/v1/nodes" + (a->site.empty() ? "" : "?site=" + EscapeSegment(a->site)),
                  nullptr, PrintNodes);
  });
  CLI::App* show = noun->add_subcommand("show", "ID: one node");
  show->add_option("ID", a->id, "node id")->required();
  ctx.Bind(show, [&ctx, a] {
    return ctx.Do("GET", "/v1/nodes/" + EscapeSegment(a->id), nullptr, PrintObject);
  });
  CLI::App* rekey = noun->add_subcommand(
      "rekey", "ID --key KEY: rotate the node's key (its site's PI or an admin)");
  rekey->add_option("ID", a->id, "node id")->required();
  rekey->add_option("--key", a->key, "the node guard's new key (ed25519:.. or a PEM file)")
      ->required();
  ctx.Bind(rekey, [&ctx, a]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey k, ParseKeyArg(a->key, "--key"));
    return ctx.Done("POST", "/v1/nodes/" + EscapeSegment(a->id) + "/key", {{"key", k.ToText()}},
                    "node " + a->id + ": key is now " + k.ToText() +
                        " (set node_key in its guard's config and restart the guard)");
  });
}

void AddPrincipal(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("principal", "Principals: add, list, show");
  noun->require_subcommand(1);
  noun->footer("example: bourse principal add alice.pem --kind user --name alice --site mit");
  auto a = std::make_shared<PlcArgs>();
  CLI::App* add = noun->add_subcommand("add", "KEY --kind K --name N [--site S]: register one");
  add->add_option("KEY", a->key, "its key (ed25519:.. or a PEM file)")->required();
  add->add_option("--kind", a->kind, "admin, agent or user")->required();
  add->add_option("--name", a->name, "display name")->required();
  add->add_option("--site", a->site, "its site (users of a site)");
  ctx.Bind(add, [&ctx, a]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey k, ParseKeyArg(a->key, "KEY"));
    json body = {{"key", k.ToText()}, {"kind", a->kind}, {"name", a->name}};
    if (!a->site.empty()) body["site"] = a->site;
    return ctx.Done("POST", "/v1/principals", body, a->kind + " " + a->name + " added");
  });
  CLI::App* list = noun->add_subcommand("list", "all principals");
  ctx.Bind(list, [&ctx] { return ctx.Do("GET", "/v1/principals", nullptr, PrintPrincipals); });
  CLI::App* show = noun->add_subcommand("show", "KEY: one principal");
  show->add_option("KEY", a->key, "its key (ed25519:.. or a PEM file)")->required();
  ctx.Bind(show, [&ctx, a]() -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey k, ParseKeyArg(a->key, "KEY"));
    return ctx.Do("GET", "/v1/principals/" + EscapeSegment(k.ToText()), nullptr, PrintObject);
  });
}

}  // namespace

void AddPlcCommands(CLI::App& app, CliContext& ctx) {
  AddSite(app, ctx);
  AddNode(app, ctx);
  AddPrincipal(app, ctx);
}

}  // namespace bourse::clients
