#include "http/parser.h"

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>
#include <utility>

namespace bourse::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

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

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Our own refusals travel through Beast as this error; the status and the
// message are kept by the parser.
beast::error_code Refused() {
  return boost::system::errc::make_error_code(boost::system::errc::protocol_error);
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

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path[0] != '/') return out;
  size_t start = 1;
  for (;;) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return out;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

// Beast's parser with the callbacks that build a Request and apply the
// limits Beast does not know (field count, chunk lines, trailers, Host,
// Expect, transfer codings, the target's form).
class RequestParser::Impl : public bhttp::basic_parser<true> {
 public:
  explicit Impl(const Limits& limits) : limits_(limits) {
    header_limit(static_cast<std::uint32_t>(limits.max_head_bytes));
    body_limit(limits.max_body_bytes);
    eager(true);
  }

  Request req;
  int status = 0;  // set with the message when a callback refuses
  std::string message;
  bool expect_continue = false;
  bool body_seen = false;
  std::string_view input;  // what the current put() was given

 private:
  void Fail(beast::error_code& ec, int st, std::string msg) {
    status = st;
    message = std::move(msg);
    ec = Refused();
  }

  void on_request_impl(bhttp::verb, beast::string_view method, beast::string_view target,
                       int version, beast::error_code& ec) override {
    if (version != 10 && version != 11) {
      return Fail(ec, 505,
                  "HTTP version " + std::to_string(version / 10) + "." +
                      std::to_string(version % 10) + " not supported");
    }
    req.minor_version = version % 10;
    if (target.empty()) return Fail(ec, 400, "malformed HTTP request: empty request-target");
    if (target != "*" && target[0] != '/') {
      return Fail(ec, 400, "malformed HTTP request: request-target must be a path (origin form)");
    }
    req.method.assign(method.data(), method.size());
    req.target.assign(target.data(), target.size());
    std::string_view t = req.target;
    size_t q = t.find('?');
    req.path.assign(t.substr(0, q));
    std::string scratch;
    if (!PercentDecode(req.path, false, &scratch)) {
      return Fail(ec, 400, "malformed HTTP request: bad percent-escape in the path");
    }
    if (q == std::string_view::npos) return;
    std::string_view qs = t.substr(q + 1);
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
          return Fail(ec, 400, "malformed HTTP request: bad percent-escape in the query");
        }
        req.query.emplace_back(std::move(k), std::move(v));
      }
      p = amp + 1;
    }
  }

  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override {
    ec = bhttp::error::bad_status;  // never called for requests
  }

  void on_field_impl(bhttp::field f, beast::string_view name, beast::string_view value,
                     beast::error_code& ec) override {
    std::string_view v = Trim(std::string_view(value.data(), value.size()));
    if (is_header_done()) return;  // a trailer field (bounded in on_chunk_header_impl): dropped
    if (req.headers.size() >= limits_.max_fields) {
      return Fail(ec, 431, "more than " + std::to_string(limits_.max_fields) + " header fields");
    }
    switch (f) {
      case bhttp::field::host:
        if (++hosts_ > 1) return Fail(ec, 400, "malformed HTTP request: more than one Host");
        break;
      case bhttp::field::transfer_encoding:
        if (!IEquals(v, "chunked")) {
          return Fail(ec, 501,
                      "transfer coding \"" + std::string(v) + "\" not implemented (only chunked)");
        }
        have_te_ = true;
        break;
      case bhttp::field::content_length:
        have_cl_ = true;
        break;
      case bhttp::field::expect:
        if (!IEquals(v, "100-continue")) {
          return Fail(ec, 417, "Expect: only 100-continue is understood");
        }
        expect_continue = true;
        break;
      default:
        break;
    }
    req.headers.emplace_back(std::string(name.data(), name.size()), std::string(v));
  }

  void on_header_impl(beast::error_code& ec) override {
    if (have_te_ && have_cl_) {
      return Fail(ec, 400, "malformed HTTP request: both Content-Length and Transfer-Encoding");
    }
    if (have_te_ && req.minor_version == 0) {
      return Fail(ec, 400, "malformed HTTP request: Transfer-Encoding in an HTTP/1.0 request");
    }
    if (req.minor_version == 1 && hosts_ == 0) {
      return Fail(ec, 400, "malformed HTTP request: no Host header field");
    }
    req.keep_alive = keep_alive();
  }

  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code&) override {
    if (length && *length <= limits_.max_body_bytes) req.body.reserve(*length);
  }

  size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    body_seen = true;
    req.body.append(body.data(), body.size());
    return body.size();
  }

  void on_chunk_header_impl(std::uint64_t size, beast::string_view ext,
                            beast::error_code& ec) override {
    body_seen = true;
    if (ext.size() + 18 > limits_.max_chunk_line_bytes) {
      return Fail(ec, 400,
                  "malformed HTTP request: chunk line longer than " +
                      std::to_string(limits_.max_chunk_line_bytes) + " bytes");
    }
    if (size != 0) return;
    // The last chunk: Beast has the whole trailer in the buffer (ext points
    // into it). Its raw size, from after the last-chunk line to the end of
    // the blank line, is what Feed bounds while it is incomplete.
    std::string_view after(
        ext.data() + ext.size(),
        static_cast<size_t>(input.data() + input.size() - (ext.data() + ext.size())));
    size_t line_end = after.find("\r\n");
    if (line_end == std::string_view::npos) return;
    std::string_view trailer = after.substr(line_end + 2);
    size_t end = trailer.substr(0, 2) == "\r\n" ? 2 : trailer.find("\r\n\r\n");
    size_t raw = end == std::string_view::npos ? trailer.size() : (end == 2 ? 2 : end + 4);
    if (raw > limits_.max_trailer_bytes) {
      return Fail(
          ec, 431,
          "trailer fields larger than " + std::to_string(limits_.max_trailer_bytes) + " bytes");
    }
  }

  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    req.body.append(body.data(), body.size());
    return body.size();
  }

  void on_finish_impl(beast::error_code&) override {}

  const Limits& limits_;
  int hosts_ = 0;
  bool have_te_ = false;
  bool have_cl_ = false;
};

namespace {

// Beast's errors as the status to answer and a message a client can act on.
int StatusFor(const beast::error_code& ec) {
  if (ec == bhttp::error::header_limit) return 431;
  if (ec == bhttp::error::body_limit) return 413;
  return 400;
}

// Whether the request-line at the start of `bytes` ends with a well-formed
// HTTP-version other than 1.x (answered 505, not 400).
bool IsOtherVersion(std::string_view bytes) {
  size_t eol = bytes.find("\r\n");
  if (eol == std::string_view::npos || eol < 9) return false;
  std::string_view v = bytes.substr(eol - 8, 8);
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return bytes[eol - 9] == ' ' && v.substr(0, 5) == "HTTP/" && digit(v[5]) && v[6] == '.' &&
         digit(v[7]) && v[5] != '1';
}

}  // namespace

RequestParser::RequestParser(Limits limits)
    : limits_(limits), impl_(std::make_unique<Impl>(limits_)) {}

RequestParser::~RequestParser() = default;

bool RequestParser::head_done() const { return impl_->is_header_done(); }

bool RequestParser::wants_continue() const {
  return impl_->is_header_done() && impl_->expect_continue && !impl_->body_seen &&
         state_ == State::kIncomplete;
}

size_t RequestParser::Refuse(size_t used, int status, std::string message) {
  state_ = State::kError;
  error_status_ = status;
  error_message_ = status == 400 ? "malformed HTTP request: " + message : std::move(message);
  return used;
}

void RequestParser::Reset() {
  impl_ = std::make_unique<Impl>(limits_);
  head_scanned_ = 0;
  state_ = State::kIncomplete;
  started_ = false;
  error_status_ = 0;
  error_message_.clear();
}

Request RequestParser::Take() { return std::move(impl_->req); }

size_t RequestParser::Feed(std::string_view bytes) {
  if (state_ != State::kIncomplete) return 0;
  size_t used = 0;
  if (!impl_->got_some()) {
    // Empty lines before a request-line are skipped (RFC 9112 §2.2).
    while (used + 1 < bytes.size() && bytes[used] == '\r' && bytes[used + 1] == '\n') used += 2;
    if (used == bytes.size() || (used + 1 == bytes.size() && bytes[used] == '\r')) return used;
  }
  started_ = true;
  size_t head_end = 0;  // set: the head is complete and ends there
  if (!impl_->is_header_done()) {
    // Beast is given the head only once it is complete, so its verdict never
    // depends on how the bytes were split; meanwhile line ends are checked
    // here (a bare LF or CR is refused), each byte once.
    std::string_view head = bytes.substr(used);
    size_t i = head_scanned_;
    for (; i < head.size(); ++i) {
      const char c = head[i];
      if (c == '\n') {
        if (i == 0 || head[i - 1] != '\r') return Refuse(used, 400, "a bare LF in the head");
        if (i >= 3 && head[i - 2] == '\n' && head[i - 3] == '\r') break;  // CRLF CRLF: the end
      } else if (c == '\r' && i + 1 < head.size() && head[i + 1] != '\n') {
        return Refuse(used, 400, "a bare CR in the head");
      }
    }
    if (i == head.size()) {
      // Incomplete: a trailing CR is looked at again with what follows it.
      head_scanned_ = (!head.empty() && head.back() == '\r') ? head.size() - 1 : head.size();
      if (head.size() > limits_.max_head_bytes) {
        return Refuse(
            used, 431,
            "request head larger than " + std::to_string(limits_.max_head_bytes) + " bytes");
      }
      return used;
    }
    head_scanned_ = 0;
    head_end = used + i + 1;
  }
  for (;;) {
    // The head alone first (so Beast never waits for bytes after it to
    // judge it), then the body.
    const size_t limit = impl_->is_header_done() || head_end == 0 ? bytes.size() : head_end;
    beast::error_code ec;
    impl_->input = bytes.substr(used, limit - used);
    size_t n = impl_->put(boost::asio::buffer(bytes.data() + used, limit - used), ec);
    used += n;
    if (ec == bhttp::error::need_more && !impl_->is_header_done()) {
      return Refuse(used, 400, "malformed request-line or header field");
    }
    if (!ec) {
      if (impl_->is_done()) {
        state_ = State::kDone;
        return used;
      }
      if (used == bytes.size()) break;
      if (n == 0) {
        if (!impl_->is_header_done()) return Refuse(used, 400, "malformed request head");
        break;
      }
      continue;
    }
    if (ec == bhttp::error::need_more) break;
    state_ = State::kError;
    if (impl_->status != 0) {
      error_status_ = impl_->status;
      error_message_ = impl_->message;
    } else if (ec == bhttp::error::bad_version && IsOtherVersion(bytes.substr(used))) {
      error_status_ = 505;
      error_message_ = "HTTP version not supported (only 1.0 and 1.1)";
    } else {
      error_status_ = StatusFor(ec);
      if (error_status_ == 431) {
        error_message_ =
            "request head larger than " + std::to_string(limits_.max_head_bytes) + " bytes";
      } else if (error_status_ == 413) {
        error_message_ =
            "body: larger than the limit of " + std::to_string(limits_.max_body_bytes) + " bytes";
      } else {
        error_message_ = "malformed HTTP request: " + ec.message();
      }
    }
    return used;
  }
  // Incomplete. What is left unconsumed is one line or head in the making:
  // bounded, whole or not.
  const size_t pending = bytes.size() - used;
  if (!impl_->is_header_done()) {
    if (pending > limits_.max_head_bytes) {
      state_ = State::kError;
      error_status_ = 431;
      error_message_ =
          "request head larger than " + std::to_string(limits_.max_head_bytes) + " bytes";
    }
  } else if (pending > 0) {
    // Inside a chunked body: a chunk-size line, or the trailer after the
    // last chunk (Beast waits for the whole trailer before it says so).
    std::string_view rest = bytes.substr(used);
    if (rest.substr(0, 2) == "\r\n") rest.remove_prefix(2);
    size_t eol = rest.find('\n');
    const size_t line = eol == std::string_view::npos ? rest.size() : eol;
    if (line > limits_.max_chunk_line_bytes) {
      state_ = State::kError;
      error_status_ = 400;
      error_message_ = "malformed HTTP request: chunk line longer than " +
                       std::to_string(limits_.max_chunk_line_bytes) + " bytes";
    } else if (eol != std::string_view::npos && rest.find_first_not_of('0') != 0 &&
               rest.size() - eol - 1 > limits_.max_trailer_bytes) {
      state_ = State::kError;
      error_status_ = 431;
      error_message_ =
          "trailer fields larger than " + std::to_string(limits_.max_trailer_bytes) + " bytes";
    }
  }
  return used;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace bourse::http
