// `bourse broker ...`: talking to a running broker.
//
//   bourse broker call METHOD PATH [JSON | @FILE | -] [-v] [--sign]
//       one request to any endpoint (METHOD in any case; the body inline, from
//       a file or stdin), signed when a key is configured and METHOD is not
//       GET (always with --sign); prints the reply body; -v prints the status
//       line to stderr. Exit 0 on 2xx, 1 on 4xx, 3 on 5xx or unreachable.
//   bourse broker seed-demo [--admin-key FILE] --dir DIR
//       seeds a small demo: site "demo" (PI key DIR/pi.pem), nodes demo-n1 and
//       demo-n2 (DIR/node-*.pem), a root grant per node held by the broker,
//       user alice (DIR/alice.pem) with 1000 credits, and slice demo_hello with
//       a piece of demo-n1 bound to it.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"
#include "clients/client.h"
#include "core/clock.h"
#include "core/keys.h"
#include "ledger/rcap.h"

namespace bourse::clients {
namespace {

core::Result<core::PrivateKey> NewKey(const std::string& path) {
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey k, core::PrivateKey::Generate());
  BOURSE_RETURN_IF_ERROR(k.SavePem(path));
  return k;
}

core::Status SeedDemo(const std::string& url, const core::PrivateKey& admin_key,
                      const std::string& dir) {
  ::mkdir(dir.c_str(), 0700);
  Client admin(url, admin_key);
  BOURSE_ASSIGN_OR_RETURN(nlohmann::json kj, admin.Call("GET", "/v1/ledger/key"));
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey broker,
                          core::PublicKey::FromText(kj["key"].get<std::string>()));
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey pi, NewKey(dir + "/pi.pem"));
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey alice, NewKey(dir + "/alice.pem"));
  BOURSE_RETURN_IF_ERROR(
      admin.Call("POST", "/v1/sites", {{"name", "demo"}, {"pi", pi.public_key().ToText()}})
          .status());
  Client pic(url, pi);
  BOURSE_RETURN_IF_ERROR(pic.Call("POST", "/v1/principals",
                                  {{"key", alice.public_key().ToText()},
                                   {"kind", "user"},
                                   {"name", "alice"},
                                   {"site", "demo"}})
                             .status());
  nlohmann::json cap = {{"cpu_mcores", 2000},
                        {"mem_mib", 4096},
                        {"disk_mib", 20480},
                        {"net_min_kbps", 10000},
                        {"net_max_kbps", 100000}};
  int64_t now = core::SystemClock::Get().NowSeconds();
  core::ResourceVector full{.cpu_mcores = 2000,
                            .mem_mib = 4096,
                            .disk_mib = 20480,
                            .net_min_kbps = 10000,
                            .net_max_kbps = 100000};
  std::optional<ledger::Rcap> root1;
  for (const char* n : {"demo-n1", "demo-n2"}) {
    BOURSE_ASSIGN_OR_RETURN(core::PrivateKey nk, NewKey(dir + "/node-" + n + ".pem"));
    BOURSE_RETURN_IF_ERROR(
        pic.Call("POST", "/v1/sites/demo/nodes",
                 {{"id", n}, {"key", nk.public_key().ToText()}, {"capacity", cap}})
            .status());
    BOURSE_ASSIGN_OR_RETURN(ledger::Rcap root,
                            ledger::IssueRoot(pi, {.id = std::string("grant-") + n,
                                                   .holder = broker,
                                                   .node = n,
                                                   .res = full,
                                                   .interval = {now - 60, now + 28 * 86400}}));
    BOURSE_RETURN_IF_ERROR(pic.Call("POST", "/v1/grants", {{"rcap", root.ToJson()}}).status());
    if (!root1) root1 = root;
  }
  BOURSE_RETURN_IF_ERROR(admin
                             .Call("POST", "/v1/accounts/mint",
                                   {{"to", alice.public_key().ToText()}, {"amount", "1000"}})
                             .status());
  Client al(url, alice);
  BOURSE_RETURN_IF_ERROR(
      al.Call("POST", "/v1/slices", {{"name", "demo_hello"}, {"description", "the demo slice"}})
          .status());
  BOURSE_RETURN_IF_ERROR(al.Call("PUT", "/v1/slices/demo_hello/state",
                                 {{"boot_script", "#!/bin/sh\necho hello from demo_hello\n"}})
                             .status());
  BOURSE_ASSIGN_OR_RETURN(nlohmann::json split,
                          admin.Call("POST", "/v1/rcaps/grant-demo-n1/split",
                                     {{"children",
                                       {{{"id", "demo-piece-1"},
                                         {"holder", alice.public_key().ToText()},
                                         {"res",
                                          {{"cpu_mcores", 500},
                                           {"mem_mib", 512},
                                           {"disk_mib", 1024},
                                           {"net_min_kbps", 1000},
                                           {"net_max_kbps", 10000}}},
                                         {"not_before", now - 60},
                                         {"not_after", now + 7 * 86400}}}}}));
  BOURSE_RETURN_IF_ERROR(al.Call("POST", "/v1/slices/demo_hello/bindings",
                                 {{"chain", {root1->ToJson(), split["rcaps"][0]}}})
                             .status());
  return core::Status::Ok();
}

struct CallArgs {
  std::string method, path, body;
  bool verbose = false;
  bool sign = false;
};

// The body argument: inline JSON, @FILE, or - (stdin).
core::Result<std::string> ReadBody(const std::string& arg) {
  if (arg == "-") return ReadFileOrStdin(arg, "BODY");
  if (!arg.empty() && arg[0] == '@') return ReadFileOrStdin(arg.substr(1), "BODY");
  return arg;
}

core::Status BrokerCall(CliContext& ctx, const CallArgs& a) {
  std::string method = a.method;
  std::transform(method.begin(), method.end(), method.begin(), ::toupper);
  if (a.path.empty() || a.path[0] != '/') {
    return core::InvalidArgument("PATH: \"" + a.path + "\" must start with /");
  }
  BOURSE_ASSIGN_OR_RETURN(std::string body, ReadBody(a.body));
  bool sign = a.sign || (method != "GET" && !ctx.KeyPath().value.empty());
  BOURSE_ASSIGN_OR_RETURN(HttpReply r, ctx.Send(method, a.path, body, sign));
  if (a.verbose) std::fprintf(stderr, "HTTP %d %s %s\n", r.status, method.c_str(), a.path.c_str());
  std::printf("%s\n", r.body.c_str());
  if (!r.ok()) return core::Status(StatusFromReply(r).code(), r.error_message());
  return core::Status::Ok();
}

struct SeedArgs {
  std::string admin_key, dir;
};

core::Status BrokerSeed(CliContext& ctx, const SeedArgs& a) {
  if (!a.admin_key.empty()) ctx.key_flag = a.admin_key;
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey admin, ctx.Key());
  BOURSE_ASSIGN_OR_RETURN(Client * c, ctx.GetClient(true));
  BOURSE_RETURN_IF_ERROR(SeedDemo(c->url(), admin, a.dir));
  nlohmann::json out = {{"site", "demo"},
                        {"nodes", {"demo-n1", "demo-n2"}},
                        {"user", "alice"},
                        {"slice", "demo_hello"},
                        {"dir", a.dir}};
  ctx.Emit(out, [&] {
    std::printf(
        "seeded: site demo, nodes demo-n1 demo-n2, grants held by the broker, user alice "
        "(1000 credits), slice demo_hello bound to demo-piece-1; keys in %s\n",
        a.dir.c_str());
  });
  return core::Status::Ok();
}

}  // namespace

void AddBrokerCommands(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("broker", "Any endpoint, signed; a demo world");
  noun->require_subcommand(1);
  noun->footer("example: bourse broker call post /v1/slices '{\"name\":\"mit_web\"}'");
  auto c = std::make_shared<CallArgs>();
  CLI::App* call = noun->add_subcommand("call", "METHOD PATH [JSON | @FILE | -]: one request");
  call->add_option("METHOD", c->method, "GET, POST, PUT, DELETE (any case)")->required();
  call->add_option("PATH", c->path, "path with query, e.g. /v1/sites")->required();
  call->add_option("BODY", c->body, "JSON inline, @FILE, or - for stdin");
  call->add_flag("-v,--verbose", c->verbose, "print the status line to stderr");
  call->add_flag("--sign", c->sign, "sign even a GET");
  ctx.Bind(call, [&ctx, c] { return BrokerCall(ctx, *c); });
  auto s = std::make_shared<SeedArgs>();
  CLI::App* seed = noun->add_subcommand("seed-demo", "Seed a demo site, nodes, user and slice");
  seed->add_option("--admin-key", s->admin_key, "admin key (else the global key)")
      ->type_name("FILE");
  seed->add_option("--dir", s->dir, "where the new keys go")->required()->type_name("DIR");
  ctx.Bind(seed, [&ctx, s] { return BrokerSeed(ctx, *s); });
}

}  // namespace bourse::clients
