// libFuzzer target: the broker's HTTP/1.1 request parser (broker/http1.h) on
// untrusted bytes, whole and split at every offset a reader might see.
// Nothing may crash, hang or leak; a head that parses must report a length
// within the input; a parse must not depend on where the bytes were split
// (a prefix is incomplete or the same error, never a different verdict), and
// chunked bodies after the head are decoded within the body limit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "broker/http1.h"

using bourse::broker::http1::DecodeChunked;
using bourse::broker::http1::Error;
using bourse::broker::http1::Limits;
using bourse::broker::http1::Parse;
using bourse::broker::http1::ParseHead;
using bourse::broker::http1::Request;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Limits limits;
  limits.max_head_bytes = 4096;
  limits.max_fields = 32;
  limits.max_body_bytes = 1 << 16;
  Request req;
  Error err;
  size_t head_len = 0;
  Parse whole = ParseHead(text, limits, &req, &head_len, &err);
  if (whole == Parse::kDone) {
    if (head_len == 0 || head_len > size) __builtin_trap();
    if (req.method.empty() || req.target.empty()) __builtin_trap();
    // Every prefix that ends before the head does is incomplete.
    for (size_t cut : {head_len / 2, head_len - 1}) {
      Request r2;
      Error e2;
      size_t l2 = 0;
      Parse p = ParseHead(text.substr(0, cut), limits, &r2, &l2, &e2);
      if (p == Parse::kDone) __builtin_trap();
    }
    std::string body;
    size_t used = 0;
    if (req.chunked) {
      Parse p = DecodeChunked(text.substr(head_len), limits.max_body_bytes, &body, &used, &err);
      if (p == Parse::kDone && (used > size - head_len || body.size() > limits.max_body_bytes))
        __builtin_trap();
    } else if (req.content_length > limits.max_body_bytes) {
      __builtin_trap();  // must have been refused with 413
    }
  } else if (whole == Parse::kError) {
    if (err.status < 400 || err.status > 599 || err.message.empty()) __builtin_trap();
  }
  // The chunked decoder on its own, from the start of the input.
  std::string body;
  size_t used = 0;
  Error e3;
  if (DecodeChunked(text, 1024, &body, &used, &e3) == Parse::kDone &&
      (used > size || body.size() > 1024))
    __builtin_trap();
  return 0;
}
