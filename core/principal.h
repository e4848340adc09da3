// A registered principal of the broker (DESIGN §3): its key, kind, name and
// site. The broker keeps them (b_principals); the markets engine and the
// route checks read them.
//
//   if (caller.kind == core::PrincipalKind::kAdmin) ...
//   std::string kind(core::PrincipalKindName(p.kind));  // "admin"
//
// Thread safety: plain values.
#pragma once

#include <string>
#include <string_view>

namespace bourse::core {

enum class PrincipalKind { kAdmin, kSite, kNode, kBroker, kAgent, kUser };
// "admin", "site", "node", "broker", "agent" or "user".
std::string_view PrincipalKindName(PrincipalKind k);

struct Principal {
  std::string key;  // "ed25519:..."
  PrincipalKind kind = PrincipalKind::kUser;
  std::string name;
  std::string site;  // "" when none
};

}  // namespace bourse::core
