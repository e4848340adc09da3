// The `bourse` profile file (DESIGN §8): $XDG_CONFIG_HOME/bourse/config, else
// ~/.config/bourse/config. An INI-like text file written by `bourse config`:
//
//   # bourse profiles
//   current = default
//
//   [default]
//   url = http://127.0.0.1:8080
//   key = /home/me/.config/bourse/admin.pem
//
// Blank lines and lines starting with # are ignored; values are the rest of
// the line after "= " with surrounding spaces trimmed.
#pragma once

#include <map>
#include <string>

#include "core/status.h"

namespace bourse::clients {

struct Profile {
  std::string url;
  std::string key;
};

struct ProfileFile {
  std::string current;  // "" = "default"
  std::map<std::string, Profile> profiles;

  static std::string Path();
  // A missing file is an empty ProfileFile. Errors: invalid_argument naming
  // the line for malformed text; unavailable when it cannot be read.
  static core::Result<ProfileFile> Load();
  core::Status Save() const;  // creates the directory (0700); the file is 0600
};

}  // namespace bourse::clients
