// http::RequestParser: one HTTP/1.1 request (RFC 9112) from bytes, on
// Boost.Beast's basic_parser (I/O-free: feed it bytes, it says what it has),
// with the project's limits and refusals on top.
//
//   http::RequestParser p(limits);
//   size_t used = p.Feed(buffered);   // drop `used` bytes from the buffer
//   switch (p.state()) {
//     case RequestParser::State::kIncomplete: ...read more, Feed the rest again...
//     case RequestParser::State::kError: ...answer p.error_status(), close...
//     case RequestParser::State::kDone: http::Request q = p.Take(); p.Reset(); ...
//   }
//
// Bytes are parsed once: the head when it is complete (Beast resumes its
// search for the blank line where it left off), the body as it arrives, so
// a body in 1-byte chunks costs what its bytes cost. Bytes that Feed does not
// consume (an incomplete line) must be given again with what follows.
//
// What it accepts: a request-line `method SP request-target SP HTTP/1.1|1.0`
// with an origin-form target (`/path?query`) or `*`; empty lines before it
// are skipped; CRLF line ends (a bare LF or CR is refused); header fields as
// Beast reads them (obs-fold becomes a space, RFC 9112 §5.2); the body framed
// by Content-Length or by `Transfer-Encoding: chunked`, never both.
//
// Refusals carry the status to answer: 400 (malformed; missing or repeated
// Host on 1.1; a bad percent-escape in the target; a chunk line over
// max_chunk_line_bytes), 413 (decoded body over max_body_bytes), 417 (an
// Expect other than 100-continue), 431 (head over max_head_bytes, more than
// max_fields fields, trailers over max_trailer_bytes), 501 (a transfer coding
// other than chunked), 505 (an HTTP version other than 1.0 and 1.1).
//
// Thread safety: one parser per connection, used by one thread at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "http/message.h"

namespace bourse::http {

class RequestParser {
 public:
  enum class State { kIncomplete, kDone, kError };

  explicit RequestParser(Limits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses what it can of `bytes` (the unconsumed input, from where the
  // previous call stopped) and returns how many bytes it consumed.
  size_t Feed(std::string_view bytes);
  State state() const { return state_; }
  // The head has been parsed (the body may still be arriving).
  bool head_done() const;
  // The head asked for 100-continue and no body byte has arrived yet.
  bool wants_continue() const;
  // Any byte of a request (other than skipped empty lines) has been seen.
  bool started() const { return started_; }

  // kDone: the request (moves it out).
  Request Take();
  // Ready for the next request on the same connection.
  void Reset();

  // kError: the status to answer and why.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  class Impl;
  size_t Refuse(size_t used, int status, std::string message);

  Limits limits_;
  size_t head_scanned_ = 0;  // bytes of an incomplete head already checked
  std::unique_ptr<Impl> impl_;
  State state_ = State::kIncomplete;
  bool started_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace bourse::http
