// http::RequestParser (http/parser.h) on byte strings: what it accepts, the
// status of each refusal, bodies by Content-Length and chunked, and the
// limits (head, fields, decoded body, chunk lines, trailers) whether a line
// arrives whole or in pieces. The server over real sockets is tested in
// tests/broker/http1_test.cc (raw bytes against the broker's dispatcher).
#include "http/parser.h"

#include <gtest/gtest.h>

#include <string>

namespace bourse::http {
namespace {

using State = RequestParser::State;

// Feeds `text` whole; *req is filled on kDone.
State Parse(std::string_view text, Request* req = nullptr, int* status = nullptr,
            size_t* used = nullptr, Limits limits = {}) {
  RequestParser p(limits);
  size_t n = p.Feed(text);
  if (used != nullptr) *used = n;
  if (p.state() == State::kDone && req != nullptr) *req = p.Take();
  if (p.state() == State::kError && status != nullptr) *status = p.error_status();
  if (p.state() == State::kError) {
    EXPECT_FALSE(p.error_message().empty());
  }
  return p.state();
}

// Feeds `text` one byte at a time, as a slow client sends it, giving the
// unconsumed rest again each time (as the server does).
State ParseByteByByte(std::string_view text, Request* req, Limits limits = {}) {
  RequestParser p(limits);
  std::string pending;
  for (char c : text) {
    pending.push_back(c);
    pending.erase(0, p.Feed(pending));
    if (p.state() != State::kIncomplete) break;
  }
  if (p.state() == State::kDone) *req = p.Take();
  return p.state();
}

TEST(RequestParserTest, ParsesARequest) {
  std::string text =
      "POST /v1/markets/m%201/orders?limit=5&tag=a+b&x=%2F HTTP/1.1\r\n"
      "Host: x\r\nBourse-Key:  ed25519:abc \r\nContent-Length: 7\r\n\r\n{\"a\":1}NEXT";
  Request r;
  size_t used = 0;
  ASSERT_EQ(Parse(text, &r, nullptr, &used), State::kDone);
  EXPECT_EQ(used, text.size() - 4);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/v1/markets/m%201/orders?limit=5&tag=a+b&x=%2F");
  EXPECT_EQ(r.path, "/v1/markets/m%201/orders");  // raw: decoded per segment after routing
  ASSERT_EQ(r.query.size(), 3u);
  EXPECT_EQ(r.query[1].second, "a b");
  EXPECT_EQ(r.query[2].second, "/");
  EXPECT_EQ(r.body, "{\"a\":1}");
  ASSERT_NE(r.Header("bourse-key"), nullptr);
  EXPECT_EQ(*r.Header("BOURSE-KEY"), "ed25519:abc");
  EXPECT_TRUE(r.keep_alive);
}

TEST(RequestParserTest, IncompleteUntilTheLastByte) {
  std::string text = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  for (size_t i = 0; i < text.size(); ++i) {
    EXPECT_EQ(Parse(text.substr(0, i)), State::kIncomplete) << i;
  }
  Request r;
  EXPECT_EQ(ParseByteByByte(text, &r), State::kDone);
  EXPECT_EQ(r.body, "abc");
}

TEST(RequestParserTest, SkipsLeadingEmptyLinesAndRefusesBareLineFeeds) {
  Request r;
  EXPECT_EQ(Parse("\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n", &r), State::kDone);
  EXPECT_EQ(r.path, "/a");
  int status = 0;
  EXPECT_EQ(Parse("GET /a HTTP/1.1\nHost: h\n\n", nullptr, &status), State::kError);
  EXPECT_EQ(status, 400);
}

TEST(RequestParserTest, ConnectionSemantics) {
  Request r;
  ASSERT_EQ(Parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", &r), State::kDone);
  EXPECT_FALSE(r.keep_alive);
  ASSERT_EQ(Parse("GET / HTTP/1.0\r\n\r\n", &r), State::kDone);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(r.minor_version, 0);
  ASSERT_EQ(Parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r), State::kDone);
  EXPECT_TRUE(r.keep_alive);
  RequestParser p;
  p.Feed(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(p.state(), State::kIncomplete);
  EXPECT_TRUE(p.wants_continue());
}

TEST(RequestParserTest, RefusesMalformedRequestsWithTheRightStatus) {
  struct Case {
    std::string text;
    int status;
  };
  std::string big(20000, 'a');
  std::string many;
  for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  const Case cases[] = {
      {"GET /\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET / HTTP/1.1 x\r\nHost: h\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET /a?b=%4 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n\r\n", 400},                        // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},  // two
      {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},            // space before colon
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400},  // bare CR
      {"GET / HTTP/1.1\r\nHost: h\r\nnocolon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01"
       "b\r\n\r\n",
       400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
       400},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417},
      {"GET /" + big + " HTTP/1.1\r\nHost: h\r\n\r\n", 431},
      {"GET / HTTP/1.1\r\nHost: h\r\n" + many + "\r\n", 431},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: " + big, 431},  // unterminated, already too long
  };
  for (const Case& c : cases) {
    int status = 0;
    EXPECT_EQ(Parse(c.text, nullptr, &status), State::kError) << c.text.substr(0, 80);
    EXPECT_EQ(status, c.status) << c.text.substr(0, 80);
  }
}

TEST(RequestParserTest, DecodesChunkedBodies) {
  std::string text =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\nNEXT";
  Request r;
  size_t used = 0;
  ASSERT_EQ(Parse(text, &r, nullptr, &used), State::kDone);
  EXPECT_EQ(r.body, "Wikipedia in\r\n\r\nchunks.");
  EXPECT_EQ(text.substr(used), "NEXT");
  Request r2;
  ASSERT_EQ(ParseByteByByte(text, &r2), State::kDone);
  EXPECT_EQ(r2.body, r.body);
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  int status = 0;
  EXPECT_EQ(Parse(head + "zz\r\n", nullptr, &status), State::kError);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(Parse(head + "3\r\nabcd\r\n0\r\n\r\n"), State::kError);
  EXPECT_EQ(Parse(head + "ffffffffffffffffff\r\n"), State::kError);
  Limits small;
  small.max_body_bytes = 10;
  EXPECT_EQ(
      Parse(head + "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n", nullptr, &status, nullptr, small),
      State::kError);
  EXPECT_EQ(status, 413);
}

// The body limit is on the decoded body: 1-byte chunks cost their bytes,
// and a body at the limit passes whatever its framing.
TEST(RequestParserTest, TheBodyLimitIsOnTheDecodedBody) {
  Limits l;
  l.max_body_bytes = 1000;
  std::string wire = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 1000; ++i) wire += "1\r\nx\r\n";
  Request r;
  ASSERT_EQ(Parse(wire + "0\r\n\r\n", &r, nullptr, nullptr, l), State::kDone);
  EXPECT_EQ(r.body.size(), 1000u);
  int status = 0;
  EXPECT_EQ(Parse(wire + "1\r\nx\r\n0\r\n\r\n", nullptr, &status, nullptr, l), State::kError);
  EXPECT_EQ(status, 413);
}

// Chunk lines and trailers are bounded whether the line is complete or not.
TEST(RequestParserTest, ChunkLineAndTrailerLimitsHoldForCompleteAndPartialLines) {
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string ext(5000, 'e');
  std::string big(40000, 't');
  const std::string cases[] = {
      head + "2;x=" + ext + "\r\n{}\r\n0\r\n\r\n",        // a complete long chunk line
      head + "2;x=" + ext,                                // the same, unfinished
      head + "2\r\n{}\r\n0\r\nX-T: " + big + "\r\n\r\n",  // a complete long trailer
      head + "2\r\n{}\r\n0\r\nX-T: " + big,               // unfinished
  };
  for (const std::string& c : cases) {
    int status = 0;
    EXPECT_EQ(Parse(c, nullptr, &status), State::kError) << c.size();
    EXPECT_TRUE(status == 400 || status == 431) << status;
  }
  // Within the limits they pass.
  Request r;
  EXPECT_EQ(Parse(head + "2;x=1\r\n{}\r\n0\r\nX-T: v\r\n\r\n", &r), State::kDone);
  EXPECT_EQ(r.body, "{}");
}

TEST(RequestParserTest, ResetParsesTheNextRequestOnTheConnection) {
  std::string two =
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: "
      "2\r\n\r\nok";
  RequestParser p;
  size_t used = p.Feed(two);
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.Take().path, "/a");
  p.Reset();
  EXPECT_EQ(p.Feed(std::string_view(two).substr(used)), two.size() - used);
  ASSERT_EQ(p.state(), State::kDone);
  Request b = p.Take();
  EXPECT_EQ(b.path, "/b");
  EXPECT_EQ(b.body, "ok");
}

TEST(UrlTest, SplitsRawPathsAndDecodesPercentEscapes) {
  auto segs = SplitPath("/v1/slices/a%2Fb//c");
  ASSERT_EQ(segs.size(), 5u);
  EXPECT_EQ(segs[1], "slices");
  EXPECT_EQ(segs[2], "a%2Fb");
  EXPECT_EQ(segs[3], "");  // "//" keeps an empty segment, so it never matches a route
  EXPECT_EQ(segs[4], "c");
  std::string out;
  EXPECT_TRUE(PercentDecode("a%2Fb+c", false, &out));
  EXPECT_EQ(out, "a/b+c");
  EXPECT_TRUE(PercentDecode("a+c", true, &out));
  EXPECT_EQ(out, "a c");
  EXPECT_FALSE(PercentDecode("%4", false, &out));
  EXPECT_FALSE(PercentDecode("%zz", false, &out));
}

}  // namespace
}  // namespace bourse::http
