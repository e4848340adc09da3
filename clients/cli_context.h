// The `bourse` CLI's shared state and plumbing (DESIGN §8): the global flags,
// URL/key resolution (flags > BOURSE_URL/BOURSE_KEY > profile), a lazily made
// signing Client, output in the chosen mode, and the mapping of failures to
// `error: <code>: <message>` and exit codes.
//
//   void AddSiteCommands(CLI::App& app, CliContext& ctx) {
//     auto* list = noun->add_subcommand("list", "List sites");
//     ctx.Bind(list, [&ctx]() -> core::Status {
//       BOURSE_ASSIGN_OR_RETURN(nlohmann::json j, ctx.Call("GET", "/v1/sites"));
//       ctx.Emit(j, [&] { PrintSites(j); });
//       return core::Status::Ok();
//     });
//   }
//
// Exit codes: 0 done; 1 refused by the broker (4xx) or a check failed;
// 2 usage (CLI11 parse errors and local invalid_argument); 3 the broker
// unreachable, timed out or 5xx.
//
// Thread safety: single-threaded, like the CLI.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "clients/client.h"
#include "core/keys.h"
#include "core/status.h"

namespace bourse::clients {

struct Profile;

inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnavailable = 3;

// Where a resolved setting came from (for `config show`).
struct Resolved {
  std::string value;
  std::string source;  // "--url", "BOURSE_URL", "profile default", "" when unset
};

class CliContext {
 public:
  // Global flags (bound to the root App by AddGlobalFlags).
  std::string url_flag, key_flag, profile_flag;
  bool json = false;

  void AddGlobalFlags(CLI::App& app);

  // The profile in use: --profile, else BOURSE_PROFILE, else the config
  // file's current profile, else "default".
  std::string ProfileName() const;
  Resolved Url() const;
  Resolved KeyPath() const;

  // The caller's key (errors: failed_precondition when none is configured,
  // or LoadPem's errors naming the file).
  core::Result<core::PrivateKey> Key();
  // A KEY argument's public key text, else (arg empty) the caller's.
  core::Result<std::string> KeyOrSelf(const std::string& arg);
  // The client for the resolved URL, signing with the key when there is one.
  // Errors: failed_precondition when no URL is configured.
  core::Result<Client*> GetClient(bool need_key);

  // One JSON request. Signs unless GET (or when sign is forced). A broker
  // error becomes a Status with the broker's code and message, and the exit
  // code (1 for 4xx, 3 for 5xx/unreachable) is remembered.
  core::Result<nlohmann::json> Call(std::string_view method, const std::string& path,
                                    const nlohmann::json& body = nullptr, bool force_sign = false);
  // The raw exchange for `broker call`; records the exit code of a non-2xx.
  core::Result<HttpReply> Send(std::string_view method, const std::string& path,
                               const std::string& body, bool sign);

  // Records a broker's non-2xx answer got outside Call/Send (the event
  // stream) so Fail reports its code and exit code.
  void NoteBrokerReply(const HttpReply& reply) { RecordReply(reply); }

  // One request, then Emit of the answer with `human` (a table, fields...).
  core::Status Do(std::string_view method, const std::string& path, const nlohmann::json& body,
                  const std::function<void(const nlohmann::json&)>& human);
  // One request, then Emit of the answer with the sentence `done`.
  core::Status Done(std::string_view method, const std::string& path, const nlohmann::json& body,
                    const std::string& done);

  // Prints `doc` as one JSON document in --json mode, else runs `human`.
  void Emit(const nlohmann::json& doc, const std::function<void()>& human) const;

  // Makes `cmd` run `fn` when parsed; its Status decides the exit code.
  void Bind(CLI::App* cmd, std::function<core::Status()> fn);

  // Prints `error: <code>: <message>` and returns the exit code for `st`.
  int Fail(const core::Status& st);
  int exit_code() const { return exit_code_; }
  void SetExit(int code) { exit_code_ = code; }

 private:
  Resolved Resolve(const std::string& flag, const char* flag_name, const char* env_name,
                   std::string Profile::*field) const;
  void RecordReply(const HttpReply& reply);
  std::unique_ptr<Client> client_;
  std::optional<core::PrivateKey> key_;
  std::optional<int> broker_exit_;  // set when the failure came from the broker
  std::string broker_code_;         // the broker's error code name
  int exit_code_ = kExitOk;
};

// The status of a non-2xx broker reply with the broker's error code name kept
// verbatim (for `error: <code>: ...`).
std::string ReplyCode(const HttpReply& reply);

}  // namespace bourse::clients
