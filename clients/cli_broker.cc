// `bourse broker ...`: talking to a running broker.
//
//   bourse broker call --url URL [--key FILE] METHOD PATH [JSON]
//       one request (signed when a key is given and METHOD is not GET, or
//       always with --sign); prints the reply body; exit 0 on 2xx, 1 otherwise.
//   bourse broker seed-demo --url URL --admin-key FILE --dir DIR
//       seeds a small demo: site "demo" (PI key DIR/pi.pem), nodes demo-n1 and
//       demo-n2 (DIR/node-*.pem), a root grant per node held by the broker,
//       user alice (DIR/alice.pem) with 1000 credits, and slice demo_hello with
//       a piece of demo-n1 bound to it.
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "clients/cli.h"
#include "clients/client.h"
#include "core/clock.h"
#include "core/keys.h"
#include "ledger/rcap.h"

namespace bourse::clients {
namespace {

void BrokerUsage() {
  std::fputs(
      "usage: bourse broker call --url URL [--key FILE] [--sign] METHOD PATH [JSON]\n"
      "       bourse broker seed-demo --url URL --admin-key FILE --dir DIR\n",
      stderr);
}

int Call(const std::vector<std::string>& args) {
  std::string url, key_path;
  bool force_sign = false;
  std::vector<std::string> pos;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--url" && i + 1 < args.size()) {
      url = args[++i];
    } else if (args[i] == "--key" && i + 1 < args.size()) {
      key_path = args[++i];
    } else if (args[i] == "--sign") {
      force_sign = true;
    } else {
      pos.push_back(args[i]);
    }
  }
  if (url.empty() || pos.size() < 2 || pos.size() > 3) {
    BrokerUsage();
    return 2;
  }
  std::optional<core::PrivateKey> key;
  if (!key_path.empty()) {
    auto k = core::PrivateKey::LoadPem(key_path);
    if (!k.ok()) {
      std::fprintf(stderr, "bourse broker call: %s\n", k.status().ToString().c_str());
      return 2;
    }
    key = *k;
  }
  Client c(url, key);
  bool sign = key && (force_sign || pos[0] != "GET");
  auto r = c.Send(pos[0], pos[1], pos.size() == 3 ? pos[2] : "", sign);
  if (!r.ok()) {
    std::fprintf(stderr, "bourse broker call: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", r->body.c_str());
  return r->ok() ? 0 : 1;
}

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

int Seed(const std::vector<std::string>& args) {
  std::string url, key_path, dir;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--url") {
      url = args[i + 1];
    } else if (args[i] == "--admin-key") {
      key_path = args[i + 1];
    } else if (args[i] == "--dir") {
      dir = args[i + 1];
    } else {
      BrokerUsage();
      return 2;
    }
  }
  if (url.empty() || key_path.empty() || dir.empty() || args.size() % 2 != 0) {
    BrokerUsage();
    return 2;
  }
  auto k = core::PrivateKey::LoadPem(key_path);
  if (!k.ok()) {
    std::fprintf(stderr, "bourse broker seed-demo: %s\n", k.status().ToString().c_str());
    return 2;
  }
  core::Status st = SeedDemo(url, *k, dir);
  if (!st.ok()) {
    std::fprintf(stderr, "bourse broker seed-demo: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf(
      "seeded: site demo, nodes demo-n1 demo-n2, grants held by the broker, user alice "
      "(1000 credits), slice demo_hello bound to demo-piece-1; keys in %s\n",
      dir.c_str());
  return 0;
}

}  // namespace

int RunBrokerCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    BrokerUsage();
    return args.empty() ? 2 : 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "call") return Call(rest);
  if (args[0] == "seed-demo") return Seed(rest);
  std::fprintf(stderr, "bourse broker: unknown command \"%s\"\n", args[0].c_str());
  BrokerUsage();
  return 2;
}

}  // namespace bourse::clients
