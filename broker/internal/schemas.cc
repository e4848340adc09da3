#include "broker/internal/schemas.h"

#include "core/canonical_json.h"
#include "core/json_codec.h"

namespace bourse::broker::internal {

const nlohmann::json* Optional(const nlohmann::json& body, std::string_view name) {
  auto it = body.find(name);
  return it == body.end() ? nullptr : &*it;
}

core::Result<std::string> StrField(const nlohmann::json& body, std::string_view name,
                                   size_t max_len, bool allow_empty) {
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* v, core::RequireMember(body, "", name));
  BOURSE_ASSIGN_OR_RETURN(std::string s, core::StringFromJson(*v, name, max_len));
  if (s.empty() && !allow_empty) return core::InvalidArgument(std::string(name) + ": empty");
  return s;
}

core::Result<core::PublicKey> KeyField(const nlohmann::json& body, std::string_view name) {
  BOURSE_ASSIGN_OR_RETURN(std::string s, StrField(body, name, 200));
  auto k = core::PublicKey::FromText(s);
  if (!k.ok()) return core::InvalidArgument(std::string(name) + ": " + k.status().message());
  return *k;
}

core::Result<std::vector<std::string>> KeyListField(const nlohmann::json& body,
                                                    std::string_view name, size_t max_items) {
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* v, core::RequireMember(body, "", name));
  if (!v->is_array()) return core::InvalidArgument(std::string(name) + ": must be an array");
  if (v->size() > max_items) {
    return core::InvalidArgument(std::string(name) + ": at most " + std::to_string(max_items) +
                                 " items");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    std::string f = std::string(name) + "[" + std::to_string(i) + "]";
    if (!(*v)[i].is_string()) return core::InvalidArgument(f + ": must be a string");
    auto k = core::PublicKey::FromText((*v)[i].get<std::string>());
    if (!k.ok()) return core::InvalidArgument(f + ": " + k.status().message());
    out.push_back(k->ToText());
  }
  return out;
}

core::Result<core::Interval> WindowFields(const nlohmann::json& body) {
  core::Interval w;
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* nb, core::RequireMember(body, "", "not_before"));
  BOURSE_ASSIGN_OR_RETURN(w.not_before,
                          core::IntFromJson(*nb, "not_before", 0, core::kMaxSafeInteger));
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* na, core::RequireMember(body, "", "not_after"));
  BOURSE_ASSIGN_OR_RETURN(w.not_after,
                          core::IntFromJson(*na, "not_after", 0, core::kMaxSafeInteger));
  if (w.not_after <= w.not_before) {
    return core::InvalidArgument("not_after: must be after not_before");
  }
  return w;
}

}  // namespace bourse::broker::internal
