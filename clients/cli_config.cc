// `bourse config set|use|show`: profiles (clients/cli_config.h has the file format).
#include "clients/cli_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"

namespace bourse::clients {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

core::Status ParseLine(const std::string& raw, int lineno, std::string& section, ProfileFile& out) {
  std::string line = Trim(raw);
  if (line.empty() || line[0] == '#') return core::Status::Ok();
  if (line.front() == '[' && line.back() == ']') {
    section = Trim(line.substr(1, line.size() - 2));
    out.profiles[section];
    return core::Status::Ok();
  }
  size_t eq = line.find('=');
  std::string where = ProfileFile::Path() + ":" + std::to_string(lineno);
  if (eq == std::string::npos) return core::InvalidArgument(where + ": expected NAME = VALUE");
  std::string k = Trim(line.substr(0, eq)), v = Trim(line.substr(eq + 1));
  if (section.empty() && k == "current") {
    out.current = v;
  } else if (!section.empty() && (k == "url" || k == "key")) {
    (k == "url" ? out.profiles[section].url : out.profiles[section].key) = v;
  } else {
    return core::InvalidArgument(where + ": unknown setting \"" + k + "\"");
  }
  return core::Status::Ok();
}

std::string Render(const ProfileFile& f) {
  std::ostringstream o;
  o << "# bourse profiles (bourse config set NAME --url URL --key FILE; docs/cli.md)\n";
  if (!f.current.empty()) o << "current = " << f.current << "\n";
  for (const auto& [name, p] : f.profiles) {
    o << "\n[" << name << "]\n";
    if (!p.url.empty()) o << "url = " << p.url << "\n";
    if (!p.key.empty()) o << "key = " << p.key << "\n";
  }
  return o.str();
}

}  // namespace

std::string ProfileFile::Path() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/bourse/config";
  const char* home = std::getenv("HOME");
  return std::string(home == nullptr ? "." : home) + "/.config/bourse/config";
}

core::Result<ProfileFile> ProfileFile::Load() {
  ProfileFile out;
  std::ifstream in(Path());
  if (!in) return out;
  std::string line, section;
  for (int n = 1; std::getline(in, line); ++n) {
    BOURSE_RETURN_IF_ERROR(ParseLine(line, n, section, out));
  }
  return out;
}

core::Status ProfileFile::Save() const {
  std::filesystem::path p(Path());
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  std::string tmp = p.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return core::Unavailable("cannot write " + tmp);
  std::string text = Render(*this);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), p.c_str()) != 0) {
    return core::Unavailable("cannot write " + p.string());
  }
  return core::Status::Ok();
}

namespace {

struct ConfigArgs {
  std::string name, url, key;
};

core::Status ConfigSet(CliContext& ctx, const ConfigArgs& a) {
  BOURSE_ASSIGN_OR_RETURN(ProfileFile f, ProfileFile::Load());
  Profile& p = f.profiles[a.name];
  if (!a.url.empty()) p.url = a.url;
  if (!a.key.empty()) {
    BOURSE_RETURN_IF_ERROR(core::PrivateKey::LoadPem(a.key).status());
    p.key = std::filesystem::absolute(a.key).lexically_normal().string();
  }
  if (f.current.empty() && f.profiles.size() == 1) f.current = a.name;
  BOURSE_RETURN_IF_ERROR(f.Save());
  nlohmann::json out = {
      {"profile", a.name}, {"url", p.url}, {"key", p.key}, {"file", ProfileFile::Path()}};
  ctx.Emit(out, [&] {
    std::printf("profile %s saved in %s\n", a.name.c_str(), ProfileFile::Path().c_str());
  });
  return core::Status::Ok();
}

core::Status ConfigUse(CliContext& ctx, const std::string& name) {
  BOURSE_ASSIGN_OR_RETURN(ProfileFile f, ProfileFile::Load());
  if (!f.profiles.count(name)) {
    return core::NotFound("profile \"" + name + "\" is not in " + ProfileFile::Path());
  }
  f.current = name;
  BOURSE_RETURN_IF_ERROR(f.Save());
  ctx.Emit({{"current", name}}, [&] { std::printf("now using profile %s\n", name.c_str()); });
  return core::Status::Ok();
}

core::Status ConfigShow(CliContext& ctx) {
  BOURSE_RETURN_IF_ERROR(ProfileFile::Load().status());
  Resolved url = ctx.Url(), key = ctx.KeyPath();
  std::string pub;
  if (!key.value.empty()) {
    auto k = ctx.Key();
    pub = k.ok() ? k->public_key().ToText() : "(" + k.status().message() + ")";
  }
  nlohmann::json out = {{"profile", ctx.ProfileName()},
                        {"file", ProfileFile::Path()},
                        {"url", url.value},
                        {"url_from", url.source},
                        {"key", key.value},
                        {"key_from", key.source},
                        {"public_key", pub}};
  ctx.Emit(out, [&] {
    auto from = [](const Resolved& r) {
      return r.value.empty() ? "(unset)" : r.value + "  (" + r.source + ")";
    };
    PrintFields({{"profile", ctx.ProfileName()},
                 {"file", ProfileFile::Path()},
                 {"url", from(url)},
                 {"key", from(key)},
                 {"public key", pub}});
  });
  return core::Status::Ok();
}

}  // namespace

void AddConfigCommands(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("config", "Profiles: which broker and key to use");
  noun->require_subcommand(1);
  noun->footer("example: bourse config set lab --url http://127.0.0.1:8080 --key admin.pem");
  auto a = std::make_shared<ConfigArgs>();
  CLI::App* set = noun->add_subcommand("set", "Create or change a profile");
  set->add_option("NAME", a->name, "profile name")->required();
  set->add_option("--url", a->url, "broker URL")->type_name("URL");
  set->add_option("--key", a->key, "key file (stored as an absolute path)")->type_name("FILE");
  ctx.Bind(set, [&ctx, a] { return ConfigSet(ctx, *a); });
  auto use_name = std::make_shared<std::string>();
  CLI::App* use = noun->add_subcommand("use", "Make a profile the current one");
  use->add_option("NAME", *use_name, "profile name")->required();
  ctx.Bind(use, [&ctx, use_name] { return ConfigUse(ctx, *use_name); });
  CLI::App* show =
      noun->add_subcommand("show", "The profile in use, its URL and key, and where each came from");
  ctx.Bind(show, [&ctx] { return ConfigShow(ctx); });
}

}  // namespace bourse::clients
