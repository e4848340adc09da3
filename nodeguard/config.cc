#include "nodeguard/config.h"

#include <unistd.h>

#include "core/key_value.h"
#include "core/keys.h"
#include "nodeguard/internal/exec.h"

namespace bourse::nodeguard {
namespace {

// One `key = value` line into `c`. Errors: invalid_argument naming the line and key.
core::Status ApplyLine(GuardConfig& c, const core::KeyValueLine& l) {
  const std::string& key = l.key;
  const std::string& value = l.value;
  if (key == "node_id") {
    c.node_id = value;
  } else if (key == "node_key") {
    c.node_key = value;
  } else if (key == "trust_file") {
    c.trust_file = value;
  } else if (key == "broker_url") {
    c.broker_url = value;
  } else if (key == "broker_key") {
    if (!core::PublicKey::FromText(value).ok()) {
      return l.Error("\"" + value + "\" is not ed25519:<base64url of 32 bytes>");
    }
    c.broker_key = value;
  } else if (key == "cpu_mcores") {
    BOURSE_ASSIGN_OR_RETURN(c.cpu_mcores, l.Int(0));
  } else if (key == "state_dir") {
    c.state_dir = value;
  } else if (key == "spool_dir") {
    c.spool_dir = value;
  } else if (key == "status_socket") {
    c.status_socket = value;
  } else if (key == "cgroup_root") {
    c.cgroup_root = value;
  } else if (key == "cgroup_prefix") {
    c.cgroup_prefix = value;
  } else if (key == "cgroup_mode") {
    BOURSE_ASSIGN_OR_RETURN(c.cgroup_mode, l.OneOf({"auto", "v1", "v2", "dry-run"}));
  } else if (key == "interface") {
    c.interface = value;
  } else if (key == "netns") {
    c.netns = value;
  } else if (key == "link_kbps") {
    BOURSE_ASSIGN_OR_RETURN(c.link_kbps, l.Int(8));
  } else if (key == "default_min_kbps") {
    BOURSE_ASSIGN_OR_RETURN(c.default_min_kbps, l.Int(8));
  } else if (key == "disk_root") {
    c.disk_root = value;
  } else if (key == "reconcile_period_s") {
    BOURSE_ASSIGN_OR_RETURN(c.reconcile_period_s, l.Int(1));
  } else if (key == "uid_base") {
    BOURSE_ASSIGN_OR_RETURN(c.uid_base, l.Int(1000));
  } else if (key == "cpu_cap") {
    BOURSE_ASSIGN_OR_RETURN(c.cpu_cap, l.OneOf({"none", "guaranteed"}));
  } else if (key == "launch") {
    BOURSE_ASSIGN_OR_RETURN(c.launch, l.Bool());
    c.launch_set = true;
  } else if (key == "ssh") {
    BOURSE_ASSIGN_OR_RETURN(c.ssh, l.Bool());
  } else if (key == "login_shell") {
    if (value.empty() || value[0] != '/') return l.Error("must be an absolute path");
    c.login_shell = value;
  } else {
    return l.UnknownKey();
  }
  return core::Status::Ok();
}

}  // namespace

core::Result<GuardConfig> GuardConfig::Parse(std::string_view text) {
  GuardConfig c;
  BOURSE_ASSIGN_OR_RETURN(std::vector<core::KeyValueLine> lines, core::ParseKeyValueLines(text));
  for (const core::KeyValueLine& l : lines) BOURSE_RETURN_IF_ERROR(ApplyLine(c, l));
  if (c.node_id.empty()) return core::InvalidArgument("config: node_id is required");
  if (c.trust_file.empty()) return core::InvalidArgument("config: trust_file is required");
  if (c.state_dir.empty()) return core::InvalidArgument("config: state_dir is required");
  if (!c.broker_url.empty() && c.node_key.empty()) {
    return core::InvalidArgument("config: node_key is required when broker_url is set");
  }
  if (c.uid_base + 0x10000 > 0x7fffffff) {
    return core::InvalidArgument("config: uid_base: leaves no room for 65536 sliver uids");
  }
  if (c.spool_dir.empty()) c.spool_dir = c.state_dir + "/spool";
  if (c.status_socket.empty()) c.status_socket = c.state_dir + "/status.sock";
  if (c.disk_root.empty()) c.disk_root = c.state_dir + "/disk";
  if (c.cpu_mcores == 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    c.cpu_mcores = (cpus > 0 ? cpus : 1) * int64_t{1000};
  }
  if (c.default_min_kbps > c.link_kbps) {
    return core::InvalidArgument("config: default_min_kbps exceeds link_kbps");
  }
  return c;
}

core::Result<GuardConfig> GuardConfig::Load(const std::string& path) {
  auto t = internal::ReadFileText(path);
  if (!t.ok()) return core::NotFound("config " + path + ": " + t.status().message());
  auto c = Parse(*t);
  if (!c.ok()) return c.status().WithContext(path);
  return c;
}

core::Result<EnforcerOptions> GuardConfig::ToEnforcerOptions() const {
  EnforcerOptions o;
  if (cgroup_mode == "dry-run") {
    o = DryRunOptions(state_dir + "/dry");
    o.link.iface = interface;
    o.link.link_kbps = link_kbps;
    o.link.default_min_kbps = default_min_kbps;
    o.run_dir = state_dir + "/run";
    // Boot scripts run for real even here (as the slivers' uids: root), but
    // only when asked: a dry run is for trying things out.
    o.launch = launch && launch_set;
    return o;
  }
  if (cgroup_mode == "auto") {
    BOURSE_ASSIGN_OR_RETURN(o.cgroup, CgroupOptions::Detect(cgroup_root, cgroup_prefix));
  } else if (cgroup_mode == "v1") {
    o.cgroup.mode = CgroupMode::kV1;
    o.cgroup.cpu_root = cgroup_root + "/cpu";
    o.cgroup.cpuacct_root = cgroup_root + "/cpuacct";
    o.cgroup.memory_root = cgroup_root + "/memory";
    o.cgroup.prefix = cgroup_prefix;
  } else {
    o.cgroup.mode = CgroupMode::kV2;
    o.cgroup.cpu_root = o.cgroup.cpuacct_root = o.cgroup.memory_root = cgroup_root;
    o.cgroup.prefix = cgroup_prefix;
  }
  o.link.iface = interface;
  o.link.netns = netns;
  o.link.link_kbps = link_kbps;
  o.link.default_min_kbps = default_min_kbps;
  o.disk_root = disk_root == "none" ? "" : disk_root;
  o.run_dir = state_dir + "/run";
  o.launch = launch;
  o.netns = netns;
  return o;
}

}  // namespace bourse::nodeguard
