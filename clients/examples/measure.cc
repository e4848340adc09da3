// bourse-example-measure: a measurement service that bids in sealed-bid
// combinatorial rounds (clients/examples/README.md, docs/markets.md
// "Sealed-bid combinatorial rounds").
//
// A measurement needs vantage points in several sites at once, which is what
// a combinatorial round sells: bundles of nodes, all or nothing. Each pass:
//   1. the slice exists and stays renewed;
//   2. every open round it has not bid on yet gets one sealed bid of at most
//      `--limit` credits: "--count N of the offered nodes in >= --min-sites K
//      sites" XOR "these two nodes of different sites", each node with `--res`;
//   3. what it won in cleared rounds (their results are public) is bound to
//      the slice and the slice placed on those nodes.
// Bids are sealed, but a bidder's signed GET of a round shows its own bids
// (`my_bids`): before bidding it asks, so a restarted service never bids
// twice in one round.
//
//   bourse-example-measure --url http://127.0.0.1:8080 --key bob.pem --slice ucb_measure
//       --count 2 --min-sites 2 --res cpu_mcores=100,mem_mib=128 --limit 5
#include <map>
#include <set>
#include <string>
#include <vector>

#include "clients/examples/example_util.h"
#include "clients/examples/plans.h"

namespace bourse::examples {
namespace {

class Measure {
 public:
  Measure(clients::Client& c, std::string slice, Rspec want, core::Money limit)
      : c_(c),
        me_(c.key()->public_key().ToText()),
        slice_(std::move(slice)),
        want_(want),
        limit_(limit) {}

  core::Status Pass() {
    BOURSE_RETURN_IF_ERROR(EnsureSlice(c_, slice_));
    BOURSE_ASSIGN_OR_RETURN(json open, c_.Call("GET", "/v1/rounds?state=open"));
    for (const json& round : RoundsToBid(open, done_, NowSeconds())) {
      BOURSE_RETURN_IF_ERROR(Bid(round));
    }
    BOURSE_ASSIGN_OR_RETURN(json cleared, c_.Call("GET", "/v1/rounds?state=cleared"));
    ReportResults(cleared);
    return BindWins(cleared);
  }

 private:
  // Step 2: one sealed bid; the limit is escrowed until the round clears.
  core::Status Bid(const json& round) {
    const std::string id = round.value("id", "");
    done_.insert(id);  // one try per round, whatever happens
    // Did we bid already (before a restart)? Our own sealed bids show only to us.
    auto seen = c_.CallSigned("GET", "/v1/rounds/" + clients::EscapeSegment(id));
    if (Unreachable(seen.status())) {
      done_.erase(id);
      return seen.status();
    }
    if (seen.ok() && !seen->value("my_bids", json::array()).empty()) {
      bids_[id] = (*seen)["my_bids"][0].value("id", "");
      LogAction("round_bid_found", {{"round", id}, {"bid", bids_[id]}});
      return core::Status::Ok();
    }
    std::string why;
    std::optional<json> body = RoundBid(round, want_, limit_, &why);
    if (!body) {
      LogAction("round_skipped", {{"round", id}, {"why", why}});
      return core::Status::Ok();
    }
    auto got = c_.Call("POST", "/v1/rounds/" + clients::EscapeSegment(id) + "/bids", *body);
    if (Unreachable(got.status())) {
      done_.erase(id);  // try again when the broker is back
      return got.status();
    }
    if (!got.ok()) {
      LogError("round_bid", got.status(), {{"round", id}});
      return core::Status::Ok();
    }
    bids_[id] = (*got)["bid"].value("id", "");
    LogAction("round_bid", {{"round", id},
                            {"bid", bids_[id]},
                            {"limit", limit_.ToString()},
                            {"bundles", (*body)["bundles"]}});
    return core::Status::Ok();
  }

  // Says, once, whether each of our bids won (the results are public).
  void ReportResults(const json& cleared) {
    for (const json& r : cleared["rounds"]) {
      auto it = bids_.find(r.value("id", ""));
      if (it == bids_.end()) continue;
      json mine = nullptr;
      for (const json& w : r["result"].value("winners", json::array())) {
        if (w.value("bid", "") == it->second) mine = w;
      }
      if (mine.is_null()) {
        LogAction("round_lost", {{"round", it->first}, {"bid", it->second}});
      } else {
        LogAction("round_won", {{"round", it->first},
                                {"bid", it->second},
                                {"nodes", mine["nodes"]},
                                {"pay", mine["pay"]}});
      }
      bids_.erase(it);
    }
  }

  // Step 3: bind every rcap won and not bound yet, then place slivers.
  core::Status BindWins(const json& cleared) {
    BOURSE_ASSIGN_OR_RETURN(json bindings, c_.Call("GET", SlicePath(slice_, "/bindings")));
    std::vector<std::string> nodes;
    for (const Won& w : UnboundWins(cleared, me_, bindings, NowSeconds())) {
      core::Status st = BindRcap(c_, slice_, w.rcap);
      if (Unreachable(st)) return st;
      if (!st.ok()) {
        LogError("bind", st, {{"round", w.round}, {"rcap", w.rcap}});
        continue;
      }
      nodes.push_back(w.node);
    }
    return Instantiate(c_, slice_, nodes);
  }

  clients::Client& c_;
  const std::string me_, slice_;
  const Rspec want_;
  const core::Money limit_;
  std::set<std::string> done_;               // rounds bid on (or skipped)
  std::map<std::string, std::string> bids_;  // round -> our bid, until it clears
};

}  // namespace
}  // namespace bourse::examples

int main(int argc, char** argv) {
  using namespace bourse;
  using namespace bourse::examples;
  CLI::App app(
      "bourse-example-measure: bids in every sealed-bid round for nodes in several "
      "sites and binds what it wins to its slice");
  ServiceFlags f;
  AddServiceFlags(app, f);
  std::string res_text, limit_text;
  int64_t count = 0, min_sites = 1;
  app.add_option("--count", count, "how many nodes the count bundle asks")
      ->required()
      ->check(CLI::Range(1, 1000));
  app.add_option("--min-sites", min_sites, "in at least this many sites")
      ->required()
      ->check(CLI::Range(1, 1000));
  app.add_option("--res", res_text, "per node, e.g. cpu_mcores=100,mem_mib=128")->required();
  app.add_option("--limit", limit_text, "the most paid per round (escrowed while it is open)")
      ->required();
  if (int code = ParseFlags(app, argc, argv); code >= 0) return code;

  auto res = core::ResourceVector::Parse(res_text);
  if (!res.ok()) return BadFlag("--res", res.status());
  auto limit = core::Money::Parse(limit_text);
  if (!limit.ok()) return BadFlag("--limit", limit.status());
  if (!limit->is_positive()) return BadFlag("--limit", core::InvalidArgument("must be > 0"));
  if (min_sites > count) return BadFlag("--min-sites", core::InvalidArgument("above --count"));
  auto client = Connect(f.url, f.key);
  if (!client.ok()) return BadFlag("--key", client.status());
  StopOnSignals();
  Measure m(*client, f.slice, {.res = *res, .nodes = count, .min_sites = min_sites, .window = {}},
            *limit);
  return RunPasses(2, [&] { return m.Pass(); });
}
