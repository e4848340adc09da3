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
#include <vector>

#include "core/interval.h"
#include "core/keys.h"
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

// Request-body members, each error naming the field.
// obj[name] if present, nullptr otherwise.
const nlohmann::json* OptionalMember(const nlohmann::json& obj, std::string_view name);
// A non-empty (unless allow_empty) string member of at most max_len bytes.
Result<std::string> StrField(const nlohmann::json& body, std::string_view name,
                             size_t max_len = 4096, bool allow_empty = false);
// A public key member in its text form ("ed25519:...").
Result<PublicKey> KeyField(const nlohmann::json& body, std::string_view name);
// An array member of at most max_items key texts, each returned normalised.
Result<std::vector<std::string>> KeyListField(const nlohmann::json& body, std::string_view name,
                                              size_t max_items);
// The window [not_before, not_after) of a request body (unix s; not_after
// must be after not_before).
Result<Interval> WindowFields(const nlohmann::json& body);

// JSON this program wrote to its own database: parsed, or null if it does
// not parse (never an error: the row is shown as it can be).
nlohmann::json ParseStoredJson(std::string_view text);

}  // namespace bourse::core
