#include "broker/internal/ssh_keys.h"

#include "core/json_codec.h"
#include "core/ssh_key.h"

namespace bourse::broker::internal {

using nlohmann::json;

namespace {
constexpr size_t kMaxSshKeys = 64;
}  // namespace

core::Result<json> ParseSshKeys(const json& value, const std::set<std::string>& owners,
                                const std::string& caller) {
  if (!value.is_array()) return core::InvalidArgument("ssh_keys: must be an array");
  if (value.size() > kMaxSshKeys) return core::InvalidArgument("ssh_keys: at most 64 keys");
  json out = json::array();
  std::set<std::pair<std::string, std::string>> seen;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string f = "ssh_keys[" + std::to_string(i) + "]";
    const json& e = value[i];
    std::string owner = caller, text;
    if (e.is_object()) {
      BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(e, f, {"owner", "key"}));
      BOURSE_ASSIGN_OR_RETURN(const json* o, core::RequireMember(e, f, "owner"));
      BOURSE_ASSIGN_OR_RETURN(owner, core::StringFromJson(*o, f + ".owner", 128));
      BOURSE_ASSIGN_OR_RETURN(const json* k, core::RequireMember(e, f, "key"));
      BOURSE_ASSIGN_OR_RETURN(text, core::StringFromJson(*k, f + ".key", core::kMaxSshKeyLine));
      if (!owners.count(owner)) {
        return core::InvalidArgument(f + ".owner: " + owner + " is not one of the owners");
      }
    } else {
      BOURSE_ASSIGN_OR_RETURN(text, core::StringFromJson(e, f, core::kMaxSshKeyLine));
      if (!owners.count(owner)) {
        return core::InvalidArgument(f + ": a key given as a string belongs to the caller " +
                                     caller + ", who is not one of the owners; give " +
                                     "{\"owner\":KEY,\"key\":...}");
      }
    }
    auto k = core::ParseSshPublicKey(text);
    if (!k.ok()) return k.status().WithContext(e.is_object() ? f + ".key" : f);
    if (!seen.emplace(owner, k->type + " " + k->base64).second) {
      return core::InvalidArgument(f + ": the same key twice for owner " + owner);
    }
    out.push_back({{"owner", owner}, {"key", k->Line()}});
  }
  return out;
}

json OwnersSshKeys(const json& owners, const json& ssh_keys) {
  std::set<std::string> current;
  for (const json& o : owners) {
    if (o.is_string()) current.insert(o.get<std::string>());
  }
  json out = json::array();
  if (!ssh_keys.is_array()) return out;
  for (const json& k : ssh_keys) {
    if (!k.is_object() || !k.contains("owner") || !k["owner"].is_string() || !k.contains("key") ||
        !k["key"].is_string()) {
      continue;
    }
    if (current.count(k["owner"].get<std::string>())) out.push_back(k);
  }
  return out;
}

}  // namespace bourse::broker::internal
