// OpenSSH public keys as people paste them ("ssh-ed25519 AAAA... alice@mit"):
// one parser for the broker, which stores a slice owner's keys, and the node
// guard, which hands them to sshd (AuthorizedKeysCommand). A key that passes
// is one line `TYPE BASE64 [COMMENT]` with no authorized_keys options and no
// control characters, so it cannot smuggle `command="..."` or a second line
// into what sshd reads.
//
//   BOURSE_ASSIGN_OR_RETURN(SshPublicKey k, ParseSshPublicKey("ssh-ed25519 AAAAC3... a@b"));
//   std::string line = k.Line();   // "ssh-ed25519 AAAAC3... a@b"
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace bourse::core {

struct SshPublicKey {
  std::string type;    // ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, sk-ssh-ed25519@openssh.com, ...
  std::string base64;  // the key blob, standard base64 as written
  std::string comment;  // may be empty

  // `type base64[ comment]`.
  std::string Line() const;
};

// The longest key line accepted (an RSA 16384-bit key is about 2.8 KB).
inline constexpr size_t kMaxSshKeyLine = 16384;

// Errors: invalid_argument naming the flaw: empty or too long, a control
// character (newline, tab, NUL ...), an unknown key type (options such as
// `command="..."` before the type are refused as that), a blob that is not
// standard base64 or whose embedded type is not the line's type.
Result<SshPublicKey> ParseSshPublicKey(std::string_view line);

}  // namespace bourse::core
