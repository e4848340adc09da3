// Running a helper program with a deadline and a bounded output, without a shell: the pooling
// agent's command policy (clients/agent/) feeds it JSON and reads its answer.
//
//   BOURSE_ASSIGN_OR_RETURN(SubprocessResult r,
//                           RunSubprocess({"/usr/lib/bourse/price.py", "--fast"}, input,
//                                         {.timeout_ms = 2000, .max_stdout = 1 << 20}));
//   if (r.end == SubprocessEnd::kExited && r.code == 0) Use(r.out);
//
// The child runs in its own process group with stdin a socket carrying `input` (so a child that
// does not read it cannot raise SIGPIPE in the caller), stdout a pipe, stderr /dev/null, SIGPIPE
// at its default and an empty signal mask. On a timeout or too much output the whole group is
// killed (SIGKILL); the child is always reaped before RunSubprocess returns.
//
// Thread safety: reentrant; each call spawns its own child.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace bourse::agent {

struct SubprocessLimits {
  int64_t timeout_ms = 2000;    // from spawn to exit, including reading its output
  size_t max_stdout = 1 << 20;  // more than this kills it
};

enum class SubprocessEnd {
  kExited,          // code = exit status
  kSignalled,       // code = the signal that ended it
  kTimedOut,        // killed at the deadline
  kOutputTooLarge,  // killed when stdout passed max_stdout
};

struct SubprocessResult {
  SubprocessEnd end = SubprocessEnd::kExited;
  int code = 0;
  std::string out;  // stdout (what was read before a kill, at most max_stdout bytes)

  // "exited 0", "exited 3", "killed by signal 9", "timed out after 2000 ms",
  // "printed more than 1048576 bytes".
  std::string Describe(const SubprocessLimits& limits) const;
};

// Runs argv[0] (searched in PATH when it has no '/') with argv. Errors: invalid_argument for an
// empty argv; internal "cannot run <argv0>: <reason>" when it cannot be started (no such file,
// not executable) or a pipe cannot be made.
core::Result<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                             std::string_view input,
                                             const SubprocessLimits& limits);

}  // namespace bourse::agent
