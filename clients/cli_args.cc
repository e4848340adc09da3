#include "clients/cli_args.h"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <utility>

#include "core/clock.h"
#include "core/json_codec.h"

namespace bourse::clients {
namespace {

core::Status Bad(std::string_view what, const std::string& msg) {
  return core::InvalidArgument(std::string(what) + ": " + msg);
}

bool ParseInt64(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "+90m", "+2h", "+3d", "+45s".
core::Result<int64_t> ParseRelative(std::string_view text, int64_t now, std::string_view what) {
  std::string_view num = text.substr(1, text.size() - 2);
  int64_t n = 0;
  static const std::pair<char, int64_t> kUnits[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
  for (const auto& [unit, secs] : kUnits) {
    if (text.back() != unit) continue;
    if (!ParseInt64(num, n) || n > (int64_t{1} << 40) / secs) break;
    return now + n * secs;
  }
  return Bad(what, "\"" + std::string(text) + "\" is not +N followed by s, m, h or d");
}

// "2026-12-06T14:03:00Z", "2026-12-06T14:03:00.5+01:00".
core::Result<int64_t> ParseRfc3339(std::string_view text, std::string_view what) {
  std::string s(text);
  int y, mo, d, h, mi, sec, used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
                  &used) != 6 ||
      used != 19) {
    return Bad(what, "\"" + s + "\" is not unix seconds, RFC 3339, now or +N(s|m|h|d)");
  }
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  int64_t offset = 0;
  std::string zone = s.substr(i);
  int oh = 0, om = 0;
  if (zone == "Z" || zone == "z") {
    offset = 0;
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
             std::sscanf(zone.c_str() + 1, "%2d:%2d", &oh, &om) == 2) {
    offset = (zone[0] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
  } else {
    return Bad(what, "\"" + s + "\": RFC 3339 needs a zone (Z or +HH:MM)");
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
    return Bad(what, "\"" + s + "\" is not a valid date and time");
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) - offset;
}

}  // namespace

core::Result<int64_t> ParseTime(std::string_view text, int64_t now, std::string_view what) {
  if (text == "now") return now;
  int64_t v = 0;
  if (ParseInt64(text, v)) return v;
  if (text.size() >= 3 && text[0] == '+') return ParseRelative(text, now, what);
  return ParseRfc3339(text, what);
}

core::Result<core::ResourceVector> ParseResources(std::string_view text, std::string_view what) {
  auto rv = core::ResourceVector::Parse(text);
  if (!rv.ok()) return Bad(what, rv.status().message());
  return *rv;
}

core::Result<core::PublicKey> ParseKeyArg(std::string_view text, std::string_view what) {
  if (text.rfind("ed25519:", 0) == 0) {
    auto k = core::PublicKey::FromText(text);
    if (!k.ok()) return Bad(what, k.status().message());
    return *k;
  }
  auto k = core::PrivateKey::LoadPem(std::string(text));
  if (!k.ok()) {
    return Bad(what, "\"" + std::string(text) + "\" is neither ed25519:<key> nor a key file (" +
                         k.status().message() + ")");
  }
  return k->public_key();
}

core::Result<core::Money> ParseAmount(std::string_view text, std::string_view what) {
  auto m = core::Money::Parse(text);
  if (!m.ok()) return Bad(what, m.status().message());
  return *m;
}

core::Result<int64_t> ParseCount(std::string_view text, std::string_view what) {
  int64_t v = 0;
  if (!ParseInt64(text, v) || v <= 0) {
    return Bad(what, "\"" + std::string(text) + "\" is not a positive integer");
  }
  return v;
}

core::Result<std::string> ReadFileOrStdin(const std::string& path, std::string_view what) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Bad(what, "cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string FormatDuration(int64_t s) {
  if (s < 0) s = -s;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string FormatTime(int64_t unix_s, int64_t now) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  long off = tm.tm_gmtoff;
  char zone[32];  // offsets are < 24 h, but the compiler cannot know
  std::snprintf(zone, sizeof zone, "%c%02ld:%02ld", off < 0 ? '-' : '+',
                (std::labs(off) / 3600) % 100, (std::labs(off) % 3600) / 60);
  std::string age = unix_s == now  ? "now"
                    : unix_s < now ? FormatDuration(now - unix_s) + " ago"
                                   : "in " + FormatDuration(unix_s - now);
  return std::string(buf) + zone + " (" + age + ")";
}

std::string FormatResources(const core::ResourceVector& rv) {
  std::string out;
  auto add = [&out](const char* n, int64_t v) {
    if (v == 0) return;
    if (!out.empty()) out += ",";
    out += std::string(n) + "=" + std::to_string(v);
  };
  add("cpu_mcores", rv.cpu_mcores);
  add("mem_mib", rv.mem_mib);
  add("disk_mib", rv.disk_mib);
  add("net_min_kbps", rv.net_min_kbps);
  add("net_max_kbps", rv.net_max_kbps);
  return out.empty() ? "-" : out;
}

std::string FormatResourcesJson(const nlohmann::json& res) {
  auto rv = core::ResourceVectorFromJson(res, "res");
  return rv.ok() ? FormatResources(*rv) : Text(res);
}

std::string FormatMoneyJson(const nlohmann::json& m) {
  if (m.is_string()) {
    auto v = core::Money::Parse(m.get<std::string>());
    if (v.ok()) return v->ToString();
  }
  return Text(m);
}

std::string Text(const nlohmann::json& j) {
  if (j.is_null()) return "";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

std::string StateWithReason(const nlohmann::json& state, const nlohmann::json& reason) {
  std::string why = reason.is_string() ? reason.get<std::string>() : "";
  return Text(state) + (why.empty() ? "" : " (" + why + ")");
}

std::string Table::Render() const {
  std::vector<size_t> width(headers_.size(), 0);
  auto measure = [&width](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  };
  measure(headers_);
  for (const auto& r : rows_) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string l;
    for (size_t i = 0; i < width.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : "";
      l += cell;
      if (i + 1 < width.size()) l += std::string(width[i] - cell.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(headers_);
  for (const auto& r : rows_) line(r);
  return out;
}

void Table::Print() const { std::fputs(Render().c_str(), stdout); }

int64_t NowSeconds() { return core::SystemClock::Get().NowSeconds(); }

std::string FormatCreatedMs(const nlohmann::json& row) {
  if (!row.contains("created_ms") || !row["created_ms"].is_number_integer()) return "";
  return FormatTime(row["created_ms"].get<int64_t>() / 1000, NowSeconds());
}

void PrintObject(const nlohmann::json& row) {
  std::vector<std::pair<std::string, std::string>> f;
  for (const auto& [k, v] : row.items()) {
    if (k == "created_ms") {
      f.push_back({"created", FormatCreatedMs(row)});
    } else if (k == "capacity" || k == "res" || k == "resources" || k == "unit") {
      f.push_back({k, v.is_null() ? "" : FormatResourcesJson(v)});
    } else if ((k == "expires" || k == "not_before" || k == "not_after" || k == "close") && v.is_number_integer()) {
      f.push_back({k, FormatTime(v.get<int64_t>(), NowSeconds())});
    } else {
      f.push_back({k, Text(v)});
    }
  }
  PrintFields(f);
}

void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, k.size());
  for (const auto& [k, v] : fields) {
    std::printf("%-*s  %s\n", static_cast<int>(w), k.c_str(), v.c_str());
  }
}

}  // namespace bourse::clients
