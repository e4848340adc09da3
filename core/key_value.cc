#include "core/key_value.h"

#include <charconv>

namespace bourse::core {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string Where(int64_t line_no) { return "config line " + std::to_string(line_no); }

}  // namespace

Status KeyValueLine::Error(std::string_view message) const {
  return InvalidArgument(Where(line_no) + ": " + key + ": " + std::string(message));
}

Status KeyValueLine::UnknownKey() const {
  return InvalidArgument(Where(line_no) + ": unknown key \"" + key + "\"");
}

Result<int64_t> KeyValueLine::Int(int64_t min, int64_t max) const {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size() || v < min || v > max) {
    std::string range = max == std::numeric_limits<int64_t>::max()
                            ? ">= " + std::to_string(min)
                            : "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    return Error("\"" + value + "\" is not an integer " + range);
  }
  return v;
}

Result<bool> KeyValueLine::Bool() const {
  if (value != "true" && value != "false") return Error("\"" + value + "\" is not true or false");
  return value == "true";
}

Result<std::string> KeyValueLine::OneOf(std::initializer_list<std::string_view> choices) const {
  std::string list;
  size_t i = 0;
  for (std::string_view c : choices) {
    if (value == c) return value;
    list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + std::string(c);
    ++i;
  }
  return Error("\"" + value + "\" is not " + list);
}

Result<Money> KeyValueLine::Amount() const {
  auto m = Money::Parse(value);
  if (!m.ok()) return Error("\"" + value + "\": " + m.status().message());
  return *m;
}

Result<ResourceVector> KeyValueLine::Resources() const {
  auto rv = ResourceVector::Parse(value);
  if (!rv.ok()) return Error(rv.status().message());
  return *rv;
}

std::vector<std::string> KeyValueLine::List() const {
  std::vector<std::string> out;
  std::string_view rest = value;
  for (;;) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

Result<std::vector<KeyValueLine>> ParseKeyValueLines(std::string_view text) {
  std::vector<KeyValueLine> lines;
  int64_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || Trim(line.substr(0, eq)).empty()) {
      return InvalidArgument(Where(line_no) + ": expected key = value");
    }
    lines.push_back(
        {line_no, std::string(Trim(line.substr(0, eq))), std::string(Trim(line.substr(eq + 1)))});
  }
  return lines;
}

}  // namespace bourse::core
