// The node guard's configuration file: one `key = value` per line, `#`
// comments and blank lines ignored (docs/nodeguard.md lists every key).
//
//   BOURSE_ASSIGN_OR_RETURN(GuardConfig c, GuardConfig::Load("/etc/bourse/nodeguard.conf"));
//   BOURSE_ASSIGN_OR_RETURN(EnforcerOptions e, c.ToEnforcerOptions());
//
// Thread safety: a value type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "nodeguard/enforcement.h"

namespace bourse::nodeguard {

struct GuardConfig {
  std::string node_id;        // node (required)
  std::string node_key;       // PEM path of the node's Ed25519 key (required with broker_url)
  std::string trust_file;     // trusted site keys, one ed25519:... per line (required)
  std::string broker_url;     // e.g. http://127.0.0.1:8080; empty = offline (spool only)
  std::string broker_key;     // ed25519:<b64url> of the broker's ledger key; empty = no share table
  std::string state_dir;      // SQLite state, run files (required)
  std::string spool_dir;      // default <state_dir>/spool
  std::string status_socket;  // default <state_dir>/status.sock
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string cgroup_prefix = "bourse";
  std::string cgroup_mode = "auto";  // auto | v1 | v2 | dry-run (under <state_dir>/dry)
  std::string interface;             // guarded interface; empty = no link enforcement
  std::string netns;                 // optional: the interface lives in this named netns
  int64_t link_kbps = 1000000;
  int64_t default_min_kbps = 1000;
  int64_t cpu_mcores = 0;  // the node's CPU for the share pool; 0 in the file = online CPUs x 1000
  std::string disk_root;   // default <state_dir>/disk; "none" = no disk enforcement
  int64_t reconcile_period_s = 30;
  int64_t uid_base = 200000;     // sliver uids are uid_base + slot (no passwd entries)
  std::string cpu_cap = "none";  // none (spare CPU lent) | guaranteed (cap = cpu_mcores)
  bool launch = true;            // run boot scripts
  bool launch_set = false;       // `launch` was in the file (a dry run launches only then)
  // ssh into slivers (docs/nodeguard.md "ssh into a sliver"): accounts, the
  // login table and the owners' keys for sshd's AuthorizedKeysCommand.
  bool ssh = false;
  std::string login_shell = "/usr/lib/bourse/bourse-login";  // setuid root helper

  // Errors: invalid_argument "line N: ..." naming the key for unknown keys,
  // bad numbers, missing required keys.
  static core::Result<GuardConfig> Parse(std::string_view text);
  // Errors: not_found when unreadable, else as Parse.
  static core::Result<GuardConfig> Load(const std::string& path);

  // The enforcement backends this configuration asks for. Errors:
  // failed_precondition when cgroup_mode=auto finds no cpu controller.
  core::Result<EnforcerOptions> ToEnforcerOptions() const;
};

}  // namespace bourse::nodeguard
