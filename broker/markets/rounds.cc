// Markets: sealed-bid combinatorial rounds (Bellagio-style).
//
// An admin opens a round over capacity the broker holds (offers: pool rcap
// ids, at most one per node) for an interval, with a close time. Until the
// close, principals bid: a limit and XOR bundles (items on named nodes, or a
// count request "any N of these nodes in >= K sites, each with res"); each
// bid escrows its limit. Bids are sealed: GET shows only how many there are
// until the round clears. At the close (the background tick, or an admin's
// POST .../clear once the close has passed) the round is cleared with
// auction::ClearRound in ONE transaction: each winner gets, per allocated
// node, a child of that node's offer signed by the broker, and pays its
// critical price from its escrow to the broker's account; the rest of every
// escrow is released.
#include <map>
#include <set>

#include "auction/combinatorial.h"
#include "broker/markets/internal/market_state.h"
#include "broker/markets/markets.h"
#include "core/json_codec.h"
#include "core/random.h"
#include "ledger/accounts.h"

namespace bourse::markets {

using internal::Stmt;
using nlohmann::json;

namespace {

constexpr size_t kMaxOffers = 1000;
constexpr size_t kMaxBundles = 16;
constexpr size_t kMaxItems = 256;

struct Offer {
  std::string rcap;
  std::string node;
  std::string site;
  core::ResourceVector res;
};

struct RoundRow {
  std::string id, state;
  int64_t close_s = 0;
  core::Interval window;
  std::vector<Offer> offers;
  json offers_json;  // as stored: each offer's escrow rcap, `from`, node, site, res
  json result;
};

core::Result<RoundRow> LoadRound(storage::Connection* db, const std::string& id) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare("SELECT state,close_s,not_before,not_after,offers,result FROM "
                          "m_rounds WHERE id=?"));
  s.Bind(1, id);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return core::NotFound("round " + id + " does not exist");
  RoundRow r;
  r.id = id;
  r.state = s.Text(0);
  r.close_s = s.Int(1);
  r.window = {s.Int(2), s.Int(3)};
  json offers = internal::ParseStoredJson(s.Text(4));
  r.offers_json = offers;
  for (const json& o : offers) {
    Offer of{o["rcap"], o["node"], o["site"], {}};
    BOURSE_ASSIGN_OR_RETURN(of.res, core::ResourceVectorFromJson(o["res"], "res"));
    r.offers.push_back(of);
  }
  r.result = internal::ParseStoredJson(s.Text(5));
  return r;
}

// A round as the API shows it: offers, the number of sealed bids, the result.
core::Result<json> RoundJson(storage::Connection* db, const RoundRow& rr) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT COUNT(*) FROM m_round_bids WHERE round=?"));
  s.Bind(1, rr.id);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  return json{{"id", rr.id},
              {"state", rr.state},
              {"close", rr.close_s},
              {"not_before", rr.window.not_before},
              {"not_after", rr.window.not_after},
              {"offers", rr.offers_json},
              {"bids", row ? s.Int(0) : 0},
              {"result", rr.result}};
}

// DESIGN 4.1: no bid asks a node for more than the round escrowed there (an
// item above its node's offer, or a count request that fewer than `count` of
// its nodes can serve), so every bid accepted could be served.
core::Status CheckWithinOffers(const std::vector<auction::Bundle>& bundles,
                               const std::vector<Offer>& offers) {
  for (size_t i = 0; i < bundles.size(); ++i) {
    const std::string f = "bundles[" + std::to_string(i) + "]";
    const auction::Bundle& b = bundles[i];
    for (size_t k = 0; k < b.items.size(); ++k) {
      const Offer& o = offers[b.items[k].node];
      if (!b.items[k].res.FitsWithin(o.res)) {
        return core::InvalidArgument(f + ".items[" + std::to_string(k) +
                                     "].res: " + b.items[k].res.ToString() + " is more than node " +
                                     o.node + " offers (" + o.res.ToString() + ")");
      }
    }
    if (b.is_count()) {
      int64_t fit = 0;
      for (uint32_t n : b.from) fit += b.res.FitsWithin(offers[n].res) ? 1 : 0;
      if (fit < b.count) {
        return core::InvalidArgument(f + ".res: only " + std::to_string(fit) + " of the nodes in " +
                                     f + ".from offer " + b.res.ToString() + ", " +
                                     std::to_string(b.count) + " asked");
      }
    }
  }
  return core::Status::Ok();
}

// Validates a bid's bundles against the round's nodes (by id); returns the
// auction form with node indices.
core::Result<std::vector<auction::Bundle>> ParseBundles(
    const json& arr, const std::map<std::string, uint32_t>& idx) {
  if (!arr.is_array() || arr.empty() || arr.size() > kMaxBundles) {
    return core::InvalidArgument("bundles: must be an array of 1..16 bundles");
  }
  std::vector<auction::Bundle> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string f = "bundles[" + std::to_string(i) + "]";
    const json& b = arr[i];
    if (!b.is_object()) return core::InvalidArgument(f + ": must be an object");
    auction::Bundle bundle;
    auto node_index = [&](const json& n, const std::string& field) -> core::Result<uint32_t> {
      BOURSE_ASSIGN_OR_RETURN(std::string id, core::StringFromJson(n, field, 128));
      auto it = idx.find(id);
      if (it == idx.end()) return core::InvalidArgument(field + ": node " + id + " is not offered");
      return it->second;
    };
    if (b.contains("items")) {
      BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(b, f, {"items"}));
      const json& items = b["items"];
      if (!items.is_array() || items.empty() || items.size() > kMaxItems) {
        return core::InvalidArgument(f + ".items: must be an array of 1..256 items");
      }
      for (size_t k = 0; k < items.size(); ++k) {
        const std::string g = f + ".items[" + std::to_string(k) + "]";
        BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(items[k], g, {"node", "res"}));
        BOURSE_ASSIGN_OR_RETURN(const json* n, core::RequireMember(items[k], g, "node"));
        BOURSE_ASSIGN_OR_RETURN(uint32_t ni, node_index(*n, g + ".node"));
        BOURSE_ASSIGN_OR_RETURN(const json* r, core::RequireMember(items[k], g, "res"));
        BOURSE_ASSIGN_OR_RETURN(core::ResourceVector rv,
                                core::ResourceVectorFromJson(*r, g + ".res"));
        bundle.items.push_back({.node = ni, .res = rv});
      }
    } else {
      BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(b, f, {"count", "from", "min_sites", "res"}));
      BOURSE_ASSIGN_OR_RETURN(const json* c, core::RequireMember(b, f, "count"));
      BOURSE_ASSIGN_OR_RETURN(bundle.count, core::IntFromJson(*c, f + ".count", 1, kMaxOffers));
      BOURSE_ASSIGN_OR_RETURN(const json* from, core::RequireMember(b, f, "from"));
      if (!from->is_array() || from->empty() || from->size() > kMaxOffers) {
        return core::InvalidArgument(f + ".from: must be a non-empty array of node ids");
      }
      for (size_t k = 0; k < from->size(); ++k) {
        BOURSE_ASSIGN_OR_RETURN(uint32_t ni,
                                node_index((*from)[k], f + ".from[" + std::to_string(k) + "]"));
        bundle.from.push_back(ni);
      }
      if (b.contains("min_sites")) {
        BOURSE_ASSIGN_OR_RETURN(bundle.min_sites,
                                core::IntFromJson(b["min_sites"], f + ".min_sites", 0, kMaxOffers));
      }
      BOURSE_ASSIGN_OR_RETURN(const json* r, core::RequireMember(b, f, "res"));
      BOURSE_ASSIGN_OR_RETURN(bundle.res, core::ResourceVectorFromJson(*r, f + ".res"));
    }
    out.push_back(std::move(bundle));
  }
  return out;
}

// Refuses a bid the auction core would refuse at clearing (a count above the
// nodes named, a node named twice in `from`, min_sites above count, ...):
// accepted, it would make the whole round fail at its close.
core::Status CheckClearable(const RoundRow& rr, const std::string& bid_id, const core::Money& limit,
                            std::vector<auction::Bundle> bundles) {
  auction::Round one;
  for (const Offer& o : rr.offers) one.nodes.push_back({o.node, o.site, o.res});
  one.bids.push_back({.id = bid_id, .bidder = "", .limit = limit, .bundles = std::move(bundles)});
  core::Status st = auction::ValidateRound(one);
  if (st.ok()) return st;
  // The core prefixes the field with the bid ("bids[0] (<id>)."); the request's
  // fields start at "bundles".
  std::string msg = st.message();
  size_t at = msg.find("bundles[");
  return core::InvalidArgument(at == std::string::npos ? msg : msg.substr(at));
}

// One offer of a round being opened, inside its Mutate fn: offers[i] names
// a broker-held rcap not yet committed, on a node no other offer is on, that
// covers the window; what is free of it over the window is escrowed as a
// child delegated to the broker. Returns the offer as stored.
core::Result<json> EscrowOffer(Markets& m, ledger::Txn& txn, const RoundRow& rr, const json& offers,
                               size_t i, std::set<std::string>* nodes) {
  const std::string f = "offers[" + std::to_string(i) + "]";
  BOURSE_ASSIGN_OR_RETURN(std::string id, core::StringFromJson(offers[i], f, 128));
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap r, ledger::CapacityLog::Get(txn.db(), id));
  BOURSE_RETURN_IF_ERROR(Markets::RequireUncommitted(txn, id, f));
  if (!(r.holder == m.host().broker_key())) {
    return core::InvalidArgument(f + ": rcap " + id + " is not held by the broker");
  }
  if (!rr.window.IsSubsetOf(r.interval)) {
    return core::InvalidArgument(f + ": rcap " + id + " does not cover the interval");
  }
  if (!nodes->insert(r.node).second) {
    return core::InvalidArgument(f + ": a second offer on node " + r.node);
  }
  BOURSE_ASSIGN_OR_RETURN(std::optional<NodeInfo> node, m.host().FindNode(txn.db(), r.node));
  // The round offers what is free of the rcap over its window and
  // escrows exactly that: a child delegated to the broker, recorded
  // under the capacity rule now, so nothing else can take it before
  // the round clears and no bid can ask for more.
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector free, ledger::CapacityLog::Free(txn, id, rr.window));
  if (free.cpu_mcores <= 0 && free.mem_mib <= 0 && free.disk_mib <= 0 && free.net_min_kbps <= 0) {
    return core::FailedPrecondition(f + ": rcap " + id + " has nothing free over [" +
                                    std::to_string(rr.window.not_before) + ", " +
                                    std::to_string(rr.window.not_after) + ")");
  }
  free.net_max_kbps = r.res.net_max_kbps;
  ledger::ChildSpec spec{.id = rr.id + "." + r.node,
                         .holder = m.host().broker_key(),
                         .res = free,
                         .interval = rr.window};
  BOURSE_ASSIGN_OR_RETURN(
      std::vector<ledger::Rcap> esc,
      m.host().SplitHeld(txn, id, std::span<const ledger::ChildSpec>(&spec, 1)));
  return json{{"rcap", esc[0].id},
              {"from", id},
              {"node", r.node},
              {"site", node ? node->site : r.node},
              {"res", core::ResourceVectorToJson(free)}};
}

// Opens round rr (id, window, close decoded) over `offers` (rcap ids) for
// an admin, inside its Mutate fn: the offers' escrows, the row and
// round_opened. Returns the round as appended.
core::Result<json> OpenRoundTxn(Markets& m, ledger::Txn& txn, const RoundRow& rr,
                                const json& offers, const std::string& caller_text) {
  using namespace internal;
  BOURSE_ASSIGN_OR_RETURN(core::Principal caller, m.host().LookupPrincipal(txn, caller_text));
  if (caller.kind != core::PrincipalKind::kAdmin) {
    return core::PermissionDenied("only an admin opens rounds");
  }
  json offs = json::array();
  std::set<std::string> nodes;
  for (size_t i = 0; i < offers.size(); ++i) {
    BOURSE_ASSIGN_OR_RETURN(json off, EscrowOffer(m, txn, rr, offers, i, &nodes));
    offs.push_back(std::move(off));
  }
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          txn.db()->Prepare("INSERT INTO m_rounds(id,state,close_s,not_before,"
                                            "not_after,offers,result,creator,created_ms) "
                                            "VALUES(?,'open',?,?,?,?,'null',?,?)"));
  s.Bind(1, rr.id);
  s.Bind(2, rr.close_s);
  s.Bind(3, rr.window.not_before);
  s.Bind(4, rr.window.not_after);
  s.Bind(5, offs.dump());
  s.Bind(6, caller_text);
  s.Bind(7, txn.now_millis());
  BOURSE_RETURN_IF_ERROR(s.Run());
  json out = {{"id", rr.id},
              {"state", "open"},
              {"close", rr.close_s},
              {"not_before", rr.window.not_before},
              {"not_after", rr.window.not_after},
              {"offers", offs}};
  BOURSE_RETURN_IF_ERROR(txn.Append("round_opened", out).status());
  return out;
}

// 429 when a bid of `terms` terms by `bidder` would take `round` past the
// limits `o` sets (round_max_bids, round_max_bids_per_bidder, round_max_terms).
core::Status CheckRoundRoom(storage::Connection* db, const MarketsOptions& o,
                            const std::string& round, const std::string& bidder, int64_t terms) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare("SELECT (SELECT COUNT(*) FROM m_round_bids WHERE round=?1),"
                          "(SELECT COUNT(*) FROM m_round_bids WHERE round=?1 AND bidder=?2),"
                          "(SELECT bid_terms FROM m_rounds WHERE id=?1)"));
  s.Bind(1, round);
  s.Bind(2, bidder);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return core::Internal("round " + round + ": no bid count");
  if (s.Int(0) >= o.round_max_bids) {
    return core::ResourceExhausted("round " + round + " is full: it holds " +
                                   std::to_string(o.round_max_bids) +
                                   " bids, the most a round takes");
  }
  if (s.Int(1) >= o.round_max_bids_per_bidder) {
    return core::ResourceExhausted(bidder + " already has " +
                                   std::to_string(o.round_max_bids_per_bidder) + " bids in round " +
                                   round + ", the most one bidder may place");
  }
  if (s.Int(2) + terms > o.round_max_terms) {
    return core::ResourceExhausted("round " + round + " is full: its bids hold " +
                                   std::to_string(s.Int(2)) + " terms and this bid " +
                                   std::to_string(terms) + ", above the " +
                                   std::to_string(o.round_max_terms) +
                                   " a round takes (a term is a bundle, an item or a node of a "
                                   "bundle's from)");
  }
  return core::Status::Ok();
}

// A sealed bid `bid_id` of `caller_text` in `round`, inside its Mutate fn:
// the round is open, the bundles (as given) parse against its offers and
// can clear; the limit is escrowed. Returns the bid.
core::Result<json> PlaceRoundBidTxn(Markets& m, ledger::Txn& txn, const std::string& round,
                                    const std::string& bid_id, const std::string& caller_text,
                                    int64_t now_ms, const core::Money& limit, const json& bj) {
  BOURSE_RETURN_IF_ERROR(m.host().LookupPrincipal(txn, caller_text).status());
  BOURSE_ASSIGN_OR_RETURN(RoundRow rr, LoadRound(txn.db(), round));
  if (rr.state != "open" || now_ms / 1000 >= rr.close_s) {
    return core::FailedPrecondition("round " + round + " is closed for bids");
  }
  std::map<std::string, uint32_t> idx;
  for (size_t i = 0; i < rr.offers.size(); ++i) idx[rr.offers[i].node] = static_cast<uint32_t>(i);
  BOURSE_ASSIGN_OR_RETURN(std::vector<auction::Bundle> bundles, ParseBundles(bj, idx));
  BOURSE_RETURN_IF_ERROR(CheckWithinOffers(bundles, rr.offers));
  int64_t terms = 0;
  for (const auction::Bundle& b : bundles) {
    terms += 1 + static_cast<int64_t>(b.items.size() + b.from.size());
  }
  BOURSE_RETURN_IF_ERROR(CheckRoundRoom(txn.db(), m.options(), round, caller_text, terms));
  BOURSE_RETURN_IF_ERROR(CheckClearable(rr, bid_id, limit, std::move(bundles)));
  std::string esc = "rb_esc_" + bid_id;
  BOURSE_RETURN_IF_ERROR(m.host().EscrowHold(txn, esc, caller_text, limit));
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          txn.db()->Prepare("INSERT INTO m_round_bids(id,round,bidder,lim,bundles,"
                                            "escrow,state,pay,rcaps,created_ms) "
                                            "VALUES(?,?,?,?,?,?,'sealed','0','[]',?)"));
  s.Bind(1, bid_id);
  s.Bind(2, round);
  s.Bind(3, caller_text);
  s.Bind(4, limit.ToString());
  s.Bind(5, bj.dump());
  s.Bind(6, esc);
  s.Bind(7, txn.now_millis());
  BOURSE_RETURN_IF_ERROR(s.Run());
  BOURSE_ASSIGN_OR_RETURN(
      Stmt t, txn.db()->Prepare("UPDATE m_rounds SET bid_terms=bid_terms+? WHERE id=?"));
  t.Bind(1, terms);
  t.Bind(2, round);
  BOURSE_RETURN_IF_ERROR(t.Run());
  json out = {{"id", bid_id},          {"round", round},
              {"bidder", caller_text}, {"limit", limit.ToString()},
              {"escrow", esc},         {"state", "sealed"}};
  // The ledger records the escrow; the bid's content stays sealed until clearing.
  BOURSE_RETURN_IF_ERROR(
      txn.Append("round_bid", {{"round", round}, {"bid", bid_id}, {"bidder", caller_text}})
          .status());
  return out;
}

// Rounds, newest first, of `state` ("" for all): at most 500.
core::Result<json> RoundsByState(Markets& m, const std::string& state) {
  json list = json::array();
  BOURSE_RETURN_IF_ERROR(m.host().store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT id FROM m_rounds WHERE ?1='' OR state=?1 "
                                                "ORDER BY created_ms DESC, id LIMIT 500"));
    s.Bind(1, state);
    std::vector<std::string> ids;
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      ids.push_back(s.Text(0));
    }
    for (const std::string& id : ids) {
      BOURSE_ASSIGN_OR_RETURN(RoundRow rr, LoadRound(db, id));
      BOURSE_ASSIGN_OR_RETURN(json one, RoundJson(db, rr));
      list.push_back(std::move(one));
    }
    return core::Status::Ok();
  }));
  return list;
}

core::Result<json> RoundJsonById(Markets& m, const std::string& round) {
  json out;
  BOURSE_RETURN_IF_ERROR(m.host().store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(RoundRow rr, LoadRound(db, round));
    BOURSE_ASSIGN_OR_RETURN(out, RoundJson(db, rr));
    return core::Status::Ok();
  }));
  return out;
}

// Whether `caller_text` may clear `round` by hand now: an admin, the round
// open and its close passed.
core::Status CheckClearByHand(Markets& m, const std::string& caller_text, const std::string& round,
                              int64_t now_ms) {
  using namespace internal;
  return m.host().store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(core::Principal caller, m.host().LookupPrincipal(db, caller_text));
    if (caller.kind != core::PrincipalKind::kAdmin) {
      return core::PermissionDenied("only an admin clears rounds by hand");
    }
    BOURSE_ASSIGN_OR_RETURN(RoundRow rr, LoadRound(db, round));
    if (rr.state != "open") {
      return core::FailedPrecondition("round " + rr.id + " is already " + rr.state);
    }
    if (now_ms / 1000 < rr.close_s) {
      return core::FailedPrecondition("round " + rr.id + " closes at " +
                                      std::to_string(rr.close_s));
    }
    return core::Status::Ok();
  });
}

// A cleared round's id, state and result.
core::Result<json> RoundResult(Markets& m, const std::string& round) {
  json out;
  BOURSE_RETURN_IF_ERROR(m.host().store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(RoundRow rr, LoadRound(db, round));
    out = {{"id", rr.id}, {"state", rr.state}, {"result", rr.result}};
    return core::Status::Ok();
  }));
  return out;
}

}  // namespace

core::Result<json> Markets::OpenRound(const json& body, const std::string& caller, int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(
      core::CheckObjectFields(body, "", {"offers", "not_before", "not_after", "close"}));
  BOURSE_ASSIGN_OR_RETURN(const json* offers, core::RequireMember(body, "", "offers"));
  if (!offers->is_array() || offers->empty() || offers->size() > kMaxOffers) {
    return core::InvalidArgument("offers: must be an array of 1..1000 rcap ids");
  }
  RoundRow rr;
  BOURSE_ASSIGN_OR_RETURN(rr.window, core::WindowFields(body));
  BOURSE_ASSIGN_OR_RETURN(const json* cl, core::RequireMember(body, "", "close"));
  BOURSE_ASSIGN_OR_RETURN(rr.close_s, core::IntFromJson(*cl, "close", 0, core::kMaxSafeInteger));
  if (rr.close_s <= now_ms / 1000) return core::InvalidArgument("close: is in the past");
  rr.id = core::NewId("rd_");
  json out;
  BOURSE_RETURN_IF_ERROR(host_
                             ->Mutate([&](ledger::Txn& txn) -> core::Status {
                               BOURSE_ASSIGN_OR_RETURN(
                                   out, OpenRoundTxn(*this, txn, rr, *offers, caller));
                               return core::Status::Ok();
                             })
                             .status());
  return json{{"round", out}};
}

core::Result<json> Markets::PlaceRoundBid(const std::string& round, const json& body,
                                          const std::string& caller, int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"limit", "bundles"}));
  BOURSE_ASSIGN_OR_RETURN(const json* lj, core::RequireMember(body, "", "limit"));
  BOURSE_ASSIGN_OR_RETURN(core::Money limit, core::MoneyFromJson(*lj, "limit"));
  if (!limit.is_positive()) return core::InvalidArgument("limit: must be > 0");
  BOURSE_ASSIGN_OR_RETURN(const json* bj, core::RequireMember(body, "", "bundles"));
  std::string bid_id = core::NewId("rb_");
  json out;
  BOURSE_RETURN_IF_ERROR(
      host_
          ->Mutate([&](ledger::Txn& txn) -> core::Status {
            BOURSE_ASSIGN_OR_RETURN(
                out, PlaceRoundBidTxn(*this, txn, round, bid_id, caller, now_ms, limit, *bj));
            return core::Status::Ok();
          })
          .status());
  return json{{"bid", out}};
}

core::Result<json> Markets::ListRounds(const std::optional<std::string>& want) {
  std::string state = want.value_or("");
  if (want && state != "open" && state != "cleared" && state != "failed") {
    return core::InvalidArgument("state: must be open, cleared or failed");
  }
  BOURSE_ASSIGN_OR_RETURN(json list, RoundsByState(*this, state));
  return json{{"rounds", list}};
}

core::Result<json> Markets::GetRound(const std::string& round, const std::string& caller) {
  BOURSE_ASSIGN_OR_RETURN(json out, RoundJsonById(*this, round));
  if (caller.empty()) return json{{"round", out}};
  // Signed by a bidder: its own bids, sealed from everyone else (so a bidder
  // that restarted knows whether it already bid).
  json mine = json::array();
  BOURSE_RETURN_IF_ERROR(host().store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT id,lim,bundles,escrow,state,created_ms "
                                                "FROM m_round_bids WHERE round=? AND bidder=? "
                                                "ORDER BY created_ms, id"));
    s.Bind(1, round);
    s.Bind(2, caller);
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      mine.push_back({{"id", s.Text(0)},
                      {"round", round},
                      {"bidder", caller},
                      {"limit", s.Text(1)},
                      {"bundles", json::parse(s.Text(2), nullptr, false)},
                      {"escrow", s.Text(3)},
                      {"state", s.Text(4)},
                      {"created_ms", s.Int(5)}});
    }
    return core::Status::Ok();
  }));
  return json{{"round", out}, {"my_bids", mine}};
}

core::Result<json> Markets::ClearRound(const std::string& round, const std::string& caller,
                                       int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(CheckClearByHand(*this, caller, round, now_ms));
  BOURSE_RETURN_IF_ERROR(ClearRoundNow(round));
  BOURSE_ASSIGN_OR_RETURN(json out, RoundResult(*this, round));
  return json{{"round", out}};
}

core::Status Markets::ClearRoundNow(const std::string& round) {
  core::Status st = ClearRoundTxn(round);
  if (st.ok() || st.code() == core::StatusCode::kInternal ||
      st.code() == core::StatusCode::kUnavailable) {
    return st;  // transient failures are retried at the next tick
  }
  // The round cannot clear (e.g. an offer was sold elsewhere meanwhile): it
  // fails as a whole and every escrow goes back.
  return host_
      ->Mutate([&](ledger::Txn& txn) -> core::Status {
        BOURSE_ASSIGN_OR_RETURN(RoundRow rr, LoadRound(txn.db(), round));
        if (rr.state != "open") return core::Status::Ok();
        BOURSE_ASSIGN_OR_RETURN(
            Stmt s, txn.db()->Prepare("SELECT id,lim,escrow FROM m_round_bids WHERE round=?"));
        s.Bind(1, round);
        while (true) {
          BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
          if (!row) break;
          BOURSE_ASSIGN_OR_RETURN(core::Money lim, core::Money::Parse(s.Text(1)));
          BOURSE_RETURN_IF_ERROR(host_->EscrowRelease(txn, s.Text(2), lim));
        }
        {
          BOURSE_ASSIGN_OR_RETURN(
              Stmt l, txn.db()->Prepare("UPDATE m_round_bids SET state='lost' WHERE round=?"));
          l.Bind(1, round);
          BOURSE_RETURN_IF_ERROR(l.Run());
        }
        json result = {{"error", st.message()}, {"winners", json::array()}};
        BOURSE_ASSIGN_OR_RETURN(
            Stmt u, txn.db()->Prepare("UPDATE m_rounds SET state='failed',result=? WHERE id=?"));
        u.Bind(1, result.dump());
        u.Bind(2, round);
        BOURSE_RETURN_IF_ERROR(u.Run());
        return txn.Append("round_failed", {{"round", round}, {"error", st.message()}}).status();
      })
      .status();
}

namespace {

struct RoundBidRow {
  std::string id, bidder, escrow;
  core::Money limit;
};

// A round and its bids as auction::ClearRound takes them.
struct RoundInput {
  RoundRow rr;
  auction::Round ar;
  std::vector<RoundBidRow> rows;
};

core::Result<RoundInput> LoadRoundInput(storage::Connection* db, const std::string& round) {
  RoundInput in;
  BOURSE_ASSIGN_OR_RETURN(in.rr, LoadRound(db, round));
  if (in.rr.state != "open") return in;
  std::map<std::string, uint32_t> idx;
  for (size_t i = 0; i < in.rr.offers.size(); ++i) {
    idx[in.rr.offers[i].node] = static_cast<uint32_t>(i);
    in.ar.nodes.push_back({in.rr.offers[i].node, in.rr.offers[i].site, in.rr.offers[i].res});
  }
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT id,bidder,lim,bundles,escrow FROM "
                                              "m_round_bids WHERE round=? ORDER BY created_ms, id"));
  s.Bind(1, round);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    RoundBidRow b{s.Text(0), s.Text(1), s.Text(4), {}};
    BOURSE_ASSIGN_OR_RETURN(b.limit, core::Money::Parse(s.Text(2)));
    BOURSE_ASSIGN_OR_RETURN(std::vector<auction::Bundle> bundles,
                            ParseBundles(internal::ParseStoredJson(s.Text(3)), idx));
    in.ar.bids.push_back({.id = b.id, .bidder = b.bidder, .limit = b.limit, .bundles = bundles});
    in.rows.push_back(std::move(b));
  }
  return in;
}

bool SameBids(const RoundInput& a, const RoundInput& b) {
  if (a.rows.size() != b.rows.size() || a.ar.nodes.size() != b.ar.nodes.size()) return false;
  for (size_t i = 0; i < a.rows.size(); ++i) {
    if (a.rows[i].id != b.rows[i].id) return false;
  }
  return true;
}

}  // namespace

core::Status Markets::ClearRoundTxn(const std::string& round) {
  // The solve (up to the round budget) runs on a snapshot, outside the
  // writer: no other mutation waits for it. Bids are closed once a round is
  // due, so the transaction finds the same bids; if not, it solves again.
  std::optional<RoundInput> solved_in;
  std::optional<auction::RoundOutcome> solved;
  BOURSE_RETURN_IF_ERROR(host().store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(RoundInput in, LoadRoundInput(db, round));
    solved_in = std::move(in);
    return core::Status::Ok();
  }));
  if (solved_in->rr.state != "open") return core::Status::Ok();
  if (!solved_in->ar.bids.empty()) {
    BOURSE_ASSIGN_OR_RETURN(
        solved, auction::ClearRound(solved_in->ar, {.time_budget_s = options_.round_budget_s}));
  } else {
    solved.emplace();
  }
  return host_
      ->Mutate([&](ledger::Txn& txn) -> core::Status {
        BOURSE_ASSIGN_OR_RETURN(RoundInput in, LoadRoundInput(txn.db(), round));
        if (in.rr.state != "open") return core::Status::Ok();  // cleared meanwhile
        const RoundRow& rr = in.rr;
        const auction::Round& ar = in.ar;
        const std::vector<RoundBidRow>& rows = in.rows;
        auction::RoundOutcome outcome;
        if (SameBids(in, *solved_in)) {
          outcome = *solved;
        } else if (!ar.bids.empty()) {
          BOURSE_ASSIGN_OR_RETURN(outcome,
                                  auction::ClearRound(ar, {.time_budget_s = options_.round_budget_s}));
        }
        const std::string broker_text = host_->broker_key().ToText();
        std::vector<bool> won(rows.size(), false);
        json winners = json::array();
        for (const auction::Winner& w : outcome.winners) {
          const RoundBidRow& b = rows[w.bid];
          won[w.bid] = true;
          const auction::Bundle& bundle = ar.bids[w.bid].bundles[w.bundle];
          BOURSE_ASSIGN_OR_RETURN(core::PublicKey bidder, core::PublicKey::FromText(b.bidder));
          json rcaps = json::array();
          json chains = json::array();
          for (uint32_t n : w.nodes) {
            core::ResourceVector res;
            if (bundle.is_count()) {
              res = bundle.res;
            } else {
              for (const auction::BundleItem& it : bundle.items) {
                if (it.node == n) {
                  BOURSE_ASSIGN_OR_RETURN(res, res.Plus(it.res));
                }
              }
            }
            ledger::ChildSpec spec{.id = "", .holder = bidder, .res = res, .interval = rr.window};
            BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::Rcap> kids,
                                    host_->SplitHeld(txn, rr.offers[n].rcap,
                                                     std::span<const ledger::ChildSpec>(&spec, 1)));
            rcaps.push_back(kids[0].id);
          }
          if (w.pay.is_positive()) {
            BOURSE_RETURN_IF_ERROR(host_->EscrowSettle(txn, b.escrow, broker_text, w.pay));
          }
          BOURSE_ASSIGN_OR_RETURN(core::Money rest, b.limit.Sub(w.pay));
          if (rest.is_positive()) BOURSE_RETURN_IF_ERROR(host_->EscrowRelease(txn, b.escrow, rest));
          json nodes = json::array();
          for (uint32_t n : w.nodes) nodes.push_back(rr.offers[n].node);
          winners.push_back({{"bid", b.id},
                             {"bidder", b.bidder},
                             {"bundle", w.bundle},
                             {"nodes", nodes},
                             {"pay", w.pay.ToString()},
                             {"rcaps", rcaps}});
          BOURSE_ASSIGN_OR_RETURN(
              Stmt u,
              txn.db()->Prepare("UPDATE m_round_bids SET state='won',pay=?,rcaps=? WHERE id=?"));
          u.Bind(1, w.pay.ToString());
          u.Bind(2, rcaps.dump());
          u.Bind(3, b.id);
          BOURSE_RETURN_IF_ERROR(u.Run());
        }
        for (size_t i = 0; i < rows.size(); ++i) {
          if (won[i]) continue;
          BOURSE_RETURN_IF_ERROR(host_->EscrowRelease(txn, rows[i].escrow, rows[i].limit));
          BOURSE_ASSIGN_OR_RETURN(
              Stmt u, txn.db()->Prepare("UPDATE m_round_bids SET state='lost' WHERE id=?"));
          u.Bind(1, rows[i].id);
          BOURSE_RETURN_IF_ERROR(u.Run());
        }
        json result = {{"winners", winners},
                       {"welfare", outcome.welfare.ToString()},
                       {"exact", outcome.optimal},
                       {"optimal", outcome.optimal},
                       {"mechanism", auction::MechanismName(outcome.mechanism)},
                       {"bids", rows.size()}};
        if (!outcome.optimal) result["gap"] = auction::GapText(outcome.gap);
        BOURSE_ASSIGN_OR_RETURN(
            Stmt u, txn.db()->Prepare("UPDATE m_rounds SET state='cleared',result=? WHERE id=?"));
        u.Bind(1, result.dump());
        u.Bind(2, round);
        BOURSE_RETURN_IF_ERROR(u.Run());
        json entry = result;
        entry["round"] = round;
        return txn.Append("round_cleared", entry).status();
      })
      .status();
}

core::Status Markets::ClearDueRounds() {
  BOURSE_ASSIGN_OR_RETURN(
      std::vector<std::string> due,
      internal::DueIds(*host_, "SELECT id FROM m_rounds WHERE state='open' AND close_s<=?"));
  core::Status first;
  for (const std::string& id : due) {
    core::Status st = ClearRoundNow(id);
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

core::Status Markets::RequireUncommitted(ledger::Txn& txn, const std::string& id,
                                         std::string_view field) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt o, txn.db()->Prepare("SELECT id FROM m_orders WHERE cap_escrow=? AND cap_escrow!='' AND "
                                "state='resting' LIMIT 1"));
  o.Bind(1, id);
  BOURSE_ASSIGN_OR_RETURN(bool order, o.Step());
  if (order) {
    return core::FailedPrecondition(std::string(field) + ": rcap " + id +
                                    " is escrowed for resting order " + std::to_string(o.Int(0)) +
                                    "; it is not free to offer again");
  }
  BOURSE_ASSIGN_OR_RETURN(
      Stmt r, txn.db()->Prepare("SELECT m_rounds.id FROM m_rounds, json_each(m_rounds.offers) "
                                "WHERE m_rounds.state='open' AND "
                                "json_extract(json_each.value,'$.rcap')=? LIMIT 1"));
  r.Bind(1, id);
  BOURSE_ASSIGN_OR_RETURN(bool round, r.Step());
  if (round) {
    return core::FailedPrecondition(std::string(field) + ": rcap " + id +
                                    " is escrowed for open round " + r.Text(0) +
                                    "; it is not free to offer again");
  }
  BOURSE_ASSIGN_OR_RETURN(
      Stmt q, txn.db()->Prepare("SELECT m_rfq_quotes.id FROM m_rfq_quotes, "
                                "json_each(m_rfq_quotes.pieces) WHERE m_rfq_quotes.state='open' "
                                "AND json_extract(json_each.value,'$.escrow')=? LIMIT 1"));
  q.Bind(1, id);
  BOURSE_ASSIGN_OR_RETURN(bool quote, q.Step());
  if (quote) {
    return core::FailedPrecondition(std::string(field) + ": rcap " + id +
                                    " is escrowed for open rfq quote " + q.Text(0) +
                                    "; it is not free to offer again");
  }
  return core::Status::Ok();
}

}  // namespace bourse::markets
