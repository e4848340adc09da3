// http::Request and http::Response: one HTTP/1.1 exchange as the transport
// hands it to a Service (http/server.h), plus the few URL helpers a
// dispatcher needs.
//
//   void Serve(http::Request q, http::Responder respond) {
//     if (const std::string* k = q.Header("bourse-key")) ...
//     respond({.status = 200, .body = "{}"});
//   }
//
// `path` is the path of the request-target as received, NOT percent-decoded:
// a dispatcher splits it into segments first and decodes each segment, so
// "%2F" is part of a segment, never a separator. The query is decoded.
//
// Thread safety: plain values.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bourse::http {

// Explicit bounds on what one request may make the server hold.
struct Limits {
  size_t max_head_bytes = 16 * 1024;  // request-line + fields + blank line
  size_t max_fields = 100;
  size_t max_body_bytes = 1 << 20;       // decoded (chunked framing not counted)
  size_t max_chunk_line_bytes = 1024;    // one chunk-size line with its extensions
  size_t max_trailer_bytes = 16 * 1024;  // all trailer fields of a chunked body
};

struct Request {
  std::string method;  // as received ("HEAD" included)
  std::string target;  // the request-target exactly as received (what is signed)
  std::string path;    // the path part of target, still percent-encoded
  std::vector<std::pair<std::string, std::string>> query;    // decoded, '+' is a space
  std::vector<std::pair<std::string, std::string>> headers;  // as received, values trimmed
  int minor_version = 1;                                     // HTTP/1.<minor>
  bool keep_alive = true;                                    // from the version and Connection
  std::string body;                                          // decoded
  std::string peer;  // the client's address ("127.0.0.1", "::1"); "local" on a Unix socket

  // The first field with this name (case-insensitive), or nullptr.
  const std::string* Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra header fields (e.g. X-Request-Id). The transport writes Content-Type,
  // Content-Length and Connection itself.
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// Percent-decodes `in`. plus_is_space: '+' decodes to ' ' (query strings).
// Returns false on a malformed escape.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// Splits a raw path "/a/b%2Fc" into its raw segments {"a", "b%2Fc"}; empty
// segments are kept (so "/a//b" has three).
std::vector<std::string_view> SplitPath(std::string_view raw_path);

// The reason phrase for a status code ("OK", "Not Found", ...).
const char* ReasonPhrase(int status);

}  // namespace bourse::http
