// Test helper: a datagram socket standing in for systemd's $NOTIFY_SOCKET
// (sd_notify(3)), to check what a Type=notify daemon tells its manager.
//
//   NotifySocket n(dir / "notify.sock");
//   setenv("NOTIFY_SOCKET", (dir / "notify.sock").c_str(), 1);  // then start the daemon
//   EXPECT_NE(n.Next(30).find("READY=1"), std::string::npos);
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace bourse::systest {

// A datagram socket standing in for systemd's $NOTIFY_SOCKET (sd_notify(3)).
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    bound_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
  }
  bool bound() const { return bound_; }
  // The next datagram, or "" after `seconds`.
  std::string Next(int seconds) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, seconds * 1000) != 1) return "";
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool bound_ = false;
};

}  // namespace bourse::systest
