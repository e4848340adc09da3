// bourse-example-cdn: a content-distribution service (clients/examples/README.md).
//
// It keeps `--nodes N` nodes in at least `--min-sites K` sites for its slice,
// period after period (the testbed's markets sell aligned periods of
// `--period` seconds):
//   1. the slice exists and stays renewed;
//   2. the first lease, from now to the end of the current period, is
//      bought through a request for quote: the pooling agents quote, the
//      cheapest complete quote wins at the close, and the service binds each
//      awarded chain to its slice and places slivers on those nodes;
//   3. before the lease ends it renews for the next whole period with
//      acquire(rspec): the order books first, and an RFQ for the same rspec
//      when they cannot fill it; what it gets is bound the same way.
// What it decides from is read from the broker each pass (the slice's
// bindings, its own open and awarded RFQs), so a restart goes on from there.
//
//   bourse-example-cdn --url http://127.0.0.1:8080 --key alice.pem --slice mit_cdn
//       --nodes 3 --min-sites 2 --res cpu_mcores=500,mem_mib=512 --max-price 20
#include <string>
#include <vector>

#include "clients/examples/example_util.h"
#include "clients/examples/plans.h"

namespace bourse::examples {
namespace {

class Cdn {
 public:
  Cdn(clients::Client& c, std::string slice, Rspec want, core::Money max_price, int64_t period)
      : c_(c),
        me_(c.key()->public_key().ToText()),
        slice_(std::move(slice)),
        want_(want),
        max_price_(max_price),
        period_(period) {}

  // One pass: the slice; bind what came in since the last pass; then lease,
  // renew or wait, from what is bound and which RFQs of ours are open.
  core::Status Pass() {
    BOURSE_RETURN_IF_ERROR(EnsureSlice(c_, slice_));
    BOURSE_RETURN_IF_ERROR(BindLeftovers());
    BOURSE_ASSIGN_OR_RETURN(json awarded, MyRfqs("awarded"));
    BOURSE_ASSIGN_OR_RETURN(json bindings, c_.Call("GET", SlicePath(slice_, "/bindings")));
    BOURSE_RETURN_IF_ERROR(BindAwards(awarded, bindings));

    BOURSE_ASSIGN_OR_RETURN(bindings, c_.Call("GET", SlicePath(slice_, "/bindings")));
    BOURSE_ASSIGN_OR_RETURN(json open, MyRfqs("open"));
    BOURSE_RETURN_IF_ERROR(ReportRfqOutcome(open));
    const int64_t now = NowSeconds();
    if (now < retry_at_) return core::Status::Ok();  // the last try was refused: wait a little
    const int64_t covered = CoveredUntil(bindings);
    switch (PlanCdn(now, period_, covered, !open["rfqs"].empty())) {
      case CdnStep::kLease:
        return OpenRfq(FirstLease(now, period_), now);
      case CdnStep::kRenew:
        return Renew(Renewal(covered, period_), now);
      case CdnStep::kWaitForRfq:
      case CdnStep::kIdle:
        return core::Status::Ok();
    }
    return core::Status::Ok();
  }

 private:
  core::Result<json> MyRfqs(const std::string& state) {
    return c_.Call("GET", "/v1/rfqs?state=" + state + "&buyer=" + clients::EscapeSegment(me_));
  }

  // Step 2: an RFQ for the first lease, closing in a few seconds.
  core::Status OpenRfq(const core::Interval& window, int64_t now) {
    Rspec want = want_;
    want.window = window;
    auto got = c_.Call("POST", "/v1/rfqs", RfqBody(want, max_price_, now + kRfqCloseAheadS));
    if (!got.ok()) return Refused("rfq_open", got.status(), now);
    pending_rfq_ = (*got)["rfq"].value("id", "");
    LogAction("rfq_opened", {{"rfq", pending_rfq_},
                             {"nodes", want.nodes},
                             {"min_sites", want.min_sites},
                             {"not_before", window.not_before},
                             {"not_after", window.not_after},
                             {"close", now + kRfqCloseAheadS},
                             {"max_price", max_price_.ToString()}});
    return core::Status::Ok();
  }

  // Step 3: acquire(rspec) for the next period; the broker opens an RFQ
  // instead when the books cannot fill it, awarded (and bound) later.
  core::Status Renew(const core::Interval& window, int64_t now) {
    Rspec want = want_;
    want.window = window;
    auto got = c_.Call("POST", "/v1/acquire", AcquireBody(want, max_price_));
    if (!got.ok()) return Refused("renew", got.status(), now);
    if (got->value("fallback", false)) {
      pending_rfq_ = got->value("rfq", "");
      LogAction("renew_via_rfq", {{"rfq", pending_rfq_},
                                  {"not_before", window.not_before},
                                  {"not_after", window.not_after},
                                  {"refused", got->value("refused", "")}});
      return core::Status::Ok();
    }
    LogAction("acquired", {{"nodes", (*got)["nodes"]},
                           {"paid", got->value("paid", "")},
                           {"not_before", window.not_before},
                           {"not_after", window.not_after}});
    for (const json& chain : (*got)["chains"]) unbound_.push_back(chain);
    return BindLeftovers();
  }

  // Chains acquired but not bound yet (kept when the broker went away in
  // between; a chain the broker refuses to bind is logged and dropped).
  core::Status BindLeftovers() {
    std::vector<std::string> nodes;
    while (!unbound_.empty()) {
      const json chain = unbound_.front();
      core::Status st = BindChain(c_, slice_, chain);
      if (Unreachable(st)) return st;
      unbound_.erase(unbound_.begin());
      if (!st.ok()) {
        LogError("bind", st);
        continue;
      }
      nodes.push_back(chain.back().value("node", ""));
    }
    return Instantiate(c_, slice_, nodes);
  }

  // Every leaf an RFQ awarded us that is not bound yet: bind it, then place
  // slivers on those nodes.
  core::Status BindAwards(const json& awarded, const json& bindings) {
    std::vector<std::string> nodes;
    for (const std::string& rcap : UnboundAwards(awarded, bindings, NowSeconds())) {
      BOURSE_ASSIGN_OR_RETURN(json got,
                              c_.Call("GET", "/v1/rcaps/" + clients::EscapeSegment(rcap)));
      core::Status st = BindChain(c_, slice_, got["chain"]);
      if (Unreachable(st)) return st;
      if (!st.ok()) {
        LogError("bind", st, {{"rcap", rcap}});
        continue;
      }
      nodes.push_back(got["rcap"].value("node", ""));
    }
    return Instantiate(c_, slice_, nodes);
  }

  // Says how the RFQ we opened ended, once it is no longer open.
  core::Status ReportRfqOutcome(const json& open) {
    if (pending_rfq_.empty()) return core::Status::Ok();
    for (const json& r : open["rfqs"]) {
      if (r.value("id", "") == pending_rfq_) return core::Status::Ok();
    }
    BOURSE_ASSIGN_OR_RETURN(json got,
                            c_.Call("GET", "/v1/rfqs/" + clients::EscapeSegment(pending_rfq_)));
    const json& r = got["rfq"];
    LogAction("rfq_" + r.value("state", std::string("ended")),
              {{"rfq", pending_rfq_},
               {"price", r.value("price", json())},
               {"reason", r.value("reason", json())}});
    pending_rfq_.clear();
    return core::Status::Ok();
  }

  // A refusal (4xx) is logged and tried again after 10 s; an unreachable
  // broker ends the pass (RunPasses backs off).
  core::Status Refused(const char* action, const core::Status& st, int64_t now) {
    if (Unreachable(st)) return st;
    LogError(action, st);
    retry_at_ = now + 10;
    return core::Status::Ok();
  }

  clients::Client& c_;
  const std::string me_, slice_;
  const Rspec want_;
  const core::Money max_price_;
  const int64_t period_;
  std::string pending_rfq_;    // the RFQ we wait for (to log how it ended)
  std::vector<json> unbound_;  // acquired chains still to bind
  int64_t retry_at_ = 0;
};

}  // namespace
}  // namespace bourse::examples

int main(int argc, char** argv) {
  using namespace bourse;
  using namespace bourse::examples;
  CLI::App app(
      "bourse-example-cdn: keeps N nodes in >= K sites for a slice, leased through an "
      "RFQ and renewed each period with acquire(rspec)");
  ServiceFlags f;
  AddServiceFlags(app, f);
  std::string res_text, max_price_text;
  int64_t nodes = 0, min_sites = 1, period = 600;
  app.add_option("--nodes", nodes, "how many nodes")->required()->check(CLI::Range(1, 1000));
  app.add_option("--min-sites", min_sites, "in at least this many sites")
      ->required()
      ->check(CLI::Range(1, 1000));
  app.add_option("--res", res_text, "per node, e.g. cpu_mcores=500,mem_mib=512")->required();
  app.add_option("--max-price", max_price_text, "the most paid per lease, in all")->required();
  app.add_option("--period", period, "the markets' period in seconds (default 600)")
      ->check(CLI::Range(120, 86400 * 7));
  if (int code = ParseFlags(app, argc, argv); code >= 0) return code;

  auto res = core::ResourceVector::Parse(res_text);
  if (!res.ok()) return BadFlag("--res", res.status());
  auto max_price = core::Money::Parse(max_price_text);
  if (!max_price.ok()) return BadFlag("--max-price", max_price.status());
  if (!max_price->is_positive())
    return BadFlag("--max-price", core::InvalidArgument("must be > 0"));
  if (min_sites > nodes) return BadFlag("--min-sites", core::InvalidArgument("above --nodes"));
  auto client = Connect(f.url, f.key);
  if (!client.ok()) return BadFlag("--key", client.status());
  StopOnSignals();
  Cdn cdn(*client, f.slice, {.res = *res, .nodes = nodes, .min_sites = min_sites, .window = {}},
          *max_price, period);
  return RunPasses(3, [&] { return cdn.Pass(); });
}
