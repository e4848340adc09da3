// Canonical JSON (DESIGN §3; the RFC 8785 subset) and a strict JSON parser
// for untrusted input.
//
//   BOURSE_ASSIGN_OR_RETURN(std::string bytes, CanonicalJson(doc));
//   // members sorted by key (UTF-16 code units, as RFC 8785), no whitespace,
//   // minimal string escapes, integers only with |n| <= 2^53 - 1.
//   BOURSE_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJson(body));
//
// CanonicalJson refuses floats (even 1.0), integers beyond +/-(2^53 - 1) and
// strings that are not valid UTF-8, naming the path of the offending value
// ("$.res.cpu_mcores"). These are the bytes that get signed and hashed.
//
// ParseJson never throws: it refuses malformed text, duplicate object keys
// (a signed document must mean one thing), nesting deeper than max_depth and,
// unless allowed, floating-point numbers; the message names the byte offset.
//
// Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace bourse::core {

inline constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

Result<std::string> CanonicalJson(const nlohmann::json& value);
// Appends to *out; on error *out holds a partial document.
Status AppendCanonicalJson(const nlohmann::json& value, std::string* out);

struct JsonParseOptions {
  bool allow_floats = false;
  bool allow_duplicate_keys = false;
  int max_depth = 64;
};

Result<nlohmann::json> ParseJson(std::string_view text, const JsonParseOptions& options = {});

}  // namespace bourse::core
