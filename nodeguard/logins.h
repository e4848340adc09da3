// ssh into a sliver (issue #20, docs/nodeguard.md "ssh into a sliver"): the
// node guard's side of it. For every sliver it enforces the guard keeps
//   * an account: user = the slice name (at most 32 characters, useradd's
//     limit), uid = gid = the sliver's uid, group `bsl<uid>`, home = the
//     sliver's directory, shell = the setuid helper `bourse-login`, no
//     password (`*`: sshd may let keys in, nothing else);
//   * its login table entry, /run/bourse-login/<uid> (login_table.h): the
//     cgroups, netns and directory the helper puts a login into;
//   * the ssh keys of the slice's current owners, in <state_dir>/ssh/keys.json,
//     which `bourse-nodeguard authorized-keys USER` (sshd's
//     AuthorizedKeysCommand) answers from, never from the network.
// Accounts the guard did not create are never touched: a slice named like an
// existing user gets no account (and no login).
//
//   BOURSE_ASSIGN_OR_RETURN(auto logins, Logins::Create({.ssh_dir = state + "/ssh",
//                                                        .login_shell =
//                                                        "/usr/lib/bourse/bourse-login"}));
//   BOURSE_RETURN_IF_ERROR(logins->Apply({{.name = "mit_web", .uid = 200001, .home = dir,
//                                          .procs = {...}, .keys = {{owner, "ssh-ed25519
//                                          AAAA.."}}}}));
//
// Thread safety: a Logins is used by one thread (the guard's pass).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "nodeguard/login_table.h"

namespace bourse::nodeguard {

// One ssh key of one slice owner, as the broker hands it out.
struct OwnerKey {
  std::string owner;  // ed25519:... principal key
  std::string key;    // one OpenSSH public key line (core/ssh_key.h)
  friend bool operator==(const OwnerKey&, const OwnerKey&) = default;
};

// What one sliver's login needs.
struct SliverLogin {
  std::string name;  // slice name = user name
  uint32_t uid = 0;
  std::string home;                // the sliver's directory
  std::string netns;               // netns file to enter, or ""
  std::vector<std::string> procs;  // the sliver's cgroup.procs files
  std::vector<OwnerKey> keys;      // its owners' keys
};

struct LoginOptions {
  std::string ssh_dir;                     // keys.json lives here (made 0700)
  std::string login_shell;                 // the accounts' shell: bourse-login
  std::string table_dir = kLoginTableDir;  // the login table
};

class Logins {
 public:
  // Errors: internal when ssh_dir or table_dir cannot be made.
  static core::Result<std::unique_ptr<Logins>> Create(const LoginOptions& o);

  // Makes accounts, login table and keys match `want`: first the accounts of
  // slivers no longer wanted lose their keys and table entry, then their
  // account; then wanted slivers get theirs. A sliver whose account cannot be
  // made (name taken, too long, useradd failed) is in Failures() and gets no
  // login; the others go on. Errors: internal when keys.json cannot be written.
  core::Status Apply(const std::vector<SliverLogin>& want);
  // Removes every account the guard made (teardown).
  core::Status RemoveAll();

  // The keys kept in keys.json per slice (the last ones the broker sent), for
  // a guard that starts with the broker down.
  std::map<std::string, std::vector<OwnerKey>> StoredKeys() const;
  // slice -> why it has no account.
  const std::map<std::string, std::string>& Failures() const { return failures_; }
  // The accounts the guard manages: slice -> uid.
  std::map<std::string, uint32_t> Accounts() const;

 private:
  explicit Logins(LoginOptions o) : o_(std::move(o)) {}
  core::Status WriteKeysFile();
  core::Status RemoveAccount(const std::string& name, uint32_t uid);
  core::Status AddAccount(const SliverLogin& s);

  LoginOptions o_;
  nlohmann::json users_ = nlohmann::json::object();  // keys.json's "users"
  std::string written_;                              // keys.json as last written or read
  std::map<std::string, std::string> failures_;
};

// The broker's GET /v1/nodes/{node}/ssh_keys answer as slice -> keys. Keys
// that core::ParseSshPublicKey refuses are left out, each with a line in
// *dropped. Errors: invalid_argument when the document is not
// {"node":<node>,"slices":[{"slice","keys":[{"owner","key"}]}]}.
core::Result<std::map<std::string, std::vector<OwnerKey>>> ParseNodeSshKeys(
    const nlohmann::json& doc, const std::string& node, std::vector<std::string>* dropped);

// sshd's AuthorizedKeysCommand answer for `user` from keys.json's content:
// one `restrict,pty <key>` line per key of the sliver's owners (restrict: no
// port, agent or X11 forwarding and no ~/.ssh/rc, which would run outside the
// sliver), or "" when `user` is no sliver account the guard made, or its
// passwd uid (`account_uid`, nullopt: no such user) is not the sliver's.
std::string AuthorizedKeysFor(const nlohmann::json& keys_file, const std::string& user,
                              std::optional<uint32_t> account_uid);

struct CommandOutput;
// `bourse-nodeguard authorized-keys --config FILE USER`: exit 0 with the keys
// (none for an unknown user), 2 for a usage error, a bad user name or an
// unreadable configuration or keys file (the reason on stderr).
CommandOutput RunAuthorizedKeysCommand(const std::vector<std::string>& args);

}  // namespace bourse::nodeguard
