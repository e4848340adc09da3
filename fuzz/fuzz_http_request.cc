// libFuzzer target: the HTTP/1.1 request parser (http/parser.h: Beast's
// parser with the project's limits) on untrusted bytes, whole and split at
// offsets a reader might see. Nothing may crash, hang or leak; the parser
// never consumes more than it was given; a refusal carries a 4xx/5xx status
// and a message; a request that parses has a method and a target and a body
// within the limit; and the verdict does not depend on where the bytes were
// split (fed in two pieces, the unconsumed rest given again, as the server
// does).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/parser.h"

using bourse::http::Limits;
using bourse::http::Request;
using bourse::http::RequestParser;

namespace {

struct Outcome {
  RequestParser::State state;
  int status = 0;
  std::string method, target, body;
  size_t consumed = 0;
};

// Feeds text in pieces split at `cut`, as a connection would.
Outcome Run(std::string_view text, size_t cut, const Limits& limits) {
  RequestParser p(limits);
  std::string pending;
  size_t consumed = 0;
  for (std::string_view piece : {text.substr(0, cut), text.substr(cut)}) {
    pending.append(piece);
    size_t used = p.Feed(pending);
    if (used > pending.size()) __builtin_trap();
    consumed += used;
    pending.erase(0, used);
    if (p.state() != RequestParser::State::kIncomplete) break;
  }
  Outcome o{.state = p.state(), .status = 0, .method = {}, .target = {}, .body = {},
            .consumed = consumed};
  if (o.state == RequestParser::State::kError) {
    o.status = p.error_status();
    if (o.status < 400 || o.status > 599 || p.error_message().empty()) __builtin_trap();
  } else if (o.state == RequestParser::State::kDone) {
    Request r = p.Take();
    if (r.method.empty() || r.target.empty()) __builtin_trap();
    if (r.body.size() > limits.max_body_bytes) __builtin_trap();
    o.method = r.method;
    o.target = r.target;
    o.body = r.body;
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Limits limits;
  limits.max_head_bytes = 4096;
  limits.max_fields = 32;
  limits.max_body_bytes = 1 << 16;
  limits.max_chunk_line_bytes = 256;
  limits.max_trailer_bytes = 1024;
  Outcome whole = Run(text, size, limits);
  for (size_t cut : {size / 3, size / 2, size > 0 ? size - 1 : 0}) {
    Outcome split = Run(text, cut, limits);
    if (split.state != whole.state) __builtin_trap();
    if (whole.state == RequestParser::State::kDone &&
        (split.method != whole.method || split.target != whole.target || split.body != whole.body ||
         split.consumed != whole.consumed)) {
      __builtin_trap();
    }
  }
  return 0;
}
