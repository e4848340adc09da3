#include "nodeguard/internal/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace bourse::nodeguard::internal {

core::Result<std::string> RunCommand(const std::vector<std::string>& argv,
                                     const std::string& stdin_data) {
  if (argv.empty()) return core::InvalidArgument("RunCommand: empty argv");
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return core::Internal("pipe: " + std::string(strerror(errno)));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return core::Internal("pipe: " + std::string(strerror(errno)));
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    return core::Internal("pipe: " + std::string(strerror(errno)));
  }
  pid_t pid = fork();
  if (pid < 0) return core::Internal("fork: " + std::string(strerror(errno)));
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  std::string so, se;
  size_t written = 0;
  int infd = in[1];
  if (stdin_data.empty()) {
    close(infd);
    infd = -1;
  } else {
    fcntl(infd, F_SETFL, O_NONBLOCK);
  }
  int outfd = out[0], errfd = err[0];
  char buf[65536];
  while (outfd >= 0 || errfd >= 0) {
    pollfd fds[3];
    int n = 0;
    if (outfd >= 0) fds[n++] = {outfd, POLLIN, 0};
    if (errfd >= 0) fds[n++] = {errfd, POLLIN, 0};
    if (infd >= 0) fds[n++] = {infd, POLLOUT, 0};
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      int fd = fds[i].fd;
      if (fd == infd) {
        ssize_t w = write(infd, stdin_data.data() + written, stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = stdin_data.size();
        if (written >= stdin_data.size()) {
          close(infd);
          infd = -1;
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        (fd == outfd ? so : se).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fd);
        if (fd == outfd) outfd = -1;
        if (fd == errfd) errfd = -1;
      }
    }
  }
  if (infd >= 0) close(infd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (se.size() > 2000) se.resize(2000);
    return core::Internal(argv[0] + " exited " + std::to_string(code) + ": " + se);
  }
  return so;
}

core::Result<std::string> ReadFileText(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return core::NotFound(path + ": no such file");
    return core::Internal(path + ": " + strerror(errno));
  }
  std::string s;
  char buf[8192];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      return core::Internal(path + ": " + strerror(e));
    }
    if (r == 0) break;
    s.append(buf, static_cast<size_t>(r));
  }
  close(fd);
  return s;
}

core::Status WriteFileText(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return core::Internal(path + ": " + strerror(errno));
  ssize_t w = write(fd, text.data(), text.size());
  int e = errno;
  close(fd);
  if (w != static_cast<ssize_t>(text.size())) {
    return core::Internal("write " + path + " (\"" + text + "\"): " + strerror(e));
  }
  return core::Status::Ok();
}

}  // namespace bourse::nodeguard::internal
