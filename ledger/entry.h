// Ledger entries and signed tree heads (DESIGN §4 and §7).
//
// An entry is exactly the JSON object whose canonical JSON is the Merkle leaf:
//   {"body":{...},"prev":"<hex>","seq":17,"ts":1700000000123,"type":"transfer"}
// seq is the 0-based leaf index; ts is Unix milliseconds (never decreasing
// along the log); prev is the lowercase hex of the previous entry's leaf hash
// (SHA-256(0x00 || canonical previous entry)) and "" for seq 0; type is
// 1..64 chars of [a-z0-9_.]; body is a JSON object. Leaf hash =
// SHA-256(0x00 || canonical entry).
//
// A tree head is {"root":"<hex>","sig":"<b64url>","size":N,"ts":<unix ms>},
// sig = Ed25519 by the ledger key over the canonical JSON of the head without
// `sig` ({"root":..,"size":..,"ts":..}).
//
//   BOURSE_ASSIGN_OR_RETURN(Entry e, ParseEntry(text));
//   Hash leaf = LeafHash(*CanonicalEntry(e));
//   TreeHead head = SignTreeHead(size, root, ts_ms, ledger_key);
//   BOURSE_RETURN_IF_ERROR(VerifyTreeHead(head, ledger_pub));
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/keys.h"
#include "core/status.h"
#include "ledger/merkle.h"

namespace bourse::ledger {

struct Entry {
  uint64_t seq = 0;
  int64_t ts = 0;
  std::string type;
  nlohmann::json body = nlohmann::json::object();
  std::string prev;
};

// Errors: invalid_argument when the type is not [a-z0-9_.]{1,64}.
core::Status ValidateEntryType(std::string_view type);

nlohmann::json EntryToJson(const Entry& e);
// Errors: invalid_argument when the body is not representable canonically
// (floats, huge integers, invalid UTF-8) or the type is invalid.
core::Result<std::string> CanonicalEntry(const Entry& e);
// Strict: exactly the five members with the right types; seq and ts integers
// in [0, 2^53); prev "" or 64 lowercase hex digits. Errors: invalid_argument
// naming the field ("entry.prev: ...").
core::Result<Entry> EntryFromJson(nlohmann::json j);  // takes j by value: pass std::move to avoid a copy
// Parses text strictly (ParseJson: no floats, no duplicate keys) and decodes.
core::Result<Entry> ParseEntry(std::string_view text);

struct TreeHead {
  uint64_t size = 0;
  Hash root{};
  int64_t ts = 0;  // unix ms
  core::Signature sig{};

  friend bool operator==(const TreeHead&, const TreeHead&) = default;
};

// Canonical JSON of {"root","size","ts"}: the bytes `sig` covers.
std::string TreeHeadSigningBytes(const TreeHead& head);
TreeHead SignTreeHead(uint64_t size, const Hash& root, int64_t ts_millis,
                      const core::PrivateKey& key);
// Errors: unauthenticated "tree head at size N: signature does not verify".
core::Status VerifyTreeHead(const TreeHead& head, const core::PublicKey& key);
// {"size":N,"root":"<hex>","ts":T,"sig":"<b64url>"} (DESIGN §7).
nlohmann::json TreeHeadToJson(const TreeHead& head);
// Strict. Errors: invalid_argument naming the field.
core::Result<TreeHead> TreeHeadFromJson(const nlohmann::json& j);

}  // namespace bourse::ledger
