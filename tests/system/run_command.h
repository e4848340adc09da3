// Test helpers shared by the system tests and the testbed test: start a
// command with its output to a log, run one to its end capturing its stdout,
// and read a whole file.
//
//   pid_t pid = SpawnLogged({GuardBinary(), "run", ...}, log);
//   auto [code, out] = RunCommand({BourseBinary(), "ledger", "verify", ...});
//   std::string log = ReadAll(dir / "guard.log");
#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace bourse::systest {

// The whole content of `p` ("" when it cannot be read).
inline std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Starts argv (argv[0] a path, no shell) with stdout and stderr going to
// `log` (appended to; emptied first when `truncate`), in a process group of
// its own when `own_group`. The pid, or -1 when fork failed.
inline pid_t SpawnLogged(const std::vector<std::string>& args, const std::string& log,
                         bool truncate = false, bool own_group = false) {
  pid_t pid = fork();
  if (pid == 0) {
    if (own_group) setpgid(0, 0);
    FILE* f = std::fopen(log.c_str(), truncate ? "w" : "a");
    if (f != nullptr) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Runs argv (argv[0] a path, no shell) to completion; its exit code (-1 when
// killed by a signal or it could not start) and its stdout. Stderr is the
// test's own.
inline std::pair<int, std::string> RunCommand(const std::vector<std::string>& args) {
  int p[2];
  if (pipe(p) != 0) return {-1, ""};
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return {-1, ""};
  }
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

}  // namespace bourse::systest
