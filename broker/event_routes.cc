// GET /v1/events (DESIGN §9, docs/events.md): the route, and the hub's
// lookups into the broker's and the markets' state.
#include <charconv>

#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/internal/sql.h"
#include "http/server.h"

namespace bourse::broker {

using nlohmann::json;

namespace {

constexpr int64_t kBookLevels = 20;

// A decimal event id. Errors: invalid_argument naming `what`.
core::Result<uint64_t> ParseEventId(const std::string& text, const std::string& what) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return core::InvalidArgument(what + ": expected a decimal event id, got \"" + text + "\"");
  }
  return v;
}

}  // namespace

void Broker::RegisterEventRoutes() {
  using namespace internal;
  EventLookups lookups;
  lookups.book = [this](const std::string& market) { return markets_->Depth(market, kBookLevels); };
  lookups.slice_of_rcap = [this](const std::string& rcap) {
    std::string slice;
    (void)Read([&](storage::Connection* db) -> core::Status {
      BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT slice FROM b_bindings WHERE leaf=?"));
      s.Bind(1, rcap);
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) slice = s.Text(0);
      return core::Status::Ok();
    });
    return slice;
  };
  lookups.slice_of_share_bid = [this](const std::string& bid) {
    core::Result<json> b = markets_->GetShareBid(bid);
    return b.ok() ? b->value("/bid/slice"_json_pointer, std::string()) : std::string();
  };
  events_ = std::make_unique<EventHub>(store_.get(), std::move(lookups), events_options_);
  events_->Start();
  router_.Add(
      {.method = "GET",
       .pattern = "/v1/events",
       .summary = "Server-Sent Events: trades, book, orders, heads, bindings, rounds, RFQs, "
                  "shares (DESIGN §9; payloads in docs/events.md)",
       .tag = "events",
       .query_params = {{"topics", "string", false, "comma-separated topics (default: all)"},
                        {"market", "string", false, "only this market's trade/book/order events"},
                        {"slice", "string", false, "only this slice's binding/share events"},
                        {"last_event_id", "string", false,
                         "resume after this id (as the Last-Event-ID header)"}},
       .response_schema = SStr("text/event-stream"),
       .stream_handler = [this](const ApiRequest& q, const OpenStream& open) {
         return OpenEvents(q, open);
       }});
}

core::Status Broker::OpenEvents(const ApiRequest& q, const OpenStream& open) {
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> topics, q.Query("topics"));
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> market, q.Query("market"));
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> slice, q.Query("slice"));
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> from_query, q.Query("last_event_id"));
  BOURSE_ASSIGN_OR_RETURN(EventFilter filter, EventFilter::Parse(topics, market, slice));
  const uint64_t size = store_->Head().size;
  uint64_t after = size;
  if (q.last_event_id || from_query) {
    const bool header = q.last_event_id.has_value();
    const std::string what = header ? "Last-Event-ID" : "last_event_id";
    BOURSE_ASSIGN_OR_RETURN(after, ParseEventId(header ? *q.last_event_id : *from_query, what));
    if (after > size) {
      return core::InvalidArgument(what + " " + std::to_string(after) +
                                   " is beyond this ledger's size " + std::to_string(size) +
                                   " (an id from another broker?)");
    }
  }
  BOURSE_RETURN_IF_ERROR(events_->CheckRoom(q.peer));
  std::shared_ptr<http::Stream> stream =
      open("text/event-stream", events_options_.max_queued_bytes);
  stream->Send(": bourse events\nretry: 2000\n\n");
  if (core::Status st = events_->Subscribe(std::move(filter), after, stream, q.peer); !st.ok()) {
    stream->Close();
  }
  return core::Status::Ok();
}

}  // namespace bourse::broker
