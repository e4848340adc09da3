#include "core/ssh_key.h"

#include <sodium.h>

#include <array>
#include <cstdint>
#include <vector>

namespace bourse::core {

namespace {

// The public key types OpenSSH 9 accepts in authorized_keys (DSA is gone).
constexpr std::array<std::string_view, 8> kTypes = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed448",
};

bool KnownType(std::string_view t) {
  for (std::string_view k : kTypes) {
    if (k == t) return true;
  }
  return false;
}

}  // namespace

std::string SshPublicKey::Line() const {
  std::string s = type + " " + base64;
  if (!comment.empty()) s += " " + comment;
  return s;
}

Result<SshPublicKey> ParseSshPublicKey(std::string_view line) {
  if (line.empty()) return InvalidArgument("ssh key: empty");
  if (line.size() > kMaxSshKeyLine) {
    return InvalidArgument("ssh key: longer than " + std::to_string(kMaxSshKeyLine) + " bytes");
  }
  for (char c : line) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return InvalidArgument("ssh key: control character " + std::to_string(u) +
                             " (one line of `TYPE BASE64 [COMMENT]`)");
    }
  }
  size_t sp = line.find(' ');
  std::string_view type = line.substr(0, sp);
  if (!KnownType(type)) {
    std::string shown(type.substr(0, 40));
    return InvalidArgument("ssh key: unknown key type \"" + shown +
                           "\" (options before the type are not accepted)");
  }
  if (sp == std::string_view::npos) return InvalidArgument("ssh key: no key data after the type");
  std::string_view rest = line.substr(sp + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  size_t sp2 = rest.find(' ');
  std::string_view b64 = rest.substr(0, sp2);
  std::string_view comment = sp2 == std::string_view::npos ? "" : rest.substr(sp2 + 1);
  while (!comment.empty() && comment.front() == ' ') comment.remove_prefix(1);
  while (!comment.empty() && comment.back() == ' ') comment.remove_suffix(1);
  if (b64.empty()) return InvalidArgument("ssh key: no key data after the type");
  std::vector<unsigned char> blob(b64.size());
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(blob.data(), blob.size(), b64.data(), b64.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != b64.data() + b64.size()) {
    return InvalidArgument("ssh key: the key data is not base64");
  }
  // The blob starts with the key type as an SSH string (RFC 4253 §6.6).
  if (len < 4) return InvalidArgument("ssh key: the key data is too short");
  uint32_t n = (uint32_t{blob[0]} << 24) | (uint32_t{blob[1]} << 16) | (uint32_t{blob[2]} << 8) |
               uint32_t{blob[3]};
  if (n != type.size() || len < 4 + static_cast<size_t>(n) ||
      std::string_view(reinterpret_cast<const char*>(blob.data()) + 4, n) != type) {
    return InvalidArgument("ssh key: the key data is not a " + std::string(type) + " key");
  }
  if (len == 4 + static_cast<size_t>(n)) {
    return InvalidArgument("ssh key: the key data holds no key");
  }
  return SshPublicKey{std::string(type), std::string(b64), std::string(comment)};
}

}  // namespace bourse::core
