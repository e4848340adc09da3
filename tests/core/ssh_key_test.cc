#include "core/ssh_key.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/ssh_test_keys.h"

namespace bourse::core {
namespace {

constexpr const char* kEd25519 = testkeys::kAliceSshKey;
constexpr const char* kEcdsa = testkeys::kCarolEcdsaKey;

void ExpectInvalid(std::string_view line, std::string_view needle) {
  auto k = ParseSshPublicKey(line);
  ASSERT_FALSE(k.ok()) << line;
  EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(k.status().message().find(needle), std::string::npos)
      << "\"" << k.status().message() << "\" lacks \"" << needle << "\"";
}

TEST(SshKeyTest, KeysAsSshKeygenWritesThem) {
  auto k = ParseSshPublicKey(kEd25519);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->type, "ssh-ed25519");
  EXPECT_EQ(k->comment, "alice@mit");
  EXPECT_EQ(k->Line(), kEd25519);
  auto e = ParseSshPublicKey(kEcdsa);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->type, "ecdsa-sha2-nistp256");
  EXPECT_EQ(e->Line(), kEcdsa);
}

TEST(SshKeyTest, NoCommentAndExtraSpaces) {
  std::string line = kEd25519;
  std::string bare = line.substr(0, line.rfind(' '));
  auto k = ParseSshPublicKey(bare);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->comment, "");
  EXPECT_EQ(k->Line(), bare);
  auto spaced = ParseSshPublicKey("ssh-ed25519   " + bare.substr(12) + "   a b  ");
  ASSERT_TRUE(spaced.ok()) << spaced.status().ToString();
  EXPECT_EQ(spaced->Line(), bare + " a b");
}

TEST(SshKeyTest, RefusesWhatCouldSteerSshd) {
  std::string key = kEd25519;
  // authorized_keys options before the key.
  ExpectInvalid("command=\"/bin/sh\" " + key, "unknown key type");
  ExpectInvalid("restrict " + key, "unknown key type");
  // A second line smuggled in the comment, or any control character.
  ExpectInvalid(key + "\nssh-ed25519 AAAA evil", "control character 10");
  ExpectInvalid(key + "\r", "control character 13");
  ExpectInvalid(std::string(key).replace(11, 1, "\t"), "control character 9");
  ExpectInvalid(std::string("ssh-ed25519 AAAA\0x", 18), "control character 0");
}

TEST(SshKeyTest, RefusesMalformedKeys) {
  ExpectInvalid("", "empty");
  ExpectInvalid("ssh-dss AAAAB3NzaC1kc3M= x", "unknown key type \"ssh-dss\"");
  ExpectInvalid("ssh-ed25519", "no key data");
  ExpectInvalid("ssh-ed25519 ", "no key data");
  ExpectInvalid("ssh-ed25519 not*base64 x", "not base64");
  ExpectInvalid("ssh-ed25519 AAA x", "not base64");
  // Valid base64, but an RSA blob under the ed25519 type.
  ExpectInvalid("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQAB x", "not a ssh-ed25519 key");
  // The type and nothing after it.
  ExpectInvalid("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 x", "holds no key");
  ExpectInvalid(std::string(kMaxSshKeyLine + 1, 'a'), "longer than");
}

}  // namespace
}  // namespace bourse::core
