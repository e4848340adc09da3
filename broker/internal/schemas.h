// JSON Schema fragments for the OpenAPI document, and small request-decoding
// helpers shared by the route files.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/interval.h"
#include "core/json_codec.h"
#include "core/keys.h"
#include "core/status.h"

namespace bourse::broker::internal {

inline nlohmann::json SStr(std::string_view description = "") {
  nlohmann::json j = {{"type", "string"}};
  if (!description.empty()) j["description"] = description;
  return j;
}
inline nlohmann::json SInt(std::string_view description = "") {
  nlohmann::json j = {{"type", "integer"}};
  if (!description.empty()) j["description"] = description;
  return j;
}
inline nlohmann::json SBool() { return {{"type", "boolean"}}; }
inline nlohmann::json SKey() {
  return {{"type", "string"}, {"pattern", "^ed25519:[A-Za-z0-9_-]{43}$"}};
}
inline nlohmann::json SMoney() {
  return {{"type", "string"},
          {"pattern", "^-?(0|[1-9][0-9]*)(\\.[0-9]{1,9})?$"},
          {"description", "exact decimal credits, at most 9 decimals"}};
}
inline nlohmann::json SArr(nlohmann::json items) { return {{"type", "array"}, {"items", items}}; }
inline nlohmann::json SAny() { return nlohmann::json::object(); }
// An object with these properties; `required` names; no other members.
inline nlohmann::json SObj(std::vector<std::pair<std::string, nlohmann::json>> props,
                           std::vector<std::string> required = {}, bool closed = true) {
  nlohmann::json p = nlohmann::json::object();
  for (auto& [k, v] : props) p[k] = std::move(v);
  nlohmann::json j = {{"type", "object"}, {"properties", p}};
  if (!required.empty()) j["required"] = required;
  if (closed) j["additionalProperties"] = false;
  return j;
}
inline nlohmann::json SResources() {
  return SObj({{"cpu_mcores", SInt()},
               {"mem_mib", SInt()},
               {"disk_mib", SInt()},
               {"net_min_kbps", SInt()},
               {"net_max_kbps", SInt()}},
              {"cpu_mcores", "mem_mib", "disk_mib", "net_min_kbps", "net_max_kbps"});
}
inline nlohmann::json SRcap() {
  return SObj(
      {{"v", SInt()},
       {"id", SStr()},
       {"issuer", SKey()},
       {"holder", SKey()},
       {"node", SStr()},
       {"res", SResources()},
       {"not_before", SInt()},
       {"not_after", SInt()},
       {"parent", {{"type", nlohmann::json::array({"string", "null"})}}},
       {"sig", SStr()}},
      {"v", "id", "issuer", "holder", "node", "res", "not_before", "not_after", "parent", "sig"});
}

// Decoding helpers (core/json_codec.h): each names the offending field.
using core::KeyField;
using core::KeyListField;
using core::StrField;
using core::WindowFields;
// The member if present (nullptr otherwise).
inline const nlohmann::json* Optional(const nlohmann::json& body, std::string_view name) {
  return core::OptionalMember(body, name);
}

}  // namespace bourse::broker::internal
