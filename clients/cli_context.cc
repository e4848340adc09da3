#include "clients/cli_context.h"

#include <cstdio>
#include <cstdlib>

#include "clients/cli_args.h"
#include "clients/cli_config.h"

namespace bourse::clients {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// The exit code of a status that did not come from the broker.
int LocalExit(const core::Status& st) {
  switch (st.code()) {
    case core::StatusCode::kInvalidArgument:
      return kExitUsage;
    case core::StatusCode::kUnavailable:
      return kExitUnavailable;
    default:
      return kExitRefused;
  }
}

}  // namespace

std::string ReplyCode(const HttpReply& reply) {
  std::string code = reply.error_code();
  if (!code.empty()) return code;
  return std::string(core::StatusCodeName(StatusFromReply(reply).code()));
}

void CliContext::AddGlobalFlags(CLI::App& app) {
  app.add_option("--url", url_flag, "broker URL (else BOURSE_URL, else the profile)")
      ->type_name("URL");
  app.add_option("--key", key_flag, "your key file (else BOURSE_KEY, else the profile)")
      ->type_name("FILE");
  app.add_option("--profile", profile_flag, "profile (else BOURSE_PROFILE, else the current)")
      ->type_name("NAME");
  app.add_flag("--json", json, "print one JSON document (and nothing else) on stdout");
}

std::string CliContext::ProfileName() const {
  if (!profile_flag.empty()) return profile_flag;
  std::string env = Env("BOURSE_PROFILE");
  if (!env.empty()) return env;
  auto file = ProfileFile::Load();
  if (file.ok() && !file->current.empty()) return file->current;
  return "default";
}

// flag > environment variable > the profile's setting (`field`).
Resolved CliContext::Resolve(const std::string& flag, const char* flag_name, const char* env_name,
                             std::string Profile::*field) const {
  if (!flag.empty()) return {flag, flag_name};
  std::string env = Env(env_name);
  if (!env.empty()) return {env, env_name};
  std::string name = ProfileName();
  auto file = ProfileFile::Load();
  if (file.ok() && file->profiles.count(name) && !(file->profiles[name].*field).empty()) {
    return {file->profiles[name].*field, "profile " + name};
  }
  return {"", ""};
}

Resolved CliContext::Url() const { return Resolve(url_flag, "--url", "BOURSE_URL", &Profile::url); }

Resolved CliContext::KeyPath() const {
  return Resolve(key_flag, "--key", "BOURSE_KEY", &Profile::key);
}

core::Result<core::PrivateKey> CliContext::Key() {
  if (key_) return *key_;
  Resolved path = KeyPath();
  if (path.value.empty()) {
    return core::InvalidArgument("no key: give --key FILE, set BOURSE_KEY, or `bourse config set " +
                                 ProfileName() + " --key FILE`");
  }
  auto k = core::PrivateKey::LoadPem(path.value);
  if (!k.ok()) {
    return core::Status(k.status().code(), "key " + path.value + ": " + k.status().message());
  }
  key_ = *k;
  return *key_;
}

core::Result<std::string> CliContext::KeyOrSelf(const std::string& arg) {
  if (!arg.empty()) {
    BOURSE_ASSIGN_OR_RETURN(core::PublicKey k, ParseKeyArg(arg, "KEY"));
    return k.ToText();
  }
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey me, Key());
  return me.public_key().ToText();
}

core::Result<Client*> CliContext::GetClient(bool need_key) {
  if (client_ && (!need_key || client_->key())) return client_.get();
  Resolved url = Url();
  if (url.value.empty()) {
    return core::InvalidArgument(
        "no broker URL: give --url URL, set BOURSE_URL, or `bourse config set " + ProfileName() +
        " --url URL`");
  }
  std::optional<core::PrivateKey> key;
  if (need_key || !KeyPath().value.empty()) {
    auto k = Key();
    if (!k.ok() && need_key) return k.status();
    if (k.ok()) key = *k;
  }
  client_ = std::make_unique<Client>(url.value, key);
  return client_.get();
}

void CliContext::RecordReply(const HttpReply& reply) {
  broker_code_ = ReplyCode(reply);
  broker_exit_ = (reply.status >= 500) ? kExitUnavailable : kExitRefused;
}

core::Result<HttpReply> CliContext::Send(std::string_view method, const std::string& path,
                                         const std::string& body, bool sign) {
  BOURSE_ASSIGN_OR_RETURN(Client * c, GetClient(sign));
  auto r = c->Send(method, path, body, sign);
  if (!r.ok()) {
    broker_exit_ = kExitUnavailable;
    broker_code_ = "unavailable";
    return r.status();
  }
  if (!r->ok()) RecordReply(*r);
  return r;
}

core::Result<nlohmann::json> CliContext::Call(std::string_view method, const std::string& path,
                                              const nlohmann::json& body, bool force_sign) {
  std::string text = body.is_null() ? "" : body.dump();
  BOURSE_ASSIGN_OR_RETURN(HttpReply r, Send(method, path, text, force_sign || method != "GET"));
  if (!r.ok()) return core::Status(StatusFromReply(r).code(), r.error_message());
  return std::move(r.json);
}

core::Status CliContext::Do(std::string_view method, const std::string& path,
                            const nlohmann::json& body,
                            const std::function<void(const nlohmann::json&)>& human) {
  BOURSE_ASSIGN_OR_RETURN(nlohmann::json j, Call(method, path, body));
  Emit(j, [&] { human(j); });
  return core::Status::Ok();
}

core::Status CliContext::Done(std::string_view method, const std::string& path,
                              const nlohmann::json& body, const std::string& done) {
  return Do(method, path, body,
            [&done](const nlohmann::json&) { std::printf("%s\n", done.c_str()); });
}

void CliContext::Emit(const nlohmann::json& doc, const std::function<void()>& human) const {
  if (json) {
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    human();
  }
}

void CliContext::Bind(CLI::App* cmd, std::function<core::Status()> fn) {
  cmd->callback([this, fn = std::move(fn)]() {
    core::Status st = fn();
    if (!st.ok()) exit_code_ = Fail(st);
  });
}

int CliContext::Fail(const core::Status& st) {
  std::string code = broker_exit_ ? broker_code_ : std::string(core::StatusCodeName(st.code()));
  std::fprintf(stderr, "error: %s: %s\n", code.c_str(), st.message().c_str());
  return broker_exit_ ? *broker_exit_ : LocalExit(st);
}

}  // namespace bourse::clients
