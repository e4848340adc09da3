// The `bourse` CLI's argument syntax and human output (DESIGN §8), in one
// place so every command reads and prints them alike.
//
//   ParseTime("+2h", now)            -> now + 7200
//   ParseTime("2026-12-06T14:03:00Z") / ParseTime("1796565780") / ParseTime("now")
//   ParseResources("cpu_mcores=500,mem_mib=512")   (omitted names = 0)
//   ParseKeyArg("ed25519:...") or ParseKeyArg("alice.pem")  (its public key)
//   ParseAmount("1.5")               -> core::Money
//   FormatTime(t, now)               -> "2026-12-06T14:03:00+00:00 (3m ago)"
//   Table t({"NAME", "PI"}); t.Row({"mit", "ed25519:..."}); t.Print();
//
// Every parser's error is invalid_argument naming the argument and the flaw.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/keys.h"
#include "core/money.h"
#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::clients {

// Unix seconds, RFC 3339 ("2026-12-06T14:03:00Z", "...+01:00", fractional
// seconds dropped), "now", or "+N" with unit s/m/h/d relative to `now`.
// `what` names the argument in errors ("--from").
core::Result<int64_t> ParseTime(std::string_view text, int64_t now, std::string_view what);
// "name=value,..." over core::ResourceVector's names; omitted = 0; each value
// a non-negative integer; the result must Validate().
core::Result<core::ResourceVector> ParseResources(std::string_view text, std::string_view what);
// "ed25519:<b64url>" or the path of a PEM private key file (its public key).
core::Result<core::PublicKey> ParseKeyArg(std::string_view text, std::string_view what);
// A decimal credit amount (core::Money's grammar).
core::Result<core::Money> ParseAmount(std::string_view text, std::string_view what);
// A positive integer (quantities).
core::Result<int64_t> ParseCount(std::string_view text, std::string_view what);

// The contents of a file, or of stdin for "-". Errors: invalid_argument
// "<what>: cannot read <path>".
core::Result<std::string> ReadFileOrStdin(const std::string& path, std::string_view what);

// Local RFC 3339 with the offset and the age relative to now:
// "2026-12-06T14:03:00+00:00 (3m ago)" / "(in 2h)" / "(now)".
std::string FormatTime(int64_t unix_s, int64_t now);
// "3m", "2h", "5d", "40s" (largest unit that fits, truncated).
std::string FormatDuration(int64_t seconds);
// Resource vector as the CLI reads it, zero components left out ("-" if all zero).
std::string FormatResources(const core::ResourceVector& rv);
std::string FormatResourcesJson(const nlohmann::json& res);
// A JSON money string in canonical form ("1.5" -> "1.500000000"); other JSON dumped.
std::string FormatMoneyJson(const nlohmann::json& m);
// A JSON string value, or its dump for other types ("" for null).
std::string Text(const nlohmann::json& j);
// "refused (expired)": the state, with the reason in parentheses when `reason`
// is a non-empty JSON string (orders, bindings).
std::string StateWithReason(const nlohmann::json& state, const nlohmann::json& reason);

// An aligned text table: columns separated by two spaces, headers upper case.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void Row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string Render() const;
  void Print() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

int64_t NowSeconds();
// A row's "created_ms" as FormatTime ("" when absent).
std::string FormatCreatedMs(const nlohmann::json& row);
// One JSON object as aligned "key  value" lines (resources and times readable).
void PrintObject(const nlohmann::json& row);

// Prints "key  value" lines aligned on the keys.
void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace bourse::clients
