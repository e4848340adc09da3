// The event stream of DESIGN §9 (`GET /v1/events`, docs/events.md): events
// derived from committed ledger entries, fanned out to Server-Sent Events
// streams by one thread.
//
//   EventHub hub(&store, lookups, EventHubOptions{});
//   hub.Start();
//   BOURSE_ASSIGN_OR_RETURN(EventFilter f, EventFilter::Parse(topics, market, slice));
//   BOURSE_RETURN_IF_ERROR(hub.Subscribe(f, last_event_id_or_size, stream));
//
// An event's id is the ledger size after the entry that caused it, so a
// stream is a pure function of the ledger's entries (and, for `book`
// snapshots, of the book when sent): replaying entries after X gives exactly
// the events a live stream gave after X. The hub polls the store's head
// (every poll_ms) and builds each range of new entries' events once; streams
// that share a filter share the bytes. A stream resuming from X is fed from
// the ledger in chunks, at the pace its connection takes them, and joins the
// live set when it has caught up. Trading never waits for the hub: it reads
// committed entries on its own thread and http::Stream::Send never blocks
// (a stream over its bound is dropped).
//
// Thread safety: every method is safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "ledger/entry.h"

namespace bourse::ledger {
class Store;
}
namespace bourse::http {
class Stream;
}

namespace bourse::broker {

enum EventTopic : uint32_t {
  kTopicTrades = 1u << 0,
  kTopicBook = 1u << 1,
  kTopicOrders = 1u << 2,
  kTopicLedger = 1u << 3,
  kTopicBindings = 1u << 4,
  kTopicRounds = 1u << 5,
  kTopicRfqs = 1u << 6,
  kTopicShares = 1u << 7,
};
inline constexpr uint32_t kAllTopics = (1u << 8) - 1;

// Which events a stream wants (docs/events.md, "Request").
struct EventFilter {
  uint32_t topics = kAllTopics;
  std::string market;  // "": any (applies to trade, book, order)
  std::string slice;   // "": any (applies to binding, share)

  // From the query parameters. Errors: invalid_argument naming an unknown
  // topic or an empty list.
  static core::Result<EventFilter> Parse(const std::optional<std::string>& topics,
                                         const std::optional<std::string>& market,
                                         const std::optional<std::string>& slice);
  std::string Key() const;
};

// One event, formatted as SSE.
struct Event {
  uint64_t id = 0;
  uint32_t topic = 0;
  std::string market;  // trade, book, order
  std::string slice;   // binding, share
  std::string text;    // "id: ..\nevent: ..\ndata: {..}\n\n"

  bool Matches(const EventFilter& f) const;
};

// What the derivation needs beyond an entry's body.
struct EventLookups {
  // The book of a market as GET /v1/markets/{m}/depth shows it.
  std::function<core::Result<nlohmann::json>(const std::string& market)> book;
  // The slice an rcap is bound to ("" when none).
  std::function<std::string(const std::string& rcap)> slice_of_rcap;
  // The slice of a proportional-share bid ("" when unknown).
  std::function<std::string(const std::string& bid)> slice_of_share_bid;
};

// "id: <id>\nevent: <type>\ndata: <compact JSON>\n\n".
std::string FormatEvent(uint64_t id, std::string_view type, const nlohmann::json& data);

// The events of entries `entries` (consecutive, ascending seq) and of the
// signed heads `heads` (ascending, their sizes within the entries' range),
// in id order: each entry's own events, the book snapshot of each market
// after the last entry of the range that touched it, and the newest head
// after the entry it ends with. Books and heads are snapshots, coalesced per
// range (a dashboard needs the newest, not one per commit batch).
std::vector<Event> DeriveEvents(const std::vector<ledger::Entry>& entries,
                                const std::vector<ledger::TreeHead>& heads,
                                const EventLookups& lookups);

struct EventHubOptions {
  size_t max_streams = 10000;
  // Per client address, so that one client cannot take every slot; with
  // max_queued_bytes it bounds what one client can make the broker hold.
  size_t max_streams_per_peer = 1000;
  size_t max_queued_bytes = 256 << 10;  // per stream; its kernel send buffer is set as much
  int poll_ms = 100;                    // latency of a live event; fewer, larger writes per stream
  int keepalive_s = 15;
  uint64_t chunk = 2048;  // entries read at once
};

class EventHub {
 public:
  EventHub(const ledger::Store* store, EventLookups lookups, EventHubOptions options);
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  void Start();
  // Ends every stream and the thread. Idempotent.
  void Stop();

  // Adds a stream from client address `peer` that gets the events with id >
  // `after` (after <= the ledger's size) matching `filter`. Errors:
  // unavailable when max_streams are open or the hub has stopped;
  // resource_exhausted when `peer` has max_streams_per_peer open.
  core::Status Subscribe(EventFilter filter, uint64_t after, std::shared_ptr<http::Stream> stream,
                         const std::string& peer);
  // Whether Subscribe would have room for one more stream from `peer` now
  // (to refuse before answering 200). Errors: as Subscribe's.
  core::Status CheckRoom(const std::string& peer) const;
  // Streams open (subscribed and not yet ended).
  int64_t streams() const;

 private:
  struct Sub;
  void Loop();
  void PollOnce(bool keepalive);
  void DeliverLive(uint64_t from, uint64_t to);
  void Replay(Sub* s);
  core::Result<std::vector<Event>> Build(uint64_t from, uint64_t to) const;
  core::Status CheckRoomLocked(const std::string& peer) const REQUIRES(mu_);

  const ledger::Store* store_;
  EventLookups lookups_;
  EventHubOptions options_;
  mutable core::Mutex mu_;
  core::CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  bool started_ GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Sub>> pending_ GUARDED_BY(mu_);
  int64_t open_ GUARDED_BY(mu_) = 0;
  std::unordered_map<std::string, int64_t> per_peer_ GUARDED_BY(mu_);
  // The hub thread's own state.
  std::vector<std::unique_ptr<Sub>> live_;
  std::vector<std::unique_ptr<Sub>> replaying_;
  uint64_t pos_ = 0;  // entries [0, pos_) have been delivered live
  std::unique_ptr<std::thread> thread_;
};

}  // namespace bourse::broker
