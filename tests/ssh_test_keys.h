// OpenSSH public keys made once with ssh-keygen (-t ed25519, -t ecdsa), for
// the tests of ssh keys in core, the broker and the node guard.
#pragma once

namespace bourse::testkeys {

inline constexpr const char* kAliceSshKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILbiWK3xGInZa2C5gGitF9RpH9hOYBP+CeSyUiuNIuUE alice@mit";
inline constexpr const char* kBobSshKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJd3dE9cu57WIZcAsEEEzanZWpHXvbNtV1RMUReNdARB bob@mit";
inline constexpr const char* kCarolEcdsaKey =
    "ecdsa-sha2-nistp256 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBCswLTuQUdp750xURGaeHh8bRf2i5PmYDBa39hF"
    "fh+sUDT4q8Dt2wSnC0w8TOxt2JnXMM0838S7+/ORbSRtg+eM= carol";

}  // namespace bourse::testkeys
