#include "ledger/entry.h"

#include "core/canonical_json.h"
#include "core/encoding.h"
#include "core/json_codec.h"

namespace bourse::ledger {

using core::Result;
using core::Status;

Status ValidateEntryType(std::string_view type) {
  if (type.empty() || type.size() > 64) {
    return core::InvalidArgument("entry.type: must be 1 to 64 characters");
  }
  for (char c : type) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) {
      return core::InvalidArgument("entry.type: only [a-z0-9_.] allowed in \"" + std::string(type) +
                                   "\"");
    }
  }
  return Status::Ok();
}

nlohmann::json EntryToJson(const Entry& e) {
  return nlohmann::json{
      {"seq", e.seq}, {"ts", e.ts}, {"type", e.type}, {"body", e.body}, {"prev", e.prev}};
}

Result<std::string> CanonicalEntry(const Entry& e) {
  BOURSE_RETURN_IF_ERROR(ValidateEntryType(e.type));
  if (!e.body.is_object()) return core::InvalidArgument("entry.body: must be a JSON object");
  if (!e.prev.empty() && !HashFromHex(e.prev).ok()) {
    return core::InvalidArgument("entry.prev: must be \"\" or 64 lowercase hex digits");
  }
  // Members in canonical order: body, prev, seq, ts, type.
  std::string out = "{\"body\":";
  Status st = core::AppendCanonicalJson(e.body, &out);
  if (!st.ok()) return st.WithContext("entry.body");
  out += ",\"prev\":\"";
  out += e.prev;  // "" or lowercase hex: no escaping needed (validated by writers/parsers)
  out += "\",\"seq\":";
  out += std::to_string(e.seq);
  out += ",\"ts\":";
  out += std::to_string(e.ts);
  out += ",\"type\":\"";
  out += e.type;
  out += "\"}";
  return out;
}

Result<Entry> EntryFromJson(nlohmann::json j) {
  BOURSE_RETURN_IF_ERROR(
      core::CheckObjectFields(j, "entry", {"seq", "ts", "type", "body", "prev"}));
  Entry e;
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* seq, core::RequireMember(j, "entry", "seq"));
  BOURSE_ASSIGN_OR_RETURN(int64_t s,
                          core::IntFromJson(*seq, "entry.seq", 0, core::kMaxSafeInteger));
  e.seq = static_cast<uint64_t>(s);
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* ts, core::RequireMember(j, "entry", "ts"));
  BOURSE_ASSIGN_OR_RETURN(e.ts, core::IntFromJson(*ts, "entry.ts", 0, core::kMaxSafeInteger));
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* type, core::RequireMember(j, "entry", "type"));
  BOURSE_ASSIGN_OR_RETURN(e.type, core::StringFromJson(*type, "entry.type", 64));
  BOURSE_RETURN_IF_ERROR(ValidateEntryType(e.type));
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* body, core::RequireMember(j, "entry", "body"));
  if (!body->is_object()) return core::InvalidArgument("entry.body: must be a JSON object");
  e.body = std::move(*j.find("body"));  // j is ours (by value): move, not copy
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* prev, core::RequireMember(j, "entry", "prev"));
  BOURSE_ASSIGN_OR_RETURN(e.prev, core::StringFromJson(*prev, "entry.prev", 64));
  if (!e.prev.empty()) {
    auto h = HashFromHex(e.prev);
    if (!h.ok()) return h.status().WithContext("entry.prev");
  }
  if (e.seq == 0 && !e.prev.empty())
    return core::InvalidArgument("entry.prev: must be \"\" at seq 0");
  if (e.seq > 0 && e.prev.empty()) return core::InvalidArgument("entry.prev: missing hash");
  return e;
}

Result<Entry> ParseEntry(std::string_view text) {
  BOURSE_ASSIGN_OR_RETURN(nlohmann::json j, core::ParseJson(text));
  return EntryFromJson(std::move(j));
}

std::string TreeHeadSigningBytes(const TreeHead& head) {
  return "{\"root\":\"" + HashToHex(head.root) + "\",\"size\":" + std::to_string(head.size) +
         ",\"ts\":" + std::to_string(head.ts) + "}";
}

TreeHead SignTreeHead(uint64_t size, const Hash& root, int64_t ts_millis,
                      const core::PrivateKey& key) {
  TreeHead h;
  h.size = size;
  h.root = root;
  h.ts = ts_millis;
  h.sig = key.Sign(TreeHeadSigningBytes(h));
  return h;
}

Status VerifyTreeHead(const TreeHead& head, const core::PublicKey& key) {
  if (!key.IsValidSignature(core::AsBytes(TreeHeadSigningBytes(head)), head.sig)) {
    return core::Unauthenticated("tree head at size " + std::to_string(head.size) +
                                 ": signature does not verify");
  }
  return Status::Ok();
}

nlohmann::json TreeHeadToJson(const TreeHead& head) {
  return nlohmann::json{{"size", head.size},
                        {"root", HashToHex(head.root)},
                        {"ts", head.ts},
                        {"sig", core::SignatureToText(head.sig)}};
}

Result<TreeHead> TreeHeadFromJson(const nlohmann::json& j) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(j, "head", {"size", "root", "ts", "sig"}));
  TreeHead h;
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* size, core::RequireMember(j, "head", "size"));
  BOURSE_ASSIGN_OR_RETURN(int64_t s,
                          core::IntFromJson(*size, "head.size", 0, core::kMaxSafeInteger));
  h.size = static_cast<uint64_t>(s);
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* root, core::RequireMember(j, "head", "root"));
  BOURSE_ASSIGN_OR_RETURN(std::string r, core::StringFromJson(*root, "head.root", 64));
  auto rh = HashFromHex(r);
  if (!rh.ok()) return rh.status().WithContext("head.root");
  h.root = *rh;
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* ts, core::RequireMember(j, "head", "ts"));
  BOURSE_ASSIGN_OR_RETURN(h.ts, core::IntFromJson(*ts, "head.ts", 0, core::kMaxSafeInteger));
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* sig, core::RequireMember(j, "head", "sig"));
  BOURSE_ASSIGN_OR_RETURN(std::string st, core::StringFromJson(*sig, "head.sig", 128));
  auto sg = core::SignatureFromText(st);
  if (!sg.ok()) return sg.status().WithContext("head.sig");
  h.sig = *sg;
  return h;
}

}  // namespace bourse::ledger
