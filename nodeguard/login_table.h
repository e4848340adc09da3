// The login table: one root-owned file per sliver account,
// /run/bourse-login/<uid>, written by the node guard (nodeguard/logins.h) and
// read by the setuid login helper `bourse-login` (nodeguard/main_login.cc),
// the shell of every sliver account. The helper picks the file by its real
// uid, which sshd set and the caller cannot choose, so a sliver can only ever
// land in its own sliver:
//
//   slice=mit_web
//   uid=200001
//   home=/var/lib/bourse/disk/slivers/mit_web
//   netns=/run/netns/node1                       (optional)
//   procs=/sys/fs/cgroup/cpu/bourse/mit_web/cgroup.procs   (one per hierarchy)
//
// Header-only and free of other bourse code, so the helper stays a small
// program that links nothing but the C++ library.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bourse::nodeguard {

// Where the guard writes the table and the helper reads it (fixed at build
// time: a setuid program takes no path from its caller).
inline constexpr const char* kLoginTableDir = "/run/bourse-login";

struct LoginEntry {
  std::string slice;
  uint32_t uid = 0;
  std::string home;                // the sliver's directory (its disk)
  std::string netns;               // a netns file to enter, or ""
  std::vector<std::string> procs;  // cgroup.procs of each of the sliver's cgroups

  friend bool operator==(const LoginEntry&, const LoginEntry&) = default;
};

inline std::string FormatLoginEntry(const LoginEntry& e) {
  std::string s = "slice=" + e.slice + "\nuid=" + std::to_string(e.uid) + "\nhome=" + e.home + "\n";
  if (!e.netns.empty()) s += "netns=" + e.netns + "\n";
  for (const std::string& p : e.procs) s += "procs=" + p + "\n";
  return s;
}

// nullopt, with *error set, when a line is not `key=value` of a known key,
// a value is empty or not an absolute path where one is needed, or slice,
// uid, home or procs is missing.
inline std::optional<LoginEntry> ParseLoginEntry(std::string_view text, std::string* error) {
  LoginEntry e;
  bool have_uid = false;
  auto fail = [&](const std::string& why) -> std::optional<LoginEntry> {
    *error = why;
    return std::nullopt;
  };
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return fail("line without '='");
    std::string key(line.substr(0, eq)), value(line.substr(eq + 1));
    if (value.empty()) return fail(key + ": empty");
    bool path = key == "home" || key == "netns" || key == "procs";
    if (path && value[0] != '/') return fail(key + ": not an absolute path");
    if (key == "slice") {
      e.slice = value;
    } else if (key == "uid") {
      char* end = nullptr;
      unsigned long v = strtoul(value.c_str(), &end, 10);
      if (*end != '\0' || v == 0 || v > 0xfffffffeUL) return fail("uid: not a uid > 0");
      e.uid = static_cast<uint32_t>(v);
      have_uid = true;
    } else if (key == "home") {
      e.home = value;
    } else if (key == "netns") {
      e.netns = value;
    } else if (key == "procs") {
      e.procs.push_back(value);
    } else {
      return fail("unknown key " + key);
    }
  }
  if (e.slice.empty() || !have_uid || e.home.empty() || e.procs.empty()) {
    return fail("slice, uid, home and procs are required");
  }
  return e;
}

}  // namespace bourse::nodeguard
