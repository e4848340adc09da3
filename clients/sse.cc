#include "clients/sse.h"

#include <httplib.h>

#include <algorithm>

namespace bourse::clients {

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr size_t kMaxRefusalBody = 64 << 10;

bool AllDigits(std::string_view s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

void SseParser::Reset() {
  line_.clear();
  after_cr_ = false;
  started_ = false;
  data_.clear();
  has_data_ = false;
  type_.clear();
}

core::Status SseParser::Feed(std::string_view bytes, const Handler& on_event) {
  size_t i = 0;
  if (!started_) {
    // The BOM may arrive split over chunks: wait until 3 bytes are in hand.
    line_.append(bytes);
    if (line_.size() < kBom.size() && kBom.substr(0, line_.size()) == line_) return {};
    started_ = true;
    std::string first = std::move(line_);
    line_.clear();
    std::string_view rest = first;
    if (rest.substr(0, kBom.size()) == kBom) rest.remove_prefix(kBom.size());
    return Feed(rest, on_event);
  }
  while (i < bytes.size()) {
    if (after_cr_ && bytes[i] == '\n') ++i;  // the LF of a CRLF split across chunks
    after_cr_ = false;
    size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      if (line_.size() + (bytes.size() - i) > options_.max_line) {
        return core::ResourceExhausted("event stream: a line is longer than " +
                                       std::to_string(options_.max_line) + " bytes");
      }
      line_.append(bytes.substr(i));
      return {};
    }
    if (line_.size() + (end - i) > options_.max_line) {
      return core::ResourceExhausted("event stream: a line is longer than " +
                                     std::to_string(options_.max_line) + " bytes");
    }
    line_.append(bytes.substr(i, end - i));
    if (bytes[end] == '\r') {
      if (end + 1 < bytes.size()) {
        if (bytes[end + 1] == '\n') ++end;
      } else {
        after_cr_ = true;
      }
    }
    i = end + 1;
    std::string line = std::move(line_);
    line_.clear();
    BOURSE_RETURN_IF_ERROR(Line(line, on_event));
  }
  return {};
}

core::Status SseParser::Line(std::string_view line, const Handler& on_event) {
  if (line.empty()) {
    if (has_data_) {
      SseEvent e;
      e.id = last_id_;
      if (!type_.empty()) e.type = type_;
      e.data = std::move(data_);
      if (!e.data.empty() && e.data.back() == '\n') e.data.pop_back();
      data_.clear();
      has_data_ = false;
      type_.clear();
      on_event(e);
    } else {
      type_.clear();
    }
    return {};
  }
  if (line.front() == ':') {
    ++comments_;
    return {};
  }
  size_t colon = line.find(':');
  std::string_view name = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (name == "data") {
    if (data_.size() + value.size() + 1 > options_.max_data) {
      return core::ResourceExhausted("event stream: an event's data is longer than " +
                                     std::to_string(options_.max_data) + " bytes");
    }
    data_.append(value);
    data_.push_back('\n');
    has_data_ = true;
  } else if (name == "event") {
    type_ = value;
  } else if (name == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = value;
  } else if (name == "retry") {
    if (AllDigits(value)) retry_ms_ = std::stoll(std::string(value));
  }
  return {};
}

SseStreamResult ReadEventStream(const std::string& base_url, const std::string& path_with_query,
                                const std::string& last_event_id, SseParser& parser,
                                const std::function<bool(const SseEvent&)>& on_event,
                                const SseReadOptions& options) {
  SseStreamResult r;
  httplib::Client http(base_url);
  http.set_url_encode(false);
  http.set_keep_alive(false);
  http.set_connection_timeout(options.connect_timeout_s, 0);
  http.set_read_timeout(options.read_timeout_s, 0);
  http.enable_server_certificate_verification(false);
  httplib::Headers headers = {{"Accept", "text/event-stream"}};
  if (!last_event_id.empty()) headers.emplace("Last-Event-ID", last_event_id);
  parser.Reset();
  bool stopped = false;
  bool is_stream = false;
  core::Status parse_error;
  auto res = http.Get(
      path_with_query, headers,
      [&](const httplib::Response& head) {
        r.status = head.status;
        is_stream = head.status == 200 &&
                    head.get_header_value("Content-Type").rfind("text/event-stream", 0) == 0;
        if (is_stream) {
          r.connected = true;
          if (options.on_open) options.on_open();
        }
        return true;
      },
      [&](const char* data, size_t n) {
        if (!is_stream) {
          r.body.append(data,
                        std::min(n, kMaxRefusalBody - std::min(kMaxRefusalBody, r.body.size())));
          return true;
        }
        parse_error = parser.Feed(std::string_view(data, n), [&](const SseEvent& e) {
          if (!stopped && !on_event(e)) stopped = true;
        });
        return !stopped && parse_error.ok();
      });
  if (stopped) {
    r.end = SseStreamResult::End::kStopped;
  } else if (!parse_error.ok()) {
    r.end = SseStreamResult::End::kClosed;
    r.error = parse_error.message();
  } else if (r.status != 0 && !is_stream) {
    r.end = SseStreamResult::End::kRefused;
  } else if (!r.connected) {
    r.end = SseStreamResult::End::kUnreachable;
    r.error = httplib::to_string(res.error());
  } else {
    r.end = SseStreamResult::End::kClosed;
    if (!res) r.error = httplib::to_string(res.error());
  }
  return r;
}

}  // namespace bourse::clients
