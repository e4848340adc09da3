// `bourse auction ...`: the offline market tools (formats in docs/auction.md).
//
//   bourse auction replay FILE   JSON lines of order operations in; one JSON
//                                line per trade out, in execution order;
//                                rejections on stderr with their reason.
//   bourse auction clear FILE    one round as a JSON document in; winners,
//                                payments and welfare as one JSON document out.
//
// FILE may be "-" for standard input. Exit codes: 0 done (replay: even when
// some operations were rejected), 1 invalid input (clear) or unreadable file,
// 2 usage.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "auction/combinatorial.h"
#include "auction/order_book.h"
#include "clients/cli.h"
#include "core/json_codec.h"

namespace bourse::clients {
namespace {

using auction::OrderBook;
using auction::OrderId;
using core::Money;
using core::Result;
using core::Status;
using nlohmann::json;
using nlohmann::ordered_json;

void AuctionUsage() {
  std::fputs(
      "usage: bourse auction replay FILE   (JSON lines of order operations; - = stdin)\n"
      "       bourse auction clear FILE [--budget SECONDS]\n"
      "                                    (one combinatorial round as JSON; - = stdin;\n"
      "                                    the solver's time budget, default 1, 0 = greedy only)\n",
      stderr);
}

// Opens FILE or stdin; null (and a message) when the file cannot be read.
std::istream* OpenInput(const std::string& path, std::unique_ptr<std::ifstream>& holder) {
  if (path == "-") return &std::cin;
  holder = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*holder) {
    std::fprintf(stderr, "bourse auction: cannot read %s\n", path.c_str());
    return nullptr;
  }
  return holder.get();
}

// ------------------------------------------------------------------ replay

class Replay : public auction::OrderListener {
 public:
  void OnTrade(const auction::Trade& t) override {
    ordered_json out;
    out["buy"] = names_[t.buy_order];
    out["sell"] = names_[t.sell_order];
    out["qty"] = t.qty;
    out["price"] = t.price().ToMinimalString();
    std::string line = out.dump();
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
  }

  void Line(size_t lineno, const std::string& text) {
    lineno_ = lineno;
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return Reject("", "invalid JSON");
    if (!j.is_object()) return Reject("", "a line must be a JSON object");
    auto op_it = j.find("op");
    if (op_it == j.end() || !op_it->is_string()) return Reject("", "op: missing or not a string");
    const std::string op = *op_it;
    auto id_it = j.find("id");
    if (id_it == j.end() || !id_it->is_string() || id_it->get<std::string>().empty()) {
      return Reject("", "id: missing, empty or not a string");
    }
    const std::string id = *id_it;
    if (op == "place") return Place(j, id);
    if (op == "cancel" || op == "reduce" || op == "move") return Modify(j, op, id);
    Reject(id, "op: unknown operation \"" + op + "\" (place, cancel, reduce or move)");
  }

 private:
  void Reject(const std::string& id, const std::string& why) {
    if (id.empty()) {
      std::fprintf(stderr, "line %zu: rejected: %s\n", lineno_, why.c_str());
    } else {
      std::fprintf(stderr, "line %zu: rejected \"%s\": %s\n", lineno_, id.c_str(), why.c_str());
    }
  }

  void Place(const json& j, const std::string& id) {
    // A place marks its id used even when it is then rejected for another
    // field: ids are never reused within a stream.
    if (ids_.count(id)) return Reject(id, "duplicate_id: id already used in this stream");
    const OrderId oid = names_.size();
    ids_[id] = oid;
    names_.push_back(id);
    Status fields = core::CheckObjectFields(
        j, "place", {"op", "id", "owner", "side", "type", "tif", "qty", "price"});
    if (!fields.ok()) return Reject(id, fields.message());
    auction::OrderRequest r;
    r.id = oid;
    auto owner = Str(j, "owner");
    if (!owner.ok()) return Reject(id, owner.status().message());
    auto [it, inserted] = owners_.try_emplace(*owner, owners_.size());
    r.owner = it->second;
    auto side = Str(j, "side");
    if (!side.ok()) return Reject(id, side.status().message());
    if (*side == "buy") {
      r.side = auction::Side::kBuy;
    } else if (*side == "sell") {
      r.side = auction::Side::kSell;
    } else {
      return Reject(id, "side: must be \"buy\" or \"sell\"");
    }
    std::string type = "limit", tif = "gtc";
    if (j.contains("type")) {
      auto t = Str(j, "type");
      if (!t.ok()) return Reject(id, t.status().message());
      type = *t;
    }
    if (j.contains("tif")) {
      auto t = Str(j, "tif");
      if (!t.ok()) return Reject(id, t.status().message());
      tif = *t;
    }
    if (type != "limit" && type != "market") return Reject(id, "type: must be limit or market");
    if (tif != "gtc" && tif != "ioc") return Reject(id, "tif: must be gtc or ioc");
    r.type = type == "limit" ? auction::OrderType::kLimit : auction::OrderType::kMarket;
    r.tif = tif == "gtc" ? auction::TimeInForce::kGtc : auction::TimeInForce::kIoc;
    auto qty = Qty(j);
    if (!qty.ok()) return Reject(id, qty.status().message());
    r.qty = *qty;
    if (r.type == auction::OrderType::kLimit) {
      auto price = Price(j);
      if (!price.ok()) return Reject(id, price.status().message());
      r.price = *price;
    } else if (j.contains("price")) {
      return Reject(id, "price: a market order has no price");
    }
    Status s = book_.Place(r);
    if (!s.ok()) Reject(id, BookReason(s));
  }

  void Modify(const json& j, const std::string& op, const std::string& id) {
    Status fields = op == "reduce" ? core::CheckObjectFields(j, op, {"op", "id", "qty"})
                    : op == "move" ? core::CheckObjectFields(j, op, {"op", "id", "price"})
                                   : core::CheckObjectFields(j, op, {"op", "id"});
    if (!fields.ok()) return Reject(id, fields.message());
    auto it = ids_.find(id);
    const bool known = it != ids_.end();
    Status s;
    if (op == "cancel") {
      if (!known) return Reject(id, "not_resting: no resting order with this id");
      s = book_.Cancel(it->second);
    } else if (op == "reduce") {
      auto qty = Qty(j);
      if (!qty.ok()) return Reject(id, qty.status().message());
      if (!known) return Reject(id, "not_resting: no resting order with this id");
      s = book_.Reduce(it->second, *qty);
    } else {
      auto price = Price(j);
      if (!price.ok()) return Reject(id, price.status().message());
      if (!known) return Reject(id, "not_resting: no resting order with this id");
      s = book_.Move(it->second, *price);
    }
    if (!s.ok()) Reject(id, BookReason(s));
  }

  // The book's message names the internal numeric id; keep only the reason.
  static std::string BookReason(const Status& s) {
    const std::string& m = s.message();
    size_t colon = m.find(": ");
    return colon == std::string::npos ? m : m.substr(colon + 2);
  }
  static Result<std::string> Str(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return core::InvalidArgument(std::string(key) + ": missing");
    return core::StringFromJson(*it, key, 256);
  }
  static Result<int64_t> Qty(const json& j) {
    auto it = j.find("qty");
    if (it == j.end()) return core::InvalidArgument("qty: missing");
    if (!it->is_number_integer()) return core::InvalidArgument("qty: must be an integer");
    return core::IntFromJson(*it, "qty", 1, INT64_MAX);
  }
  static Result<Money> Price(const json& j) {
    auto it = j.find("price");
    if (it == j.end()) return core::InvalidArgument("price: missing");
    BOURSE_ASSIGN_OR_RETURN(Money m, core::MoneyFromJson(*it, "price"));
    BOURSE_RETURN_IF_ERROR(OrderBook::PriceToNanos(m).status());
    return m;
  }

  OrderBook book_{this};
  std::unordered_map<std::string, OrderId> ids_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, uint64_t> owners_;
  size_t lineno_ = 0;
};

int RunReplay(const std::string& path) {
  std::unique_ptr<std::ifstream> holder;
  std::istream* in = OpenInput(path, holder);
  if (!in) return 1;
  Replay replay;
  std::string line;
  size_t lineno = 0;
  while (std::getline(*in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    replay.Line(lineno, line);
  }
  std::fflush(stdout);
  if (in->bad()) {
    std::fprintf(stderr, "bourse auction replay: read error on %s\n", path.c_str());
    return 1;
  }
  return 0;
}

// ------------------------------------------------------------------- clear

Result<auction::Round> ParseRound(const json& doc) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(doc, "round", {"nodes", "bids"}));
  auction::Round round;
  std::unordered_map<std::string, uint32_t> node_index;
  BOURSE_ASSIGN_OR_RETURN(const json* nodes, core::RequireMember(doc, "round", "nodes"));
  if (!nodes->is_array()) return core::InvalidArgument("nodes: must be an array");
  for (size_t i = 0; i < nodes->size(); ++i) {
    const json& n = (*nodes)[i];
    const std::string f = "nodes[" + std::to_string(i) + "]";
    BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(n, f, {"id", "site", "capacity"}));
    auction::RoundNode node;
    BOURSE_ASSIGN_OR_RETURN(const json* id, core::RequireMember(n, f, "id"));
    BOURSE_ASSIGN_OR_RETURN(node.id, core::StringFromJson(*id, f + ".id", 256));
    BOURSE_ASSIGN_OR_RETURN(const json* site, core::RequireMember(n, f, "site"));
    BOURSE_ASSIGN_OR_RETURN(node.site, core::StringFromJson(*site, f + ".site", 256));
    BOURSE_ASSIGN_OR_RETURN(const json* cap, core::RequireMember(n, f, "capacity"));
    BOURSE_ASSIGN_OR_RETURN(node.capacity, core::ResourceVectorFromJson(*cap, f + ".capacity"));
    if (!node_index.emplace(node.id, static_cast<uint32_t>(i)).second) {
      return core::InvalidArgument(f + ".id: duplicate node id \"" + node.id + "\"");
    }
    round.nodes.push_back(std::move(node));
  }
  auto node_ref = [&](const json& j, const std::string& f) -> Result<uint32_t> {
    BOURSE_ASSIGN_OR_RETURN(std::string id, core::StringFromJson(j, f, 256));
    auto it = node_index.find(id);
    if (it == node_index.end()) return core::InvalidArgument(f + ": unknown node \"" + id + "\"");
    return it->second;
  };
  BOURSE_ASSIGN_OR_RETURN(const json* bids, core::RequireMember(doc, "round", "bids"));
  if (!bids->is_array()) return core::InvalidArgument("bids: must be an array");
  for (size_t i = 0; i < bids->size(); ++i) {
    const json& b = (*bids)[i];
    const std::string f = "bids[" + std::to_string(i) + "]";
    BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(b, f, {"id", "bidder", "limit", "bundles"}));
    auction::RoundBid bid;
    BOURSE_ASSIGN_OR_RETURN(const json* id, core::RequireMember(b, f, "id"));
    BOURSE_ASSIGN_OR_RETURN(bid.id, core::StringFromJson(*id, f + ".id", 256));
    BOURSE_ASSIGN_OR_RETURN(const json* bidder, core::RequireMember(b, f, "bidder"));
    BOURSE_ASSIGN_OR_RETURN(bid.bidder, core::StringFromJson(*bidder, f + ".bidder", 256));
    BOURSE_ASSIGN_OR_RETURN(const json* limit, core::RequireMember(b, f, "limit"));
    BOURSE_ASSIGN_OR_RETURN(bid.limit, core::MoneyFromJson(*limit, f + ".limit"));
    BOURSE_ASSIGN_OR_RETURN(const json* bundles, core::RequireMember(b, f, "bundles"));
    if (!bundles->is_array()) return core::InvalidArgument(f + ".bundles: must be an array");
    for (size_t k = 0; k < bundles->size(); ++k) {
      const json& u = (*bundles)[k];
      const std::string bf = f + ".bundles[" + std::to_string(k) + "]";
      auction::Bundle bundle;
      if (u.is_object() && u.contains("items")) {
        BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(u, bf, {"items"}));
        const json& items = u["items"];
        if (!items.is_array()) return core::InvalidArgument(bf + ".items: must be an array");
        for (size_t t = 0; t < items.size(); ++t) {
          const std::string itf = bf + ".items[" + std::to_string(t) + "]";
          BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(items[t], itf, {"node", "res"}));
          auction::BundleItem item;
          BOURSE_ASSIGN_OR_RETURN(const json* node, core::RequireMember(items[t], itf, "node"));
          BOURSE_ASSIGN_OR_RETURN(item.node, node_ref(*node, itf + ".node"));
          BOURSE_ASSIGN_OR_RETURN(const json* res, core::RequireMember(items[t], itf, "res"));
          BOURSE_ASSIGN_OR_RETURN(item.res, core::ResourceVectorFromJson(*res, itf + ".res"));
          bundle.items.push_back(item);
        }
      } else {
        BOURSE_RETURN_IF_ERROR(
            core::CheckObjectFields(u, bf, {"count", "from", "min_sites", "res"}));
        BOURSE_ASSIGN_OR_RETURN(const json* count, core::RequireMember(u, bf, "count"));
        BOURSE_ASSIGN_OR_RETURN(bundle.count,
                                core::IntFromJson(*count, bf + ".count", 1, 1'000'000));
        BOURSE_ASSIGN_OR_RETURN(const json* from, core::RequireMember(u, bf, "from"));
        if (!from->is_array()) return core::InvalidArgument(bf + ".from: must be an array");
        for (size_t t = 0; t < from->size(); ++t) {
          BOURSE_ASSIGN_OR_RETURN(uint32_t n,
                                  node_ref((*from)[t], bf + ".from[" + std::to_string(t) + "]"));
          bundle.from.push_back(n);
        }
        if (u.contains("min_sites")) {
          BOURSE_ASSIGN_OR_RETURN(
              bundle.min_sites, core::IntFromJson(u["min_sites"], bf + ".min_sites", 0, 1'000'000));
        }
        BOURSE_ASSIGN_OR_RETURN(const json* res, core::RequireMember(u, bf, "res"));
        BOURSE_ASSIGN_OR_RETURN(bundle.res, core::ResourceVectorFromJson(*res, bf + ".res"));
      }
      bid.bundles.push_back(std::move(bundle));
    }
    round.bids.push_back(std::move(bid));
  }
  BOURSE_RETURN_IF_ERROR(auction::ValidateRound(round));
  return round;
}

int RunClear(const std::string& path, double budget_s) {
  std::unique_ptr<std::ifstream> holder;
  std::istream* in = OpenInput(path, holder);
  if (!in) return 1;
  std::stringstream buf;
  buf << in->rdbuf();
  json doc = json::parse(buf.str(), nullptr, false);
  if (doc.is_discarded()) {
    std::fputs("bourse auction clear: invalid JSON\n", stderr);
    return 1;
  }
  auto round = ParseRound(doc);
  if (!round.ok()) {
    std::fprintf(stderr, "bourse auction clear: %s\n", round.status().message().c_str());
    return 1;
  }
  auto outcome = auction::ClearRound(*round, {.time_budget_s = budget_s});
  if (!outcome.ok()) {
    std::fprintf(stderr, "bourse auction clear: %s\n", outcome.status().ToString().c_str());
    return 1;
  }
  ordered_json out;
  out["winners"] = ordered_json::array();
  for (const auction::Winner& w : outcome->winners) {
    ordered_json jw;
    jw["bid"] = round->bids[w.bid].id;
    jw["bundle"] = w.bundle;
    jw["nodes"] = ordered_json::array();
    for (uint32_t n : w.nodes) jw["nodes"].push_back(round->nodes[n].id);
    jw["pay"] = w.pay.ToMinimalString();
    out["winners"].push_back(std::move(jw));
  }
  out["welfare"] = outcome->welfare.ToMinimalString();
  out["optimal"] = outcome->optimal;
  if (!outcome->optimal) out["gap"] = outcome->gap;
  out["mechanism"] = auction::MechanismName(outcome->mechanism);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int RunAuctionCommand(const std::vector<std::string>& args) {
  if (args.size() == 4 && args[0] == "clear" && args[2] == "--budget") {
    // Seconds, a decimal in [0, 3600].
    char* end = nullptr;
    const double budget = std::strtod(args[3].c_str(), &end);
    if (args[3].empty() || *end != '\0' || !(budget >= 0 && budget <= 3600)) {
      std::fprintf(stderr, "bourse auction clear: --budget: not a number of seconds in [0, 3600]: %s\n",
                   args[3].c_str());
      return 2;
    }
    return RunClear(args[1], budget);
  }
  if (args.size() != 2 || (args[0] != "replay" && args[0] != "clear")) {
    AuctionUsage();
    return 2;
  }
  return args[0] == "replay" ? RunReplay(args[1]) : RunClear(args[1], 1.0);
}

}  // namespace bourse::clients
