// StaticFiles: the dashboard's files (web/), read once at start and served
// from memory for GET and HEAD of any path outside /v1 that names one.
//
//   auto files = StaticFiles::Load("/usr/share/bourse/web");  // or FindWebDir(argv0)
//   std::optional<StaticFiles::Answer> a = files->Lookup("/app.js", if_none_match);
//
// What is served: every file under DIR with a known extension (.html .js .mjs
// .css .svg .json .png .ico .txt .map), except package.json, package-lock.json
// and anything under node_modules/; and, for each package named in the
// "dependencies" of DIR/package.json, the files of node_modules/<pkg>/dist/ as
// /vendor/<pkg>/<file>. "/" is /index.html. Lookups match the decoded path
// exactly against that set, so nothing outside it can be named; paths with
// "..", ".", empty segments, a backslash or a NUL are refused before the
// lookup all the same (404, like an unknown name).
//
// Each answer carries Content-Type by extension, a strong ETag (the first
// 128 bits of the file's SHA-256), and Cache-Control: "no-cache" (revalidate
// every time: a 304 when If-None-Match matches) for the application's own
// files, "public, max-age=604800" for /vendor/ files.
//
// Limits: at most kMaxFileBytes per file and kMaxTotalBytes in all; Load
// fails naming the file beyond them.
//
// Thread safety: Load before serving; Lookup is const and safe from any thread.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace bourse::broker {

class StaticFiles {
 public:
  static constexpr size_t kMaxFileBytes = 8u << 20;
  static constexpr size_t kMaxTotalBytes = 64u << 20;

  struct Answer {
    int status = 200;  // 200, or 304 (not modified: empty body)
    std::string content_type;
    const std::string* body = nullptr;  // the file (owned by StaticFiles); null for 304
    std::vector<std::pair<std::string, std::string>> headers;  // ETag, Cache-Control
  };

  // Reads the files under `dir`. Errors: not_found when `dir` is not a
  // directory or has no index.html; invalid_argument when a file is beyond
  // the limits or unreadable, naming it.
  static core::Result<StaticFiles> Load(const std::string& dir);

  // The web directory next to the executable: the first that exists of
  // <dir of exe>/web and <dir of exe>/../share/bourse/web; "" when neither.
  static std::string FindWebDir();

  // The answer for a decoded request path, or nullopt when it names no file.
  // `if_none_match` is the request's If-None-Match field (nullptr: absent).
  std::optional<Answer> Lookup(std::string_view path, const std::string* if_none_match) const;

  const std::string& dir() const { return dir_; }
  size_t size() const { return files_.size(); }

 private:
  struct File {
    std::string body;
    std::string content_type;
    std::string etag;  // quoted
    std::string cache_control;
  };
  core::Status Add(const std::string& url, const std::string& fs_path, bool vendor, size_t* total);

  std::string dir_;
  std::map<std::string, File, std::less<>> files_;  // by URL path
};

// Whether an If-None-Match field value matches `etag` (quoted, strong): "*",
// or one of its comma-separated entity tags, weak (W/) ones compared weakly.
bool EtagMatches(std::string_view if_none_match, std::string_view etag);

}  // namespace bourse::broker
