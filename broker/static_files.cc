#include "broker/static_files.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "core/encoding.h"
#include "core/sha256.h"

namespace bourse::broker {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kAppCache = "no-cache";
constexpr std::string_view kVendorCache = "public, max-age=604800";

// The Content-Type for a file name, or "" for an extension not served.
std::string_view ContentTypeFor(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& [ext, type] : kTypes) {
    if (name.size() > ext.size() && name.substr(name.size() - ext.size()) == ext) return type;
  }
  return {};
}

core::Result<std::string> ReadFile(const fs::path& p, size_t max) {
  std::error_code ec;
  uintmax_t n = fs::file_size(p, ec);
  if (ec) return core::InvalidArgument("web file " + p.string() + ": " + ec.message());
  if (n > max) {
    return core::InvalidArgument("web file " + p.string() + " is " + std::to_string(n) +
                                 " bytes, beyond the limit of " + std::to_string(max));
  }
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  if (!in.good() && !in.eof())
    return core::InvalidArgument("web file " + p.string() + ": unreadable");
  return s.str();
}

// The packages named in DIR/package.json's "dependencies" (none when absent).
std::vector<std::string> Dependencies(const fs::path& dir) {
  std::vector<std::string> out;
  auto text = ReadFile(dir / "package.json", 1 << 20);
  if (!text.ok()) return out;
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (!doc.is_object() || !doc.contains("dependencies") || !doc["dependencies"].is_object()) {
    return out;
  }
  for (const auto& [name, version] : doc["dependencies"].items()) {
    if (name.find('/') == std::string::npos && name.find("..") == std::string::npos) {
      out.push_back(name);
    }
  }
  return out;
}

// Whether a decoded path is one a file could have: "/" then segments that
// are not empty, ".", or "..", and no backslash or NUL anywhere.
bool PlausiblePath(std::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  if (path.find('\0') != std::string_view::npos || path.find('\\') != std::string_view::npos) {
    return false;
  }
  if (path == "/") return true;
  size_t i = 1;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    if (seg.empty() || seg == "." || seg == "..") return false;
    i = j + 1;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool EtagMatches(std::string_view if_none_match, std::string_view etag) {
  size_t i = 0;
  while (i <= if_none_match.size()) {
    size_t j = if_none_match.find(',', i);
    if (j == std::string_view::npos) j = if_none_match.size();
    std::string_view tag = Trim(if_none_match.substr(i, j - i));
    if (tag == "*") return true;
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);  // weak comparison
    if (tag == etag) return true;
    i = j + 1;
  }
  return false;
}

core::Status StaticFiles::Add(const std::string& url, const std::string& fs_path, bool vendor,
                              size_t* total) {
  std::string_view type = ContentTypeFor(url);
  if (type.empty()) return core::Status::Ok();
  auto body = ReadFile(fs_path, kMaxFileBytes);
  if (!body.ok()) return body.status();
  *total += body->size();
  if (*total > kMaxTotalBytes) {
    return core::InvalidArgument("web directory " + dir_ + " holds more than " +
                                 std::to_string(kMaxTotalBytes) + " bytes (at " + fs_path + ")");
  }
  core::Digest d = core::Sha256(*body);
  File f;
  f.etag = "\"" + core::HexEncode(std::span<const uint8_t>(d.data(), 16)) + "\"";
  f.body = std::move(*body);
  f.content_type = std::string(type);
  f.cache_control = std::string(vendor ? kVendorCache : kAppCache);
  files_[url] = std::move(f);
  return core::Status::Ok();
}

core::Result<StaticFiles> StaticFiles::Load(const std::string& dir) {
  std::error_code ec;
  fs::path root(dir);
  if (!fs::is_directory(root, ec)) return core::NotFound("web directory " + dir + " not found");
  if (!fs::is_regular_file(root / "index.html", ec)) {
    return core::NotFound("web directory " + dir + " has no index.html");
  }
  StaticFiles out;
  out.dir_ = dir;
  size_t total = 0;
  // The application's files: everything but node_modules and npm's files.
  auto it = fs::recursive_directory_iterator(root, ec);
  if (ec) return core::InvalidArgument("web directory " + dir + ": " + ec.message());
  for (auto end = fs::recursive_directory_iterator(); it != end; it.increment(ec)) {
    if (ec) return core::InvalidArgument("web directory " + dir + ": " + ec.message());
    std::string rel = fs::relative(it->path(), root, ec).generic_string();
    if (it->is_directory(ec)) {
      if (rel == "node_modules" || rel.starts_with(".")) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec) || rel == "package.json" || rel == "package-lock.json") continue;
    BOURSE_RETURN_IF_ERROR(out.Add("/" + rel, it->path().string(), false, &total));
  }
  // The vendored packages: node_modules/<pkg>/dist/** as /vendor/<pkg>/**.
  for (const std::string& pkg : Dependencies(root)) {
    fs::path dist = root / "node_modules" / pkg / "dist";
    if (!fs::is_directory(dist, ec)) continue;
    for (const auto& e : fs::recursive_directory_iterator(dist, ec)) {
      if (!e.is_regular_file(ec)) continue;
      std::string rel = fs::relative(e.path(), dist, ec).generic_string();
      BOURSE_RETURN_IF_ERROR(
          out.Add("/vendor/" + pkg + "/" + rel, e.path().string(), true, &total));
    }
  }
  return out;
}

std::string StaticFiles::FindWebDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  fs::path bin = exe.parent_path();
  for (const fs::path& p : {bin / "web", bin / ".." / "share" / "bourse" / "web"}) {
    if (fs::is_regular_file(p / "index.html", ec)) return p.lexically_normal().string();
  }
  return "";
}

std::optional<StaticFiles::Answer> StaticFiles::Lookup(std::string_view path,
                                                       const std::string* if_none_match) const {
  if (!PlausiblePath(path)) return std::nullopt;
  auto it = files_.find(path == "/" ? std::string_view("/index.html") : path);
  if (it == files_.end()) return std::nullopt;
  const File& f = it->second;
  Answer a;
  a.content_type = f.content_type;
  a.headers = {{"ETag", f.etag}, {"Cache-Control", f.cache_control}};
  if (if_none_match != nullptr && EtagMatches(*if_none_match, f.etag)) {
    a.status = 304;
    return a;
  }
  a.body = &f.body;
  return a;
}

}  // namespace bourse::broker
