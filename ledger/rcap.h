// rcaps: signed resource tickets (DESIGN §3), their chains, and chain verification.
//
// An rcap is exactly this JSON object (byte for byte, canonical JSON):
//   {"id":"rc_x","issuer":"ed25519:..","holder":"ed25519:..","node":"n1",
//    "not_after":1700086400,"not_before":1700000000,"parent":null,
//    "res":{"cpu_mcores":..,"disk_mib":..,"mem_mib":..,"net_max_kbps":..,"net_min_kbps":..},
//    "sig":"<b64url>","v":1}
// `sig` is Ed25519 by `issuer` over the canonical JSON of the object without `sig`.
// A chain is a JSON array of rcaps, root first.
//
//   BOURSE_ASSIGN_OR_RETURN(Rcap root, IssueRoot(site_key, {.id = "", .holder =
//   broker.public_key(),
//                           .node = "n1", .res = cap, .interval = week}));
//   BOURSE_ASSIGN_OR_RETURN(std::vector<Rcap> kids,
//                           Split(root, broker_key, {{.id = "", .holder = alice, .res = half,
//                           .interval = day1},
//                                                    {.id = "", .holder = bob, .res = half,
//                                                    .interval = day1}}));
//   Verdict<EffectiveLeaf> v = VerifyChain({root, kids[0]}, trusted_site_keys, "n1", now_s);
//   if (!v.ok()) puts(v.refusal().ToJson().dump().c_str());   // {"refused":"expired",...}
//
// Thread safety: pure functions and value types.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/interval.h"
#include "core/keys.h"
#include "core/resource_vector.h"
#include "core/status.h"

namespace bourse::ledger {

// Longest accepted id / node string (bytes).
inline constexpr size_t kMaxRcapIdLength = 128;
// Longest accepted chain (links).
inline constexpr size_t kMaxChainLength = 32;

struct Rcap {
  std::string id;
  core::PublicKey issuer;
  core::PublicKey holder;
  std::string node;
  core::ResourceVector res;
  core::Interval interval;            // JSON not_before / not_after (unix seconds)
  std::optional<std::string> parent;  // JSON null for a root
  core::Signature sig{};

  // The full object, `sig` included ("v":1 first in canonical order is not implied;
  // canonical JSON sorts the members).
  nlohmann::json ToJson() const;
  // The object without `sig`.
  nlohmann::json UnsignedJson() const;
  // UTF-8 canonical JSON of UnsignedJson(): the bytes `sig` covers.
  std::string SigningBytes() const;
  // Canonical JSON of ToJson().
  std::string Canonical() const;
  // OK iff `sig` verifies under `issuer`. Errors: unauthenticated.
  core::Status CheckSignature() const;

  // Strict decoding of untrusted input. Errors: invalid_argument naming the
  // field for unknown or missing members, wrong types, v != 1, floats,
  // integers outside [0, 2^53), bad keys or signature text, empty or too long
  // id/node/parent, not_before >= not_after, invalid resources.
  static core::Result<Rcap> FromJson(const nlohmann::json& j, std::string_view field = "rcap");
  static core::Result<Rcap> Parse(std::string_view text);
};

// Content equality (every member, the signature included).
bool operator==(const Rcap& a, const Rcap& b);

// DESIGN 4.1: only the holder of an rcap uses it (splits it, offers it,
// binds it): the request's signer must be the rcap's holder. Errors:
// permission_denied "<field>: rcap <id> is held by <holder>, not the caller".
core::Status RequireHolder(const Rcap& rcap, std::string_view caller, std::string_view field);

nlohmann::json ChainToJson(std::span<const Rcap> chain);
// A JSON array of 1..kMaxChainLength rcaps. Errors: invalid_argument
// ("chain[2].res.cpu_mcores: ...").
core::Result<std::vector<Rcap>> ChainFromJson(const nlohmann::json& j);
core::Result<std::vector<Rcap>> ParseChain(std::string_view text);

// ---- Issuing ------------------------------------------------------------

// What a root carries besides issuer, parent and signature. An empty id gets
// a fresh random one ("rc_...").
struct RootSpec {
  std::string id;
  core::PublicKey holder;
  std::string node;
  core::ResourceVector res;
  core::Interval interval;
};
// A root rcap signed by the site key. Errors: invalid_argument for invalid
// fields (bad resources, empty interval, empty/too long node or id).
core::Result<Rcap> IssueRoot(const core::PrivateKey& site_key, const RootSpec& spec);

// A child of some parent: node is inherited.
struct ChildSpec {
  std::string id;
  core::PublicKey holder;
  core::ResourceVector res;
  core::Interval interval;
};
// One child signed by the parent's holder. Errors: permission_denied when
// holder_key is not parent.holder; failed_precondition "exceeds_parent: ..."
// or "outside_interval: ..." when the child does not fit; invalid_argument for
// invalid fields.
core::Result<Rcap> Delegate(const Rcap& parent, const core::PrivateKey& holder_key,
                            const ChildSpec& child);
// Several children of one parent that together never exceed it at any
// instant (siblings that do not overlap in time may each take all of it).
// Errors: as Delegate, plus failed_precondition "oversubscribed: ..." when
// the children together exceed the parent at some instant.
core::Result<std::vector<Rcap>> Split(const Rcap& parent, const core::PrivateKey& holder_key,
                                      std::span<const ChildSpec> children);

// ---- Verification -------------------------------------------------------

// Why a chain is refused (DESIGN §7 names).
enum class RefusalReason {
  kBadSignature,
  kBrokenLink,
  kExceedsParent,
  kOutsideInterval,
  kExpired,
  kUntrustedRoot,
  kWrongNode,
  kDoubleRedemption,
  kOversubscribed,
  kMalformed,
  // Not a verdict on the chain: the node guard redeemed it but could not make
  // the kernel enforce it (docs/nodeguard.md); reported to the broker only.
  kEnforcementFailed,
};
// "bad_signature", "broken_link", ... exactly as DESIGN §7, and
// "enforcement_failed".
std::string_view RefusalReasonName(RefusalReason reason);
std::optional<RefusalReason> RefusalReasonFromName(std::string_view name);

struct Refusal {
  RefusalReason reason;
  std::string detail;
  // {"refused":"<reason>","detail":"..."}
  nlohmann::json ToJson() const;
  // failed_precondition "<reason>: <detail>" (permission_denied for bad_signature
  // and untrusted_root, invalid_argument for malformed).
  core::Status ToStatus() const;
};

// A value or the Refusal that explains why there is none.
template <typename T>
class [[nodiscard]] Verdict {
 public:
  Verdict(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Verdict(Refusal r) : v_(std::in_place_index<1>, std::move(r)) {}    // NOLINT
  bool ok() const { return v_.index() == 0; }
  const T& value() const& { return std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }
  const Refusal& refusal() const { return std::get<1>(v_); }

 private:
  std::variant<T, Refusal> v_;
};

enum class LeafState { kActive, kScheduled };
std::string_view LeafStateName(LeafState s);  // "active" / "scheduled"

// What a valid chain grants: the leaf (its node, res and interval) and whether
// it is in force now or starts later.
struct EffectiveLeaf {
  Rcap leaf;
  LeafState state;
  // {"id":..,"node":..,"res":{..},"not_before":..,"not_after":..,"state":"active"}
  nlohmann::json ToJson() const;
};

// Checks every rule of DESIGN §3 except the redemption ones (see
// redemption_book.h), in this order: chain non-empty and not too long
// (malformed); root's parent null (broken_link); root issuer trusted
// (untrusted_root); then per link, root first: signature (bad_signature),
// parent id and issuer == parent's holder (broken_link), node == parent's
// (wrong_node), res <= parent's on every component (exceeds_parent), interval
// within parent's (outside_interval); the chain's node == `node`
// (wrong_node); leaf not_after > now (expired). A leaf with not_before > now
// is returned as kScheduled.
Verdict<EffectiveLeaf> VerifyChain(std::span<const Rcap> chain,
                                   std::span<const core::PublicKey> trusted_roots,
                                   std::string_view node, int64_t now_seconds);
// Parses `chain_json` first; any parse error is refused as malformed.
Verdict<EffectiveLeaf> VerifyChainJson(std::string_view chain_json,
                                       std::span<const core::PublicKey> trusted_roots,
                                       std::string_view node, int64_t now_seconds);

// Link rules only (signatures, links, node, res, interval), no trust or time:
// what the ledger auditor checks on each issued child.
std::optional<Refusal> CheckLink(const Rcap& parent, const Rcap& child);

// ---- Trust files --------------------------------------------------------

// One "ed25519:<b64url>" per line; blank lines and lines starting with '#'
// (after leading spaces) ignored; surrounding spaces trimmed.
// Errors: invalid_argument "line N: ..." for anything else.
core::Result<std::vector<core::PublicKey>> ParseTrustText(std::string_view text);
// Errors: not_found / unavailable when unreadable, else as ParseTrustText.
core::Result<std::vector<core::PublicKey>> LoadTrustFile(const std::string& path);

}  // namespace bourse::ledger
