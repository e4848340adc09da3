// Markets: requests for quote (DESIGN §10, issue #17; docs/markets.md
// "Requests for quote").
//
// A buyer opens an RFQ for an rspec (res per node, N nodes in >= K sites,
// an interval) with a maximum price, which is escrowed from its credits.
// Until the RFQ's close, sellers answer with complete quotes: a price and,
// per node, capacity escrowed to the broker under DESIGN 4.1 (a child the
// seller signs, as a sell order's escrow, or for an admin a split of a pool
// rcap). The buyer accepts one quote, or at the close the tick awards the
// cheapest quote (ties: the earliest). The award is ONE transaction: the
// buyer pays the price to the seller and gets, per node, a child of that
// node's escrow with exactly the rspec; the rest of the winner's escrows and
// every other quote's escrows go back to their sellers.
//
// Nothing is kept in memory: every step reads and writes m_rfqs and
// m_rfq_quotes in its own transaction, and every state change checks the
// RFQ's state there first, so an award is idempotent across restarts.
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "broker/markets/internal/escrow.h"
#include "broker/markets/internal/market_state.h"
#include "broker/markets/markets.h"
#include "core/json_codec.h"
#include "core/random.h"
#include "ledger/accounts.h"

namespace bourse::markets {

using internal::Stmt;
using nlohmann::json;

namespace {

constexpr int64_t kMaxRfqNodes = 1000;

struct RfqRow {
  std::string id, buyer, award, state, escrow, winner, quote, price, reason;
  core::ResourceVector res;
  int64_t nodes = 0;
  int64_t min_sites = 1;
  core::Interval window;
  core::Money max_price;
  int64_t close_s = 0;
  json rcaps = json::array();
  int64_t created_ms = 0;
};

// One node of a quote: the escrow E the broker holds for it.
struct Piece {
  std::string node, site;
  std::string escrow;  // E's id
  std::string from;    // E's parent (the seller's rcap, or the pool rcap)
  bool pool = false;   // E was split off a broker pool rcap (stays with the broker)
  core::ResourceVector res;
  core::Interval interval;
  json ToJson() const {
    return {{"node", node},
            {"site", site},
            {"escrow", escrow},
            {"from", from},
            {"pool", pool},
            {"res", core::ResourceVectorToJson(res)},
            {"not_before", interval.not_before},
            {"not_after", interval.not_after}};
  }
};

struct QuoteRow {
  std::string id, rfq, seller, account, state;
  core::Money price;
  std::vector<Piece> pieces;
  json returned = json::array();
  int64_t created_ms = 0;
};

// A decoded piece of a quote request: a signed escrow or a pool rcap id.
struct PieceRequest {
  std::string node;
  std::optional<ledger::Rcap> escrow;
  std::string pool_rcap;
};

// ---- rows ----

constexpr const char* kRfqColumns =
    "id,buyer,res,nodes,min_sites,not_before,not_after,max_price,close_s,award,state,escrow,"
    "winner,quote,price,rcaps,reason,created_ms";

core::Result<RfqRow> RfqFromRow(Stmt& s) {
  RfqRow r;
  r.id = s.Text(0);
  r.buyer = s.Text(1);
  BOURSE_ASSIGN_OR_RETURN(
      r.res, core::ResourceVectorFromJson(internal::ParseStoredJson(s.Text(2)), "res"));
  r.nodes = s.Int(3);
  r.min_sites = s.Int(4);
  r.window = {s.Int(5), s.Int(6)};
  BOURSE_ASSIGN_OR_RETURN(r.max_price, core::Money::Parse(s.Text(7)));
  r.close_s = s.Int(8);
  r.award = s.Text(9);
  r.state = s.Text(10);
  r.escrow = s.Text(11);
  r.winner = s.Text(12);
  r.quote = s.Text(13);
  r.price = s.Text(14);
  r.rcaps = internal::ParseStoredJson(s.Text(15));
  r.reason = s.Text(16);
  r.created_ms = s.Int(17);
  return r;
}

core::Result<RfqRow> LoadRfq(storage::Connection* db, const std::string& id) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare(std::string("SELECT ") + kRfqColumns + " FROM m_rfqs WHERE id=?"));
  s.Bind(1, id);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return core::NotFound("rfq " + id + " does not exist");
  return RfqFromRow(s);
}

core::Status InsertRfq(ledger::Txn& txn, const RfqRow& r) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          txn.db()->Prepare(std::string("INSERT INTO m_rfqs(") + kRfqColumns +
                                            ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  s.Bind(1, r.id);
  s.Bind(2, r.buyer);
  s.Bind(3, core::ResourceVectorToJson(r.res).dump());
  s.Bind(4, r.nodes);
  s.Bind(5, r.min_sites);
  s.Bind(6, r.window.not_before);
  s.Bind(7, r.window.not_after);
  s.Bind(8, r.max_price.ToString());
  s.Bind(9, r.close_s);
  s.Bind(10, r.award);
  s.Bind(11, r.state);
  s.Bind(12, r.escrow);
  s.Bind(13, r.winner);
  s.Bind(14, r.quote);
  s.Bind(15, r.price);
  s.Bind(16, r.rcaps.dump());
  s.Bind(17, r.reason);
  s.Bind(18, r.created_ms);
  return s.Run();
}

// The end of an RFQ: its state and outcome.
core::Status SaveRfqEnd(ledger::Txn& txn, const RfqRow& r) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          txn.db()->Prepare("UPDATE m_rfqs SET state=?,winner=?,quote=?,price=?,"
                                            "rcaps=?,reason=? WHERE id=?"));
  s.Bind(1, r.state);
  s.Bind(2, r.winner);
  s.Bind(3, r.quote);
  s.Bind(4, r.price);
  s.Bind(5, r.rcaps.dump());
  s.Bind(6, r.reason);
  s.Bind(7, r.id);
  return s.Run();
}

constexpr const char* kQuoteColumns =
    "id,rfq,seller,account,price,pieces,state,returned,created_ms";

core::Result<QuoteRow> QuoteFromRow(Stmt& s) {
  QuoteRow q;
  q.id = s.Text(0);
  q.rfq = s.Text(1);
  q.seller = s.Text(2);
  q.account = s.Text(3);
  BOURSE_ASSIGN_OR_RETURN(q.price, core::Money::Parse(s.Text(4)));
  for (const json& p : internal::ParseStoredJson(s.Text(5))) {
    Piece piece{p["node"], p["site"], p["escrow"], p["from"], p["pool"], {}, {}};
    BOURSE_ASSIGN_OR_RETURN(piece.res, core::ResourceVectorFromJson(p["res"], "res"));
    piece.interval = {p["not_before"].get<int64_t>(), p["not_after"].get<int64_t>()};
    q.pieces.push_back(std::move(piece));
  }
  q.state = s.Text(6);
  q.returned = internal::ParseStoredJson(s.Text(7));
  q.created_ms = s.Int(8);
  return q;
}

// The quotes of `rfq` in submission order: all, or only the open ones.
core::Result<std::vector<QuoteRow>> LoadQuotes(storage::Connection* db, const std::string& rfq,
                                               bool open_only) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          db->Prepare(std::string("SELECT ") + kQuoteColumns +
                                      " FROM m_rfq_quotes WHERE rfq=? AND (?2=0 OR state='open') "
                                      "ORDER BY created_ms, rowid"));
  s.Bind(1, rfq);
  s.Bind(2, open_only ? 1 : 0);
  std::vector<QuoteRow> out;
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    BOURSE_ASSIGN_OR_RETURN(QuoteRow q, QuoteFromRow(s));
    out.push_back(std::move(q));
  }
  return out;
}

// Quote `id` of `rfq`, if it exists.
core::Result<std::optional<QuoteRow>> LoadQuote(storage::Connection* db, const std::string& rfq,
                                                const std::string& id) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare(std::string("SELECT ") + kQuoteColumns +
                                              " FROM m_rfq_quotes WHERE id=? AND rfq=?"));
  s.Bind(1, id);
  s.Bind(2, rfq);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<QuoteRow>();
  BOURSE_ASSIGN_OR_RETURN(QuoteRow q, QuoteFromRow(s));
  return std::optional<QuoteRow>(std::move(q));
}

core::Status InsertQuote(ledger::Txn& txn, const QuoteRow& q) {
  json pieces = json::array();
  for (const Piece& p : q.pieces) pieces.push_back(p.ToJson());
  BOURSE_ASSIGN_OR_RETURN(Stmt s, txn.db()->Prepare(std::string("INSERT INTO m_rfq_quotes(") +
                                                    kQuoteColumns + ") VALUES(?,?,?,?,?,?,?,?,?)"));
  s.Bind(1, q.id);
  s.Bind(2, q.rfq);
  s.Bind(3, q.seller);
  s.Bind(4, q.account);
  s.Bind(5, q.price.ToString());
  s.Bind(6, pieces.dump());
  s.Bind(7, q.state);
  s.Bind(8, q.returned.dump());
  s.Bind(9, q.created_ms);
  return s.Run();
}

core::Status SaveQuoteEnd(ledger::Txn& txn, const QuoteRow& q) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, txn.db()->Prepare("UPDATE m_rfq_quotes SET state=?,returned=? WHERE id=?"));
  s.Bind(1, q.state);
  s.Bind(2, q.returned.dump());
  s.Bind(3, q.id);
  return s.Run();
}

core::Result<int64_t> Count(storage::Connection* db, const char* sql, const std::string& a,
                            const std::string& b = "") {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare(sql));
  s.Bind(1, a);
  if (!b.empty()) s.Bind(2, b);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Int(0) : 0;
}

// ---- JSON ----

json QuoteJson(const QuoteRow& q, bool show_price) {
  json nodes = json::array(), sites = json::array(), escrows = json::array();
  for (const Piece& p : q.pieces) {
    nodes.push_back(p.node);
    sites.push_back(p.site);
    escrows.push_back(p.escrow);
  }
  return {{"id", q.id},
          {"rfq", q.rfq},
          {"seller", q.seller},
          {"price", show_price ? json(q.price.ToString()) : json()},
          {"nodes", nodes},
          {"sites", sites},
          {"escrows", escrows},
          {"state", q.state},
          {"returned", q.returned},
          {"created_ms", q.created_ms}};
}

json RfqHead(const RfqRow& r) {
  auto or_null = [](const std::string& s) { return s.empty() ? json() : json(s); };
  return {{"id", r.id},
          {"buyer", r.buyer},
          {"res", core::ResourceVectorToJson(r.res)},
          {"nodes", r.nodes},
          {"min_sites", r.min_sites},
          {"not_before", r.window.not_before},
          {"not_after", r.window.not_after},
          {"max_price", r.max_price.ToString()},
          {"close", r.close_s},
          {"award", r.award},
          {"state", r.state},
          {"escrow", r.escrow},
          {"winner", or_null(r.winner)},
          {"quote", or_null(r.quote)},
          {"price", or_null(r.price)},
          {"rcaps", r.rcaps},
          {"reason", or_null(r.reason)},
          {"created_ms", r.created_ms}};
}

// An RFQ as GET shows it to `viewer` ("" when unsigned): quote prices are
// sealed while it is open and before its close, except to the buyer and to
// each quote's own seller.
core::Result<json> RfqJson(storage::Connection* db, const RfqRow& r, const std::string& viewer,
                           int64_t now_ms) {
  BOURSE_ASSIGN_OR_RETURN(std::vector<QuoteRow> quotes, LoadQuotes(db, r.id, false));
  bool sealed = r.state == "open" && now_ms / 1000 < r.close_s;
  json list = json::array();
  for (const QuoteRow& q : quotes) {
    bool show = !sealed || (!viewer.empty() && (viewer == r.buyer || viewer == q.seller));
    list.push_back(QuoteJson(q, show));
  }
  json out = RfqHead(r);
  out["quotes"] = std::move(list);
  return out;
}

// ---- decoding ----

core::Result<RfqRow> DecodeRfq(const json& body, int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(
      body, "",
      {"res", "nodes", "min_sites", "not_before", "not_after", "max_price", "close", "award"}));
  RfqRow r;
  BOURSE_ASSIGN_OR_RETURN(const json* res, core::RequireMember(body, "", "res"));
  BOURSE_ASSIGN_OR_RETURN(r.res, core::ResourceVectorFromJson(*res, "res"));
  if (r.res.cpu_mcores == 0 && r.res.mem_mib == 0 && r.res.disk_mib == 0 &&
      r.res.net_min_kbps == 0) {
    return core::InvalidArgument("res: must have a non-zero quantity");
  }
  BOURSE_ASSIGN_OR_RETURN(const json* n, core::RequireMember(body, "", "nodes"));
  BOURSE_ASSIGN_OR_RETURN(r.nodes, core::IntFromJson(*n, "nodes", 1, kMaxRfqNodes));
  if (const json* k = core::OptionalMember(body, "min_sites")) {
    BOURSE_ASSIGN_OR_RETURN(r.min_sites, core::IntFromJson(*k, "min_sites", 1, kMaxRfqNodes));
  }
  if (r.min_sites > r.nodes) {
    return core::InvalidArgument("min_sites: " + std::to_string(r.min_sites) +
                                 " sites cannot hold " + std::to_string(r.nodes) + " nodes");
  }
  BOURSE_ASSIGN_OR_RETURN(r.window, core::WindowFields(body));
  BOURSE_ASSIGN_OR_RETURN(const json* mp, core::RequireMember(body, "", "max_price"));
  BOURSE_ASSIGN_OR_RETURN(r.max_price, core::MoneyFromJson(*mp, "max_price"));
  if (!r.max_price.is_positive()) return core::InvalidArgument("max_price: must be > 0");
  r.close_s = r.window.not_before;
  if (const json* c = core::OptionalMember(body, "close")) {
    BOURSE_ASSIGN_OR_RETURN(r.close_s, core::IntFromJson(*c, "close", 0, core::kMaxSafeInteger));
  }
  if (r.close_s <= now_ms / 1000) {
    return core::InvalidArgument("close: " + std::to_string(r.close_s) +
                                 " is not in the future (it defaults to not_before)");
  }
  if (r.close_s >= r.window.not_after) {
    return core::InvalidArgument("close: must be before not_after");
  }
  r.award = "auto";
  if (core::OptionalMember(body, "award") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(r.award, core::StrField(body, "award", 8));
    if (r.award != "auto" && r.award != "manual") {
      return core::InvalidArgument("award: must be auto or manual");
    }
  }
  return r;
}

struct QuoteRequest {
  core::Money price;
  std::vector<PieceRequest> pieces;
  bool pool = false;
};

core::Result<QuoteRequest> DecodeQuote(const json& body, const std::string& caller,
                                       const std::string& broker_text) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"price", "rcaps"}));
  QuoteRequest q;
  BOURSE_ASSIGN_OR_RETURN(const json* p, core::RequireMember(body, "", "price"));
  BOURSE_ASSIGN_OR_RETURN(q.price, core::MoneyFromJson(*p, "price"));
  if (!q.price.is_positive()) return core::InvalidArgument("price: must be > 0");
  BOURSE_ASSIGN_OR_RETURN(const json* rc, core::RequireMember(body, "", "rcaps"));
  if (!rc->is_array() || rc->empty() || rc->size() > kMaxRfqNodes) {
    return core::InvalidArgument("rcaps: must be an array of 1..1000 {rcap, node} pieces");
  }
  size_t pools = 0;
  for (size_t i = 0; i < rc->size(); ++i) {
    const std::string f = "rcaps[" + std::to_string(i) + "]";
    const json& e = (*rc)[i];
    BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(e, f, {"rcap", "node"}));
    PieceRequest pr;
    BOURSE_ASSIGN_OR_RETURN(const json* n, core::RequireMember(e, f, "node"));
    BOURSE_ASSIGN_OR_RETURN(pr.node, core::StringFromJson(*n, f + ".node", 128));
    BOURSE_ASSIGN_OR_RETURN(const json* r, core::RequireMember(e, f, "rcap"));
    if (r->is_string()) {
      BOURSE_ASSIGN_OR_RETURN(pr.pool_rcap,
                              core::StringFromJson(*r, f + ".rcap", ledger::kMaxRcapIdLength));
      ++pools;
    } else {
      BOURSE_ASSIGN_OR_RETURN(ledger::Rcap esc, ledger::Rcap::FromJson(*r, f + ".rcap"));
      BOURSE_RETURN_IF_ERROR(internal::CheckSignedEscrow(esc, caller, broker_text, f + ".rcap"));
      if (esc.node != pr.node) {
        return core::InvalidArgument(f + ".node: is " + pr.node + " but " + f +
                                     ".rcap is on node " + esc.node);
      }
      pr.escrow = std::move(esc);
    }
    q.pieces.push_back(std::move(pr));
  }
  if (pools != 0 && pools != q.pieces.size()) {
    return core::InvalidArgument(
        "rcaps: give either signed escrows (objects) or broker pool rcap ids (strings), not both");
  }
  q.pool = pools != 0;
  return q;
}

// The first resource of `want` that `have` lacks, as a reason; "" when
// `have` covers `want` (component-wise, net_max_kbps included).
std::string ShortOf(const core::ResourceVector& have, const core::ResourceVector& want) {
  const std::pair<const char*, std::pair<int64_t, int64_t>> parts[] = {
      {"cpu_mcores", {have.cpu_mcores, want.cpu_mcores}},
      {"mem_mib", {have.mem_mib, want.mem_mib}},
      {"disk_mib", {have.disk_mib, want.disk_mib}},
      {"net_min_kbps", {have.net_min_kbps, want.net_min_kbps}},
      {"net_max_kbps", {have.net_max_kbps, want.net_max_kbps}}};
  for (const auto& [name, hw] : parts) {
    if (hw.first < hw.second) {
      return std::string("too little ") + name + ": " + std::to_string(hw.first) +
             ", the RFQ asks for " + std::to_string(hw.second);
    }
  }
  return "";
}

// Whether an escrow of `res` over `interval` on `node` covers the RFQ's
// rspec for one node. Errors: invalid_argument naming `field`.
core::Status CheckCovers(const RfqRow& r, const std::string& field, const core::ResourceVector& res,
                         const core::Interval& interval) {
  if (!r.window.IsSubsetOf(interval)) {
    return core::InvalidArgument(field + ".not_before/not_after: " + interval.ToString() +
                                 " does not contain the RFQ's interval " + r.window.ToString());
  }
  std::string short_of = ShortOf(res, r.res);
  if (!short_of.empty()) return core::InvalidArgument(field + ".res: " + short_of);
  return core::Status::Ok();
}

}  // namespace

// ---- transactions ----

namespace {

// The open RFQ `id`, before its close, for a request of `what`. Errors:
// not_found, failed_precondition (409).
core::Result<RfqRow> OpenRfqRow(ledger::Txn& txn, const std::string& id, int64_t now_ms,
                                const std::string& what) {
  BOURSE_ASSIGN_OR_RETURN(RfqRow r, LoadRfq(txn.db(), id));
  if (r.state != "open") {
    return core::FailedPrecondition("rfq " + id + " is " + r.state + ": no more " + what);
  }
  if (now_ms / 1000 >= r.close_s) {
    return core::FailedPrecondition("rfq " + id + " closed at " + std::to_string(r.close_s) +
                                    ": no more " + what);
  }
  return r;
}

// The buyer's own open RFQ, for its accept or cancel. Errors: not_found,
// permission_denied (another caller), failed_precondition (not open).
core::Result<RfqRow> BuyersOpenRfq(ledger::Txn& txn, const std::string& id,
                                   const std::string& caller, int64_t now_ms,
                                   const std::string& what) {
  BOURSE_ASSIGN_OR_RETURN(RfqRow r, LoadRfq(txn.db(), id));
  if (r.buyer != caller) {
    return core::PermissionDenied("only the buyer of rfq " + id + " may ask for " + what);
  }
  return OpenRfqRow(txn, id, now_ms, what);
}

// Escrows one piece of a quote inside its transaction; returns it.
core::Result<Piece> EscrowPiece(Markets& m, ledger::Txn& txn, const RfqRow& r,
                                const core::Principal& caller, const std::string& caller_text,
                                const PieceRequest& pr, size_t i) {
  const std::string f = "rcaps[" + std::to_string(i) + "]";
  Host& host = m.host();
  Piece p;
  p.node = pr.node;
  BOURSE_ASSIGN_OR_RETURN(std::optional<NodeInfo> node, host.FindNode(txn.db(), pr.node));
  if (!node) return core::InvalidArgument(f + ".node: node " + pr.node + " does not exist");
  p.site = node->site;
  if (pr.escrow) {
    const ledger::Rcap& e = *pr.escrow;
    BOURSE_RETURN_IF_ERROR(CheckCovers(r, f + ".rcap", e.res, e.interval));
    BOURSE_RETURN_IF_ERROR(internal::RecordSignedEscrow(host, txn, e, caller_text, f + ".rcap"));
    p.escrow = e.id;
    p.from = *e.parent;
    p.res = e.res;
    p.interval = e.interval;
    return p;
  }
  BOURSE_ASSIGN_OR_RETURN(ledger::Rcap src,
                          internal::PoolSource(txn, caller, pr.pool_rcap, f + ".rcap", "quotes"));
  if (!(src.holder == host.broker_key())) {
    return core::InvalidArgument(f + ".rcap: rcap " + src.id + " is not held by the broker");
  }
  if (src.node != pr.node) {
    return core::InvalidArgument(f + ".node: is " + pr.node + " but rcap " + src.id +
                                 " is on node " + src.node);
  }
  BOURSE_RETURN_IF_ERROR(CheckCovers(r, f + ".rcap", src.res, src.interval));
  ledger::ChildSpec spec{.id = "", .holder = host.broker_key(), .res = r.res, .interval = r.window};
  BOURSE_ASSIGN_OR_RETURN(
      std::vector<ledger::Rcap> kids,
      host.SplitHeld(txn, src.id, std::span<const ledger::ChildSpec>(&spec, 1)));
  p.escrow = kids[0].id;
  p.from = src.id;
  p.pool = true;
  p.res = r.res;
  p.interval = r.window;
  return p;
}

// The checks of a quote against its RFQ that come before any escrow: the
// seller is not the buyer, at most one open quote per seller, the limit on
// quotes, and a complete rspec (N distinct existing nodes in >= K sites).
core::Status CheckQuote(Markets& m, ledger::Txn& txn, const RfqRow& r, const QuoteRequest& qr,
                        const std::string& caller_text) {
  if (caller_text == r.buyer) {
    return core::InvalidArgument("seller: the buyer cannot quote on its own rfq " + r.id);
  }
  if (qr.price > r.max_price) {
    return core::InvalidArgument("price: " + qr.price.ToString() +
                                 " is above the rfq's max_price " + r.max_price.ToString());
  }
  BOURSE_ASSIGN_OR_RETURN(int64_t mine, Count(txn.db(),
                                              "SELECT count(*) FROM m_rfq_quotes WHERE rfq=? AND "
                                              "seller=? AND state='open'",
                                              r.id, caller_text));
  if (mine > 0) {
    return core::FailedPrecondition("seller: already has an open quote on rfq " + r.id +
                                    "; withdraw it first");
  }
  BOURSE_ASSIGN_OR_RETURN(
      int64_t open,
      Count(txn.db(), "SELECT count(*) FROM m_rfq_quotes WHERE rfq=? AND state='open'", r.id));
  if (open >= Markets::kMaxQuotesPerRfq) {
    return core::ResourceExhausted("rfq " + r.id + " has " + std::to_string(open) +
                                   " open quotes, the limit is " +
                                   std::to_string(Markets::kMaxQuotesPerRfq));
  }
  BOURSE_ASSIGN_OR_RETURN(
      int64_t by_seller,
      Count(txn.db(), "SELECT count(*) FROM m_rfq_quotes WHERE rfq=? AND seller=?", r.id,
            caller_text));
  if (by_seller >= Markets::kMaxQuotesPerSeller) {
    return core::ResourceExhausted("seller: has quoted on rfq " + r.id + " " +
                                   std::to_string(by_seller) + " times, the limit is " +
                                   std::to_string(Markets::kMaxQuotesPerSeller));
  }
  BOURSE_ASSIGN_OR_RETURN(
      int64_t ever, Count(txn.db(), "SELECT count(*) FROM m_rfq_quotes WHERE rfq=?", r.id));
  if (ever >= Markets::kMaxQuotesEverPerRfq) {
    return core::ResourceExhausted("rfq " + r.id + " has had " + std::to_string(ever) +
                                   " quotes, the limit is " +
                                   std::to_string(Markets::kMaxQuotesEverPerRfq));
  }
  if (static_cast<int64_t>(qr.pieces.size()) != r.nodes) {
    return core::InvalidArgument("rcaps: the rfq asks for " + std::to_string(r.nodes) +
                                 " nodes, the quote has " + std::to_string(qr.pieces.size()));
  }
  std::set<std::string> nodes, sites;
  for (size_t i = 0; i < qr.pieces.size(); ++i) {
    const std::string f = "rcaps[" + std::to_string(i) + "].node";
    const std::string& n = qr.pieces[i].node;
    if (!nodes.insert(n).second) return core::InvalidArgument(f + ": node " + n + " twice");
    BOURSE_ASSIGN_OR_RETURN(std::optional<NodeInfo> node, m.host().FindNode(txn.db(), n));
    if (!node) return core::InvalidArgument(f + ": node " + n + " does not exist");
    sites.insert(node->site);
  }
  if (static_cast<int64_t>(sites.size()) < r.min_sites) {
    return core::InvalidArgument("rcaps: the quote's nodes are in " + std::to_string(sites.size()) +
                                 " sites, the rfq asks for at least " +
                                 std::to_string(r.min_sites));
  }
  return core::Status::Ok();
}

core::Result<QuoteRow> QuoteTxn(Markets& m, ledger::Txn& txn, const std::string& rfq,
                                const QuoteRequest& qr, const std::string& caller_text,
                                int64_t now_ms) {
  BOURSE_ASSIGN_OR_RETURN(core::Principal caller, m.host().LookupPrincipal(txn, caller_text));
  BOURSE_ASSIGN_OR_RETURN(RfqRow r, OpenRfqRow(txn, rfq, now_ms, "quotes"));
  BOURSE_RETURN_IF_ERROR(CheckQuote(m, txn, r, qr, caller_text));
  QuoteRow q;
  q.id = core::NewId("qt");
  q.rfq = r.id;
  q.seller = caller_text;
  q.account = qr.pool ? m.host().broker_key().ToText() : caller_text;
  q.price = qr.price;
  q.state = "open";
  q.created_ms = txn.now_millis();
  for (size_t i = 0; i < qr.pieces.size(); ++i) {
    BOURSE_ASSIGN_OR_RETURN(Piece p, EscrowPiece(m, txn, r, caller, caller_text, qr.pieces[i], i));
    q.pieces.push_back(std::move(p));
  }
  BOURSE_RETURN_IF_ERROR(InsertQuote(txn, q));
  json entry = QuoteJson(q, false);
  entry.erase("price");  // sealed: the ledger is public, the price is not until the award
  entry.erase("returned");
  entry.erase("created_ms");
  entry.erase("id");
  entry["quote"] = q.id;
  BOURSE_RETURN_IF_ERROR(txn.Append("rfq_quoted", entry).status());
  return q;
}

// Ends an open quote without a sale: each escrow, unused, is released
// (rcap_released) and its parent, the seller's, is free again; `returned`
// names the parents. Pool escrows stay with the broker.
core::Status ReleaseQuote(Markets& m, ledger::Txn& txn, QuoteRow& q, const std::string& state) {
  const bool pool = q.account != q.seller;
  for (const Piece& p : q.pieces) {
    if (pool || p.pool) continue;
    BOURSE_ASSIGN_OR_RETURN(std::string kid, internal::ReturnEscrow(m.host(), txn, p.escrow,
                                                                    q.seller, p.res, p.interval));
    q.returned.push_back(kid);
  }
  q.state = state;
  return SaveQuoteEnd(txn, q);
}

// Releases every open quote of `r` but `except`. Returns them for the
// ledger entry: [{"quote","seller","returned":[rcap ids]}].
core::Result<json> ReleaseOthers(Markets& m, ledger::Txn& txn, const RfqRow& r,
                                 const std::string& except) {
  BOURSE_ASSIGN_OR_RETURN(std::vector<QuoteRow> quotes, LoadQuotes(txn.db(), r.id, true));
  json released = json::array();
  for (QuoteRow& q : quotes) {
    if (q.id == except) continue;
    BOURSE_RETURN_IF_ERROR(ReleaseQuote(m, txn, q, "lost"));
    released.push_back({{"quote", q.id}, {"seller", q.seller}, {"returned", q.returned}});
  }
  return released;
}

// The children the winner's escrow E is split into: the buyer's (exactly
// the rspec), then what is left of E for the seller (E less the rspec over
// the RFQ's interval, and all of E before and after it).
std::vector<ledger::ChildSpec> AwardSplit(const RfqRow& r, const Piece& p,
                                          const core::PublicKey& buyer,
                                          const std::optional<core::PublicKey>& seller) {
  std::vector<ledger::ChildSpec> kids = {
      {.id = "", .holder = buyer, .res = r.res, .interval = r.window}};
  if (!seller) return kids;
  auto left = p.res.Minus(r.res);
  if (left.ok() &&
      (left->cpu_mcores > 0 || left->mem_mib > 0 || left->disk_mib > 0 || left->net_min_kbps > 0)) {
    kids.push_back({.id = "", .holder = *seller, .res = *left, .interval = r.window});
  }
  if (p.interval.not_before < r.window.not_before) {
    kids.push_back({.id = "",
                    .holder = *seller,
                    .res = p.res,
                    .interval = {p.interval.not_before, r.window.not_before}});
  }
  if (r.window.not_after < p.interval.not_after) {
    kids.push_back({.id = "",
                    .holder = *seller,
                    .res = p.res,
                    .interval = {r.window.not_after, p.interval.not_after}});
  }
  return kids;
}

// Awards `r` (open) to quote `q` (open) in the transaction: credits,
// capacity, the other quotes, the row and rfq_awarded. Returns the buyer's
// chains, one per node.
core::Result<json> AwardTo(Markets& m, ledger::Txn& txn, RfqRow& r, QuoteRow& q) {
  Host& host = m.host();
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey buyer, core::PublicKey::FromText(r.buyer));
  std::optional<core::PublicKey> seller;
  if (q.account == q.seller) {
    BOURSE_ASSIGN_OR_RETURN(seller, core::PublicKey::FromText(q.seller));
  }
  BOURSE_RETURN_IF_ERROR(host.EscrowSettle(txn, r.escrow, q.account, q.price));
  BOURSE_ASSIGN_OR_RETURN(core::Money rest, r.max_price.Sub(q.price));
  if (rest.is_positive()) BOURSE_RETURN_IF_ERROR(host.EscrowRelease(txn, r.escrow, rest));
  json chains = json::array(), rcaps = json::array(), nodes = json::array();
  for (const Piece& p : q.pieces) {
    std::vector<ledger::ChildSpec> specs = AwardSplit(r, p, buyer, p.pool ? std::nullopt : seller);
    BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::Rcap> kids, host.SplitHeld(txn, p.escrow, specs));
    rcaps.push_back(kids[0].id);
    nodes.push_back(p.node);
    for (size_t k = 1; k < kids.size(); ++k) q.returned.push_back(kids[k].id);
    BOURSE_ASSIGN_OR_RETURN(std::vector<ledger::Rcap> chain,
                            ledger::CapacityLog::ChainOf(txn.db(), kids[0].id));
    chains.push_back(ledger::ChainToJson(chain));
  }
  q.state = "won";
  BOURSE_RETURN_IF_ERROR(SaveQuoteEnd(txn, q));
  BOURSE_ASSIGN_OR_RETURN(json released, ReleaseOthers(m, txn, r, q.id));
  r.state = "awarded";
  r.winner = q.seller;
  r.quote = q.id;
  r.price = q.price.ToString();
  r.rcaps = rcaps;
  BOURSE_RETURN_IF_ERROR(SaveRfqEnd(txn, r));
  BOURSE_RETURN_IF_ERROR(txn.Append("rfq_awarded", {{"rfq", r.id},
                                                    {"quote", q.id},
                                                    {"winner", q.seller},
                                                    {"buyer", r.buyer},
                                                    {"price", r.price},
                                                    {"nodes", nodes},
                                                    {"rcaps", rcaps},
                                                    {"returned", q.returned},
                                                    {"released", released}})
                             .status());
  return chains;
}

// Ends `r` (open) without a sale: every open quote released, the buyer's
// escrow released in full; `state` failed (rfq_failed) or cancelled
// (rfq_cancelled).
core::Status EndUnsold(Markets& m, ledger::Txn& txn, RfqRow& r, const std::string& state,
                       const std::string& reason) {
  BOURSE_ASSIGN_OR_RETURN(json released, ReleaseOthers(m, txn, r, ""));
  BOURSE_RETURN_IF_ERROR(m.host().EscrowRelease(txn, r.escrow, r.max_price));
  r.state = state;
  r.reason = reason;
  BOURSE_RETURN_IF_ERROR(SaveRfqEnd(txn, r));
  const std::string type = state == "failed" ? "rfq_failed" : "rfq_cancelled";
  return txn
      .Append(type,
              {{"rfq", r.id}, {"buyer", r.buyer}, {"reason", reason}, {"released", released}})
      .status();
}

// At the close, in one transaction: the cheapest open quote at or under
// max_price (ties: the earliest) wins an auto RFQ; a manual RFQ nobody
// accepted, or an auto RFQ without such a quote, fails. A quote whose award
// cannot settle (a safeguard: its escrows are committed to it, so only a
// broken store makes one) loses, its escrow goes back, and the next cheapest
// is tried, so one bad quote cannot sink the RFQ. Nothing when the RFQ is no
// longer open (awarded, cancelled or ended before a restart).
core::Status AwardAtClose(Markets& m, ledger::Txn& txn, const std::string& id) {
  BOURSE_ASSIGN_OR_RETURN(RfqRow r, LoadRfq(txn.db(), id));
  if (r.state != "open") return core::Status::Ok();
  if (r.award == "manual") return EndUnsold(m, txn, r, "failed", "no quote accepted by the close");
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(std::vector<QuoteRow> quotes, LoadQuotes(txn.db(), id, true));
    QuoteRow* best = nullptr;
    for (QuoteRow& q : quotes) {
      if (q.price > r.max_price) continue;
      if (best == nullptr || q.price < best->price) best = &q;  // earliest wins a tie
    }
    if (best == nullptr) {
      return EndUnsold(m, txn, r, "failed", "no complete quote at or under max_price");
    }
    QuoteRow q = *best;
    core::Status st = txn.Nested([&] { return AwardTo(m, txn, r, q).status(); });
    if (st.ok() || st.code() == core::StatusCode::kUnavailable) return st;
    std::fprintf(stderr, "rfq %s: quote %s cannot be awarded, trying the next: %s\n", id.c_str(),
                 best->id.c_str(), st.ToString().c_str());
    BOURSE_ASSIGN_OR_RETURN(r, LoadRfq(txn.db(), id));  // AwardTo's changes were rolled back
    QuoteRow lost = *best;
    if (!txn.Nested([&] { return ReleaseQuote(m, txn, lost, "lost"); }).ok()) {
      lost = *best;
      lost.state = "lost";  // nothing to give back that the store still knows
      BOURSE_RETURN_IF_ERROR(SaveQuoteEnd(txn, lost));
    }
  }
}

// Rfqs of `state` and `buyer` ("" for any), newest first, at most kMaxListed.
core::Result<json> ListRfqRows(storage::Connection* db, const std::string& state,
                               const std::string& buyer, const std::string& viewer,
                               int64_t now_ms) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare(std::string("SELECT ") + kRfqColumns +
                          " FROM m_rfqs WHERE (?1='' OR state=?1) AND (?2='' OR buyer=?2) "
                          "ORDER BY created_ms DESC, rowid DESC LIMIT ?3"));
  s.Bind(1, state);
  s.Bind(2, buyer);
  s.Bind(3, kMaxListed);
  std::vector<RfqRow> rows;
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    BOURSE_ASSIGN_OR_RETURN(RfqRow r, RfqFromRow(s));
    rows.push_back(std::move(r));
  }
  json list = json::array();
  for (const RfqRow& r : rows) {
    BOURSE_ASSIGN_OR_RETURN(json one, RfqJson(db, r, viewer, now_ms));
    list.push_back(std::move(one));
  }
  return list;
}

}  // namespace

// ---- services ----

core::Result<json> Markets::OpenRfq(const json& body, const std::string& caller, int64_t now_ms) {
  BOURSE_ASSIGN_OR_RETURN(RfqRow r, DecodeRfq(body, now_ms));
  r.id = core::NewId("rfq");
  r.buyer = caller;
  r.state = "open";
  r.escrow = "rfq_esc_" + r.id;
  json out;
  BOURSE_RETURN_IF_ERROR(
      host_
          ->Mutate([&](ledger::Txn& txn) -> core::Status {
            BOURSE_RETURN_IF_ERROR(host_->LookupPrincipal(txn, caller).status());
            BOURSE_ASSIGN_OR_RETURN(
                int64_t open,
                Count(txn.db(), "SELECT count(*) FROM m_rfqs WHERE buyer=? AND state='open'",
                      caller));
            if (open >= kMaxOpenRfqsPerBuyer) {
              return core::ResourceExhausted("buyer has " + std::to_string(open) +
                                             " open rfqs, the limit is " +
                                             std::to_string(kMaxOpenRfqsPerBuyer));
            }
            BOURSE_ASSIGN_OR_RETURN(core::Money has, ledger::Accounts::Balance(txn.db(), caller));
            if (has < r.max_price) {
              BOURSE_ASSIGN_OR_RETURN(core::Money short_by, r.max_price.Sub(has));
              return core::InsufficientFunds("insufficient funds: an rfq escrows its max_price " +
                                             r.max_price.ToMinimalString() + ", account " + caller +
                                             " has " + has.ToMinimalString() +
                                             " available (short by " + short_by.ToMinimalString() +
                                             ")");
            }
            BOURSE_RETURN_IF_ERROR(host_->EscrowHold(txn, r.escrow, caller, r.max_price));
            r.created_ms = txn.now_millis();
            BOURSE_RETURN_IF_ERROR(InsertRfq(txn, r));
            out = RfqHead(r);
            json entry = out;
            entry.erase("id");
            for (const char* k : {"winner", "quote", "price", "rcaps", "reason", "created_ms"}) {
              entry.erase(k);
            }
            entry["rfq"] = r.id;
            BOURSE_RETURN_IF_ERROR(txn.Append("rfq_opened", entry).status());
            out["quotes"] = json::array();
            return core::Status::Ok();
          })
          .status());
  return json{{"rfq", out}};
}

core::Result<json> Markets::QuoteRfq(const std::string& rfq, const json& body,
                                     const std::string& caller, int64_t now_ms) {
  // The cheap check first: a quote of the wrong number of pieces is refused
  // before any of its signatures is verified (CheckQuote checks it again).
  int64_t nodes = 0;
  BOURSE_RETURN_IF_ERROR(host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(RfqRow r, LoadRfq(db, rfq));
    nodes = r.nodes;
    return core::Status::Ok();
  }));
  if (body.is_object() && body.contains("rcaps") && body["rcaps"].is_array() &&
      static_cast<int64_t>(body["rcaps"].size()) != nodes) {
    return core::InvalidArgument("rcaps: the rfq asks for " + std::to_string(nodes) +
                                 " nodes, the quote has " + std::to_string(body["rcaps"].size()));
  }
  BOURSE_ASSIGN_OR_RETURN(QuoteRequest qr, DecodeQuote(body, caller, host_->broker_key().ToText()));
  QuoteRow q;
  BOURSE_RETURN_IF_ERROR(host_
                             ->Mutate([&](ledger::Txn& txn) -> core::Status {
                               BOURSE_ASSIGN_OR_RETURN(
                                   q, QuoteTxn(*this, txn, rfq, qr, caller, now_ms));
                               return core::Status::Ok();
                             })
                             .status());
  return json{{"quote", QuoteJson(q, true)}};
}

core::Result<json> Markets::WithdrawQuote(const std::string& rfq, const std::string& quote,
                                          const std::string& caller, int64_t now_ms) {
  QuoteRow q;
  BOURSE_RETURN_IF_ERROR(
      host_
          ->Mutate([&](ledger::Txn& txn) -> core::Status {
            BOURSE_ASSIGN_OR_RETURN(std::optional<QuoteRow> found,
                                    LoadQuote(txn.db(), rfq, quote));
            if (!found) {
              BOURSE_RETURN_IF_ERROR(LoadRfq(txn.db(), rfq).status());
              return core::NotFound("quote " + quote + " does not exist on rfq " + rfq);
            }
            q = std::move(*found);
            if (q.seller != caller) {
              return core::PermissionDenied("quote " + quote + " is not the caller's");
            }
            if (q.state != "open") {
              return core::FailedPrecondition("quote " + quote + " is " + q.state);
            }
            BOURSE_RETURN_IF_ERROR(OpenRfqRow(txn, rfq, now_ms, "withdrawals").status());
            BOURSE_RETURN_IF_ERROR(ReleaseQuote(*this, txn, q, "withdrawn"));
            return txn
                .Append(
                    "rfq_quote_withdrawn",
                    {{"rfq", rfq}, {"quote", q.id}, {"seller", q.seller}, {"returned", q.returned}})
                .status();
          })
          .status());
  return json{{"quote", QuoteJson(q, true)}};
}

core::Result<json> Markets::AcceptQuote(const std::string& rfq, const json& body,
                                        const std::string& caller, int64_t now_ms) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"quote"}));
  BOURSE_ASSIGN_OR_RETURN(std::string quote, core::StrField(body, "quote", 128));
  json out;
  BOURSE_RETURN_IF_ERROR(
      host_
          ->Mutate([&](ledger::Txn& txn) -> core::Status {
            BOURSE_ASSIGN_OR_RETURN(RfqRow r, BuyersOpenRfq(txn, rfq, caller, now_ms, "awards"));
            BOURSE_ASSIGN_OR_RETURN(std::optional<QuoteRow> it, LoadQuote(txn.db(), rfq, quote));
            if (!it || it->state != "open") {
              return core::NotFound("quote: " + quote + " is not an open quote on rfq " + rfq);
            }
            BOURSE_ASSIGN_OR_RETURN(json chains, AwardTo(*this, txn, r, *it));
            BOURSE_ASSIGN_OR_RETURN(json shown, RfqJson(txn.db(), r, caller, now_ms));
            out = {{"rfq", shown}, {"chains", chains}};
            return core::Status::Ok();
          })
          .status());
  return out;
}

core::Result<json> Markets::CancelRfq(const std::string& rfq, const std::string& caller,
                                      int64_t now_ms) {
  json out;
  BOURSE_RETURN_IF_ERROR(
      host_
          ->Mutate([&](ledger::Txn& txn) -> core::Status {
            BOURSE_ASSIGN_OR_RETURN(RfqRow r,
                                    BuyersOpenRfq(txn, rfq, caller, now_ms, "cancellation"));
            BOURSE_RETURN_IF_ERROR(EndUnsold(*this, txn, r, "cancelled", "cancelled by the buyer"));
            BOURSE_ASSIGN_OR_RETURN(out, RfqJson(txn.db(), r, caller, now_ms));
            return core::Status::Ok();
          })
          .status());
  return json{{"rfq", out}};
}

core::Result<json> Markets::ListRfqs(const std::optional<std::string>& state,
                                     const std::optional<std::string>& buyer,
                                     const std::string& viewer, int64_t now_ms) {
  const std::string s = state.value_or("");
  if (state && s != "open" && s != "awarded" && s != "failed" && s != "cancelled") {
    return core::InvalidArgument("state: must be open, awarded, failed or cancelled");
  }
  std::string b;
  if (buyer) {
    auto key = core::PublicKey::FromText(*buyer);
    if (!key.ok()) return core::InvalidArgument("buyer: " + key.status().message());
    b = key->ToText();
  }
  json list;
  BOURSE_RETURN_IF_ERROR(host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(list, ListRfqRows(db, s, b, viewer, now_ms));
    return core::Status::Ok();
  }));
  return json{{"rfqs", list}};
}

core::Result<json> Markets::GetRfq(const std::string& rfq, const std::string& viewer,
                                   int64_t now_ms) {
  json out;
  BOURSE_RETURN_IF_ERROR(host_->store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(RfqRow r, LoadRfq(db, rfq));
    BOURSE_ASSIGN_OR_RETURN(out, RfqJson(db, r, viewer, now_ms));
    return core::Status::Ok();
  }));
  return json{{"rfq", out}};
}

core::Status Markets::AwardDueRfqs() {
  BOURSE_ASSIGN_OR_RETURN(
      std::vector<std::string> due,
      internal::DueIds(*host_,
                       "SELECT id FROM m_rfqs WHERE state='open' AND close_s<=? "
                       "ORDER BY close_s, id LIMIT 1000"));
  core::Status first;
  for (const std::string& id : due) {
    core::Status st =
        host_->Mutate([&](ledger::Txn& txn) { return AwardAtClose(*this, txn, id); }).status();
    if (!st.ok() && st.code() != core::StatusCode::kInternal &&
        st.code() != core::StatusCode::kUnavailable) {
      // The award cannot settle (a safeguard: escrows are committed to the
      // quote): the RFQ fails and every escrow goes back.
      st = host_
               ->Mutate([&](ledger::Txn& txn) -> core::Status {
                 BOURSE_ASSIGN_OR_RETURN(RfqRow r, LoadRfq(txn.db(), id));
                 if (r.state != "open") return core::Status::Ok();
                 return EndUnsold(*this, txn, r, "failed", "award failed: " + st.message());
               })
               .status();
    }
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

namespace internal {

core::Result<std::vector<std::string>> DueIds(Host& host, const char* sql) {
  std::vector<std::string> due;
  int64_t now = host.clock().NowSeconds();
  BOURSE_RETURN_IF_ERROR(host.store().Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare(sql));
    s.Bind(1, now);
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      due.push_back(s.Text(0));
    }
    return core::Status::Ok();
  }));
  return due;
}

}  // namespace internal

}  // namespace bourse::markets
