#include "core/json_codec.h"

#include "core/canonical_json.h"

namespace bourse::core {
namespace {

std::string Join(std::string_view field, std::string_view key) {
  std::string out(field);
  if (!out.empty()) out += '.';
  out += key;
  return out;
}

}  // namespace

nlohmann::json ResourceVectorToJson(const ResourceVector& rv) {
  return nlohmann::json{{"cpu_mcores", rv.cpu_mcores},
                        {"mem_mib", rv.mem_mib},
                        {"disk_mib", rv.disk_mib},
                        {"net_min_kbps", rv.net_min_kbps},
                        {"net_max_kbps", rv.net_max_kbps}};
}

Result<ResourceVector> ResourceVectorFromJson(const nlohmann::json& j, std::string_view field) {
  BOURSE_RETURN_IF_ERROR(CheckObjectFields(
      j, field, {"cpu_mcores", "mem_mib", "disk_mib", "net_min_kbps", "net_max_kbps"}));
  ResourceVector rv;
  struct F {
    const char* name;
    int64_t ResourceVector::*m;
  };
  static constexpr F kFields[] = {{"cpu_mcores", &ResourceVector::cpu_mcores},
                                  {"mem_mib", &ResourceVector::mem_mib},
                                  {"disk_mib", &ResourceVector::disk_mib},
                                  {"net_min_kbps", &ResourceVector::net_min_kbps},
                                  {"net_max_kbps", &ResourceVector::net_max_kbps}};
  for (const F& f : kFields) {
    BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* v, RequireMember(j, field, f.name));
    BOURSE_ASSIGN_OR_RETURN(rv.*f.m, IntFromJson(*v, Join(field, f.name), 0, kMaxSafeInteger));
  }
  Status st = rv.Validate();
  if (!st.ok()) return InvalidArgument(std::string(field) + ": " + st.message());
  return rv;
}

nlohmann::json MoneyToJson(const Money& m) { return m.ToString(); }

Result<Money> MoneyFromJson(const nlohmann::json& j, std::string_view field) {
  if (!j.is_string()) {
    return InvalidArgument(std::string(field) +
                           ": money must be a decimal string such as \"12.5\"");
  }
  auto m = Money::Parse(j.get_ref<const std::string&>());
  if (!m.ok()) return InvalidArgument(std::string(field) + ": " + m.status().message());
  return m;
}

Status CheckObjectFields(const nlohmann::json& obj, std::string_view field,
                         std::initializer_list<std::string_view> allowed) {
  if (!obj.is_object()) {
    return InvalidArgument((field.empty() ? std::string("body") : std::string(field)) +
                           ": must be a JSON object");
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (std::string_view a : allowed) {
      if (it.key() == a) {
        known = true;
        break;
      }
    }
    if (!known) {
      return InvalidArgument(Join(field, it.key()) + ": unknown field");
    }
  }
  return Status::Ok();
}

Result<int64_t> IntFromJson(const nlohmann::json& j, std::string_view field, int64_t min,
                            int64_t max) {
  int64_t v;
  if (j.is_number_integer() && !j.is_number_unsigned()) {
    v = j.get<int64_t>();
  } else if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      return InvalidArgument(std::string(field) + ": " + std::to_string(u) + " is too large");
    }
    v = static_cast<int64_t>(u);
  } else {
    return InvalidArgument(std::string(field) + ": must be an integer");
  }
  if (v < min || v > max) {
    return InvalidArgument(std::string(field) + ": " + std::to_string(v) + " is outside [" +
                           std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return v;
}

Result<std::string> StringFromJson(const nlohmann::json& j, std::string_view field,
                                   size_t max_len) {
  if (!j.is_string()) return InvalidArgument(std::string(field) + ": must be a string");
  const auto& s = j.get_ref<const std::string&>();
  if (s.size() > max_len) {
    return InvalidArgument(std::string(field) + ": longer than " + std::to_string(max_len) +
                           " bytes");
  }
  return s;
}

Result<const nlohmann::json*> RequireMember(const nlohmann::json& obj, std::string_view field,
                                            std::string_view key) {
  if (!obj.is_object()) return InvalidArgument(std::string(field) + ": must be a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) return InvalidArgument(Join(field, key) + ": missing");
  return &*it;
}

const nlohmann::json* OptionalMember(const nlohmann::json& body, std::string_view name) {
  auto it = body.find(name);
  return it == body.end() ? nullptr : &*it;
}

Result<std::string> StrField(const nlohmann::json& body, std::string_view name,
                                   size_t max_len, bool allow_empty) {
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* v, RequireMember(body, "", name));
  BOURSE_ASSIGN_OR_RETURN(std::string s, StringFromJson(*v, name, max_len));
  if (s.empty() && !allow_empty) return InvalidArgument(std::string(name) + ": empty");
  return s;
}

Result<PublicKey> KeyField(const nlohmann::json& body, std::string_view name) {
  BOURSE_ASSIGN_OR_RETURN(std::string s, StrField(body, name, 200));
  auto k = PublicKey::FromText(s);
  if (!k.ok()) return InvalidArgument(std::string(name) + ": " + k.status().message());
  return *k;
}

Result<std::vector<std::string>> KeyListField(const nlohmann::json& body,
                                                    std::string_view name, size_t max_items) {
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* v, RequireMember(body, "", name));
  if (!v->is_array()) return InvalidArgument(std::string(name) + ": must be an array");
  if (v->size() > max_items) {
    return InvalidArgument(std::string(name) + ": at most " + std::to_string(max_items) +
                                 " items");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    std::string f = std::string(name) + "[" + std::to_string(i) + "]";
    if (!(*v)[i].is_string()) return InvalidArgument(f + ": must be a string");
    auto k = PublicKey::FromText((*v)[i].get<std::string>());
    if (!k.ok()) return InvalidArgument(f + ": " + k.status().message());
    out.push_back(k->ToText());
  }
  return out;
}

Result<Interval> WindowFields(const nlohmann::json& body) {
  Interval w;
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* nb, RequireMember(body, "", "not_before"));
  BOURSE_ASSIGN_OR_RETURN(w.not_before,
                          IntFromJson(*nb, "not_before", 0, kMaxSafeInteger));
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* na, RequireMember(body, "", "not_after"));
  BOURSE_ASSIGN_OR_RETURN(w.not_after,
                          IntFromJson(*na, "not_after", 0, kMaxSafeInteger));
  if (w.not_after <= w.not_before) {
    return InvalidArgument("not_after: must be after not_before");
  }
  return w;
}

nlohmann::json ParseStoredJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

}  // namespace bourse::core
