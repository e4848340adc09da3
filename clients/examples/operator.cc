// bourse-example-operator: the testbed operator's loop (clients/examples/README.md).
// It runs with an admin key and keeps the markets the services use:
//   1. for every registered node, an order-book market of `--unit` for the
//      current and for the next aligned period [k*P, (k+1)*P) of `--period`
//      seconds, trading until 60 s before the period ends (pooling agents
//      with `markets = auto` sell there; acquire(rspec) buys there);
//   2. every `--round-every` seconds a sealed-bid combinatorial round over
//      the broker's own pool (what sites granted to the broker): per node, the
//      pool rcap with capacity free over the round's window, bids taken for
//      15 s, over the rest of the current period. The broker's markets tick
//      clears the round at its close; the operator logs the result.
//
//   bourse-example-operator --url http://127.0.0.1:8080 --key bourse.db.admin-key.pem
//       --unit cpu_mcores=100,mem_mib=128 --period 600 --round-every 30
#include <map>
#include <set>
#include <string>
#include <vector>

#include "clients/agent/broker_view.h"
#include "clients/examples/example_util.h"
#include "clients/examples/plans.h"
#include "ledger/rcap.h"

namespace bourse::examples {
namespace {

class Operator {
 public:
  Operator(clients::Client& c, core::ResourceVector unit, int64_t period, int64_t round_every)
      : c_(c), unit_(unit), period_(period), round_every_(round_every) {}

  core::Status Pass() {
    if (broker_key_.empty()) {  // the key that holds the pool is the ledger's
      BOURSE_ASSIGN_OR_RETURN(json key, c_.Call("GET", "/v1/ledger/key"));
      broker_key_ = key.value("key", "");
    }
    BOURSE_RETURN_IF_ERROR(KeepMarkets());
    BOURSE_RETURN_IF_ERROR(WatchRound());
    const int64_t now = NowSeconds();
    if (now < next_round_ || !open_round_.empty()) return core::Status::Ok();
    next_round_ = now + round_every_;
    return OpenRound(now);
  }

 private:
  // Step 1: the markets of the current and the next period on every node.
  core::Status KeepMarkets() {
    BOURSE_ASSIGN_OR_RETURN(json nodes, c_.Call("GET", "/v1/nodes"));
    std::vector<std::string> ids;
    for (const json& n : nodes["nodes"]) ids.push_back(n.value("id", ""));
    BOURSE_ASSIGN_OR_RETURN(json markets, c_.Call("GET", "/v1/markets?state=open"));
    for (const MarketSpec& m : MissingMarkets(ids, markets, unit_, period_, NowSeconds())) {
      auto got = c_.Call("POST", "/v1/markets", MarketBody(m, unit_));
      if (Unreachable(got.status())) return got.status();
      if (!got.ok()) {
        LogError("market_create", got.status(), {{"node", m.node}});
        continue;
      }
      LogAction("market_created", {{"market", (*got)["market"].value("id", "")},
                                   {"node", m.node},
                                   {"not_before", m.window.not_before},
                                   {"not_after", m.window.not_after},
                                   {"close", m.close}});
    }
    return core::Status::Ok();
  }

  // Step 2: a round over what the pool has free.
  core::Status OpenRound(int64_t now) {
    const int64_t close = now + kRoundOpenS;
    const core::Interval window = RoundWindow(close, period_);
    BOURSE_ASSIGN_OR_RETURN(std::vector<OfferCandidate> candidates, PoolCandidates(window));
    std::erase_if(candidates, [&](const OfferCandidate& c) { return refused_.count(c.rcap) > 0; });
    std::vector<std::string> offers = ChooseOffers(candidates);
    if (offers.empty()) {
      LogAction("round_skipped",
                {{"why", "nothing free in the broker's pool over " + window.ToString()}});
      return core::Status::Ok();
    }
    auto got = c_.Call("POST", "/v1/rounds",
                       {{"offers", offers},
                        {"not_before", window.not_before},
                        {"not_after", window.not_after},
                        {"close", close}});
    if (Unreachable(got.status())) return got.status();
    if (!got.ok()) {  // e.g. an offer is escrowed for a pool sell: leave it out next time
      LogError("round_open", got.status(), {{"offers", offers}});
      if (std::string bad = RefusedOffer(got.status().message(), offers); !bad.empty()) {
        refused_.insert(bad);
      }
      return core::Status::Ok();
    }
    const json& round = (*got)["round"];
    open_round_ = round.value("id", "");
    json nodes = json::array();
    for (const json& o : round["offers"]) nodes.push_back(o.value("node", ""));
    LogAction("round_opened", {{"round", open_round_},
                               {"nodes", nodes},
                               {"not_before", window.not_before},
                               {"not_after", window.not_after},
                               {"close", close}});
    return core::Status::Ok();
  }

  // The broker's pool rcaps that cover `window`, each with what is free of
  // it there (its quantities less the peak use of its children: the same
  // reckoning as the broker's, clients/agent's FreeOver).
  core::Result<std::vector<OfferCandidate>> PoolCandidates(const core::Interval& window) {
    BOURSE_ASSIGN_OR_RETURN(json pools, c_.Call("GET", "/v1/pools"));
    std::vector<OfferCandidate> out;
    for (const json& pool : pools["pools"]) {
      for (const json& listed : pool["rcaps"]) {
        BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(listed));
        if (!window.IsSubsetOf(r.interval)) continue;
        BOURSE_ASSIGN_OR_RETURN(json got,
                                c_.Call("GET", "/v1/rcaps/" + clients::EscapeSegment(r.id)));
        if (got.value("released", false) || !IsPoolChain(got["chain"], broker_key_)) continue;
        agent::Held held{.rcap = r, .children = {}, .site = "", .nested = false};
        for (const json& kid : got["children"]) {
          BOURSE_ASSIGN_OR_RETURN(ledger::Rcap child, Rcap(kid.get<std::string>()));
          held.children.push_back(child);
        }
        out.push_back({.rcap = r.id,
                       .node = r.node,
                       .depth = got["chain"].size(),
                       .free = agent::FreeOver(held, window)});
      }
    }
    return out;
  }

  // A recorded rcap never changes: each is read once.
  core::Result<ledger::Rcap> Rcap(const std::string& id) {
    if (auto it = rcaps_.find(id); it != rcaps_.end()) return it->second;
    BOURSE_ASSIGN_OR_RETURN(json got, c_.Call("GET", "/v1/rcaps/" + clients::EscapeSegment(id)));
    BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::Rcap::FromJson(got["rcap"]));
    rcaps_.emplace(id, r);
    return r;
  }

  // Logs how our open round ended once the tick has cleared it.
  core::Status WatchRound() {
    if (open_round_.empty()) return core::Status::Ok();
    auto got = c_.Call("GET", "/v1/rounds/" + clients::EscapeSegment(open_round_));
    if (Unreachable(got.status())) return got.status();
    if (!got.ok()) {  // it cannot be read: stop waiting for it
      LogError("round_watch", got.status(), {{"round", open_round_}});
      open_round_.clear();
      return core::Status::Ok();
    }
    const json& r = (*got)["round"];
    if (r.value("state", "") == "open") return core::Status::Ok();
    const json result = r.value("result", json::object());
    LogAction("round_" + r.value("state", std::string("ended")),
              {{"round", open_round_},
               {"bids", result.value("bids", 0)},
               {"winners", result.value("winners", json::array()).size()},
               {"welfare", result.value("welfare", json())},
               {"error", result.value("error", json())}});
    open_round_.clear();
    return core::Status::Ok();
  }

  clients::Client& c_;
  const core::ResourceVector unit_;
  const int64_t period_, round_every_;
  std::string broker_key_;
  std::string open_round_;  // the round we opened, until it is cleared
  int64_t next_round_ = 0;
  std::map<std::string, ledger::Rcap> rcaps_;
  std::set<std::string> refused_;  // offers a round refused: not offered again
};

}  // namespace
}  // namespace bourse::examples

int main(int argc, char** argv) {
  using namespace bourse;
  using namespace bourse::examples;
  CLI::App app(
      "bourse-example-operator: keeps per-node order-book markets for the current and "
      "next period and opens sealed-bid rounds over the broker's pool (admin key)");
  ServiceFlags f;
  AddServiceFlags(app, f, /*with_slice=*/false);
  std::string unit_text;
  int64_t period = 600, round_every = 30;
  app.add_option("--unit", unit_text, "one unit of every market, e.g. cpu_mcores=100,mem_mib=128")
      ->required();
  app.add_option("--period", period, "the markets' period in seconds (default 600)")
      ->check(CLI::Range(120, 86400 * 7));
  app.add_option("--round-every", round_every, "seconds between rounds (default 30)")
      ->check(CLI::Range(kRoundOpenS + 1, int64_t{86400}));
  if (int code = ParseFlags(app, argc, argv); code >= 0) return code;

  auto unit = core::ResourceVector::Parse(unit_text);
  if (!unit.ok()) return BadFlag("--unit", unit.status());
  if (unit->IsZero()) return BadFlag("--unit", core::InvalidArgument("needs a quantity"));
  auto client = Connect(f.url, f.key);
  if (!client.ok()) return BadFlag("--key", client.status());
  StopOnSignals();
  Operator op(*client, *unit, period, round_every);
  return RunPasses(2, [&] { return op.Pass(); });
}
