#include "clients/agent/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

extern char** environ;

namespace bourse::agent {
namespace {

using Clock = std::chrono::steady_clock;

// Closes the fds it holds on every path out.
struct Fds {
  int in = -1, out = -1, child_in = -1, child_out = -1;
  ~Fds() {
    for (int fd : {in, out, child_in, child_out}) {
      if (fd >= 0) close(fd);
    }
  }
  static void Close(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Spawns argv in its own process group on fds' child ends. Returns the pid, or an errno value.
int Spawn(const std::vector<std::string>& argv, const Fds& fds, pid_t* pid) {
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds.child_in, 0);
  posix_spawn_file_actions_adddup2(&fa, fds.child_out, 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_init(&attr);
  sigset_t none, dflt;
  sigemptyset(&none);
  sigemptyset(&dflt);
  sigaddset(&dflt, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &dflt);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  bool search = argv[0].find('/') == std::string::npos;
  int rc = search ? posix_spawnp(pid, cargv[0], &fa, &attr, cargv.data(), environ)
                  : posix_spawn(pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  return rc;
}

void KillAndReap(pid_t pid, int* status) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
  }
}

// Feeds `input` and reads stdout until EOF, the deadline or the size limit.
SubprocessEnd Exchange(Fds& fds, std::string_view input, const SubprocessLimits& limits,
                       Clock::time_point deadline, std::string* out) {
  size_t written = 0;
  if (input.empty()) Fds::Close(fds.in);
  char buf[65536];
  while (fds.out >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return SubprocessEnd::kTimedOut;
    pollfd p[2] = {{fds.out, POLLIN, 0}, {fds.in, POLLOUT, 0}};
    int n = poll(p, fds.in >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) return SubprocessEnd::kTimedOut;
    if (n <= 0) continue;
    if (fds.in >= 0 && p[1].revents != 0) {
      ssize_t w = send(fds.in, input.data() + written, input.size() - written, MSG_NOSIGNAL);
      if (w > 0) written += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        Fds::Close(fds.in);  // all sent, or the child stopped reading: it sees EOF
      }
    }
    if (p[0].revents == 0) continue;
    ssize_t r = read(fds.out, buf, sizeof buf);
    if (r > 0) {
      out->append(buf, static_cast<size_t>(r));
      if (out->size() > limits.max_stdout) {
        out->resize(limits.max_stdout);
        return SubprocessEnd::kOutputTooLarge;
      }
    } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
      Fds::Close(fds.out);
    }
  }
  return SubprocessEnd::kExited;
}

// Waits for the child to exit until the deadline. True when it did (status set).
bool WaitUntil(pid_t pid, Clock::time_point deadline, int* status) {
  auto nap = std::chrono::milliseconds(1);
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more; nothing to reap
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, std::chrono::milliseconds(20));
  }
}

}  // namespace

std::string SubprocessResult::Describe(const SubprocessLimits& limits) const {
  switch (end) {
    case SubprocessEnd::kExited:
      return "exited " + std::to_string(code);
    case SubprocessEnd::kSignalled:
      return "killed by signal " + std::to_string(code) + " (" + strsignal(code) + ")";
    case SubprocessEnd::kTimedOut:
      return "timed out after " + std::to_string(limits.timeout_ms) + " ms";
    case SubprocessEnd::kOutputTooLarge:
      return "printed more than " + std::to_string(limits.max_stdout) + " bytes";
  }
  return "ended";
}

core::Result<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                             std::string_view input,
                                             const SubprocessLimits& limits) {
  if (argv.empty() || argv[0].empty()) return core::InvalidArgument("command: empty");
  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(limits.timeout_ms);
  Fds fds;
  int sv[2], pp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return core::Internal("cannot run " + argv[0] + ": " + Errno("socketpair"));
  }
  fds.in = sv[0];
  fds.child_in = sv[1];
  if (pipe2(pp, O_CLOEXEC) != 0) {
    return core::Internal("cannot run " + argv[0] + ": " + Errno("pipe"));
  }
  fds.out = pp[0];
  fds.child_out = pp[1];
  fcntl(fds.in, F_SETFL, O_NONBLOCK);
  fcntl(fds.out, F_SETFL, O_NONBLOCK);
  pid_t pid = -1;
  if (int rc = Spawn(argv, fds, &pid); rc != 0) {
    return core::Internal("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  Fds::Close(fds.child_in);
  Fds::Close(fds.child_out);
  SubprocessResult res;
  res.end = Exchange(fds, input, limits, deadline, &res.out);
  int status = 0;
  if (res.end != SubprocessEnd::kExited || !WaitUntil(pid, deadline, &status)) {
    if (res.end == SubprocessEnd::kExited) res.end = SubprocessEnd::kTimedOut;
    KillAndReap(pid, &status);
    return res;
  }
  if (WIFSIGNALED(status)) {
    res.end = SubprocessEnd::kSignalled;
    res.code = WTERMSIG(status);
  } else {
    res.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  return res;
}

}  // namespace bourse::agent
