// The node guard's side of ssh into a sliver (nodeguard/logins.h): the
// broker's keys document as the guard reads it, sshd's AuthorizedKeysCommand
// answer, and the login table the setuid helper reads. Accounts themselves
// are made by the root test (tests/nodeguard/kernel/ssh_kernel_test.cc).
#include "nodeguard/logins.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "nodeguard/guard.h"
#include "nodeguard/login_table.h"
#include "tests/ssh_test_keys.h"

namespace bourse::nodeguard {
namespace {

using nlohmann::json;

constexpr const char* kAliceKey = testkeys::kAliceSshKey;
constexpr const char* kBobKey = testkeys::kBobSshKey;

json Doc(json slices) { return {{"node", "n1"}, {"ts", 1}, {"slices", std::move(slices)}}; }

// keys.json as Logins writes it, for one user.
json KeysFile(const std::string& user, uint32_t uid, const std::vector<OwnerKey>& keys) {
  json k = json::array();
  for (const OwnerKey& o : keys) k.push_back({{"owner", o.owner}, {"key", o.key}});
  return {{"users", {{user, {{"uid", uid}, {"keys", k}}}}}};
}

TEST(NodeSshKeysTest, ReadsTheBrokersDocument) {
  std::vector<std::string> dropped;
  auto m = ParseNodeSshKeys(Doc({{{"slice", "mit_web"},
                                  {"keys",
                                   {{{"owner", "ed25519:a"}, {"key", kAliceKey}},
                                    {{"owner", "ed25519:b"}, {"key", kBobKey}}}}},
                                 {{"slice", "mit_db"}, {"keys", json::array()}}}),
                            "n1", &dropped);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(dropped.empty());
  EXPECT_EQ(m->at("mit_web"),
            (std::vector<OwnerKey>{{"ed25519:a", kAliceKey}, {"ed25519:b", kBobKey}}));
  EXPECT_TRUE(m->at("mit_db").empty());
}

TEST(NodeSshKeysTest, DropsBadKeysAndRefusesBadDocuments) {
  std::vector<std::string> dropped;
  auto m = ParseNodeSshKeys(
      Doc({{{"slice", "mit_web"},
            {"keys",
             {{{"owner", "ed25519:a"}, {"key", std::string("restrict ") + kAliceKey}},
              {{"owner", "ed25519:a"}, {"key", std::string(kAliceKey) + "\nx"}},
              "just a string",
              {{"owner", "ed25519:b"}, {"key", kBobKey}}}}}}),
      "n1", &dropped);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->at("mit_web"), (std::vector<OwnerKey>{{"ed25519:b", kBobKey}}));
  ASSERT_EQ(dropped.size(), 3u);
  EXPECT_NE(dropped[0].find("slices[0].keys[0]: ssh key: unknown key type"), std::string::npos)
      << dropped[0];
  EXPECT_NE(dropped[1].find("slices[0].keys[1]: ssh key: control character"), std::string::npos)
      << dropped[1];
  EXPECT_NE(dropped[2].find("slices[0].keys[2]"), std::string::npos) << dropped[2];

  auto refused = [&](const json& doc, std::string_view needle) {
    std::vector<std::string> d;
    auto r = ParseNodeSshKeys(doc, "n1", &d);
    ASSERT_FALSE(r.ok()) << doc.dump();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  refused(json::array(), "not a JSON object");
  refused({{"node", "n2"}, {"slices", json::array()}}, "node is not n1");
  refused({{"slices", json::array()}}, "node: missing");
  refused({{"node", "n1"}}, "slices: missing");
  refused({{"node", "n1"}, {"slices", {1}}}, "slices[0]: must be an object");
  refused(Doc({{{"keys", json::array()}}}), "slices[0].slice: missing");
  refused(Doc({{{"slice", "x"}, {"keys", "k"}}}), "slices[0].keys: must be an array");
}

TEST(AuthorizedKeysTest, AnswersOnlyForTheSliversOwnAccount) {
  json file = KeysFile("mit_web", 200001, {{"ed25519:a", kAliceKey}, {"ed25519:b", kBobKey}});
  EXPECT_EQ(AuthorizedKeysFor(file, "mit_web", 200001),
            std::string("restrict,pty ") + kAliceKey + "\nrestrict,pty " + kBobKey + "\n");
  // Unknown user, no such account, an account with another uid.
  EXPECT_EQ(AuthorizedKeysFor(file, "mit_db", 200002), "");
  EXPECT_EQ(AuthorizedKeysFor(file, "mit_web", std::nullopt), "");
  EXPECT_EQ(AuthorizedKeysFor(file, "mit_web", 0), "");
  // Not the guard's file shape.
  EXPECT_EQ(AuthorizedKeysFor(json::array(), "mit_web", 200001), "");
  EXPECT_EQ(AuthorizedKeysFor({{"users", {{"mit_web", {{"uid", "200001"}}}}}}, "mit_web", 200001),
            "");
}

TEST(AuthorizedKeysTest, ARemovedOwnersKeyIsGoneWithTheNextDocument) {
  // What the guard keeps per pass: the keys of the broker's latest answer.
  std::vector<std::string> dropped;
  auto before = ParseNodeSshKeys(Doc({{{"slice", "mit_web"},
                                       {"keys",
                                        {{{"owner", "ed25519:a"}, {"key", kAliceKey}},
                                         {{"owner", "ed25519:b"}, {"key", kBobKey}}}}}}),
                                 "n1", &dropped);
  auto after = ParseNodeSshKeys(
      Doc({{{"slice", "mit_web"}, {"keys", {{{"owner", "ed25519:a"}, {"key", kAliceKey}}}}}}), "n1",
      &dropped);
  ASSERT_TRUE(before.ok() && after.ok());
  std::string was = AuthorizedKeysFor(KeysFile("mit_web", 7, before->at("mit_web")), "mit_web", 7);
  std::string is = AuthorizedKeysFor(KeysFile("mit_web", 7, after->at("mit_web")), "mit_web", 7);
  EXPECT_NE(was.find("bob@mit"), std::string::npos);
  EXPECT_EQ(is.find("bob@mit"), std::string::npos);
  EXPECT_NE(is.find("alice@mit"), std::string::npos);
}

TEST(AuthorizedKeysTest, KeysThatWouldSteerSshdAreNeverPrinted) {
  json file = KeysFile("mit_web", 9,
                       {{"ed25519:a", std::string("command=\"sh\" ") + kAliceKey},
                        {"ed25519:a", std::string(kAliceKey) + "\nssh-ed25519 x"},
                        {"ed25519:b", kBobKey}});
  EXPECT_EQ(AuthorizedKeysFor(file, "mit_web", 9), std::string("restrict,pty ") + kBobKey + "\n");
}

class AuthorizedKeysCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (std::filesystem::temp_directory_path() / "ng_akc_XXXXXX").string();
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    dir_ = t;
    std::filesystem::create_directories(dir_ / "state" / "ssh");
    std::ofstream(dir_ / "guard.conf") << "node_id = n1\ntrust_file = " << (dir_ / "trust").string()
                                       << "\nstate_dir = " << (dir_ / "state").string() << "\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  CommandOutput Run(std::vector<std::string> args) { return RunAuthorizedKeysCommand(args); }
  std::string Conf() const { return (dir_ / "guard.conf").string(); }

  std::filesystem::path dir_;
};

TEST_F(AuthorizedKeysCommandTest, BadInputIsAUsageError) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{},
                                             {"mit_web"},
                                             {"--config", Conf()},
                                             {"--config"},
                                             {"--config", Conf(), "a", "b"},
                                             {"--config", Conf(), "--user", "a"}}) {
    CommandOutput o = Run(args);
    EXPECT_EQ(o.exit_code, 2) << testing::PrintToString(args);
    EXPECT_EQ(o.stdout_text, "");
    EXPECT_NE(o.stderr_text.find("usage"), std::string::npos) << o.stderr_text;
  }
  for (const std::string& bad :
       std::vector<std::string>{"../etc", std::string(33, 'a'), "a b", ".x", "a:b"}) {
    CommandOutput o = Run({"--config", Conf(), bad});
    EXPECT_EQ(o.exit_code, 2) << bad;
    EXPECT_NE(o.stderr_text.find("is not a sliver account name"), std::string::npos)
        << o.stderr_text;
  }
  CommandOutput missing = Run({"--config", (dir_ / "nope.conf").string(), "mit_web"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.stderr_text.find("nope.conf"), std::string::npos) << missing.stderr_text;
}

TEST_F(AuthorizedKeysCommandTest, AnswersFromTheKeysFile) {
  // No keys file yet: no keys, no error.
  CommandOutput none = Run({"--config", Conf(), "mit_web"});
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_EQ(none.stdout_text, "");
  // An existing account (daemon, uid 1 on Debian) the file names with its
  // uid gets its keys; root, named with another uid, gets nothing.
  struct passwd* d = getpwnam("daemon");
  ASSERT_NE(d, nullptr);
  json file = KeysFile("daemon", d->pw_uid, {{"ed25519:a", kAliceKey}});
  file["users"]["root"] = {{"uid", 200001}, {"keys", {{{"owner", "ed25519:a"}, {"key", kBobKey}}}}};
  std::ofstream(dir_ / "state" / "ssh" / "keys.json") << file.dump();
  CommandOutput ok = Run({"--config", Conf(), "daemon"});
  EXPECT_EQ(ok.exit_code, 0) << ok.stderr_text;
  EXPECT_EQ(ok.stdout_text, std::string("restrict,pty ") + kAliceKey + "\n");
  CommandOutput root = Run({"--config", Conf(), "root"});
  EXPECT_EQ(root.exit_code, 0);
  EXPECT_EQ(root.stdout_text, "");
  CommandOutput unknown = Run({"--config", Conf(), "mit_db"});
  EXPECT_EQ(unknown.exit_code, 0);
  EXPECT_EQ(unknown.stdout_text, "");
  // A keys file that is not JSON is an error sshd logs.
  std::ofstream(dir_ / "state" / "ssh" / "keys.json") << "{";
  CommandOutput bad = Run({"--config", Conf(), "daemon"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.stderr_text.find("keys.json: not JSON"), std::string::npos) << bad.stderr_text;
}

TEST(LoginTableTest, RoundTripsAndRefusesBadEntries) {
  LoginEntry e{"mit_web",
               200001,
               "/var/lib/bourse/disk/slivers/mit_web",
               "/run/netns/n1",
               {"/sys/fs/cgroup/cpu/bourse/mit_web/cgroup.procs",
                "/sys/fs/cgroup/memory/bourse/mit_web/cgroup.procs"}};
  std::string error;
  auto back = ParseLoginEntry(FormatLoginEntry(e), &error);
  ASSERT_TRUE(back.has_value()) << error;
  EXPECT_EQ(*back, e);
  for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"slice=a\nuid=1\nhome=/h\n", "required"},
           {"slice=a\nuid=0\nhome=/h\nprocs=/p\n", "uid"},
           {"slice=a\nuid=1x\nhome=/h\nprocs=/p\n", "uid"},
           {"slice=a\nuid=1\nhome=h\nprocs=/p\n", "home: not an absolute path"},
           {"slice=a\nuid=1\nhome=/h\nprocs=/p\nshell=/bin/sh\n", "unknown key shell"},
           {"slice=a\nuid=1\nhome=/h\nprocs=/p\nnetns=\n", "netns: empty"},
           {"slice a\n", "without '='"}}) {
    EXPECT_FALSE(ParseLoginEntry(text, &error).has_value()) << text;
    EXPECT_NE(error.find(why), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace bourse::nodeguard
