#include "nodeguard/share_table.h"

#include <algorithm>

#include "core/canonical_json.h"
#include "core/encoding.h"

namespace bourse::nodeguard {
namespace {

__extension__ using Int128 = __int128;  // pool x weight products cannot overflow

ShareCheck Refuse(std::string reason, std::string detail) {
  ShareCheck c;
  c.reason = std::move(reason);
  c.detail = std::move(detail);
  return c;
}

bool IntIn(const nlohmann::json& j, int64_t lo, int64_t hi, int64_t* out) {
  if (!j.is_number_integer()) return false;
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) return false;
    *out = static_cast<int64_t>(u);
  } else {
    *out = j.get<int64_t>();
  }
  return *out >= lo && *out <= hi;
}

}  // namespace

ShareCheck CheckShareTable(std::string_view body, const core::PublicKey& broker_key,
                           const std::string& node, int64_t held_ts_ms) {
  auto parsed = core::ParseJson(body);
  if (!parsed.ok()) return Refuse("malformed", parsed.status().message());
  nlohmann::json doc = std::move(*parsed);
  if (!doc.is_object()) return Refuse("malformed", "the table is not a JSON object");
  if (!doc.contains("sig")) return Refuse("unsigned", "the table has no sig");
  if (!doc["sig"].is_string()) return Refuse("malformed", "sig: not a string");
  auto sig = core::SignatureFromText(doc["sig"].get<std::string>());
  if (!sig.ok()) return Refuse("bad_signature", "sig: " + sig.status().message());
  nlohmann::json unsigned_doc = doc;
  unsigned_doc.erase("sig");
  auto bytes = core::CanonicalJson(unsigned_doc);
  if (!bytes.ok()) return Refuse("malformed", bytes.status().message());
  if (!broker_key.IsValidSignature(core::AsBytes(*bytes), *sig)) {
    return Refuse("bad_signature",
                  "sig does not verify with the broker key " + broker_key.ToText());
  }
  ShareTable t;
  if (!doc.contains("node") || !doc["node"].is_string()) {
    return Refuse("malformed", "node: missing or not a string");
  }
  t.node = doc["node"].get<std::string>();
  if (!doc.contains("ts") || !IntIn(doc["ts"], 0, core::kMaxSafeInteger, &t.ts_ms)) {
    return Refuse("malformed", "ts: missing or not a non-negative integer");
  }
  if (!doc.contains("shares") || !doc["shares"].is_array()) {
    return Refuse("malformed", "shares: missing or not an array");
  }
  for (size_t i = 0; i < doc["shares"].size(); ++i) {
    const nlohmann::json& e = doc["shares"][i];
    std::string f = "shares[" + std::to_string(i) + "]";
    if (!e.is_object()) return Refuse("malformed", f + ": not an object");
    ShareEntry s;
    if (!e.contains("slice") || !e["slice"].is_string() || e["slice"].get<std::string>().empty()) {
      return Refuse("malformed", f + ".slice: missing or not a non-empty string");
    }
    s.slice = e["slice"].get<std::string>();
    if (!e.contains("cpu_weight") ||
        !IntIn(e["cpu_weight"], 0, kShareCpuWeightTotal, &s.cpu_weight)) {
      return Refuse("malformed", f + ".cpu_weight: missing or not an integer in 0..10000");
    }
    if (!e.contains("net_kbps") || !IntIn(e["net_kbps"], 0, core::kMaxSafeInteger, &s.net_kbps)) {
      return Refuse("malformed", f + ".net_kbps: missing or not a non-negative integer");
    }
    t.shares.push_back(std::move(s));
  }
  std::sort(t.shares.begin(), t.shares.end(),
            [](const ShareEntry& a, const ShareEntry& b) { return a.slice < b.slice; });
  for (size_t i = 1; i < t.shares.size(); ++i) {
    if (t.shares[i].slice == t.shares[i - 1].slice) {
      return Refuse("malformed", "shares: slice " + t.shares[i].slice + " listed twice");
    }
  }
  // Signature first, then what it vouches for: a forged table is bad_signature
  // whatever node it names.
  if (t.node != node) {
    return Refuse("wrong_node", "the table is for node " + t.node + ", this is " + node);
  }
  if (held_ts_ms >= 0 && t.ts_ms < held_ts_ms) {
    return Refuse("stale", "ts " + std::to_string(t.ts_ms) + " is older than the held table's " +
                               std::to_string(held_ts_ms));
  }
  t.text = std::string(body);
  ShareCheck ok;
  ok.table = std::move(t);
  return ok;
}

std::map<std::string, ShareGrant> ApplyShares(const ShareTable& table, const SharePools& pools,
                                              std::vector<SliverSpec>* desired) {
  std::map<std::string, ShareGrant> grants;
  if (table.shares.empty()) return grants;
  // Pools are what the guaranteed (rcap) part of every active sliver leaves.
  Int128 cpu_guaranteed = 0, net_guaranteed = 0, net_total = 0;
  for (const SliverSpec& s : *desired) {
    cpu_guaranteed += s.res.cpu_mcores;
    net_guaranteed += s.res.net_min_kbps;
  }
  for (const ShareEntry& e : table.shares) net_total += e.net_kbps;
  Int128 cpu_pool = std::max<Int128>(0, pools.cpu_mcores - cpu_guaranteed);
  Int128 link_pool = 0;
  if (pools.link_kbps > 0) {
    link_pool =
        std::max<Int128>(0, Int128{pools.link_kbps} - pools.default_min_kbps - net_guaranteed);
  }
  for (SliverSpec& s : *desired) {
    auto it =
        std::lower_bound(table.shares.begin(), table.shares.end(), s.name,
                         [](const ShareEntry& e, const std::string& n) { return e.slice < n; });
    if (it == table.shares.end() || it->slice != s.name) continue;
    ShareGrant g;
    g.cpu_weight = it->cpu_weight;
    g.net_kbps = it->net_kbps;
    g.cpu_mcores = static_cast<int64_t>(cpu_pool * it->cpu_weight / kShareCpuWeightTotal);
    g.net_rate_kbps =
        net_total > 0 ? static_cast<int64_t>(link_pool * it->net_kbps / net_total) : 0;
    s.res.cpu_mcores += g.cpu_mcores;
    s.res.net_min_kbps += g.net_rate_kbps;
    s.res.net_max_kbps = std::max(s.res.net_max_kbps, s.res.net_min_kbps);
    grants[s.name] = g;
  }
  return grants;
}

}  // namespace bourse::nodeguard
