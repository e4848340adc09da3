#include "clients/agent/config.h"

namespace bourse::agent {

core::Result<AgentConfig> AgentConfig::Parse(std::string_view) {
  return core::Internal("agent config: not implemented yet");
}

core::Result<AgentConfig> AgentConfig::Load(const std::string&) {
  return core::Internal("agent config: not implemented yet");
}

core::Result<core::Money> ScalePrice(const core::Money&, const core::ResourceVector&,
                                     const core::ResourceVector&, int64_t, int64_t) {
  return core::Internal("agent ScalePrice: not implemented yet");
}

core::Result<core::Money> BasePrice(const AgentConfig& c, const core::ResourceVector& res,
                                    int64_t not_before, int64_t not_after) {
  return ScalePrice(c.price, c.unit, res, not_before, not_after);
}

}  // namespace bourse::agent
