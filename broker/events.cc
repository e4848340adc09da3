#include "broker/events.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>
#include <utility>

#include "http/server.h"
#include "ledger/store.h"

namespace bourse::broker {

using nlohmann::json;

namespace {

constexpr std::pair<std::string_view, uint32_t> kTopicNames[] = {
    {"trades", kTopicTrades}, {"book", kTopicBook},         {"orders", kTopicOrders},
    {"ledger", kTopicLedger}, {"bindings", kTopicBindings}, {"rounds", kTopicRounds},
    {"rfqs", kTopicRfqs},     {"shares", kTopicShares},
};

std::string Str(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The rcap id of an entry's "rcap" member: a string id, or a whole rcap.
std::string RcapId(const json& body) {
  auto it = body.find("rcap");
  if (it == body.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return Str(*it, "id");
  return "";
}

// The part of an entry's type after `prefix`, or "" when it lacks it.
std::string_view After(std::string_view type, std::string_view prefix) {
  return type.substr(0, prefix.size()) == prefix ? type.substr(prefix.size()) : std::string_view();
}

struct Derived {
  std::string type;  // "" when the entry makes no event of its own
  uint32_t topic = 0;
  json data;
  std::string market;
  std::string slice;
  bool touches_book = false;
};

// Bindings: bound, redeemed, a later redemption state, refused, expired.
bool DeriveBinding(const ledger::Entry& e, const EventLookups& lk, Derived* d) {
  const json& b = e.body;
  std::string state;
  if (e.type == "rcap_bound") state = "bound";
  if (e.type == "rcap_redeemed") state = "redeemed";
  if (e.type == "rcap_redemption_state") state = Str(b, "state");
  if (e.type == "rcap_refused") state = "refused";
  if (e.type == "rcap_expired") state = "expired";
  if (state.empty()) return false;
  std::string rcap = RcapId(b);
  std::string node = Str(b, "node");
  if (node.empty() && b.contains("rcap") && b["rcap"].is_object()) node = Str(b["rcap"], "node");
  std::string slice = Str(b, "slice");
  if (slice.empty() && lk.slice_of_rcap) slice = lk.slice_of_rcap(rcap);
  d->type = "binding";
  d->topic = kTopicBindings;
  d->data = {{"state", state}, {"rcap", rcap}, {"slice", slice}, {"node", node}};
  if (state == "refused") {
    d->data["reason"] = b.value("reason", "");
    d->data["detail"] = b.value("detail", "");
  }
  d->slice = slice;
  return true;
}

// Markets: trades, orders, and the entries that change a book.
bool DeriveMarket(const ledger::Entry& e, Derived* d) {
  const json& b = e.body;
  if (e.type == "market_trade") {
    d->type = "trade";
    d->topic = kTopicTrades;
    d->data = b;
  } else if (std::string_view a = After(e.type, "order_"); !a.empty()) {
    d->type = "order";
    d->topic = kTopicOrders;
    d->data = b;
    d->data["action"] = std::string(a);
  } else if (e.type != "market_created" && e.type != "market_closed") {
    return false;
  }
  d->market = e.type == "market_created" ? Str(b, "id") : Str(b, "market");
  if (e.type == "market_created" && d->market.empty()) d->market = Str(b, "market");
  d->touches_book = !d->market.empty();
  return true;
}

// Rounds, RFQs and shares: the entry's body with its action.
bool DeriveOther(const ledger::Entry& e, const EventLookups& lk, Derived* d) {
  const json& b = e.body;
  if (std::string_view a = After(e.type, "round_"); !a.empty()) {
    d->type = "round";
    d->topic = kTopicRounds;
    d->data = b;
    d->data["action"] = std::string(a);
    if (!b.contains("round")) d->data["round"] = Str(b, "id");
    return true;
  }
  if (std::string_view a = After(e.type, "rfq_"); !a.empty()) {
    d->type = "rfq";
    d->topic = kTopicRfqs;
    d->data = b;
    d->data["action"] = std::string(a);
    return true;
  }
  if (e.type == "share_bid" || e.type == "share_bid_withdrawn") {
    d->type = "share";
    d->topic = kTopicShares;
    d->data = b;
    d->data["action"] = e.type == "share_bid" ? "bid" : "withdrawn";
    std::string slice = Str(b, "slice");
    if (slice.empty() && lk.slice_of_share_bid) slice = lk.slice_of_share_bid(Str(b, "bid"));
    d->data["slice"] = slice;
    d->slice = slice;
    return true;
  }
  return false;
}

Derived Derive(const ledger::Entry& e, const EventLookups& lk) {
  Derived d;
  if (!DeriveMarket(e, &d) && !DeriveBinding(e, lk, &d)) DeriveOther(e, lk, &d);
  return d;
}

}  // namespace

core::Result<EventFilter> EventFilter::Parse(const std::optional<std::string>& topics,
                                             const std::optional<std::string>& market,
                                             const std::optional<std::string>& slice) {
  EventFilter f;
  if (topics) {
    f.topics = 0;
    size_t start = 0;
    while (start <= topics->size()) {
      size_t comma = topics->find(',', start);
      if (comma == std::string::npos) comma = topics->size();
      std::string_view name = std::string_view(*topics).substr(start, comma - start);
      start = comma + 1;
      if (name.empty()) continue;
      auto it = std::find_if(std::begin(kTopicNames), std::end(kTopicNames),
                             [&](const auto& t) { return t.first == name; });
      if (it == std::end(kTopicNames)) {
        return core::InvalidArgument("topics: unknown topic \"" + std::string(name) +
                                     "\" (known: trades, book, orders, ledger, bindings, "
                                     "rounds, rfqs, shares)");
      }
      f.topics |= it->second;
    }
    if (f.topics == 0) return core::InvalidArgument("topics: empty list");
  }
  if (market) f.market = *market;
  if (slice) f.slice = *slice;
  return f;
}

std::string EventFilter::Key() const {
  return std::to_string(topics) + '\n' + market + '\n' + slice;
}

bool Event::Matches(const EventFilter& f) const {
  if ((topic & f.topics) == 0) return false;
  if (!f.market.empty() && (topic & (kTopicTrades | kTopicBook | kTopicOrders)) &&
      market != f.market) {
    return false;
  }
  if (!f.slice.empty() && (topic & (kTopicBindings | kTopicShares)) && slice != f.slice) {
    return false;
  }
  return true;
}

std::string FormatEvent(uint64_t id, std::string_view type, const json& data) {
  std::string out = "id: " + std::to_string(id) + "\nevent: ";
  out += type;
  out += "\ndata: ";
  out += data.dump(-1, ' ', false, json::error_handler_t::replace);
  out += "\n\n";
  return out;
}

std::vector<Event> DeriveEvents(const std::vector<ledger::Entry>& entries,
                                const std::vector<ledger::TreeHead>& heads,
                                const EventLookups& lookups) {
  std::vector<Derived> derived;
  derived.reserve(entries.size());
  std::unordered_map<std::string, uint64_t> last_touch;  // market -> seq
  for (const ledger::Entry& e : entries) {
    derived.push_back(Derive(e, lookups));
    if (derived.back().touches_book) last_touch[derived.back().market] = e.seq;
  }
  std::vector<Event> out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const ledger::Entry& e = entries[i];
    Derived& d = derived[i];
    const uint64_t id = e.seq + 1;
    if (!d.type.empty()) {
      d.data["seq"] = e.seq;
      d.data["ts"] = e.ts;
      out.push_back({id, d.topic, d.market, d.slice, FormatEvent(id, d.type, d.data)});
    }
    if (d.touches_book && last_touch[d.market] == e.seq && lookups.book) {
      core::Result<json> book = lookups.book(d.market);
      if (book.ok()) {
        out.push_back({id, kTopicBook, d.market, "", FormatEvent(id, "book", *book)});
      }
    }
    // Heads are coalesced like books: only the newest of the range.
    if (!heads.empty() && heads.back().size == id) {
      out.push_back({id, kTopicLedger, "", "",
                     FormatEvent(id, "head", ledger::TreeHeadToJson(heads.back()))});
    }
  }
  return out;
}

// ---- The hub -----------------------------------------------------------

struct EventHub::Sub {
  EventFilter filter;
  std::string key;
  uint64_t cursor = 0;  // replaying: next entry to replay
  std::string peer;
  std::shared_ptr<http::Stream> stream;
};

EventHub::EventHub(const ledger::Store* store, EventLookups lookups, EventHubOptions options)
    : store_(store), lookups_(std::move(lookups)), options_(options) {}

EventHub::~EventHub() { Stop(); }

void EventHub::Start() {
  core::MutexLock l(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  pos_ = store_->Head().size;
  thread_ = std::make_unique<std::thread>([this] { Loop(); });
}

void EventHub::Stop() {
  {
    core::MutexLock l(&mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_ && thread_->joinable()) thread_->join();
  for (auto* list : {&live_, &replaying_}) {
    for (auto& s : *list) s->stream->Close();
    list->clear();
  }
  core::MutexLock l(&mu_);
  for (auto& s : pending_) s->stream->Close();
  pending_.clear();
  open_ = 0;
  per_peer_.clear();
}

core::Status EventHub::Subscribe(EventFilter filter, uint64_t after,
                                 std::shared_ptr<http::Stream> stream, const std::string& peer) {
  auto sub = std::make_unique<Sub>();
  sub->key = filter.Key();
  sub->filter = std::move(filter);
  sub->cursor = after;
  sub->stream = std::move(stream);
  sub->peer = peer;
  core::MutexLock l(&mu_);
  if (stopping_ || !started_) return core::Unavailable("the event stream is shutting down");
  BOURSE_RETURN_IF_ERROR(CheckRoomLocked(peer));
  ++open_;
  ++per_peer_[peer];
  pending_.push_back(std::move(sub));
  return core::Status::Ok();
}

core::Status EventHub::CheckRoom(const std::string& peer) const {
  core::MutexLock l(&mu_);
  return CheckRoomLocked(peer);
}

core::Status EventHub::CheckRoomLocked(const std::string& peer) const {
  if (open_ >= static_cast<int64_t>(options_.max_streams)) {
    return core::Unavailable("too many event streams open (" +
                             std::to_string(options_.max_streams) + "); try again later");
  }
  auto it = per_peer_.find(peer);
  if (it != per_peer_.end() && it->second >= static_cast<int64_t>(options_.max_streams_per_peer)) {
    return core::ResourceExhausted("too many event streams open from " + peer + " (" +
                                   std::to_string(options_.max_streams_per_peer) +
                                   "); close one first");
  }
  return core::Status::Ok();
}

int64_t EventHub::streams() const {
  core::MutexLock l(&mu_);
  return open_;
}

void EventHub::Loop() {
  auto last_keepalive = std::chrono::steady_clock::now();
  for (;;) {
    {
      core::MutexLock l(&mu_);
      if (!stopping_) cv_.WaitFor(&mu_, std::chrono::milliseconds(options_.poll_ms));
      if (stopping_) return;
      for (auto& s : pending_) replaying_.push_back(std::move(s));
      pending_.clear();
    }
    auto now = std::chrono::steady_clock::now();
    bool keepalive = now - last_keepalive >= std::chrono::seconds(options_.keepalive_s);
    if (keepalive) last_keepalive = now;
    PollOnce(keepalive);
  }
}

void EventHub::PollOnce(bool keepalive) {
  const uint64_t size = store_->Head().size;
  while (pos_ < size) {
    uint64_t to = std::min(size, pos_ + options_.chunk);
    DeliverLive(pos_, to);
    pos_ = to;
  }
  for (auto& s : replaying_) Replay(s.get());
  // Caught up: live from now on.
  for (auto& s : replaying_) {
    if (s && s->cursor >= pos_) live_.push_back(std::move(s));
  }
  std::erase_if(replaying_, [](const auto& s) { return !s; });
  if (keepalive) {
    auto ping = std::make_shared<const std::string>(": keep-alive\n\n");
    for (auto& s : live_) s->stream->Send(ping);
  }
  std::vector<std::string> gone;  // the peers of the streams that ended
  for (auto* list : {&live_, &replaying_}) {
    std::erase_if(*list, [&](const auto& s) {
      if (s->stream->open()) return false;
      gone.push_back(std::move(s->peer));
      return true;
    });
  }
  if (!gone.empty()) {
    core::MutexLock l(&mu_);
    open_ -= static_cast<int64_t>(gone.size());
    for (const std::string& p : gone) {
      if (--per_peer_[p] <= 0) per_peer_.erase(p);
    }
  }
}

core::Result<std::vector<Event>> EventHub::Build(uint64_t from, uint64_t to) const {
  BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::Entry> entries, store_->Entries(from, to));
  BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::TreeHead> heads, store_->Heads(from + 1, to + 1));
  return DeriveEvents(entries, heads, lookups_);
}

void EventHub::DeliverLive(uint64_t from, uint64_t to) {
  if (live_.empty()) return;
  core::Result<std::vector<Event>> events = Build(from, to);
  if (!events.ok()) {
    std::fprintf(stderr, "events: entries [%llu, %llu): %s\n",
                 static_cast<unsigned long long>(from), static_cast<unsigned long long>(to),
                 events.status().ToString().c_str());
    return;
  }
  // One text per distinct filter, shared by its streams.
  std::map<std::string, std::shared_ptr<const std::string>> by_key;
  for (auto& s : live_) {
    auto [it, fresh] = by_key.try_emplace(s->key);
    if (fresh) {
      std::string text;
      for (const Event& e : *events) {
        if (e.Matches(s->filter)) text += e.text;
      }
      it->second = std::make_shared<const std::string>(std::move(text));
    }
    if (!it->second->empty()) s->stream->Send(it->second);
  }
}

void EventHub::Replay(Sub* s) {
  // At the pace the connection takes it: half the bound queued is enough.
  while (s->cursor < pos_ && s->stream->open() &&
         s->stream->queued_bytes() < options_.max_queued_bytes / 2) {
    uint64_t to = std::min(pos_, s->cursor + options_.chunk);
    core::Result<std::vector<Event>> events = Build(s->cursor, to);
    if (!events.ok()) {
      s->stream->Close();
      return;
    }
    std::string text;
    for (const Event& e : *events) {
      if (e.Matches(s->filter)) text += e.text;
    }
    if (!text.empty() && !s->stream->Send(std::move(text))) return;
    s->cursor = to;
  }
}

}  // namespace bourse::broker
