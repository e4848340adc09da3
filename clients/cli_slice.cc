// `bourse slice ...`: the PLC slice operations (DESIGN §8; routes in
// broker/plc_routes.cc). `slice bind` fetches the rcap's recorded chain and
// binds it; `slice bindings` shows each binding's state as the node guard
// reported it (scheduled, active, redeemed, refused with the reason, expired);
// `slice slivers` and `slice logs` show the slivers as the guards report
// them, with their events and boot-log tails for those who manage the slice.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

struct SliceArgs {
  std::string name, description, slice_url, site, until, file, rcap, node;
  std::vector<std::string> list;  // owner keys or nodes
  std::optional<int64_t> share, disk_mib, mem_mib;  // set_resources
  std::vector<std::string> ssh_keys;                 // files of the caller's ssh public keys
};

std::string SlicePath(const std::string& name, const std::string& suffix = "") {
  return "/v1/slices/" + EscapeSegment(name) + (suffix.empty() ? "" : "/" + suffix);
}

void PrintSlices(const json& j) {
  Table t({"NAME", "SITE", "NODES", "EXPIRES", "DESCRIPTION"});
  int64_t now = NowSeconds();
  for (const json& s : j["slices"]) {
    t.Row({Text(s["name"]), Text(s["site"]), std::to_string(s["nodes"].size()),
           FormatTime(s.value("expires", int64_t{0}), now), Text(s["description"])});
  }
  t.Print();
}

// "refused (expired)" for a refused binding, else the state.
std::string BindingState(const json& b) {
  const json& report = b.contains("report") ? b["report"] : json();
  bool refused = Text(b["state"]) == "refused" && report.is_object() && report.contains("reason");
  return StateWithReason(b["state"], refused ? report["reason"] : json());
}

void PrintBindings(const json& j) {
  Table t({"LEAF", "NODE", "STATE", "UNTIL"});
  int64_t now = NowSeconds();
  for (const json& b : j["bindings"]) {
    t.Row({Text(b["leaf"]), Text(b["node"]), BindingState(b),
           FormatTime(b.value("not_after", int64_t{0}), now)});
  }
  t.Print();
}

// "boot (2m ago): boot script started", or "" for a sliver without events.
std::string LastEvent(const json& sliver, int64_t now) {
  const json& ev = sliver.contains("events") ? sliver["events"] : json();
  if (!ev.is_array() || ev.empty()) return "";
  const json& e = ev.back();
  int64_t age = now - e.value("ts_ms", int64_t{0}) / 1000;
  std::string s = Text(e["kind"]);
  if (e.value("count", int64_t{1}) > 1) s += " x" + std::to_string(e.value("count", int64_t{1}));
  s += " (" + (age <= 0 ? std::string("now") : FormatDuration(age) + " ago") + "): ";
  std::string m = Text(e["message"]);
  if (m.size() > 60) m = m.substr(0, 57) + "...";
  return s + m;
}

void PrintSlivers(const json& j) {
  Table t({"NODE", "STATE", "ENFORCED", "LAST EVENT"});
  int64_t now = NowSeconds();
  for (const json& s : j["slivers"]) {
    t.Row({Text(s["node"]), Text(s["state"]),
           s["enforced"].is_object() ? FormatResourcesJson(s["enforced"]) : "-",
           LastEvent(s, now)});
  }
  t.Print();
}

// The slice's slivers: signed when the caller has a key (then with events,
// and refused unless the caller manages the slice), else the public view.
core::Status Slivers(CliContext& ctx, const SliceArgs& a) {
  bool sign = !ctx.KeyPath().value.empty();
  BOURSE_ASSIGN_OR_RETURN(json j, ctx.Call("GET", SlicePath(a.name, "slivers"), nullptr, sign));
  ctx.Emit(j, [&] {
    if (j["slivers"].empty()) {
      std::printf("slice %s: no guard reports a sliver\n", a.name.c_str());
      return;
    }
    PrintSlivers(j);
  });
  return core::Status::Ok();
}

void PrintSliverLogs(const std::string& slice, const json& s) {
  int64_t now = NowSeconds();
  std::printf("slice %s on node %s: %s\n", slice.c_str(), Text(s["node"]).c_str(),
              Text(s["state"]).c_str());
  if (s["logs_reported_ms"].is_number()) {
    std::printf("reported %s\n",
                FormatTime(s["logs_reported_ms"].get<int64_t>() / 1000, now).c_str());
  }
  std::printf("\nevents:\n");
  Table t({"TIME", "KIND", "COUNT", "MESSAGE"});
  for (const json& e : s["events"]) {
    t.Row({FormatTime(e.value("ts_ms", int64_t{0}) / 1000, now), Text(e["kind"]),
           std::to_string(e.value("count", int64_t{1})), Text(e["message"])});
  }
  if (s["events"].empty()) {
    std::printf("(none)\n");
  } else {
    t.Print();
  }
  const json& log = s["log"];
  if (!log.is_object()) {
    std::printf("\nboot log: none (no boot script ran, or the sliver is gone)\n");
    return;
  }
  std::string tail = Text(log["tail"]);
  std::printf("\nboot log (last %zu bytes of %s kept on the node):\n%s", tail.size(),
              Text(log["size"]).c_str(), tail.c_str());
  if (!tail.empty() && tail.back() != '\n') std::printf("\n");
}

// One node's sliver of the slice: its events and boot-log tail. Signed; the
// broker refuses (403) callers who do not manage the slice.
core::Status Logs(CliContext& ctx, const SliceArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(json j, ctx.Call("GET", SlicePath(a.name, "slivers"), nullptr, true));
  json one = json::array();
  for (const json& s : j["slivers"]) {
    if (Text(s["node"]) == a.node) one.push_back(s);
  }
  if (one.empty()) {
    return core::NotFound("slice " + a.name + " has no sliver reported on node " + a.node);
  }
  json doc = {{"slice", j["slice"]}, {"slivers", one}};
  ctx.Emit(doc, [&] { PrintSliverLogs(a.name, one[0]); });
  return core::Status::Ok();
}

core::Status Create(CliContext& ctx, const SliceArgs& a) {
  json body = {{"name", a.name}};
  if (!a.description.empty()) body["description"] = a.description;
  if (!a.slice_url.empty()) body["url"] = a.slice_url;
  return ctx.Done("POST", "/v1/slices", body, "slice " + a.name + " created");
}

core::Status Renew(CliContext& ctx, const SliceArgs& a) {
  json body = json::object();
  if (!a.until.empty()) {
    BOURSE_ASSIGN_OR_RETURN(int64_t until, ParseTime(a.until, NowSeconds(), "--until"));
    body["expires"] = until;
  }
  return ctx.Do("POST", SlicePath(a.name, "renew"), body, [&a](const json& j) {
    std::printf("slice %s now expires %s\n", a.name.c_str(),
                FormatTime(j.value("expires", int64_t{0}), NowSeconds()).c_str());
  });
}

// The ssh public keys in `path` (one per line, as in authorized_keys or a
// .pub file; blank lines and # comments skipped).
core::Result<std::vector<std::string>> ReadSshKeys(const std::string& path) {
  BOURSE_ASSIGN_OR_RETURN(std::string text, ReadFileOrStdin(path, "--ssh-key"));
  std::vector<std::string> keys;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    start = nl == std::string::npos ? text.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    keys.push_back(line);
  }
  if (keys.empty()) return core::InvalidArgument("--ssh-key " + path + ": no key in the file");
  return keys;
}

// assign_owners. With --ssh-key the caller's own keys become those given and
// the other owners' keys stay; without it every owner who stays keeps theirs.
core::Status Owners(CliContext& ctx, const SliceArgs& a) {
  json owners = json::array();
  for (const std::string& k : a.list) {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey pk, ParseKeyArg(k, "KEY"));
    owners.push_back(pk.ToText());
  }
  json body = {{"owners", owners}};
  if (!a.ssh_keys.empty()) {
    BOURSE_ASSIGN_OR_RETURN(core::PrivateKey me, ctx.Key());
    const std::string self = me.public_key().ToText();
    BOURSE_ASSIGN_OR_RETURN(json slice, ctx.Call("GET", SlicePath(a.name)));
    json keys = json::array();
    for (const json& k : slice.value("ssh_keys", json::array())) {
      if (!k.is_object() || k.value("owner", "") == self) continue;
      if (std::find(owners.begin(), owners.end(), k["owner"]) != owners.end()) keys.push_back(k);
    }
    for (const std::string& f : a.ssh_keys) {
      BOURSE_ASSIGN_OR_RETURN(std::vector<std::string> mine, ReadSshKeys(f));
      for (std::string& k : mine) keys.push_back({{"owner", self}, {"key", std::move(k)}});
    }
    body["ssh_keys"] = keys;
  }
  return ctx.Done("PUT", SlicePath(a.name, "owners"), body,
                  "slice " + a.name + " has " + std::to_string(owners.size()) + " owner(s)");
}

core::Status BootScript(CliContext& ctx, const SliceArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(std::string script, ReadFileOrStdin(a.file, "FILE"));
  return ctx.Done(
      "PUT", SlicePath(a.name, "state"), {{"boot_script", script}},
      "slice " + a.name + " boot script set (" + std::to_string(script.size()) + " bytes)");
}

core::Status Bind(CliContext& ctx, const SliceArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(json got, ctx.Call("GET", "/v1/rcaps/" + EscapeSegment(a.rcap)));
  return ctx.Done("POST", SlicePath(a.name, "bindings"), {{"chain", got["chain"]}},
                  "rcap " + a.rcap + " bound to slice " + a.name);
}

void AddReads(CLI::App* noun, CliContext& ctx, std::shared_ptr<SliceArgs> a) {
  CLI::App* list = noun->add_subcommand("list", "[--site S]: slices, of one site or all");
  list->add_option("--site", a->site, "only this site's slices");
  ctx.Bind(list, [&ctx, a] {
    return ctx.Do("GET", "/v1/slices" + (a->site.empty() ? "" : "?site=" + EscapeSegment(a->site)),
                  nullptr, PrintSlices);
  });
  CLI::App* show = noun->add_subcommand("show", "NAME: one slice");
  show->add_option("NAME", a->name, "slice name")->required();
  ctx.Bind(show, [&ctx, a] { return ctx.Do("GET", SlicePath(a->name), nullptr, PrintObject); });
  CLI::App* bindings =
      noun->add_subcommand("bindings", "NAME: bound rcaps and their state on the node");
  bindings->add_option("NAME", a->name, "slice name")->required();
  ctx.Bind(bindings, [&ctx, a] {
    return ctx.Do("GET", SlicePath(a->name, "bindings"), nullptr, PrintBindings);
  });
  CLI::App* slivers = noun->add_subcommand(
      "slivers", "NAME: per node the sliver's state, enforced resources and last event");
  slivers->add_option("NAME", a->name, "slice name")->required();
  ctx.Bind(slivers, [&ctx, a] { return Slivers(ctx, *a); });
  CLI::App* logs = noun->add_subcommand(
      "logs", "NAME --node N: the sliver's events and the tail of its boot script's output");
  logs->add_option("NAME", a->name, "slice name")->required();
  logs->add_option("--node", a->node, "node id")->required();
  ctx.Bind(logs, [&ctx, a] { return Logs(ctx, *a); });
}

void AddWrites(CLI::App* noun, CliContext& ctx, std::shared_ptr<SliceArgs> a) {
  CLI::App* create = noun->add_subcommand("create", "NAME [--description D] [--url U]");
  create->add_option("NAME", a->name, "<site>_<name>")->required();
  create->add_option("--description", a->description, "what it is for");
  create->add_option("--url", a->slice_url, "the slice's web page");
  ctx.Bind(create, [&ctx, a] { return Create(ctx, *a); });
  CLI::App* del = noun->add_subcommand("delete", "NAME: end the slice and everything bound");
  del->add_option("NAME", a->name, "slice name")->required();
  ctx.Bind(del, [&ctx, a] {
    return ctx.Done("DELETE", SlicePath(a->name), nullptr, "slice " + a->name + " deleted");
  });
  CLI::App* renew = noun->add_subcommand("renew", "NAME [--until T]: extend the expiry");
  renew->add_option("NAME", a->name, "slice name")->required();
  renew->add_option("--until", a->until, "new expiry (default now + 2 weeks)");
  ctx.Bind(renew, [&ctx, a] { return Renew(ctx, *a); });
  CLI::App* owners = noun->add_subcommand(
      "owners", "NAME KEY... [--ssh-key FILE]...: set the owners (and your ssh keys)");
  owners->add_option("NAME", a->name, "slice name")->required();
  owners->add_option("KEY", a->list, "owner keys (ed25519:.. or PEM files)")->required();
  owners->add_option("--ssh-key", a->ssh_keys,
                     "a file of your ssh public keys (e.g. ~/.ssh/id_ed25519.pub); replaces your "
                     "keys, other owners keep theirs");
  ctx.Bind(owners, [&ctx, a] { return Owners(ctx, *a); });
  CLI::App* boot = noun->add_subcommand("boot-script", "NAME FILE: set the boot script");
  boot->add_option("NAME", a->name, "slice name")->required();
  boot->add_option("FILE", a->file, "the script (- for stdin)")->required();
  ctx.Bind(boot, [&ctx, a] { return BootScript(ctx, *a); });
  CLI::App* bind = noun->add_subcommand("bind", "NAME RCAP_ID: bind an rcap's chain");
  bind->add_option("NAME", a->name, "slice name")->required();
  bind->add_option("RCAP_ID", a->rcap, "an rcap you hold")->required();
  ctx.Bind(bind, [&ctx, a] { return Bind(ctx, *a); });
  CLI::App* inst = noun->add_subcommand("instantiate", "NAME NODE...: place slivers");
  inst->add_option("NAME", a->name, "slice name")->required();
  inst->add_option("NODE", a->list, "node ids")->required();
  ctx.Bind(inst, [&ctx, a] {
    return ctx.Done("POST", SlicePath(a->name, "instantiate"), {{"nodes", a->list}},
                    "slice " + a->name + " instantiated");
  });
  CLI::App* rm = noun->add_subcommand("remove-nodes", "NAME NODE...: take slivers off nodes");
  rm->add_option("NAME", a->name, "slice name")->required();
  rm->add_option("NODE", a->list, "node ids the slice is on")->required();
  ctx.Bind(rm, [&ctx, a] {
    return ctx.Done("POST", SlicePath(a->name, "remove_nodes"), {{"nodes", a->list}},
                    "slice " + a->name + " removed from " + std::to_string(a->list.size()) +
                        " node(s); their guards tear the slivers down on their next pass");
  });
  CLI::App* res = noun->add_subcommand(
      "resources", "NAME [--share N] [--disk-mib N] [--mem-mib N]: best-effort settings");
  res->add_option("NAME", a->name, "slice name")->required();
  res->add_option("--share", a->share, "weight in the CPU and link no rcap guarantees (1)");
  res->add_option("--disk-mib", a->disk_mib, "each sliver's disk beyond its rcaps (64)");
  res->add_option("--mem-mib", a->mem_mib, "each sliver's memory limit beyond its rcaps (256)");
  ctx.Bind(res, [&ctx, a]() -> core::Status {
    // Unset flags keep the slice's current settings.
    BOURSE_ASSIGN_OR_RETURN(json cur, ctx.Call("GET", SlicePath(a->name)));
    json r = cur.contains("resources") && cur["resources"].is_object() ? cur["resources"]
                                                                       : json::object();
    if (a->share) r["share"] = *a->share;
    if (a->disk_mib) r["disk_mib"] = *a->disk_mib;
    if (a->mem_mib) r["mem_mib"] = *a->mem_mib;
    return ctx.Done("PUT", SlicePath(a->name, "resources"), {{"resources", r}},
                    "slice " + a->name + ": share " + Text(r.value("share", json(1))) + ", disk " +
                        Text(r.value("disk_mib", json(64))) + " MiB, memory " +
                        Text(r.value("mem_mib", json(256))) + " MiB");
  });
}

}  // namespace

void AddSliceCommands(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("slice", "Slices: the PLC operations");
  noun->require_subcommand(1);
  noun->footer("example: bourse slice create mit_web --description 'web cache'");
  auto a = std::make_shared<SliceArgs>();
  AddWrites(noun, ctx, a);
  AddReads(noun, ctx, a);
}

}  // namespace bourse::clients
