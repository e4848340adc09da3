// `key = value` configuration files (the node guard's and the pooling agent's): one pair per
// line, `#` comments and blank lines ignored, spaces around key and value trimmed. The
// parser yields the lines; each line reads its value as a type and words its errors
// "config line N: <key>: ..." so every config names the key and the line alike.
//
//   BOURSE_ASSIGN_OR_RETURN(std::vector<KeyValueLine> lines, ParseKeyValueLines(text));
//   for (const KeyValueLine& l : lines) {
//     if (l.key == "period_s") BOURSE_ASSIGN_OR_RETURN(c.period_s, l.Int(1));
//     else if (l.key == "mode") BOURSE_ASSIGN_OR_RETURN(c.mode, l.OneOf({"a", "b"}));
//     else return l.UnknownKey();
//   }
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::core {

struct KeyValueLine {
  int64_t line_no = 0;
  std::string key;
  std::string value;

  // "config line N: <key>: <message>" as invalid_argument.
  Status Error(std::string_view message) const;
  // "config line N: unknown key \"<key>\"".
  Status UnknownKey() const;
  // A decimal integer in [min, max]. Error: "\"v\" is not an integer >= min" (or "in [min, max]").
  Result<int64_t> Int(int64_t min, int64_t max = std::numeric_limits<int64_t>::max()) const;
  // "true" or "false".
  Result<bool> Bool() const;
  // One of `choices`. Error: "\"v\" is not a, b or c".
  Result<std::string> OneOf(std::initializer_list<std::string_view> choices) const;
  // core::Money's decimal grammar.
  Result<Money> Amount() const;
  // DESIGN §8's resource list (ResourceVector::Parse).
  Result<ResourceVector> Resources() const;
  // A comma list, items trimmed, empty items dropped.
  std::vector<std::string> List() const;
};

// Errors: invalid_argument "config line N: expected key = value" for a line with no '='
// or an empty key.
Result<std::vector<KeyValueLine>> ParseKeyValueLines(std::string_view text);

}  // namespace bourse::core
