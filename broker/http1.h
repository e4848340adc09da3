// http1: the broker's HTTP/1.1 request parser (RFC 9112), pure functions
// over bytes so they can be tested and fuzzed without sockets.
//
//   http1::Request req;
//   http1::Error err;
//   size_t head_len = 0;
//   switch (http1::ParseHead(buf, limits, &req, &head_len, &err)) {
//     case http1::Parse::kIncomplete: ...read more...
//     case http1::Parse::kError: ...answer err.status with err.message, close...
//     case http1::Parse::kDone: ...the body starts at buf[head_len]...
//   }
//
// What it accepts:
//   - request-line `method SP request-target SP HTTP/1.1|HTTP/1.0`, the
//     target in origin form (`/path?query`) or `*`; empty lines before the
//     request-line are skipped; a bare LF ends a line like CRLF (RFC 9112
//     §2.2), a bare CR is an error;
//   - header fields `name: value` with a token name, no whitespace before the
//     colon, no obs-fold, no control bytes other than HTAB in the value;
//   - the body framed by Content-Length (repeats must agree) or by
//     `Transfer-Encoding: chunked` (DecodeChunked), never both.
// Refusals carry the status to answer: 400 (malformed, missing Host on 1.1),
// 413 (body over the limit), 417 (an Expect other than 100-continue), 431
// (head or field count over the limits), 501 (a transfer coding other than
// chunked), 505 (an HTTP version other than 1.0 and 1.1).
//
// Thread safety: stateless functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bourse::broker::http1 {

struct Limits {
  size_t max_head_bytes = 16 * 1024;  // request-line + fields + blank line
  size_t max_fields = 100;
  size_t max_body_bytes = 1 << 20;
};

struct Request {
  std::string method;
  std::string target;  // the request-target exactly as received
  std::string path;    // percent-decoded path, no query
  std::vector<std::pair<std::string, std::string>> query;    // decoded, '+' is a space
  std::vector<std::pair<std::string, std::string>> headers;  // as received, values trimmed
  int minor_version = 1;   // HTTP/1.<minor>
  bool keep_alive = true;  // from the version and Connection
  bool expect_continue = false;
  bool chunked = false;
  size_t content_length = 0;  // when !chunked

  // The first field with this name (case-insensitive), or nullptr.
  const std::string* Header(std::string_view name) const;
};

enum class Parse { kIncomplete, kDone, kError };

struct Error {
  int status = 400;
  std::string message;
};

// Parses the request head at the start of `buf`. kDone: *out is filled and
// *head_len is the number of bytes of the head (including any skipped
// leading empty lines and the terminating blank line).
Parse ParseHead(std::string_view buf, const Limits& limits, Request* out, size_t* head_len,
                Error* err);

// Decodes a chunked body at the start of `buf` (the bytes after the head).
// kDone: the decoded body is in *body and *consumed is the number of bytes of
// `buf` it took (chunks, last chunk, trailer fields, blank line). Trailer
// fields are checked for form and otherwise ignored.
Parse DecodeChunked(std::string_view buf, size_t max_body_bytes, std::string* body,
                    size_t* consumed, Error* err);

// Percent-decodes `in`. plus_is_space: '+' decodes to ' ' (query strings).
// Returns false on a malformed escape.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// The reason phrase for a status code ("OK", "Not Found", ...).
const char* ReasonPhrase(int status);

}  // namespace bourse::broker::http1
