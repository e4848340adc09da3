// bourse-example-batch: a batch service on proportional share
// (clients/examples/README.md, docs/markets.md "Proportional share").
//
// Batch work does not need a guaranteed amount, only a fair part of what is
// there: it bids a spending rate per node, its share is its rate over the sum
// of the rates on the node, and the node guard turns shares into CPU weights
// and link rates. Each pass:
//   1. the slice exists and stays renewed;
//   2. every node it works on (`--nodes a,b` or `all`) has one active share
//      bid for the slice: `--rate` credits/s from a `--budget` escrowed up
//      front; a bid whose budget ran out is `exhausted`, so it bids again;
//   3. it logs its share on each node (GET /v1/nodes/{node}/shares, the
//      table the node guard applies) whenever it changes.
//
//   bourse-example-batch --url http://127.0.0.1:8080 --key carol.pem --slice ucb_batch
//       --rate 0.001 --budget 1 --nodes all
#include <map>
#include <string>
#include <vector>

#include "clients/examples/example_util.h"
#include "clients/examples/plans.h"

namespace bourse::examples {
namespace {

class Batch {
 public:
  Batch(clients::Client& c, std::string slice, core::Money rate, core::Money budget,
        std::vector<std::string> nodes)
      : c_(c),
        me_(c.key()->public_key().ToText()),
        slice_(std::move(slice)),
        rate_(rate),
        budget_(budget),
        nodes_(std::move(nodes)) {}

  core::Status Pass() {
    BOURSE_RETURN_IF_ERROR(EnsureSlice(c_, slice_));
    BOURSE_ASSIGN_OR_RETURN(std::vector<std::string> targets, Targets());
    BOURSE_ASSIGN_OR_RETURN(json bids, c_.Call("GET", "/v1/share_bids?state=active&holder=" +
                                                          clients::EscapeSegment(me_)));
    ReportEnded(bids);
    for (const std::string& node : NodesNeedingShareBid(targets, bids, slice_)) {
      BOURSE_RETURN_IF_ERROR(BidOn(node));
    }
    for (const std::string& node : targets) BOURSE_RETURN_IF_ERROR(ReportShare(node));
    return core::Status::Ok();
  }

 private:
  // The nodes named by --nodes, or every registered node (read each pass,
  // so a node added later is used too).
  core::Result<std::vector<std::string>> Targets() {
    if (!nodes_.empty()) return nodes_;
    BOURSE_ASSIGN_OR_RETURN(json got, c_.Call("GET", "/v1/nodes"));
    std::vector<std::string> all;
    for (const json& n : got["nodes"]) all.push_back(n.value("id", ""));
    return all;
  }

  // Step 2: a share bid; the budget is escrowed and charged at the rate.
  core::Status BidOn(const std::string& node) {
    const int64_t now = NowSeconds();
    if (retry_at_[node] > now) return core::Status::Ok();  // refused lately
    auto got =
        c_.Call("POST", "/v1/nodes/" + clients::EscapeSegment(node) + "/share_bids",
                {{"slice", slice_}, {"rate", rate_.ToString()}, {"budget", budget_.ToString()}});
    if (Unreachable(got.status())) return got.status();
    if (!got.ok()) {  // e.g. 402: no credits left for the budget
      LogError("share_bid", got.status(), {{"node", node}});
      retry_at_[node] = now + 30;
      return core::Status::Ok();
    }
    const json& bid = (*got)["bid"];
    LogAction("share_bid", {{"node", node},
                            {"bid", bid.value("id", "")},
                            {"rate", rate_.ToString()},
                            {"budget", budget_.ToString()}});
    return core::Status::Ok();
  }

  // Logs, once, each of our bids that stopped being active (its budget is spent).
  void ReportEnded(const json& bids) {
    std::map<std::string, std::string> now_active;  // bid -> node
    for (const json& b : bids["bids"]) {
      if (b.value("slice", "") == slice_) now_active[b.value("id", "")] = b.value("node", "");
    }
    for (const auto& [id, node] : active_) {
      if (!now_active.count(id)) LogAction("share_bid_ended", {{"node", node}, {"bid", id}});
    }
    active_ = std::move(now_active);
  }

  // Step 3: our row of the node's share table, logged when it changes.
  core::Status ReportShare(const std::string& node) {
    BOURSE_ASSIGN_OR_RETURN(
        json table, c_.Call("GET", "/v1/nodes/" + clients::EscapeSegment(node) + "/shares"));
    json mine = SliceShare(table, slice_);
    if (mine == shares_[node]) return core::Status::Ok();
    shares_[node] = mine;
    LogAction("share", {{"node", node},
                        {"cpu_weight", mine.is_null() ? json(0) : mine["cpu_weight"]},
                        {"net_kbps", mine.is_null() ? json(0) : mine["net_kbps"]},
                        {"slices", table["shares"].size()}});
    return core::Status::Ok();
  }

  clients::Client& c_;
  const std::string me_, slice_;
  const core::Money rate_, budget_;
  const std::vector<std::string> nodes_;       // empty: all
  std::map<std::string, int64_t> retry_at_;    // node -> when to bid again after a refusal
  std::map<std::string, std::string> active_;  // our active bids: id -> node
  std::map<std::string, json> shares_;         // node -> our last logged row
};

}  // namespace
}  // namespace bourse::examples

int main(int argc, char** argv) {
  using namespace bourse;
  using namespace bourse::examples;
  CLI::App app(
      "bourse-example-batch: keeps a proportional-share bid on each node for its "
      "slice and logs its share");
  ServiceFlags f;
  AddServiceFlags(app, f);
  std::string rate_text, budget_text, nodes_text = "all";
  app.add_option("--rate", rate_text, "credits per second on each node")->required();
  app.add_option("--budget", budget_text, "credits escrowed per bid, spent at the rate")
      ->required();
  app.add_option("--nodes", nodes_text, "a,b,... or all (default all)");
  if (int code = ParseFlags(app, argc, argv); code >= 0) return code;

  auto rate = core::Money::Parse(rate_text);
  if (!rate.ok()) return BadFlag("--rate", rate.status());
  if (!rate->is_positive()) return BadFlag("--rate", core::InvalidArgument("must be > 0"));
  auto budget = core::Money::Parse(budget_text);
  if (!budget.ok()) return BadFlag("--budget", budget.status());
  if (!budget->is_positive()) return BadFlag("--budget", core::InvalidArgument("must be > 0"));
  auto nodes = ParseNodeList(nodes_text);
  if (!nodes.ok()) return BadFlag("--nodes", nodes.status());
  auto client = Connect(f.url, f.key);
  if (!client.ok()) return BadFlag("--key", client.status());
  StopOnSignals();
  Batch b(*client, f.slice, *rate, *budget, *nodes);
  return RunPasses(5, [&] { return b.Pass(); });
}
