// JSON codecs for the core vocabulary, validating every field of outside input.
//
//   nlohmann::json j = ResourceVectorToJson(rv);
//   BOURSE_ASSIGN_OR_RETURN(ResourceVector rv, ResourceVectorFromJson(j, "res"));
//   BOURSE_ASSIGN_OR_RETURN(Money m, MoneyFromJson(body["limit"], "limit"));
//
// Decoders refuse missing fields, unknown fields, wrong types and values that
// fail validation; the message names the field ("res.cpu_mcores: ...").
// Money travels as a decimal string, never a JSON number.
//
// Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/interval.h"
#include "core/money.h"
#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::core {

nlohmann::json ResourceVectorToJson(const ResourceVector& rv);
Result<ResourceVector> ResourceVectorFromJson(const nlohmann::json& j, std::string_view field);

nlohmann::json MoneyToJson(const Money& m);  // canonical string
Result<Money> MoneyFromJson(const nlohmann::json& j, std::string_view field);

// Field helpers for request decoding.
// Errors: invalid_argument "<field>: unknown field \"x\"" for any member of
// `obj` not in `allowed`, or "<field>: must be an object".
Status CheckObjectFields(const nlohmann::json& obj, std::string_view field,
                         std::initializer_list<std::string_view> allowed);
// An integer in [min, max]. Errors: invalid_argument naming the field.
Result<int64_t> IntFromJson(const nlohmann::json& j, std::string_view field, int64_t min,
                            int64_t max);
// A string of at most max_len bytes. Errors: invalid_argument naming the field.
Result<std::string> StringFromJson(const nlohmann::json& j, std::string_view field,
                                   size_t max_len = 4096);
// obj[key], or an error "<field>.<key>: missing".
Result<const nlohmann::json*> RequireMember(const nlohmann::json& obj, std::string_view field,
                                            std::string_view key);

}  // namespace bourse::core
