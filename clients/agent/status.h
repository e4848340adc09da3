// The human form of `bourse-agent status` (Agent::StatusJson is the --json
// form): holdings by node and site, resting asks, open quotes, sales, and
// credits earned, spent and the profit, as aligned tables.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace bourse::agent {

std::string RenderStatus(const nlohmann::json& status);

}  // namespace bourse::agent
