#include "ledger/rcap.h"

#include <fstream>
#include <sstream>

#include "core/canonical_json.h"
#include "core/encoding.h"
#include "core/json_codec.h"
#include "core/random.h"
#include "ledger/internal/rcap_rules.h"
#include "ledger/internal/timeline.h"

namespace bourse::ledger {

using core::Result;
using core::Status;

namespace {

Status CheckIdText(std::string_view s, const std::string& field) {
  if (s.empty()) return core::InvalidArgument(field + ": must not be empty");
  if (s.size() > kMaxRcapIdLength) {
    return core::InvalidArgument(field + ": longer than " + std::to_string(kMaxRcapIdLength) +
                                 " bytes");
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) {
      return core::InvalidArgument(field + ": only printable ASCII allowed");
    }
  }
  return Status::Ok();
}

std::string Sub(std::string_view field, std::string_view key) {
  return std::string(field) + "." + std::string(key);
}

Refusal Refuse(RefusalReason r, std::string detail) { return Refusal{r, std::move(detail)}; }

std::string FirstExceeding(const core::ResourceVector& child, const core::ResourceVector& parent) {
  struct F {
    const char* name;
    int64_t core::ResourceVector::*m;
  };
  static constexpr F kF[] = {{"cpu_mcores", &core::ResourceVector::cpu_mcores},
                             {"mem_mib", &core::ResourceVector::mem_mib},
                             {"disk_mib", &core::ResourceVector::disk_mib},
                             {"net_min_kbps", &core::ResourceVector::net_min_kbps},
                             {"net_max_kbps", &core::ResourceVector::net_max_kbps}};
  for (const F& f : kF) {
    if (child.*f.m > parent.*f.m) {
      return std::string(f.name) + " " + std::to_string(child.*f.m) + " > parent's " +
             std::to_string(parent.*f.m);
    }
  }
  return "resources exceed the parent's";
}

Status ValidateSpec(std::string_view id, std::string_view node, const core::ResourceVector& res,
                    const core::Interval& iv) {
  BOURSE_RETURN_IF_ERROR(CheckIdText(id, "rcap.id"));
  BOURSE_RETURN_IF_ERROR(CheckIdText(node, "rcap.node"));
  Status st = res.Validate();
  if (!st.ok()) return st.WithContext("rcap.res");
  st = iv.Validate();
  if (!st.ok()) return st.WithContext("rcap.interval");
  if (iv.not_after > core::kMaxSafeInteger)
    return core::InvalidArgument("rcap.not_after: too large");
  if (res.net_max_kbps > core::kMaxSafeInteger || res.cpu_mcores > core::kMaxSafeInteger ||
      res.mem_mib > core::kMaxSafeInteger || res.disk_mib > core::kMaxSafeInteger) {
    return core::InvalidArgument("rcap.res: values must be below 2^53");
  }
  return Status::Ok();
}

}  // namespace

nlohmann::json Rcap::UnsignedJson() const {
  return nlohmann::json{{"v", 1},
                        {"id", id},
                        {"issuer", issuer.ToText()},
                        {"holder", holder.ToText()},
                        {"node", node},
                        {"res", core::ResourceVectorToJson(res)},
                        {"not_before", interval.not_before},
                        {"not_after", interval.not_after},
                        {"parent", parent ? nlohmann::json(*parent) : nlohmann::json(nullptr)}};
}

nlohmann::json Rcap::ToJson() const {
  nlohmann::json j = UnsignedJson();
  j["sig"] = core::SignatureToText(sig);
  return j;
}

std::string Rcap::SigningBytes() const {
  auto s = core::CanonicalJson(UnsignedJson());
  return s.ok() ? *s : std::string();
}

std::string Rcap::Canonical() const {
  auto s = core::CanonicalJson(ToJson());
  return s.ok() ? *s : std::string();
}

Status Rcap::CheckSignature() const {
  std::string bytes = SigningBytes();
  if (!issuer.IsValidSignature(core::AsBytes(bytes), sig)) {
    return core::Unauthenticated("rcap " + id + ": signature does not verify");
  }
  return Status::Ok();
}

bool operator==(const Rcap& a, const Rcap& b) {
  return a.id == b.id && a.issuer == b.issuer && a.holder == b.holder && a.node == b.node &&
         a.res == b.res && a.interval == b.interval && a.parent == b.parent && a.sig == b.sig;
}

Result<Rcap> Rcap::FromJson(const nlohmann::json& j, std::string_view field) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(
      j, field,
      {"v", "id", "issuer", "holder", "node", "res", "not_before", "not_after", "parent", "sig"}));
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* v, core::RequireMember(j, field, "v"));
  if (!v->is_number_integer() || v->get<int64_t>() != 1) {
    return core::InvalidArgument(Sub(field, "v") + ": must be the integer 1");
  }
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* idj, core::RequireMember(j, field, "id"));
  BOURSE_ASSIGN_OR_RETURN(std::string id,
                          core::StringFromJson(*idj, Sub(field, "id"), kMaxRcapIdLength));
  BOURSE_RETURN_IF_ERROR(CheckIdText(id, Sub(field, "id")));

  auto key = [&](std::string_view k) -> Result<core::PublicKey> {
    BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* kj, core::RequireMember(j, field, k));
    BOURSE_ASSIGN_OR_RETURN(std::string text, core::StringFromJson(*kj, Sub(field, k), 128));
    auto pk = core::PublicKey::FromText(text);
    if (!pk.ok()) return core::InvalidArgument(Sub(field, k) + ": " + pk.status().message());
    return pk;
  };
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey issuer, key("issuer"));
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey holder, key("holder"));

  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* nodej, core::RequireMember(j, field, "node"));
  BOURSE_ASSIGN_OR_RETURN(std::string node,
                          core::StringFromJson(*nodej, Sub(field, "node"), kMaxRcapIdLength));
  BOURSE_RETURN_IF_ERROR(CheckIdText(node, Sub(field, "node")));

  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* resj, core::RequireMember(j, field, "res"));
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector res,
                          core::ResourceVectorFromJson(*resj, Sub(field, "res")));

  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* nbj, core::RequireMember(j, field, "not_before"));
  BOURSE_ASSIGN_OR_RETURN(
      int64_t nb, core::IntFromJson(*nbj, Sub(field, "not_before"), 0, core::kMaxSafeInteger));
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* naj, core::RequireMember(j, field, "not_after"));
  BOURSE_ASSIGN_OR_RETURN(
      int64_t na, core::IntFromJson(*naj, Sub(field, "not_after"), 0, core::kMaxSafeInteger));
  if (nb >= na) {
    return core::InvalidArgument(Sub(field, "not_after") + ": must be after not_before");
  }

  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* pj, core::RequireMember(j, field, "parent"));
  std::optional<std::string> parent;
  if (!pj->is_null()) {
    BOURSE_ASSIGN_OR_RETURN(std::string p,
                            core::StringFromJson(*pj, Sub(field, "parent"), kMaxRcapIdLength));
    BOURSE_RETURN_IF_ERROR(CheckIdText(p, Sub(field, "parent")));
    parent = std::move(p);
  }

  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* sj, core::RequireMember(j, field, "sig"));
  BOURSE_ASSIGN_OR_RETURN(std::string sigtext, core::StringFromJson(*sj, Sub(field, "sig"), 128));
  auto sig = core::SignatureFromText(sigtext);
  if (!sig.ok()) return core::InvalidArgument(Sub(field, "sig") + ": " + sig.status().message());

  return Rcap{.id = std::move(id),
              .issuer = std::move(issuer),
              .holder = std::move(holder),
              .node = std::move(node),
              .res = res,
              .interval = {.not_before = nb, .not_after = na},
              .parent = std::move(parent),
              .sig = *sig};
}

Result<Rcap> Rcap::Parse(std::string_view text) {
  auto j = core::ParseJson(text);
  if (!j.ok()) return j.status().WithContext("rcap");
  return FromJson(*j);
}

nlohmann::json ChainToJson(std::span<const Rcap> chain) {
  nlohmann::json arr = nlohmann::json::array();
  for (const Rcap& r : chain) arr.push_back(r.ToJson());
  return arr;
}

Result<std::vector<Rcap>> ChainFromJson(const nlohmann::json& j) {
  if (!j.is_array()) return core::InvalidArgument("chain: must be a JSON array, root first");
  if (j.empty()) return core::InvalidArgument("chain: must not be empty");
  if (j.size() > kMaxChainLength) {
    return core::InvalidArgument("chain: longer than " + std::to_string(kMaxChainLength) +
                                 " links");
  }
  std::vector<Rcap> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    BOURSE_ASSIGN_OR_RETURN(Rcap r, Rcap::FromJson(j[i], "chain[" + std::to_string(i) + "]"));
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<Rcap>> ParseChain(std::string_view text) {
  auto j = core::ParseJson(text);
  if (!j.ok()) return j.status().WithContext("chain");
  return ChainFromJson(*j);
}

// ---- Issuing ------------------------------------------------------------

Result<Rcap> IssueRoot(const core::PrivateKey& site_key, const RootSpec& spec) {
  std::string id = spec.id.empty() ? core::NewId("rc") : spec.id;
  BOURSE_RETURN_IF_ERROR(ValidateSpec(id, spec.node, spec.res, spec.interval));
  Rcap r{.id = std::move(id),
         .issuer = site_key.public_key(),
         .holder = spec.holder,
         .node = spec.node,
         .res = spec.res,
         .interval = spec.interval,
         .parent = std::nullopt,
         .sig = {}};
  r.sig = site_key.Sign(r.SigningBytes());
  return r;
}

Result<Rcap> Delegate(const Rcap& parent, const core::PrivateKey& holder_key,
                      const ChildSpec& child) {
  if (!(holder_key.public_key() == parent.holder)) {
    return core::PermissionDenied("rcap " + parent.id + ": only its holder " +
                                  parent.holder.ToText() + " may delegate it");
  }
  std::string id = child.id.empty() ? core::NewId("rc") : child.id;
  BOURSE_RETURN_IF_ERROR(ValidateSpec(id, parent.node, child.res, child.interval));
  if (id == parent.id)
    return core::InvalidArgument("rcap.id: a child must not reuse its parent's id");
  if (!child.res.FitsWithin(parent.res)) {
    return core::FailedPrecondition("exceeds_parent: " + FirstExceeding(child.res, parent.res));
  }
  if (!child.interval.IsSubsetOf(parent.interval)) {
    return core::FailedPrecondition("outside_interval: " + child.interval.ToString() +
                                    " is not within the parent's " + parent.interval.ToString());
  }
  Rcap r{.id = std::move(id),
         .issuer = parent.holder,
         .holder = child.holder,
         .node = parent.node,
         .res = child.res,
         .interval = child.interval,
         .parent = parent.id,
         .sig = {}};
  r.sig = holder_key.Sign(r.SigningBytes());
  return r;
}

Result<std::vector<Rcap>> Split(const Rcap& parent, const core::PrivateKey& holder_key,
                                std::span<const ChildSpec> children) {
  if (children.empty()) return core::InvalidArgument("split: no children");
  internal::Timeline use;
  std::vector<Rcap> out;
  out.reserve(children.size());
  for (size_t i = 0; i < children.size(); ++i) {
    auto c = Delegate(parent, holder_key, children[i]);
    if (!c.ok()) return c.status().WithContext("split: children[" + std::to_string(i) + "]");
    if (auto bad = use.CheckAdd(c->interval, c->res, parent.res)) {
      return core::FailedPrecondition("oversubscribed: split of " + parent.id + ": children[" +
                                      std::to_string(i) + "]: " + *bad);
    }
    for (const Rcap& prev : out) {
      if (prev.id == c->id) return core::InvalidArgument("split: duplicate child id " + prev.id);
    }
    use.Add(c->interval, c->res);
    out.push_back(std::move(*c));
  }
  return out;
}

// ---- Verification -------------------------------------------------------

std::string_view RefusalReasonName(RefusalReason reason) {
  switch (reason) {
    case RefusalReason::kBadSignature:
      return "bad_signature";
    case RefusalReason::kBrokenLink:
      return "broken_link";
    case RefusalReason::kExceedsParent:
      return "exceeds_parent";
    case RefusalReason::kOutsideInterval:
      return "outside_interval";
    case RefusalReason::kExpired:
      return "expired";
    case RefusalReason::kUntrustedRoot:
      return "untrusted_root";
    case RefusalReason::kWrongNode:
      return "wrong_node";
    case RefusalReason::kDoubleRedemption:
      return "double_redemption";
    case RefusalReason::kOversubscribed:
      return "oversubscribed";
    case RefusalReason::kMalformed:
      return "malformed";
    case RefusalReason::kEnforcementFailed:
      return "enforcement_failed";
  }
  return "malformed";
}

std::optional<RefusalReason> RefusalReasonFromName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(RefusalReason::kEnforcementFailed); ++i) {
    auto r = static_cast<RefusalReason>(i);
    if (RefusalReasonName(r) == name) return r;
  }
  return std::nullopt;
}

nlohmann::json Refusal::ToJson() const {
  return nlohmann::json{{"refused", std::string(RefusalReasonName(reason))}, {"detail", detail}};
}

Status Refusal::ToStatus() const {
  std::string msg = std::string(RefusalReasonName(reason)) + ": " + detail;
  switch (reason) {
    case RefusalReason::kBadSignature:
    case RefusalReason::kUntrustedRoot:
      return core::PermissionDenied(std::move(msg));
    case RefusalReason::kMalformed:
      return core::InvalidArgument(std::move(msg));
    default:
      return core::FailedPrecondition(std::move(msg));
  }
}

std::string_view LeafStateName(LeafState s) {
  return s == LeafState::kActive ? "active" : "scheduled";
}

nlohmann::json EffectiveLeaf::ToJson() const {
  return nlohmann::json{{"id", leaf.id},
                        {"node", leaf.node},
                        {"holder", leaf.holder.ToText()},
                        {"res", core::ResourceVectorToJson(leaf.res)},
                        {"not_before", leaf.interval.not_before},
                        {"not_after", leaf.interval.not_after},
                        {"state", std::string(LeafStateName(state))}};
}

std::optional<Refusal> CheckLink(const Rcap& parent, const Rcap& child) {
  return internal::CheckLinkRules(parent, child, true);
}

std::optional<Refusal> internal::CheckLinkRules(const Rcap& parent, const Rcap& child,
                                                bool check_signature) {
  if (check_signature && !child.CheckSignature().ok()) {
    return Refuse(RefusalReason::kBadSignature,
                  "rcap " + child.id + ": signature by its issuer does not verify");
  }
  if (!child.parent || *child.parent != parent.id) {
    return Refuse(RefusalReason::kBrokenLink,
                  "rcap " + child.id + ": parent is " +
                      (child.parent ? "\"" + *child.parent + "\"" : "null") + ", expected \"" +
                      parent.id + "\"");
  }
  if (!(child.issuer == parent.holder)) {
    return Refuse(RefusalReason::kBrokenLink,
                  "rcap " + child.id + ": issuer is not the holder of its parent " + parent.id);
  }
  if (child.node != parent.node) {
    return Refuse(RefusalReason::kWrongNode, "rcap " + child.id + ": node \"" + child.node +
                                                 "\" differs from its parent's \"" + parent.node +
                                                 "\"");
  }
  if (!child.res.FitsWithin(parent.res)) {
    return Refuse(RefusalReason::kExceedsParent,
                  "rcap " + child.id + ": " + FirstExceeding(child.res, parent.res));
  }
  if (!child.interval.IsSubsetOf(parent.interval)) {
    return Refuse(RefusalReason::kOutsideInterval,
                  "rcap " + child.id + ": " + child.interval.ToString() +
                      " is not within its parent's " + parent.interval.ToString());
  }
  return std::nullopt;
}

Verdict<EffectiveLeaf> VerifyChain(std::span<const Rcap> chain,
                                   std::span<const core::PublicKey> trusted_roots,
                                   std::string_view node, int64_t now_seconds) {
  if (chain.empty()) return Refuse(RefusalReason::kMalformed, "chain: empty");
  if (chain.size() > kMaxChainLength) {
    return Refuse(RefusalReason::kMalformed,
                  "chain: longer than " + std::to_string(kMaxChainLength) + " links");
  }
  const Rcap& root = chain.front();
  if (root.parent) {
    return Refuse(
        RefusalReason::kBrokenLink,
        "rcap " + root.id + ": the root's parent must be null, is \"" + *root.parent + "\"");
  }
  bool trusted = false;
  for (const core::PublicKey& k : trusted_roots) {
    if (k == root.issuer) {
      trusted = true;
      break;
    }
  }
  if (!trusted) {
    return Refuse(RefusalReason::kUntrustedRoot,
                  "rcap " + root.id + ": issuer " + root.issuer.ToText() + " is not trusted");
  }
  if (!root.CheckSignature().ok()) {
    return Refuse(RefusalReason::kBadSignature, "rcap " + root.id + ": signature does not verify");
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (auto bad = CheckLink(chain[i - 1], chain[i])) return *bad;
  }
  if (root.node != node) {
    return Refuse(RefusalReason::kWrongNode, "chain is for node \"" + root.node +
                                                 "\", this node is \"" + std::string(node) + "\"");
  }
  const Rcap& leaf = chain.back();
  if (leaf.interval.not_after <= now_seconds) {
    return Refuse(RefusalReason::kExpired, "rcap " + leaf.id + ": expired at " +
                                               std::to_string(leaf.interval.not_after) + " (now " +
                                               std::to_string(now_seconds) + ")");
  }
  LeafState state =
      leaf.interval.not_before > now_seconds ? LeafState::kScheduled : LeafState::kActive;
  return EffectiveLeaf{.leaf = leaf, .state = state};
}

Verdict<EffectiveLeaf> VerifyChainJson(std::string_view chain_json,
                                       std::span<const core::PublicKey> trusted_roots,
                                       std::string_view node, int64_t now_seconds) {
  auto chain = ParseChain(chain_json);
  if (!chain.ok()) return Refuse(RefusalReason::kMalformed, chain.status().message());
  return VerifyChain(*chain, trusted_roots, node, now_seconds);
}

// ---- Trust files --------------------------------------------------------

Result<std::vector<core::PublicKey>> ParseTrustText(std::string_view text) {
  std::vector<core::PublicKey> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#') continue;
    auto k = core::PublicKey::FromText(line);
    if (!k.ok()) {
      return core::InvalidArgument("trust file line " + std::to_string(line_no) + ": " +
                                   k.status().message());
    }
    out.push_back(*k);
  }
  return out;
}

Result<std::vector<core::PublicKey>> LoadTrustFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::NotFound("trust file " + path + ": cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return core::Unavailable("trust file " + path + ": read error");
  auto keys = ParseTrustText(ss.str());
  if (!keys.ok()) return keys.status().WithContext(path);
  return keys;
}

core::Status RequireHolder(const Rcap& rcap, std::string_view caller, std::string_view field) {
  if (rcap.holder.ToText() == caller) return core::Status::Ok();
  return core::PermissionDenied(
      std::string(field) + ": rcap " + rcap.id + " is held by " + rcap.holder.ToText() +
      ", not the caller: only an rcap's holder splits, offers or binds it");
}

}  // namespace bourse::ledger
