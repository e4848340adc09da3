// Helpers for the node guard's real-kernel tests: network namespaces joined by
// a veth pair, unprivileged TCP senders, and a receiver that counts bytes.
// Everything created is removed by the destructors, even when a test fails.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nodeguard/enforcement.h"
#include "nodeguard/internal/exec.h"

namespace bourse::nodeguard::testing {

inline bool Sh(const std::vector<std::string>& argv) { return internal::RunCommand(argv).ok(); }

// The pids in sliver `name`'s cgroup once there are at least `at_least`
// (polled every 5 ms, `tries` times); else those there are at the end.
inline std::vector<int> WaitPids(Enforcer& enforcer, const std::string& name, size_t at_least = 1,
                                 int tries = 400) {
  for (int i = 0; i < tries; ++i) {
    std::vector<int> p = enforcer.Pids(name);
    if (p.size() >= at_least) return p;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return enforcer.Pids(name);
}

// Two namespaces <a> and <b> joined by veth <a>v (in a, 10.77.0.1) and <b>v (in b, 10.77.0.2).
class VethPair {
 public:
  explicit VethPair(const std::string& tag) : a_("nga" + tag), b_("ngb" + tag) {
    ok_ = Sh({"ip", "netns", "add", a_}) && Sh({"ip", "netns", "add", b_}) &&
          Sh({"ip", "link", "add", dev_a(), "type", "veth", "peer", "name", dev_b()}) &&
          Sh({"ip", "link", "set", dev_a(), "netns", a_}) &&
          Sh({"ip", "link", "set", dev_b(), "netns", b_}) &&
          Sh({"ip", "-n", a_, "addr", "add", "10.77.0.1/24", "dev", dev_a()}) &&
          Sh({"ip", "-n", b_, "addr", "add", "10.77.0.2/24", "dev", dev_b()}) &&
          Sh({"ip", "-n", a_, "link", "set", dev_a(), "up"}) &&
          Sh({"ip", "-n", b_, "link", "set", dev_b(), "up"}) &&
          Sh({"ip", "-n", a_, "link", "set", "lo", "up"}) &&
          Sh({"ip", "-n", b_, "link", "set", "lo", "up"});
  }
  ~VethPair() {
    Sh({"ip", "netns", "del", a_});
    Sh({"ip", "netns", "del", b_});
    Sh({"ip", "link", "del", dev_a()});  // in case it never moved
  }
  bool ok() const { return ok_; }
  const std::string& ns_a() const { return a_; }
  const std::string& ns_b() const { return b_; }
  std::string dev_a() const { return a_ + "v"; }
  std::string dev_b() const { return b_ + "v"; }

 private:
  std::string a_, b_;
  bool ok_ = false;
};

inline double NowSec() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Accepts connections inside namespace `ns`; the first byte a client sends is
// its tag; counts bytes per tag.
class Receiver {
 public:
  explicit Receiver(const std::string& ns) {
    std::atomic<int> port{-1};
    thread_ = std::thread([this, ns, &port] {
      int nsfd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
        port = 0;
        return;
      }
      close(nsfd);
      int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = 0;
      inet_pton(AF_INET, "10.77.0.2", &a.sin_addr);
      socklen_t len = sizeof a;
      if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 16) != 0 ||
          getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        port = 0;
        return;
      }
      port = ntohs(a.sin_port);
      std::vector<pollfd> fds{{ls, POLLIN, 0}};
      std::map<int, char> tag;
      std::vector<char> buf(1 << 16);
      while (!stop_) {
        if (poll(fds.data(), fds.size(), 50) <= 0) continue;
        for (size_t i = 0; i < fds.size(); ++i) {
          if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
          if (fds[i].fd == ls) {
            int c = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) fds.push_back({c, POLLIN, 0});
            continue;
          }
          ssize_t r = read(fds[i].fd, buf.data(), buf.size());
          if (r <= 0) {
            // The next accepted connection may get this fd number again: it
            // must not inherit this one's tag.
            tag.erase(fds[i].fd);
            close(fds[i].fd);
            fds.erase(fds.begin() + static_cast<long>(i));
            --i;
            continue;
          }
          size_t off = 0;
          if (!tag.count(fds[i].fd)) {
            tag[fds[i].fd] = buf[0];
            off = 1;
          }
          std::lock_guard<std::mutex> l(mu_);
          bytes_[tag[fds[i].fd]] += r - static_cast<ssize_t>(off);
        }
      }
      for (auto& p : fds) close(p.fd);
    });
    while (port < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    port_ = port;
  }
  ~Receiver() {
    stop_ = true;
    thread_.join();
  }
  int port() const { return port_; }
  int64_t Bytes(char tag) {
    std::lock_guard<std::mutex> l(mu_);
    return bytes_[tag];
  }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int port_ = 0;
  std::mutex mu_;
  std::map<char, int64_t> bytes_;
};

// Forks a process that enters namespace `ns`, becomes `uid`, connects to
// 10.77.0.2:port, sends `tag` and then data for `seconds`.
inline pid_t StartSender(const std::string& ns, uid_t uid, int port, char tag, double seconds) {
  std::string nspath = "/run/netns/" + ns;
  pid_t pid = fork();
  if (pid != 0) return pid;
  int nsfd = open(nspath.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) _exit(2);
  if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) _exit(3);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "10.77.0.2", &a.sin_addr);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) _exit(4);
  static char buf[1 << 16];
  buf[0] = tag;
  if (write(s, buf, 1) != 1) _exit(5);
  double end = NowSec() + seconds;
  while (NowSec() < end) {
    if (write(s, buf, sizeof buf) < 0) _exit(6);
  }
  close(s);
  _exit(0);
}

// True when `pid` no longer runs (gone, or a zombie waiting for its reaper).
inline bool DeadOrZombie(pid_t pid) {
  auto stat = internal::ReadFileText("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return true;
  size_t p = stat->rfind(')');
  return p != std::string::npos && p + 2 < stat->size() && (*stat)[p + 2] == 'Z';
}

inline void Reap(pid_t pid) {
  if (pid <= 0) return;
  int st;
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
}

}  // namespace bourse::nodeguard::testing
