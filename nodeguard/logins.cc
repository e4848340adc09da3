#include "nodeguard/logins.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "core/json_codec.h"
#include "core/ssh_key.h"
#include "nodeguard/config.h"
#include "nodeguard/guard.h"
#include "nodeguard/internal/exec.h"

namespace bourse::nodeguard {

using core::Result;
using core::Status;
using nlohmann::json;

namespace {

// useradd refuses longer names, even with --badname.
constexpr size_t kMaxUserName = 32;

// A slice name that can be a user name: [A-Za-z0-9_.-], 1..32, not
// starting with '-' (an option to the tools) nor '.'.
bool ValidUserName(const std::string& n) {
  if (n.empty() || n.size() > kMaxUserName || n[0] == '-' || n[0] == '.') return false;
  for (char c : n) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

std::string GroupName(uint32_t uid) { return "bsl" + std::to_string(uid); }

// Writes `text` to `path` through a temporary file and rename(2), so readers
// see the old or the new content, never a part.
Status WriteAtomically(const std::string& path, const std::string& text, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return core::Internal(tmp + ": " + strerror(errno));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t w = write(fd, text.data() + off, text.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      Status e = core::Internal(tmp + ": " + strerror(errno));
      close(fd);
      return e;
    }
    off += static_cast<size_t>(w);
  }
  fchmod(fd, mode);
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) return core::Internal(path + ": " + strerror(errno));
  return Status::Ok();
}

std::optional<uint32_t> PasswdUid(const std::string& name) {
  struct passwd* p = getpwnam(name.c_str());
  if (p == nullptr) return std::nullopt;
  return static_cast<uint32_t>(p->pw_uid);
}

json KeysJson(const std::vector<OwnerKey>& keys) {
  json a = json::array();
  for (const OwnerKey& k : keys) a.push_back({{"owner", k.owner}, {"key", k.key}});
  return a;
}

}  // namespace

Result<std::unique_ptr<Logins>> Logins::Create(const LoginOptions& o) {
  if (mkdir(o.ssh_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return core::Internal(o.ssh_dir + ": " + strerror(errno));
  }
  if (mkdir(o.table_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return core::Internal(o.table_dir + ": " + strerror(errno));
  }
  std::unique_ptr<Logins> l(new Logins(o));
  auto text = internal::ReadFileText(o.ssh_dir + "/keys.json");
  if (text.ok()) {
    json j = json::parse(*text, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("users") && j["users"].is_object()) {
      l->users_ = j["users"];
      l->written_ = *text;
    }
  }
  return l;
}

Status Logins::WriteKeysFile() {
  std::string text = json{{"users", users_}}.dump() + "\n";
  if (text == written_) return Status::Ok();
  BOURSE_RETURN_IF_ERROR(WriteAtomically(o_.ssh_dir + "/keys.json", text, 0600));
  written_ = std::move(text);
  return Status::Ok();
}

std::map<std::string, uint32_t> Logins::Accounts() const {
  std::map<std::string, uint32_t> out;
  for (const auto& [name, u] : users_.items()) out[name] = u.value("uid", 0u);
  return out;
}

std::map<std::string, std::vector<OwnerKey>> Logins::StoredKeys() const {
  std::map<std::string, std::vector<OwnerKey>> out;
  for (const auto& [name, u] : users_.items()) {
    for (const json& k : u.value("keys", json::array())) {
      out[name].push_back({k.value("owner", ""), k.value("key", "")});
    }
  }
  return out;
}

Status Logins::RemoveAccount(const std::string& name, uint32_t uid) {
  unlink((o_.table_dir + "/" + std::to_string(uid)).c_str());
  Status first = Status::Ok();
  // Only the account the guard made: same name, same uid.
  if (PasswdUid(name) == uid) {
    auto r = internal::RunCommand({"userdel", name});
    if (!r.ok()) first = r.status();
  }
  struct group* g = getgrnam(GroupName(uid).c_str());
  if (g != nullptr && g->gr_gid == uid) {
    auto r = internal::RunCommand({"groupdel", GroupName(uid)});
    if (!r.ok() && first.ok()) first = r.status();
  }
  return first;
}

Status Logins::AddAccount(const SliverLogin& s) {
  if (!ValidUserName(s.name)) {
    return core::InvalidArgument("\"" + s.name +
                                 "\" cannot be a user name (1..32 chars of [A-Za-z0-9_.-], not "
                                 "starting with - or .)");
  }
  if (struct passwd* p = getpwnam(s.name.c_str())) {
    // Made by the guard before its keys file was lost: same uid, our shell.
    if (p->pw_uid == s.uid && o_.login_shell == p->pw_shell) return Status::Ok();
    return core::AlreadyExists("a user " + s.name + " exists that the guard did not make");
  }
  if (getpwuid(s.uid) != nullptr) {
    return core::AlreadyExists("uid " + std::to_string(s.uid) + " belongs to user " +
                               getpwuid(s.uid)->pw_name);
  }
  struct group* g = getgrgid(s.uid);
  if (g == nullptr) {
    BOURSE_RETURN_IF_ERROR(
        internal::RunCommand({"groupadd", "-g", std::to_string(s.uid), GroupName(s.uid)}).status());
  } else if (GroupName(s.uid) != g->gr_name) {
    return core::AlreadyExists("gid " + std::to_string(s.uid) + " belongs to group " + g->gr_name);
  }
  return internal::RunCommand({"useradd", "--badname", "-u", std::to_string(s.uid), "-g",
                               std::to_string(s.uid), "-M", "-N", "-d", s.home, "-s",
                               o_.login_shell, "-p", "*", s.name})
      .status();
}

Status Logins::Apply(const std::vector<SliverLogin>& want) {
  std::map<std::string, const SliverLogin*> by_name;
  for (const SliverLogin& s : want) by_name[s.name] = &s;
  // 1. Slivers gone (or with another uid): keys first, so no new login
  //    starts, then the table entry and the account.
  std::vector<std::pair<std::string, uint32_t>> gone;
  for (const auto& [name, uid] : Accounts()) {
    auto it = by_name.find(name);
    if (it == by_name.end() || it->second->uid != uid) gone.emplace_back(name, uid);
  }
  for (const auto& [name, uid] : gone) users_.erase(name);
  // Keys of the accounts that stay may have changed too.
  for (auto& [name, u] : users_.items()) u["keys"] = KeysJson(by_name[name]->keys);
  Status first = WriteKeysFile();
  if (!first.ok()) return first;
  for (const auto& [name, uid] : gone) {
    Status r = RemoveAccount(name, uid);
    if (!r.ok())
      fprintf(stderr, "nodeguard: removing the account of %s: %s\n", name.c_str(),
              r.ToString().c_str());
  }
  // 2. Slivers wanted: an account, then the table entry.
  std::map<std::string, std::string> failures;
  for (const SliverLogin& s : want) {
    if (!users_.contains(s.name)) {
      Status a = AddAccount(s);
      if (!a.ok()) {
        failures[s.name] = a.message();
        if (!failures_.count(s.name)) {
          fprintf(stderr, "nodeguard: no ssh account for sliver %s: %s\n", s.name.c_str(),
                  a.ToString().c_str());
        }
        continue;
      }
      users_[s.name] = {{"uid", s.uid}, {"keys", KeysJson(s.keys)}};
    }
    LoginEntry e{s.name, s.uid, s.home, s.netns, s.procs};
    std::string path = o_.table_dir + "/" + std::to_string(s.uid);
    auto old = internal::ReadFileText(path);
    if (!old.ok() || *old != FormatLoginEntry(e)) {
      Status w = WriteAtomically(path, FormatLoginEntry(e), 0644);
      if (!w.ok()) failures[s.name] = w.message();
    }
  }
  failures_ = std::move(failures);
  return WriteKeysFile();
}

Status Logins::RemoveAll() {
  auto accounts = Accounts();
  users_ = json::object();
  Status first = WriteKeysFile();
  for (const auto& [name, uid] : accounts) {
    Status r = RemoveAccount(name, uid);
    if (first.ok()) first = r;
  }
  return first;
}

Result<std::map<std::string, std::vector<OwnerKey>>> ParseNodeSshKeys(
    const json& doc, const std::string& node, std::vector<std::string>* dropped) {
  if (!doc.is_object()) return core::InvalidArgument("ssh_keys: not a JSON object");
  BOURSE_ASSIGN_OR_RETURN(const json* n, core::RequireMember(doc, "", "node"));
  if (!n->is_string() || n->get<std::string>() != node) {
    return core::InvalidArgument("ssh_keys: node is not " + node);
  }
  BOURSE_ASSIGN_OR_RETURN(const json* slices, core::RequireMember(doc, "", "slices"));
  if (!slices->is_array()) return core::InvalidArgument("slices: must be an array");
  std::map<std::string, std::vector<OwnerKey>> out;
  for (size_t i = 0; i < slices->size(); ++i) {
    const std::string f = "slices[" + std::to_string(i) + "]";
    const json& s = (*slices)[i];
    if (!s.is_object()) return core::InvalidArgument(f + ": must be an object");
    BOURSE_ASSIGN_OR_RETURN(const json* sj, core::RequireMember(s, f, "slice"));
    BOURSE_ASSIGN_OR_RETURN(std::string slice, core::StringFromJson(*sj, f + ".slice", 64));
    BOURSE_ASSIGN_OR_RETURN(const json* keys, core::RequireMember(s, f, "keys"));
    if (!keys->is_array()) return core::InvalidArgument(f + ".keys: must be an array");
    std::vector<OwnerKey>& list = out[slice];
    for (size_t k = 0; k < keys->size(); ++k) {
      const std::string kf = f + ".keys[" + std::to_string(k) + "]";
      const json& e = (*keys)[k];
      if (!e.is_object() || !e.contains("owner") || !e["owner"].is_string() || !e.contains("key") ||
          !e["key"].is_string()) {
        dropped->push_back(kf + ": not {\"owner\",\"key\"}");
        continue;
      }
      auto parsed = core::ParseSshPublicKey(e["key"].get<std::string>());
      if (!parsed.ok()) {
        dropped->push_back(kf + ": " + parsed.status().message());
        continue;
      }
      list.push_back({e["owner"].get<std::string>(), parsed->Line()});
    }
  }
  return out;
}

std::string AuthorizedKeysFor(const json& keys_file, const std::string& user,
                              std::optional<uint32_t> account_uid) {
  if (!keys_file.is_object() || !keys_file.contains("users") || !keys_file["users"].is_object()) {
    return "";
  }
  const json& users = keys_file["users"];
  if (!users.contains(user) || !users[user].is_object()) return "";
  const json& u = users[user];
  if (!u.contains("uid") || !u["uid"].is_number_unsigned() || !account_uid ||
      u["uid"].get<uint32_t>() != *account_uid) {
    return "";
  }
  std::string out;
  for (const json& k : u.value("keys", json::array())) {
    if (!k.is_object() || !k.contains("key") || !k["key"].is_string()) continue;
    // Checked again: the file is the guard's, but a line reaches sshd.
    auto parsed = core::ParseSshPublicKey(k["key"].get<std::string>());
    if (!parsed.ok()) continue;
    out += "restrict,pty " + parsed->Line() + "\n";
  }
  return out;
}

CommandOutput RunAuthorizedKeysCommand(const std::vector<std::string>& args) {
  const char* usage = "usage: bourse-nodeguard authorized-keys --config FILE USER\n";
  std::string config, user;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) return {2, "", std::string("--config needs a value\n") + usage};
      config = args[++i];
    } else if (!args[i].empty() && args[i][0] == '-') {
      return {2, "", "unknown option " + args[i] + "\n" + usage};
    } else if (user.empty()) {
      user = args[i];
    } else {
      return {2, "", std::string("more than one user\n") + usage};
    }
  }
  if (config.empty() || user.empty()) return {2, "", usage};
  if (!ValidUserName(user)) {
    return {2, "", "user \"" + user.substr(0, 64) + "\" is not a sliver account name\n"};
  }
  auto cfg = GuardConfig::Load(config);
  if (!cfg.ok()) return {2, "", cfg.status().ToString() + "\n"};
  auto text = internal::ReadFileText(cfg->state_dir + "/ssh/keys.json");
  if (!text.ok()) {
    if (text.status().code() == core::StatusCode::kNotFound) {
      return {0, "", "no sliver accounts on this node\n"};
    }
    return {2, "", text.status().ToString() + "\n"};
  }
  json keys = json::parse(*text, nullptr, false);
  if (keys.is_discarded()) return {2, "", cfg->state_dir + "/ssh/keys.json: not JSON\n"};
  std::string out = AuthorizedKeysFor(keys, user, PasswdUid(user));
  if (out.empty()) return {0, "", "no keys for " + user + "\n"};
  return {0, out, ""};
}

}  // namespace bourse::nodeguard
