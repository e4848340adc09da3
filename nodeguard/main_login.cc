// bourse-login: the shell of every sliver account (docs/nodeguard.md "ssh
// into a sliver"), installed setuid root. sshd starts it as the sliver's uid
// after a key login; it moves itself into the sliver's cgroups, enters the
// sliver's network namespace when there is one, changes into the sliver's
// directory, drops every privilege for good and execs /bin/bash with the
// arguments sshd gave (none for a login shell, `-c COMMAND` for a command).
//
// What it trusts: its real uid (set by sshd; a caller cannot choose it) and
// the root-owned login table the node guard writes (nodeguard/login_table.h),
// at a path fixed at build time. It takes nothing from its arguments or its
// environment before it has dropped privileges, so whoever runs it directly
// lands in their own sliver or nowhere.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "nodeguard/login_table.h"

namespace {

constexpr long kCgroupMagic = 0x27e0eb;     // CGROUP_SUPER_MAGIC (v1)
constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "bourse-login: %s\n", what.c_str());
  _exit(1);
}

std::string Err(const std::string& what) { return what + ": " + strerror(errno); }

// A setuid program started with 0, 1 or 2 closed would hand those numbers to
// the files it opens next; fill them with /dev/null first.
void EnsureStdFds() {
  for (int fd = 0; fd < 3; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      if (open("/dev/null", O_RDWR) != fd) _exit(1);
    }
  }
}

// Root-owned and writable by root only.
bool RootOnly(const struct stat& st) { return st.st_uid == 0 && (st.st_mode & 022) == 0; }

bourse::nodeguard::LoginEntry ReadEntry(uid_t uid) {
  struct stat ds;
  if (lstat(bourse::nodeguard::kLoginTableDir, &ds) != 0) {
    Die(Err(std::string("no login table ") + bourse::nodeguard::kLoginTableDir));
  }
  if (!S_ISDIR(ds.st_mode) || !RootOnly(ds)) {
    Die(std::string(bourse::nodeguard::kLoginTableDir) + " is not a root-only directory");
  }
  std::string path = std::string(bourse::nodeguard::kLoginTableDir) + "/" + std::to_string(uid);
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    Die(Err("uid " + std::to_string(uid) + " is not a sliver on this node (" + path + ")"));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !RootOnly(st) || st.st_size > 65536) {
    Die(path + " is not a root-only file");
  }
  std::string text;
  char buf[4096];
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(r));
  close(fd);
  std::string error;
  auto e = bourse::nodeguard::ParseLoginEntry(text, &error);
  if (!e) Die(path + ": " + error);
  if (e->uid != uid) Die(path + ": names uid " + std::to_string(e->uid));
  return *e;
}

void JoinCgroup(const std::string& procs) {
  static const std::string kSuffix = "/cgroup.procs";
  if (procs.size() <= kSuffix.size() ||
      procs.compare(procs.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    Die(procs + ": not a cgroup.procs file");
  }
  int fd = open(procs.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) Die(Err("joining the sliver's cgroup " + procs));
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0 || (fs.f_type != kCgroupMagic && fs.f_type != kCgroup2Magic)) {
    Die(procs + ": not on a cgroup file system");
  }
  std::string pid = std::to_string(getpid());
  if (write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
    Die(Err("joining the sliver's cgroup " + procs));
  }
  close(fd);
}

void DropPrivileges(uid_t uid) {
  gid_t gid = static_cast<gid_t>(uid);  // a sliver's gid is its uid (enforcement.h)
  if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
      setresuid(uid, uid, uid) != 0) {
    Die(Err("dropping privileges"));
  }
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != uid || eu != uid ||
      su != uid || rg != gid || eg != gid || sg != gid || getgroups(0, nullptr) != 0) {
    Die("privileges not dropped");
  }
  if (setresuid(0, 0, 0) == 0 || setegid(0) == 0) Die("root could be regained");
}

}  // namespace

int main(int argc, char** argv) {
  EnsureStdFds();
  uid_t uid = getuid();
  if (geteuid() != 0) Die("not installed setuid root (chown root; chmod 4755)");
  if (uid == 0) Die("root has no sliver");
  bourse::nodeguard::LoginEntry e = ReadEntry(uid);
  struct passwd* pw = getpwuid(uid);
  if (pw == nullptr || e.slice != pw->pw_name) {
    Die("uid " + std::to_string(uid) + " is not the account of sliver " + e.slice);
  }
  for (const std::string& p : e.procs) JoinCgroup(p);
  if (!e.netns.empty()) {
    int fd = open(e.netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) Die(Err("entering " + e.netns));
    close(fd);
  }
  // Before dropping privileges: the sliver's directory may lie under a
  // directory its uid cannot traverse (the 0700 state directory).
  if (chdir(e.home.c_str()) != 0) Die(Err("chdir " + e.home));
  DropPrivileges(uid);
  setenv("HOME", e.home.c_str(), 1);
  setenv("SHELL", "/bin/bash", 1);
  setenv("BOURSE_SLIVER", e.slice.c_str(), 1);
  std::vector<char*> args;
  // sshd marks a login shell by a leading '-' in argv[0].
  bool login = argc > 0 && argv[0] != nullptr && argv[0][0] == '-';
  args.push_back(const_cast<char*>(login ? "-bash" : "bash"));
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv("/bin/bash", args.data());
  Die(Err("exec /bin/bash"));
}
