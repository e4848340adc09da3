// Server-Sent Events for the client side (the WHATWG HTML "event stream"
// format; the broker's GET /v1/events, docs/events.md): an incremental
// parser fed any slice of bytes, and a reader that follows one stream over
// cpp-httplib's streaming GET without keeping its body.
//
//   SseParser p;
//   core::Status st = p.Feed(chunk, [](const SseEvent& e) { Use(e.id, e.type, e.data); });
//
//   SseParser parser;
//   SseStreamResult r = ReadEventStream("http://127.0.0.1:8080", "/v1/events?topics=ledger",
//                                       "41", parser, [](const SseEvent& e) { return true; });
//
// The parser follows the standard: lines end in CRLF, LF or CR (a CR at the
// end of one chunk and an LF at the start of the next are one ending); a
// line starting with ':' is a comment; "name: value" drops one space after
// the colon, a line without a colon is a name with an empty value; `data`
// lines are joined with LF; `id` sets the last event id (kept across events,
// ignored if it holds a NUL); `retry` takes ASCII digits only; unknown
// fields are ignored; an empty line dispatches the event unless its data is
// empty; a leading UTF-8 BOM is dropped; an event cut off by the end of the
// stream is never dispatched. Bounds: a line longer than max_line bytes or
// an event whose data passes max_data is an error (resource_exhausted), so
// a broken or hostile server cannot make the client grow without limit.
//
// Thread safety: a parser belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace bourse::clients {

struct SseEvent {
  std::string id;                // the last event id when it was dispatched ("" if none yet)
  std::string type = "message";  // the `event` field, "message" when absent
  std::string data;              // the `data` lines joined with LF
};

struct SseParserOptions {
  size_t max_line = 1 << 20;  // bytes in one line, its ending excluded
  size_t max_data = 4 << 20;  // bytes of data in one event
};

class SseParser {
 public:
  using Handler = std::function<void(const SseEvent&)>;
  explicit SseParser(SseParserOptions options = {}) : options_(options) {}

  // Parses `bytes`, calling `on_event` for each event completed by them.
  // Errors: resource_exhausted when a bound is passed (the parser must then
  // be Reset before further use).
  core::Status Feed(std::string_view bytes, const Handler& on_event);
  // Forgets a partial line and event (as at a new connection); keeps the
  // last event id and retry, as a reconnecting EventSource does.
  void Reset();

  const std::string& last_event_id() const { return last_id_; }
  std::optional<int64_t> retry_ms() const { return retry_ms_; }
  int64_t comments() const { return comments_; }  // comment lines seen (keep-alives)

 private:
  core::Status Line(std::string_view line, const Handler& on_event);

  SseParserOptions options_;
  std::string line_;
  bool after_cr_ = false;  // the last byte seen was a CR
  bool started_ = false;   // past the (optional) BOM
  std::string data_;
  bool has_data_ = false;
  std::string type_;
  std::string last_id_;
  std::optional<int64_t> retry_ms_;
  int64_t comments_ = 0;
};

// How one connection ended.
struct SseStreamResult {
  enum class End {
    kStopped,     // on_event returned false
    kClosed,      // the server ended the stream or the connection dropped
    kRefused,     // an answer other than 200 text/event-stream (status, body)
    kUnreachable  // no connection
  };
  End end = End::kClosed;
  int status = 0;          // the HTTP status, 0 without an answer
  std::string body;        // the start of a refusal's body (at most 64 KiB)
  std::string error;       // what went wrong, for a message
  bool connected = false;  // a 200 stream was opened
};

struct SseReadOptions {
  // No byte for this long (the broker sends a comment every 15 s): the
  // connection is taken as dropped.
  int read_timeout_s = 45;
  int connect_timeout_s = 5;
  // Called once the 200 answer's head has arrived.
  std::function<void()> on_open;
};

// GET base_url + path_with_query as an event stream, with `Last-Event-ID`
// unless last_event_id is empty, feeding the body to `parser` as it comes;
// returns when on_event returns false, the stream ends or fails.
SseStreamResult ReadEventStream(const std::string& base_url, const std::string& path_with_query,
                                const std::string& last_event_id, SseParser& parser,
                                const std::function<bool(const SseEvent&)>& on_event,
                                const SseReadOptions& options = {});

}  // namespace bourse::clients
