#include "clients/agent/policy.h"

namespace bourse::agent {

nlohmann::json Situation::ToJson() const { return nlohmann::json::object(); }

core::Result<std::unique_ptr<Policy>> MakePolicy(const AgentConfig& c, PolicyLog) {
  return core::InvalidArgument("policy: \"" + c.policy + "\" not implemented yet");
}

}  // namespace bourse::agent
