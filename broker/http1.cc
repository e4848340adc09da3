#include "broker/http1.h"

#include <cstdint>

namespace bourse::broker::http1 {
namespace {

bool IsTchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Parse Fail(Error* err, int status, std::string msg) {
  err->status = status;
  err->message = std::move(msg);
  return Parse::kError;
}

// Finds the next line in buf[pos..]: kDone with [*start, *end) the line
// without its terminator and *next the position after it; kIncomplete when
// no terminator yet; kError on a bare CR.
Parse NextLine(std::string_view buf, size_t pos, size_t* end, size_t* next, Error* err) {
  for (size_t i = pos; i < buf.size(); ++i) {
    if (buf[i] == '\n') {
      *end = (i > pos && buf[i - 1] == '\r') ? i - 1 : i;
      *next = i + 1;
      return Parse::kDone;
    }
    if (buf[i] == '\r' && i + 1 < buf.size() && buf[i + 1] != '\n') {
      return Fail(err, 400, "malformed HTTP request: a bare CR in the head");
    }
  }
  return Parse::kIncomplete;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits a comma-separated field value into trimmed, lower-cased tokens.
std::vector<std::string> Tokens(std::string_view v) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= v.size()) {
    size_t c = v.find(',', p);
    if (c == std::string_view::npos) c = v.size();
    std::string_view t = Trim(v.substr(p, c - p));
    if (!t.empty()) {
      std::string s(t);
      for (char& ch : s) ch = Lower(ch);
      out.push_back(std::move(s));
    }
    p = c + 1;
  }
  return out;
}

}  // namespace

const std::string* Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return &v;
  }
  return nullptr;
}

bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

Parse ParseHead(std::string_view buf, const Limits& limits, Request* out, size_t* head_len,
                Error* err) {
  *out = Request();
  size_t pos = 0;
  size_t end = 0, next = 0;
  // The next line of the head [pos, end), `next` after it, within the
  // head-size limit.
  auto head_line = [&]() -> Parse {
    Parse p = NextLine(buf, pos, &end, &next, err);
    if (p == Parse::kError) return p;
    if (p == Parse::kDone ? next > limits.max_head_bytes : buf.size() > limits.max_head_bytes) {
      return Fail(err, 431, "request head larger than " + std::to_string(limits.max_head_bytes) +
                                " bytes");
    }
    return p;
  };
  // Request-line, after any empty lines (RFC 9112 §2.2).
  for (;;) {
    Parse p = head_line();
    if (p != Parse::kDone) return p;
    if (end > pos) break;
    pos = next;
  }
  std::string_view line = buf.substr(pos, end - pos);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(err, 400, "malformed HTTP request: request-line is not `method target version`");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (method.empty()) return Fail(err, 400, "malformed HTTP request: empty method");
  for (char c : method) {
    if (!IsTchar(static_cast<unsigned char>(c))) {
      return Fail(err, 400, "malformed HTTP request: method is not a token");
    }
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return Fail(err, 400, "malformed HTTP request: bad HTTP-version");
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return Fail(err, 505, "HTTP version " + std::string(version.substr(5)) + " not supported");
  }
  out->minor_version = version[7] - '0';
  if (target.empty()) return Fail(err, 400, "malformed HTTP request: empty request-target");
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return Fail(err, 400, "malformed HTTP request: control byte in the request-target");
    }
  }
  if (target != "*" && target[0] != '/') {
    return Fail(err, 400, "malformed HTTP request: request-target must be a path (origin form)");
  }
  out->method = std::string(method);
  out->target = std::string(target);
  size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  if (!PercentDecode(raw_path, false, &out->path)) {
    return Fail(err, 400, "malformed HTTP request: bad percent-escape in the path");
  }
  if (q != std::string_view::npos) {
    std::string_view qs = target.substr(q + 1);
    size_t p = 0;
    while (p <= qs.size()) {
      size_t amp = qs.find('&', p);
      if (amp == std::string_view::npos) amp = qs.size();
      std::string_view pair = qs.substr(p, amp - p);
      if (!pair.empty()) {
        size_t eq = pair.find('=');
        std::string k, v;
        if (!PercentDecode(pair.substr(0, eq), true, &k) ||
            (eq != std::string_view::npos && !PercentDecode(pair.substr(eq + 1), true, &v))) {
          return Fail(err, 400, "malformed HTTP request: bad percent-escape in the query");
        }
        out->query.emplace_back(std::move(k), std::move(v));
      }
      p = amp + 1;
    }
  }

  // Fields up to the blank line.
  pos = next;
  for (;;) {
    Parse p = head_line();
    if (p != Parse::kDone) return p;
    if (end == pos) break;  // blank line
    line = buf.substr(pos, end - pos);
    if (line[0] == ' ' || line[0] == '\t') {
      return Fail(err, 400, "malformed HTTP request: obsolete line folding");
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Fail(err, 400, "malformed HTTP request: header line without `name:`");
    }
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!IsTchar(static_cast<unsigned char>(c))) {
        return Fail(err, 400, "malformed HTTP request: bad header name");
      }
    }
    std::string_view value = Trim(line.substr(colon + 1));
    for (char c : value) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && u != '\t') || u == 0x7f) {
        return Fail(err, 400, "malformed HTTP request: control byte in header " +
                                  std::string(name));
      }
    }
    if (out->headers.size() >= limits.max_fields) {
      return Fail(err, 431, "more than " + std::to_string(limits.max_fields) + " header fields");
    }
    out->headers.emplace_back(std::string(name), std::string(value));
    pos = next;
  }
  *head_len = next;

  // Framing and connection semantics.
  int hosts = 0;
  bool have_cl = false, have_te = false;
  bool conn_close = false, conn_keep = false;
  for (const auto& [k, v] : out->headers) {
    if (IEquals(k, "host")) {
      ++hosts;
    } else if (IEquals(k, "content-length")) {
      const std::vector<std::string> tokens = Tokens(v);
      if (tokens.empty()) return Fail(err, 400, "malformed HTTP request: bad Content-Length");
      for (const std::string& t : tokens) {
        if (t.empty() || t.size() > 19 ||
            t.find_first_not_of("0123456789") != std::string::npos) {
          return Fail(err, 400, "malformed HTTP request: bad Content-Length");
        }
        uint64_t n = std::stoull(t);
        if (have_cl && n != out->content_length) {
          return Fail(err, 400, "malformed HTTP request: conflicting Content-Length values");
        }
        if (n > limits.max_body_bytes) {
          return Fail(err, 413, "body: larger than the limit of " +
                                    std::to_string(limits.max_body_bytes) + " bytes");
        }
        out->content_length = static_cast<size_t>(n);
        have_cl = true;
      }
    } else if (IEquals(k, "transfer-encoding")) {
      for (const std::string& t : Tokens(v)) {
        if (t != "chunked" || have_te) {
          return Fail(err, 501, "transfer coding \"" + std::string(v) + "\" not implemented");
        }
        have_te = true;
      }
    } else if (IEquals(k, "connection")) {
      for (const std::string& t : Tokens(v)) {
        if (t == "close") conn_close = true;
        if (t == "keep-alive") conn_keep = true;
      }
    } else if (IEquals(k, "expect")) {
      if (!IEquals(Trim(v), "100-continue")) {
        return Fail(err, 417, "Expect \"" + std::string(v) + "\" not supported");
      }
      out->expect_continue = out->minor_version == 1;
    }
  }
  if (out->minor_version == 1 && hosts != 1) {
    return Fail(err, 400, hosts == 0 ? "malformed HTTP request: no Host header"
                                     : "malformed HTTP request: more than one Host header");
  }
  if (have_te && have_cl) {
    return Fail(err, 400, "malformed HTTP request: both Content-Length and Transfer-Encoding");
  }
  if (have_te && out->minor_version == 0) {
    return Fail(err, 400, "malformed HTTP request: Transfer-Encoding in an HTTP/1.0 request");
  }
  out->chunked = have_te;
  out->keep_alive = out->minor_version == 1 ? !conn_close : (conn_keep && !conn_close);
  return Parse::kDone;
}

Parse DecodeChunked(std::string_view buf, size_t max_body_bytes, std::string* body,
                    size_t* consumed, Error* err) {
  body->clear();
  size_t pos = 0, end = 0, next = 0;
  for (;;) {
    Parse p = NextLine(buf, pos, &end, &next, err);
    if (p != Parse::kDone) {
      if (p == Parse::kIncomplete && buf.size() - pos > 1024) {
        return Fail(err, 400, "malformed HTTP request: chunk-size line too long");
      }
      return p;
    }
    std::string_view line = buf.substr(pos, end - pos);
    size_t semi = line.find(';');
    std::string_view hex = Trim(line.substr(0, semi));
    if (hex.empty() || hex.size() > 15) {
      return Fail(err, 400, "malformed HTTP request: bad chunk-size");
    }
    uint64_t n = 0;
    for (char c : hex) {
      int d = HexValue(c);
      if (d < 0) return Fail(err, 400, "malformed HTTP request: bad chunk-size");
      n = n * 16 + static_cast<uint64_t>(d);
    }
    if (n > max_body_bytes || body->size() + n > max_body_bytes) {
      return Fail(err, 413,
                  "body: larger than the limit of " + std::to_string(max_body_bytes) + " bytes");
    }
    pos = next;
    if (n == 0) break;
    if (buf.size() - pos < n + 1) return Parse::kIncomplete;
    body->append(buf.substr(pos, n));
    pos += n;
    // CRLF (or LF) after the chunk data.
    if (buf[pos] == '\n') {
      pos += 1;
    } else if (buf[pos] == '\r') {
      if (buf.size() - pos < 2) return Parse::kIncomplete;
      if (buf[pos + 1] != '\n') return Fail(err, 400, "malformed HTTP request: bad chunk end");
      pos += 2;
    } else {
      return Fail(err, 400, "malformed HTTP request: chunk data longer than its size");
    }
  }
  // Trailer fields, then the blank line.
  for (size_t fields = 0;; ++fields) {
    Parse p = NextLine(buf, pos, &end, &next, err);
    if (p != Parse::kDone) {
      if (p == Parse::kIncomplete && buf.size() - pos > 16 * 1024) {
        return Fail(err, 431, "chunked trailer too large");
      }
      return p;
    }
    if (end == pos) break;
    if (fields >= 100) return Fail(err, 431, "too many trailer fields");
    std::string_view line = buf.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Fail(err, 400, "malformed HTTP request: bad trailer field");
    }
    for (char c : line.substr(0, colon)) {
      if (!IsTchar(static_cast<unsigned char>(c))) {
        return Fail(err, 400, "malformed HTTP request: bad trailer field");
      }
    }
    pos = next;
  }
  *consumed = next;
  return Parse::kDone;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace bourse::broker::http1
