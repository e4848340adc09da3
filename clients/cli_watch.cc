// `bourse watch (market M | ledger | slice S)`: follows GET /v1/events
// (DESIGN §9, docs/events.md) until Ctrl-C (docs/cli.md, "watch"). It
// starts at the ledger's present size and resumes with `Last-Event-ID` (the
// last id it saw) after the stream drops or the broker restarts, so nothing
// is shown twice or missed while the broker keeps the entries; it retries
// with a backoff of 0.5 s doubling to 5 s, and says so on stderr.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "clients/cli.h"
#include "clients/cli_args.h"
#include "clients/cli_context.h"
#include "clients/sse.h"
#include "clients/watch.h"

namespace bourse::clients {
namespace {

using nlohmann::json;

constexpr int kFirstBackoffMs = 500;
constexpr int kMaxBackoffMs = 5000;

// Prints each event in the chosen form; for a market, redraws on a TTY.
class Printer {
 public:
  Printer(const WatchTarget& t, bool json, bool tty)
      : t_(t), json_(json), tty_(tty), view_(t.name) {}
  MarketWatch& view() { return view_; }
  void Start() {
    if (t_.kind == WatchKind::kMarket && !json_) {
      std::fputs(view_.Render(tty_).c_str(), stdout);
      std::fflush(stdout);
    }
  }
  void Show(const SseEvent& e) {
    if (json_) {
      std::printf("%s\n", JsonLine(e).c_str());
    } else if (t_.kind == WatchKind::kMarket) {
      if (view_.Apply(e)) {
        std::fputs(tty_ ? view_.Render(true).c_str() : (MarketWatch::EventLine(e) + "\n").c_str(),
                   stdout);
      }
    } else {
      json d = json::parse(e.data, nullptr, false);
      if (d.is_object() && e.type == "head") std::printf("%s\n", HeadLine(d).c_str());
      if (d.is_object() && e.type == "binding") std::printf("%s\n", BindingLine(d).c_str());
    }
    std::fflush(stdout);
  }

 private:
  WatchTarget t_;
  bool json_, tty_;
  MarketWatch view_;
};

// A refusal of the stream as the CLI reports a broker's error.
core::Status Refused(CliContext& ctx, const SseStreamResult& r) {
  HttpReply reply;
  reply.status = r.status;
  reply.body = r.body;
  reply.json = json::parse(r.body, nullptr, false);
  if (reply.json.is_discarded()) reply.json = nullptr;
  ctx.NoteBrokerReply(reply);
  std::string msg = reply.error_message();
  if (msg.empty()) msg = "GET /v1/events answered " + std::to_string(r.status);
  return core::Status(StatusFromReply(reply).code(), msg);
}

core::Status Watch(CliContext& ctx, const WatchTarget& t) {
  BOURSE_ASSIGN_OR_RETURN(Client * c, ctx.GetClient(false));
  const std::string url = c->url();
  // Start at the present: the head's size is the id of the last event so far.
  BOURSE_ASSIGN_OR_RETURN(json head, ctx.Call("GET", "/v1/ledger/head"));
  std::string last_id = std::to_string(head.value("size", int64_t{0}));
  Printer out(t, ctx.json, ::isatty(STDOUT_FILENO) == 1);
  if (t.kind == WatchKind::kMarket) {
    BOURSE_ASSIGN_OR_RETURN(
        json depth, ctx.Call("GET", "/v1/markets/" + EscapeSegment(t.name) + "/depth?levels=10"));
    out.view().SetBook(depth);
  }
  out.Start();
  SseParser parser;
  int backoff_ms = kFirstBackoffMs;
  bool lost = false, opened = false;
  while (true) {
    SseReadOptions o;
    o.on_open = [&] {
      if (lost) {
        std::fprintf(stderr, "watch: reconnected, resuming after event %s\n", last_id.c_str());
      } else if (!opened) {
        std::fprintf(stderr, "watch: following %s%s\n", url.c_str(), WatchPath(t).c_str());
      }
      opened = true;
      lost = false;
      backoff_ms = kFirstBackoffMs;
    };
    SseStreamResult r = ReadEventStream(
        url, WatchPath(t), last_id, parser,
        [&](const SseEvent& e) {
          if (!e.id.empty()) last_id = e.id;
          out.Show(e);
          return true;
        },
        o);
    if (r.end == SseStreamResult::End::kRefused && r.status < 500) return Refused(ctx, r);
    std::string why = r.error.empty() ? "the stream ended" : r.error;
    if (r.end == SseStreamResult::End::kRefused)
      why = "the broker answered " + std::to_string(r.status);
    std::fprintf(stderr, "watch: connection lost (%s); reconnecting in %.1fs\n", why.c_str(),
                 backoff_ms / 1000.0);
    lost = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
  }
}

}  // namespace

void AddWatchCommands(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand(
      "watch", "live updates from the event stream until Ctrl-C: market M | ledger | slice S");
  noun->require_subcommand(1);
  noun->footer("example: bourse watch market mkt_1; bourse watch ledger --json");
  auto t = std::make_shared<WatchTarget>();
  CLI::App* market = noun->add_subcommand("market", "the book (top 10) and the last 10 trades");
  market->add_option("M", t->name, "market id")->required();
  ctx.Bind(market, [&ctx, t] {
    t->kind = WatchKind::kMarket;
    return Watch(ctx, *t);
  });
  CLI::App* ledger = noun->add_subcommand("ledger", "one line per new signed head");
  ctx.Bind(ledger, [&ctx, t] {
    t->kind = WatchKind::kLedger;
    return Watch(ctx, *t);
  });
  CLI::App* slice = noun->add_subcommand("slice", "one line per change of the slice's bindings");
  slice->add_option("S", t->name, "slice name")->required();
  ctx.Bind(slice, [&ctx, t] {
    t->kind = WatchKind::kSlice;
    return Watch(ctx, *t);
  });
}

}  // namespace bourse::clients
