// Markets: proportional share (Tycoon-style).
//
// A share bid is a spending rate (credits per second) on one node for one
// slice, with a budget escrowed when the bid is made. A slice's share of the
// node is the sum of its bids' rates over the sum of all live bids' rates on
// that node; a bid stops counting at the exact instant its budget would run
// out. Charging is continuous: every share_charge_interval_s (and when a bid
// is withdrawn) each bid pays rate x elapsed, rounded down to the
// nano-credit and capped by what is left of its escrow, to the node's site
// PI (escrow_settle entries); a bid whose escrow is spent is "exhausted". A
// withdrawn bid pays up to now and gets the rest of its escrow back.
//
// GET /v1/nodes/{node}/shares serves the node's current table signed by the
// broker's ledger key (the node guard's item 4): cpu_weight out of 10000 and
// net_kbps out of the node's net_max_kbps, both by largest-remainder
// rounding so they add up exactly.
//
// The arithmetic is the auction core's (auction/proportional_share.h): a
// bid's charge and the instant it runs out are auction::ShareNode::Advance
// for that one bid over its own uncharged time, and the table is a
// ShareNode per resource whose bidders are the slices (their summed rates),
// apportioned by ShareNode::Recompute. The broker adds only what the node
// guard needs on top: at least 1 cpu weight per listed slice.
#include <algorithm>
#include <map>

#include "auction/proportional_share.h"
#include "broker/markets/internal/market_state.h"
#include "broker/markets/markets.h"
#include "core/canonical_json.h"
#include "core/json_codec.h"
#include "core/random.h"
#include "ledger/accounts.h"

namespace bourse::markets {

using internal::Stmt;
using nlohmann::json;

namespace {

constexpr int64_t kTotalCpuWeight = 10000;
constexpr int64_t kMaxRateNanos = INT64_C(1'000'000'000'000'000'000);  // 1e9 credits/s
// The auction core keeps rates and budgets as int64 nano-credits.
constexpr int64_t kMaxShareNanos = INT64_MAX;
// Uncharged time is passed to the core in nanoseconds (int64): about 292
// years, far beyond any bid's life; longer spans are counted as that.
constexpr int64_t kMaxElapsedMs = INT64_MAX / 1'000'000;

struct ShareBid {
  std::string id, node, slice, bidder, escrow, state;
  int64_t rate_nanos = 0;  // per second
  int64_t charged_to_ms = 0;
  core::Money charged;
};

constexpr const char* kBidCols = "id,node,slice,bidder,rate,escrow,charged_to_ms,state,charged";

core::Result<ShareBid> BidFromRow(const Stmt& s) {
  ShareBid b{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(5), s.Text(7), 0, 0, {}};
  BOURSE_ASSIGN_OR_RETURN(core::Money rate, core::Money::Parse(s.Text(4)));
  b.rate_nanos = static_cast<int64_t>(rate.nanos());
  b.charged_to_ms = s.Int(6);
  BOURSE_ASSIGN_OR_RETURN(b.charged, core::Money::Parse(s.Text(8)));
  return b;
}

json BidJson(const ShareBid& b, const core::Money& remaining) {
  return {{"id", b.id},
          {"node", b.node},
          {"slice", b.slice},
          {"bidder", b.bidder},
          {"rate", core::Money::FromNanos(b.rate_nanos).ToString()},
          {"escrow", b.escrow},
          {"remaining", remaining.ToString()},
          {"charged", b.charged.ToString()},
          {"charged_to_ms", b.charged_to_ms},
          {"state", b.state}};
}

struct Due {
  core::Money pay;
  bool spent = false;  // the escrow runs out within the span: the bid is out
};

// What `b` owes for [charged_to_ms, now_ms) with `remaining` left of its
// escrow: the core's charge for one bid, i.e. rate x elapsed rounded down
// (the payer's favour), or exactly `remaining` when that would spend it.
// Errors: internal when a stored rate or escrow is outside the core's range
// (placement refuses those).
core::Result<Due> DueAt(const ShareBid& b, int64_t now_ms, const core::Money& remaining) {
  const int64_t elapsed_ms = std::clamp<int64_t>(now_ms - b.charged_to_ms, 0, kMaxElapsedMs);
  BOURSE_ASSIGN_OR_RETURN(auction::ShareNode one, auction::ShareNode::Create(0, core::Money()));
  core::Status set = one.SetBid(1, core::Money::FromNanos(b.rate_nanos), remaining);
  if (!set.ok()) return core::Internal("share bid " + b.id + ": " + set.message());
  BOURSE_ASSIGN_OR_RETURN(auction::ChargeResult c, one.Advance(elapsed_ms * 1'000'000));
  if (c.payments.size() != 1) return core::Internal("share bid " + b.id + ": no charge");
  return Due{c.payments[0].amount, !c.dropouts.empty()};
}

// Charges one bid up to now_ms; marks it exhausted when its escrow is spent.
core::Status ChargeBid(Host& host, ledger::Txn& txn, ShareBid& b, int64_t now_ms, bool withdraw) {
  BOURSE_ASSIGN_OR_RETURN(ledger::EscrowState e, ledger::Accounts::Escrow(txn.db(), b.escrow));
  BOURSE_ASSIGN_OR_RETURN(Due due, DueAt(b, now_ms, e.remaining));
  const core::Money& pay = due.pay;
  if (pay.is_positive()) {
    BOURSE_ASSIGN_OR_RETURN(std::optional<NodeInfo> n, host.FindNode(txn.db(), b.node));
    if (!n || n->site_pi.empty()) return core::NotFound("node " + b.node + " does not exist");
    BOURSE_RETURN_IF_ERROR(host.EscrowSettle(txn, b.escrow, n->site_pi, pay));
    BOURSE_ASSIGN_OR_RETURN(b.charged, b.charged.Add(pay));
  }
  BOURSE_ASSIGN_OR_RETURN(core::Money left, e.remaining.Sub(pay));
  b.charged_to_ms = now_ms;
  if (withdraw) {
    if (left.is_positive()) BOURSE_RETURN_IF_ERROR(host.EscrowRelease(txn, b.escrow, left));
    b.state = "withdrawn";
  } else if (due.spent) {
    b.state = "exhausted";
  }
  BOURSE_ASSIGN_OR_RETURN(
      Stmt u, txn.db()->Prepare("UPDATE m_share_bids SET charged_to_ms=?,state=?,charged=? "
                                "WHERE id=?"));
  u.Bind(1, b.charged_to_ms);
  u.Bind(2, b.state);
  u.Bind(3, b.charged.ToString());
  u.Bind(4, b.id);
  return u.Run();
}

// `units` apportioned among the slices by their summed rates (slice i is
// bidder i, so ties go to the earlier slice name): the core's ShareNode.
// Errors: internal when a rate sum is outside the core's range (placement
// keeps each slice's live rates on a node within it).
core::Result<std::vector<int64_t>> Apportion(const std::map<std::string, int64_t>& rates,
                                             int64_t units) {
  BOURSE_ASSIGN_OR_RETURN(auction::ShareNode node,
                          auction::ShareNode::Create(std::max<int64_t>(0, units), core::Money()));
  uint64_t i = 0;
  for (const auto& [slice, rate] : rates) {
    // The table needs only the rates; budgets matter to Advance, not here.
    core::Status set = node.SetBid(i++, core::Money::FromNanos(rate), core::Money());
    if (!set.ok()) return core::Internal("shares of slice " + slice + ": " + set.message());
  }
  node.Recompute();
  std::vector<int64_t> out;
  for (uint64_t k = 0; k < rates.size(); ++k) out.push_back(node.units_of(k));
  return out;
}

core::Result<ShareBid> LoadBid(storage::Connection* db, const std::string& id) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare(std::string("SELECT ") + kBidCols + " FROM m_share_bids WHERE id=?"));
  s.Bind(1, id);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return core::NotFound("share bid " + id + " does not exist");
  return BidFromRow(s);
}

// Whether `caller` created or owns `slice`. Errors: not_found, permission_denied.
core::Status CheckSliceOwner(Host& host, ledger::Txn& txn, const std::string& slice,
                             const std::string& caller) {
  BOURSE_ASSIGN_OR_RETURN(std::optional<SliceOwnership> s, host.SliceOwners(txn.db(), slice));
  if (!s) return core::NotFound("slice: slice " + slice + " does not exist");
  bool owner = s->creator == caller;
  for (const std::string& o : s->owners) owner = owner || o == caller;
  if (!owner) return core::PermissionDenied("slice: the caller does not own " + slice);
  return core::Status::Ok();
}

// The table gives each slice the sum of its bids' rates, which the core
// takes as one int64 rate: b's must keep the sum of its slice's active bids
// on its node in range.
core::Status CheckRateSum(ledger::Txn& txn, const ShareBid& b) {
  BOURSE_ASSIGN_OR_RETURN(Stmt sum,
                          txn.db()->Prepare("SELECT rate FROM m_share_bids WHERE node=? AND "
                                            "slice=? AND state='active'"));
  sum.Bind(1, b.node);
  sum.Bind(2, b.slice);
  internal::Int128 total = b.rate_nanos;
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, sum.Step());
    if (!row) break;
    BOURSE_ASSIGN_OR_RETURN(core::Money r, core::Money::Parse(sum.Text(0)));
    total += static_cast<int64_t>(r.nanos());
  }
  if (total > kMaxShareNanos) {
    return core::FailedPrecondition("rate: the active share bids of slice " + b.slice +
                                    " on node " + b.node +
                                    " would exceed 9223372036.854775807 credits/s in all");
  }
  return core::Status::Ok();
}

// Share bid b (id, node, slice, bidder, escrow, rate decoded) with `budget`,
// inside its Mutate fn: the node exists, the bidder owns the slice, the rates
// stay in range; the budget is escrowed, the row and share_bid written.
core::Result<json> PlaceShareBidTxn(Host& host, ledger::Txn& txn, ShareBid& b,
                                    const core::Money& rate, const core::Money& budget,
                                    int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(host.LookupPrincipal(txn, b.bidder).status());
  BOURSE_ASSIGN_OR_RETURN(std::optional<NodeInfo> n, host.FindNode(txn.db(), b.node));
  if (!n) return core::NotFound("node " + b.node + " does not exist");
  BOURSE_RETURN_IF_ERROR(CheckSliceOwner(host, txn, b.slice, b.bidder));
  BOURSE_RETURN_IF_ERROR(CheckRateSum(txn, b));
  BOURSE_RETURN_IF_ERROR(host.EscrowHold(txn, b.escrow, b.bidder, budget));
  b.charged_to_ms = now_ms;
  BOURSE_ASSIGN_OR_RETURN(Stmt i,
                          txn.db()->Prepare("INSERT INTO m_share_bids(id,node,slice,bidder,rate,"
                                            "escrow,charged_to_ms,state,charged,created_ms) "
                                            "VALUES(?,?,?,?,?,?,?,'active','0.000000000',?)"));
  i.Bind(1, b.id);
  i.Bind(2, b.node);
  i.Bind(3, b.slice);
  i.Bind(4, b.bidder);
  i.Bind(5, rate.ToString());
  i.Bind(6, b.escrow);
  i.Bind(7, b.charged_to_ms);
  i.Bind(8, txn.now_millis());
  BOURSE_RETURN_IF_ERROR(i.Run());
  json out = BidJson(b, budget);
  BOURSE_RETURN_IF_ERROR(txn.Append("share_bid", {{"bid", b.id},
                                                  {"node", b.node},
                                                  {"slice", b.slice},
                                                  {"bidder", b.bidder},
                                                  {"rate", rate.ToString()},
                                                  {"budget", budget.ToString()}})
                             .status());
  return out;
}

// Withdraws share bid `id` of `caller`, inside its Mutate fn: it pays up to
// now_ms and the rest of its budget is released.
core::Result<json> WithdrawShareBidTxn(Host& host, ledger::Txn& txn, const std::string& id,
                                       const std::string& caller, int64_t now_ms) {
  BOURSE_ASSIGN_OR_RETURN(ShareBid b, LoadBid(txn.db(), id));
  if (b.bidder != caller) {
    return core::PermissionDenied("share bid " + b.id + " is not the caller's");
  }
  if (b.state != "active") {
    return core::FailedPrecondition("share bid " + b.id + " is " + b.state);
  }
  BOURSE_RETURN_IF_ERROR(ChargeBid(host, txn, b, now_ms, true));
  json out = BidJson(b, core::Money());
  BOURSE_RETURN_IF_ERROR(txn.Append("share_bid_withdrawn", {{"bid", b.id}}).status());
  return out;
}

core::Result<json> ShareBidJson(Host& host, const std::string& id) {
  json out;
  BOURSE_RETURN_IF_ERROR(host.store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(ShareBid b, LoadBid(db, id));
    BOURSE_ASSIGN_OR_RETURN(ledger::EscrowState e, ledger::Accounts::Escrow(db, b.escrow));
    out = BidJson(b, e.remaining);
    return core::Status::Ok();
  }));
  return out;
}

// The sum of the rates of each slice's bids on `node` still funded at
// now_ms, and the node's net_max_kbps (0 if it has none).
// Bids whose slice is gone (see ChargeShares) do not count.
core::Status ActiveRates(Host& host, storage::Connection* db, const std::string& node,
                         int64_t now_ms, std::map<std::string, int64_t>* by_slice,
                         int64_t* net_total) {
  using namespace internal;
  BOURSE_ASSIGN_OR_RETURN(std::optional<NodeInfo> n, host.FindNode(db, node));
  if (!n) return core::NotFound("node " + node + " does not exist");
  *net_total = n->net_max_kbps;
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare(std::string("SELECT ") + kBidCols +
                                              " FROM m_share_bids WHERE node=? AND "
                                              "state='active'"));
  s.Bind(1, node);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    BOURSE_ASSIGN_OR_RETURN(ShareBid b, BidFromRow(s));
    BOURSE_ASSIGN_OR_RETURN(bool slice_exists, host.SliceExists(db, b.slice));
    if (!slice_exists) continue;
    BOURSE_ASSIGN_OR_RETURN(ledger::EscrowState e, ledger::Accounts::Escrow(db, b.escrow));
    // Out at the exact instant the budget runs out, charged or not yet.
    BOURSE_ASSIGN_OR_RETURN(Due due, DueAt(b, now_ms, e.remaining));
    if (due.spent) continue;
    int64_t& r = (*by_slice)[b.slice];
    if (r > kMaxShareNanos - b.rate_nanos) {
      return core::Internal("shares: slice " + b.slice + " bids above the core's range");
    }
    r += b.rate_nanos;
  }
  return core::Status::Ok();
}

// The node's proportional-share table at now_ms, signed with `key`.
core::Result<json> SignedShareTable(Host& host, const core::PrivateKey& key,
                                    const std::string& node, int64_t now_ms) {
  std::map<std::string, int64_t> by_slice;
  int64_t net_total = 0;
  BOURSE_RETURN_IF_ERROR(host.store().Read([&](storage::Connection* db) -> core::Status {
    return ActiveRates(host, db, node, now_ms, &by_slice, &net_total);
  }));
  BOURSE_ASSIGN_OR_RETURN(std::vector<int64_t> cpu, Apportion(by_slice, kTotalCpuWeight));
  BOURSE_ASSIGN_OR_RETURN(std::vector<int64_t> net, Apportion(by_slice, net_total));
  json shares = json::array();
  size_t i = 0;
  for (auto& [s, r] : by_slice) {
    shares.push_back(
        {{"slice", s}, {"cpu_weight", std::max<int64_t>(1, cpu[i])}, {"net_kbps", net[i]}});
    ++i;
  }
  json doc = {{"node", node}, {"ts", now_ms}, {"shares", shares}};
  BOURSE_ASSIGN_OR_RETURN(std::string bytes, core::CanonicalJson(doc));
  doc["sig"] = core::SignatureToText(key.Sign(bytes));
  return doc;
}

}  // namespace

core::Result<json> Markets::PlaceShareBid(const std::string& node, const json& body,
                                          const std::string& caller, int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"slice", "rate", "budget"}));
  BOURSE_ASSIGN_OR_RETURN(std::string slice, core::StrField(body, "slice", 64));
  BOURSE_ASSIGN_OR_RETURN(const json* rj, core::RequireMember(body, "", "rate"));
  BOURSE_ASSIGN_OR_RETURN(core::Money rate, core::MoneyFromJson(*rj, "rate"));
  if (!rate.is_positive() || rate.nanos() > kMaxRateNanos) {
    return core::InvalidArgument("rate: must be > 0 and at most 1000000000 credits/s");
  }
  BOURSE_ASSIGN_OR_RETURN(const json* bj, core::RequireMember(body, "", "budget"));
  BOURSE_ASSIGN_OR_RETURN(core::Money budget, core::MoneyFromJson(*bj, "budget"));
  if (!budget.is_positive() || budget.nanos() > kMaxShareNanos) {
    return core::InvalidArgument("budget: must be > 0 and at most 9223372036.854775807");
  }
  ShareBid b{core::NewId("sb_"), node, slice, caller, "", "active", 0, 0, {}};
  b.escrow = "sb_esc_" + b.id;
  b.rate_nanos = static_cast<int64_t>(rate.nanos());
  json out;
  BOURSE_RETURN_IF_ERROR(host_
                             ->Mutate([&](ledger::Txn& txn) -> core::Status {
                               BOURSE_ASSIGN_OR_RETURN(
                                   out, PlaceShareBidTxn(*host_, txn, b, rate, budget, now_ms));
                               return core::Status::Ok();
                             })
                             .status());
  return json{{"bid", out}};
}

core::Result<json> Markets::WithdrawShareBid(const std::string& id, const std::string& caller,
                                             int64_t now_ms) {
  json out;
  BOURSE_RETURN_IF_ERROR(host_
                             ->Mutate([&](ledger::Txn& txn) -> core::Status {
                               BOURSE_ASSIGN_OR_RETURN(
                                   out, WithdrawShareBidTxn(*host_, txn, id, caller, now_ms));
                               return core::Status::Ok();
                             })
                             .status());
  return json{{"bid", out}};
}

core::Result<json> Markets::GetShareBid(const std::string& id) {
  BOURSE_ASSIGN_OR_RETURN(json out, ShareBidJson(*host_, id));
  return json{{"bid", out}};
}

core::Result<json> Markets::NodeShares(const std::string& node, int64_t now_ms) {
  return SignedShareTable(*host_, key_, node, now_ms);
}

core::Result<json> Markets::ListShareBids(const std::optional<std::string>& holder,
                                          const std::optional<std::string>& node,
                                          const std::optional<std::string>& state) {
  if (!holder && !node) return core::InvalidArgument("holder/node: give holder, node or both");
  std::string bidder;
  if (holder) {
    auto key = core::PublicKey::FromText(*holder);
    if (!key.ok()) return core::InvalidArgument("holder: " + key.status().message());
    bidder = key->ToText();
  }
  std::string which = state.value_or("active");
  if (which != "active" && which != "exhausted" && which != "withdrawn" && which != "all") {
    return core::InvalidArgument("state: must be active, exhausted, withdrawn or all");
  }
  if (which == "all") which.clear();
  json list = json::array();
  BOURSE_RETURN_IF_ERROR(host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(
        Stmt s, db->Prepare(std::string("SELECT ") + kBidCols +
                            " FROM m_share_bids WHERE (?1='' OR bidder=?1) AND (?2='' OR node=?2)"
                            " AND (?3='' OR state=?3) ORDER BY created_ms DESC, id DESC LIMIT ?4"));
    s.Bind(1, bidder);
    s.Bind(2, node.value_or(""));
    s.Bind(3, which);
    s.Bind(4, kMaxListed);
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      BOURSE_ASSIGN_OR_RETURN(ShareBid b, BidFromRow(s));
      BOURSE_ASSIGN_OR_RETURN(ledger::EscrowState e, ledger::Accounts::Escrow(db, b.escrow));
      list.push_back(BidJson(b, e.remaining));
    }
    return core::Status::Ok();
  }));
  return json{{"bids", list}};
}

core::Status Markets::EndSliceShares(ledger::Txn& txn, const std::string& slice, int64_t now_ms,
                                     std::vector<std::string>* ended) {
  std::vector<ShareBid> bids;
  {
    BOURSE_ASSIGN_OR_RETURN(Stmt s,
                            txn.db()->Prepare(std::string("SELECT ") + kBidCols +
                                              " FROM m_share_bids WHERE slice=? AND state='active' "
                                              "ORDER BY created_ms, id"));
    s.Bind(1, slice);
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      BOURSE_ASSIGN_OR_RETURN(ShareBid b, BidFromRow(s));
      bids.push_back(std::move(b));
    }
  }
  for (ShareBid& b : bids) {
    // A background charge may have run after the request was stamped: never
    // charge backwards.
    BOURSE_RETURN_IF_ERROR(
        ChargeBid(*host_, txn, b, std::max(now_ms, b.charged_to_ms), /*withdraw=*/true));
    BOURSE_RETURN_IF_ERROR(
        txn.Append("share_bid_withdrawn", {{"bid", b.id}, {"reason", "slice_deleted"}}).status());
    ended->push_back(b.id);
  }
  return core::Status::Ok();
}

core::Status Markets::ChargeShares(bool force) {
  int64_t now_ms = host_->clock().NowMillis();
  if (!force && now_ms / 1000 - last_share_charge_s_ < options_.share_charge_interval_s) {
    return core::Status::Ok();
  }
  last_share_charge_s_ = now_ms / 1000;
  return host_
      ->Mutate([&](ledger::Txn& txn) -> core::Status {
        std::vector<ShareBid> bids;
        std::vector<bool> orphan;
        {
          // An orphan: the bid's slice is gone (deleted by a broker from
          // before delete_slice ended its bids): such a bid is ended now,
          // as delete_slice would have.
          BOURSE_ASSIGN_OR_RETURN(Stmt s, txn.db()->Prepare(std::string("SELECT ") + kBidCols +
                                                            " FROM m_share_bids WHERE "
                                                            "state='active'"));
          while (true) {
            BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
            if (!row) break;
            BOURSE_ASSIGN_OR_RETURN(ShareBid b, BidFromRow(s));
            BOURSE_ASSIGN_OR_RETURN(bool slice_exists, host_->SliceExists(txn.db(), b.slice));
            bids.push_back(std::move(b));
            orphan.push_back(!slice_exists);
          }
        }
        for (size_t i = 0; i < bids.size(); ++i) {
          ShareBid& b = bids[i];
          BOURSE_RETURN_IF_ERROR(ChargeBid(*host_, txn, b, now_ms, orphan[i]));
          if (orphan[i]) {
            BOURSE_RETURN_IF_ERROR(
                txn.Append("share_bid_withdrawn", {{"bid", b.id}, {"reason", "slice_deleted"}})
                    .status());
          }
        }
        return core::Status::Ok();
      })
      .status();
}

}  // namespace bourse::markets
