#include "core/principal.h"

namespace bourse::core {

std::string_view PrincipalKindName(PrincipalKind k) {
  switch (k) {
    case PrincipalKind::kAdmin:
      return "admin";
    case PrincipalKind::kSite:
      return "site";
    case PrincipalKind::kNode:
      return "node";
    case PrincipalKind::kBroker:
      return "broker";
    case PrincipalKind::kAgent:
      return "agent";
    case PrincipalKind::kUser:
      return "user";
  }
  return "user";
}

}  // namespace bourse::core
