// ssh into a sliver, end to end (issue #20, docs/nodeguard.md "ssh into a
// sliver"), as root against the real kernel and the system's OpenSSH:
//   * a real broker; slice mit_web bound on n1 with a disk, owned by Alice
//     and Bob, each with an ssh key made here by ssh-keygen;
//   * the real guard (`run --once` passes: real cgroups, a loop-mounted disk,
//     `netns` = the test's namespace A) with `ssh = true`, its binary, the
//     login helper (setuid root) and their configuration installed under a
//     root-owned directory in /var/lib (sshd refuses an AuthorizedKeysCommand
//     under the world-writable /tmp; /run is often mounted nosuid);
//   * sshd started here inside namespace B, listening on B's end of a veth
//     pair to A, with AuthorizedKeysCommand = `bourse-nodeguard
//     authorized-keys`; the system `ssh` client runs in A.
// Bob logs in: `id -u`, the cgroups of his shell, its network namespace and
// `df` of its home are the sliver's; he holds no capability and cannot move
// himself out of the sliver's cgroup; the helper run directly by another
// uid refuses. Bob plants his key in the sliver's ~/.ssh/authorized_keys.
// Alice removes him through the broker; after one guard pass his login is
// refused (the planted key included), Alice's still works. Teardown removes
// sshd, the namespaces, the account, cgroups, mounts and the directory even
// when an assertion fails. A second test logs into a best-effort sliver (the
// slice instantiated on n1 without an rcap).
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nodeguard/login_table.h"
#include "tests/nodeguard/kernel/kernel_util.h"
#include "tests/system/guard_world.h"

namespace bourse::systest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The uids of this test's slivers (uid_base + slot); nothing else uses them.
constexpr int64_t kUidBase = 261000;
constexpr uint32_t kSliverUid = kUidBase + 1;

std::string LoginBinary() { return std::string(BOURSE_BINARY_DIR) + "/nodeguard/bourse-login"; }

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

class SshLoginTest : public GuardWorldTest {
 protected:
  SshLoginTest() : GuardWorldTest("ng_ssh") {}

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (accounts, cgroups, mounts, sshd)";
    if (!Exists("/usr/sbin/sshd") || !Exists("/usr/bin/ssh")) {
      GTEST_SKIP() << "needs openssh-server and openssh-client (dev.sh installs them)";
    }
    if (!Exists("/sys/fs/cgroup/cpu/cpu.shares")) GTEST_SKIP() << "needs cgroup v1 cpu";
    ASSERT_TRUE(Exists(LoginBinary())) << LoginBinary();
    GuardWorldTest::SetUp();
    if (HasFatalFailure()) return;
    tag_ = std::to_string(getpid() % 100000);
    prefix_ = "bourse-ssh-" + tag_;
    veth_ = std::make_unique<nodeguard::testing::VethPair>("s" + tag_);
    ASSERT_TRUE(veth_->ok());
    // Root-owned, not group- or world-writable, all the way up, and not on a
    // nosuid mount (/run usually is one).
    std::string inst = "/var/lib/bourse-ssh-test." + tag_ + ".XXXXXX";
    ASSERT_NE(mkdtemp(inst.data()), nullptr);
    inst_ = inst;
    chmod(inst_.c_str(), 0755);
    fs::copy_file(GuardBinary(), inst_ / "bourse-nodeguard");
    fs::copy_file(LoginBinary(), inst_ / "bourse-login");
    ASSERT_EQ(chown((inst_ / "bourse-login").c_str(), 0, 0), 0);
    ASSERT_EQ(chmod((inst_ / "bourse-login").c_str(), 04755), 0);
    if (!Exists("/run/sshd")) {
      made_privsep_dir_ = true;
      fs::create_directory("/run/sshd");
      chmod("/run/sshd", 0755);
    }
  }

  void TearDown() override {
    sshd_.reset();
    if (!inst_.empty()) {
      if (Exists(inst_ / "guard.conf")) {
        auto [code, out] = RunCommand({(inst_ / "bourse-nodeguard").string(), "teardown",
                                       "--config", (inst_ / "guard.conf").string()});
        EXPECT_EQ(code, 0) << out;
      }
      // Whatever teardown could not remove: the account, its table entry,
      // the cgroups, the disk.
      if (struct passwd* p = getpwnam("mit_web"); p != nullptr && p->pw_uid == kSliverUid) {
        nodeguard::testing::Sh({"userdel", "mit_web"});
      }
      nodeguard::testing::Sh({"groupdel", "bsl" + std::to_string(kSliverUid)});
      unlink((std::string(nodeguard::kLoginTableDir) + "/" + std::to_string(kSliverUid)).c_str());
      for (const char* h : {"cpu", "cpuacct", "memory"}) {
        std::string d = std::string("/sys/fs/cgroup/") + h + "/" + prefix_;
        rmdir((d + "/mit_web").c_str());
        rmdir(d.c_str());
      }
      nodeguard::testing::Sh({"umount", "-l", (inst_ / "disk/slivers/mit_web").string()});
      std::error_code ec;
      fs::remove_all(inst_, ec);
    }
    if (made_privsep_dir_) rmdir("/run/sshd");
    veth_.reset();
    GuardWorldTest::TearDown();
  }

  // The guard's configuration, under the root-owned directory.
  void WriteConfig() {
    fs::path key = dir_ / "node.pem";
    ASSERT_TRUE(world_->n1.SavePem(key.string()).ok());
    std::ofstream(dir_ / "trust") << world_->pi.public_key().ToText() << "\n";
    fs::create_directories(dir_ / "state");
    std::ofstream f(inst_ / "guard.conf");
    f << "node_id = n1\nnode_key = " << key.string()
      << "\ntrust_file = " << (dir_ / "trust").string()
      << "\nstate_dir = " << (dir_ / "state").string() << "\nbroker_url = " << broker_->url()
      << "\ncgroup_prefix = " << prefix_ << "\ndisk_root = " << (inst_ / "disk").string()
      << "\nnetns = " << veth_->ns_a() << "\nuid_base = " << kUidBase
      << "\nlaunch = false\nssh = true\nlogin_shell = " << (inst_ / "bourse-login").string()
      << "\n";
  }

  // One guard pass; its status.
  json Pass() {
    auto [code, out] = RunCommand({(inst_ / "bourse-nodeguard").string(), "run", "--config",
                                   (inst_ / "guard.conf").string(), "--once"});
    EXPECT_EQ(code, 0) << out;
    json j = json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    return j;
  }

  // Configures the guard and runs its first pass, which must set up one
  // active sliver and its account holding `keys` keys; the status in *st.
  void FirstPass(int keys, json* st) {
    WriteConfig();
    if (HasFatalFailure()) return;
    *st = Pass();
    ASSERT_EQ((*st)["slivers"].size(), 1u) << st->dump();
    ASSERT_EQ((*st)["slivers"][0]["state"], "active") << st->dump();
    ASSERT_EQ((*st)["ssh"]["accounts"].size(), 1u) << st->dump();
    EXPECT_EQ((*st)["ssh"]["accounts"][0]["keys"], keys) << st->dump();
  }

  // A key pair made by ssh-keygen; the public key line.
  std::string KeyPair(const std::string& name) {
    fs::path k = dir_ / name;
    auto [code, out] = RunCommand({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                                   name + "@test", "-f", k.string()});
    EXPECT_EQ(code, 0);
    std::string pub = ReadAll(k.string() + ".pub");
    while (!pub.empty() && pub.back() == '\n') pub.pop_back();
    return pub;
  }

  void StartSshd() {
    fs::path host = inst_ / "host_ed25519";
    auto [code, out] =
        RunCommand({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host.string()});
    ASSERT_EQ(code, 0);
    std::ofstream(inst_ / "sshd_config")
        << "ListenAddress 10.77.0.2:2222\nHostKey " << host.string() << "\nPidFile "
        << (inst_ / "sshd.pid").string() << "\nAuthorizedKeysFile none\nAuthorizedKeysCommand "
        << (inst_ / "bourse-nodeguard").string() << " authorized-keys --config "
        << (inst_ / "guard.conf").string()
        << " %u\nAuthorizedKeysCommandUser root\nPasswordAuthentication no\n"
           "KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin no\nLogLevel VERBOSE\n";
    sshd_ = std::make_unique<Child>();
    std::string log = (dir_ / "sshd.log").string();
    ASSERT_TRUE(sshd_->Start({"/usr/bin/nsenter", "--net=/run/netns/" + veth_->ns_b(),
                              "/usr/sbin/sshd", "-D", "-e", "-f", (inst_ / "sshd_config").string()},
                             log));
    for (int i = 0; i < 500 && ReadAll(log).find("Server listening") == std::string::npos; ++i) {
      ASSERT_TRUE(sshd_->Running()) << ReadAll(log);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_NE(ReadAll(log).find("Server listening"), std::string::npos) << ReadAll(log);
  }

  // `ssh mit_web@10.77.0.2 COMMAND` with key `name`, from namespace A.
  std::pair<int, std::string> Ssh(const std::string& name, const std::string& command) {
    return RunCommand({"/usr/bin/nsenter",
                       "--net=/run/netns/" + veth_->ns_a(),
                       "/usr/bin/ssh",
                       "-F",
                       "/dev/null",
                       "-p",
                       "2222",
                       "-i",
                       (dir_ / name).string(),
                       "-o",
                       "IdentitiesOnly=yes",
                       "-o",
                       "IdentityAgent=none",
                       "-o",
                       "BatchMode=yes",
                       "-o",
                       "StrictHostKeyChecking=no",
                       "-o",
                       "UserKnownHostsFile=/dev/null",
                       "-o",
                       "ConnectTimeout=10",
                       "-o",
                       "LogLevel=ERROR",
                       "mit_web@10.77.0.2",
                       command});
  }

  std::string tag_, prefix_;
  fs::path inst_;
  bool made_privsep_dir_ = false;
  std::unique_ptr<nodeguard::testing::VethPair> veth_;
  std::unique_ptr<Child> sshd_;
};

// The inode of a network namespace file.
uint64_t NsInode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST_F(SshLoginTest, AnOwnerLandsInTheSliverAndLosesAccessWhenRemoved) {
  World& w = *world_;
  // Bob, a second user of site mit.
  auto bob = core::PrivateKey::Generate();
  ASSERT_TRUE(bob.ok());
  ASSERT_TRUE(w.As(w.pi)
                  .Call("POST", "/v1/principals",
                        {{"key", bob->public_key().ToText()},
                         {"kind", "user"},
                         {"name", "bob"},
                         {"site", "mit"}})
                  .ok());
  Bind("mit_web", "piece-ssh", Res(1000, 256, 64, 0, 0));
  if (HasFatalFailure()) return;
  std::string alice_pub = KeyPair("alice"), bob_pub = KeyPair("bob");
  std::string a = w.user.public_key().ToText(), b = bob->public_key().ToText();
  auto owners = w.As(w.user).Call(
      "PUT", "/v1/slices/mit_web/owners",
      {{"owners", {a, b}}, {"ssh_keys", {alice_pub, {{"owner", b}, {"key", bob_pub}}}}});
  ASSERT_TRUE(owners.ok()) << owners.status().ToString();

  json st;
  FirstPass(2, &st);
  if (HasFatalFailure()) return;
  struct passwd* pw = getpwnam("mit_web");
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(pw->pw_uid, kSliverUid);
  std::string home = st["slivers"][0]["dir"];
  EXPECT_EQ(std::string(pw->pw_dir), home);
  StartSshd();
  if (HasFatalFailure()) return;

  // Bob logs in.
  auto [code, out] =
      Ssh("bob",
          "id -u; echo ---; cat /proc/self/cgroup; echo ---; "
          "stat -L -c %i /proc/self/ns/net; echo ---; df -P -k .; echo ---; "
          "grep CapEff /proc/self/status; echo ---; "
          "(echo $$ > /sys/fs/cgroup/memory/cgroup.procs) 2>/dev/null && echo escaped "
          "|| echo stayed; mkdir -p .ssh && echo '" +
              bob_pub + "' > .ssh/authorized_keys && echo planted");
  ASSERT_EQ(code, 0) << out << ReadAll(dir_ / "sshd.log");
  std::vector<std::string> part;
  std::stringstream ss(out);
  std::string line, cur;
  while (std::getline(ss, line)) {
    if (line == "---") {
      part.push_back(cur);
      cur.clear();
    } else {
      cur += line + "\n";
    }
  }
  part.push_back(cur);
  ASSERT_EQ(part.size(), 6u) << out;
  EXPECT_EQ(part[0], std::to_string(kSliverUid) + "\n");
  // Each of the sliver's hierarchies shows its cgroup.
  for (const char* h : {"cpu", "memory"}) {
    bool found = false;
    std::stringstream cg(part[1]);
    while (std::getline(cg, line)) {
      size_t c1 = line.find(':'), c2 = line.find(':', c1 + 1);
      std::string ctrls = "," + line.substr(c1 + 1, c2 - c1 - 1) + ",";
      if (ctrls.find(std::string(",") + h + ",") == std::string::npos) continue;
      found = true;
      EXPECT_EQ(line.substr(c2 + 1), "/" + prefix_ + "/mit_web") << line;
    }
    EXPECT_TRUE(found) << h << " in\n" << part[1];
  }
  // The sliver's network namespace (A), not sshd's (B).
  EXPECT_EQ(part[2], std::to_string(NsInode("/run/netns/" + veth_->ns_a())) + "\n");
  EXPECT_NE(NsInode("/run/netns/" + veth_->ns_a()), NsInode("/run/netns/" + veth_->ns_b()));
  // df of the home: the sliver's 64 MiB loop disk mounted at its directory.
  std::stringstream df(part[3]);
  std::getline(df, line);  // header
  std::getline(df, line);
  std::stringstream cols(line);
  std::string dev, blocks, used, avail, pct, mnt;
  cols >> dev >> blocks >> used >> avail >> pct >> mnt;
  EXPECT_EQ(mnt, home) << part[3];
  EXPECT_EQ(dev.rfind("/dev/loop", 0), 0u) << part[3];
  EXPECT_GT(std::stoll(blocks), 40 * 1024) << part[3];
  EXPECT_LE(std::stoll(blocks), 64 * 1024) << part[3];
  EXPECT_EQ(part[4], "CapEff:\t0000000000000000\n");
  EXPECT_EQ(part[5], "stayed\nplanted\n");

  // The helper run directly by a uid that is no sliver refuses; run by the
  // sliver's own uid it lands in its own sliver (nothing else is reachable).
  auto [nobody, nout] =
      RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  (inst_ / "bourse-login").string(), "-c", "id -u"});
  EXPECT_EQ(nobody, 1) << nout;
  auto [again, aout] = Ssh("bob", (inst_ / "bourse-login").string() + " -c 'id -u; pwd'");
  EXPECT_EQ(again, 0);
  EXPECT_EQ(aout, std::to_string(kSliverUid) + "\n" + home + "\n");

  // Alice removes Bob; one pass later his keys (the planted one too) no
  // longer open the sliver. Alice's still does.
  auto removed = w.As(w.user).Call("PUT", "/v1/slices/mit_web/owners", {{"owners", {a}}});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  st = Pass();
  EXPECT_EQ(st["ssh"]["accounts"][0]["keys"], 1) << st.dump();
  auto [refused, rout] = Ssh("bob", "id -u");
  EXPECT_EQ(refused, 255) << rout;
  EXPECT_EQ(rout, "");
  auto [alice, alice_out] = Ssh("alice", "id -u");
  EXPECT_EQ(alice, 0) << ReadAll(dir_ / "sshd.log");
  EXPECT_EQ(alice_out, std::to_string(kSliverUid) + "\n");
}

// A best-effort sliver (issue #20): mit_web instantiated on n1 without any
// rcap. Its owner's key reaches the node (the broker lists the slices
// instantiated there, not only those bound there), Alice logs in and lands in
// the sliver; once the slice leaves the node, its account goes and the login
// is refused.
TEST_F(SshLoginTest, AnOwnerLogsIntoABestEffortSliver) {
  World& w = *world_;
  ASSERT_TRUE(w.As(w.user).Call("POST", "/v1/slices", {{"name", "mit_web"}}).ok());
  auto inst = w.As(w.user).Call("POST", "/v1/slices/mit_web/instantiate", {{"nodes", {"n1"}}});
  ASSERT_TRUE(inst.ok()) << inst.status().ToString();
  std::string alice_pub = KeyPair("alice");
  auto owners = w.As(w.user).Call(
      "PUT", "/v1/slices/mit_web/owners",
      {{"owners", {w.user.public_key().ToText()}}, {"ssh_keys", {alice_pub}}});
  ASSERT_TRUE(owners.ok()) << owners.status().ToString();

  json st;
  FirstPass(1, &st);
  if (HasFatalFailure()) return;
  StartSshd();
  if (HasFatalFailure()) return;

  auto [code, out] = Ssh("alice", "id -u; grep ':memory:' /proc/self/cgroup");
  ASSERT_EQ(code, 0) << out << ReadAll(dir_ / "sshd.log");
  EXPECT_EQ(out.substr(0, out.find('\n')), std::to_string(kSliverUid)) << out;
  EXPECT_NE(out.find(":memory:/" + prefix_ + "/mit_web\n"), std::string::npos) << out;

  auto removed = w.As(w.user).Call("POST", "/v1/slices/mit_web/remove_nodes", {{"nodes", {"n1"}}});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  st = Pass();
  EXPECT_EQ(st["slivers"].size(), 0u) << st.dump();
  EXPECT_EQ(st["ssh"]["accounts"].size(), 0u) << st.dump();
  EXPECT_EQ(getpwnam("mit_web"), nullptr);
  auto [refused, rout] = Ssh("alice", "id -u");
  EXPECT_EQ(refused, 255) << rout;
}

}  // namespace
}  // namespace bourse::systest
