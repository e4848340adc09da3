// Running external tools (tc, nft, mkfs.ext4, mount) without a shell.
//
//   BOURSE_ASSIGN_OR_RETURN(std::string out, RunCommand({"tc", "class", "show", "dev", "eth0"}));
//
// Thread safety: reentrant; each call forks its own child.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace bourse::nodeguard::internal {

// Runs argv[0] (PATH searched) with `stdin_data` on its standard input and
// returns its standard output. Errors: internal "<argv0> exited N: <stderr>"
// when it fails or cannot be started.
core::Result<std::string> RunCommand(const std::vector<std::string>& argv,
                                     const std::string& stdin_data = "");

// Reads a whole small file. Errors: not_found / internal with the path.
core::Result<std::string> ReadFileText(const std::string& path);
// Writes (truncating, creating) a file. Errors: internal with the path and errno text.
core::Status WriteFileText(const std::string& path, const std::string& text);

}  // namespace bourse::nodeguard::internal
