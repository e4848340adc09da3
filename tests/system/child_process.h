// Test helper: ends a child process the test started (fork/exec) and reaps
// it. Shared by BrokerProcess (broker_process.h) and the agent's tests.
//
//   pid_t pid = fork(); ...
//   KillChild(pid);                  // SIGKILL, wait; pid becomes -1
//   int code = TerminateChild(pid);  // SIGTERM, wait; exit code or -1
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

namespace bourse::systest {

// SIGKILL and wait; a no-op when `pid` <= 0. Leaves `pid` at -1.
inline void KillChild(pid_t& pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  pid = -1;
}

// SIGTERM and wait; returns the exit status (-1 if it ended by a signal or
// `pid` <= 0). Leaves `pid` at -1.
inline int TerminateChild(pid_t& pid) {
  if (pid <= 0) return -1;
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  pid = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace bourse::systest
