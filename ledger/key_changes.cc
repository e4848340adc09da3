#include "ledger/key_changes.h"

#include "core/json_codec.h"
#include "core/keys.h"

namespace bourse::ledger {

using core::Result;
using core::Status;
using nlohmann::json;

namespace {

// `text` parsed and written back, so a key compares by its one text form.
Result<std::string> NormalKey(const std::string& text, std::string_view field) {
  auto k = core::PublicKey::FromText(text);
  if (!k.ok()) return core::InvalidArgument(std::string(field) + ": " + k.status().message());
  return k->ToText();
}

// `key` may become a principal's key: not the current one, never used.
Status CheckNewKey(KeyView& view, const std::string& key, const std::string& current,
                   const std::string& whose) {
  if (key == current) {
    return core::AlreadyExists(whose + " already has key " + key + "; nothing to change");
  }
  BOURSE_ASSIGN_OR_RETURN(bool used, view.KeyUsed(key));
  if (used) {
    return core::AlreadyExists("key " + key +
                               " is (or was) the key of a principal, node or site; a new key "
                               "must be one never registered");
  }
  return Status::Ok();
}

// `by` is an admin or site `site`'s current PI key.
Status CheckAdminOrPi(KeyView& view, const std::string& by, const std::string& site,
                      const std::optional<std::string>& pi, const std::string& what) {
  if (pi && by == *pi) return Status::Ok();
  BOURSE_ASSIGN_OR_RETURN(bool admin, view.IsAdmin(by));
  if (admin) return Status::Ok();
  return core::PermissionDenied("only site " + site + "'s PI or an admin changes " + what +
                                "; key " + by + " is neither");
}

}  // namespace

json KeyChange::ToEntryBody() const {
  if (type == kEntryNodeKeyChanged) {
    return {{"node", owner}, {"key", key}, {"old", old}, {"by", by}};
  }
  return {{"site", owner}, {"pi", key}, {"old", old}, {"by", by}};
}

Result<KeyChange> ApplyNodeKeyChange(KeyView& view, const std::string& node,
                                     const std::string& key_text, const std::string& by) {
  BOURSE_ASSIGN_OR_RETURN(std::string key, NormalKey(key_text, "key"));
  BOURSE_ASSIGN_OR_RETURN(std::optional<KeyView::NodeKey> n, view.Node(node));
  if (!n) return core::NotFound("node " + node + " does not exist");
  if (by == n->key) {
    return core::PermissionDenied("node " + node +
                                  "'s own key does not change its key (an exposed key must not "
                                  "choose its successor); its site's PI or an admin does");
  }
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> pi, view.SitePi(n->site));
  BOURSE_RETURN_IF_ERROR(CheckAdminOrPi(view, by, n->site, pi, "node " + node + "'s key"));
  BOURSE_RETURN_IF_ERROR(CheckNewKey(view, key, n->key, "node " + node));
  BOURSE_RETURN_IF_ERROR(view.PutNodeKey(node, n->key, key));
  return KeyChange{kEntryNodeKeyChanged, node, key, n->key, by};
}

Result<KeyChange> ApplySitePiChange(KeyView& view, const std::string& site,
                                    const std::string& pi_text, const std::string& by) {
  BOURSE_ASSIGN_OR_RETURN(std::string pi, NormalKey(pi_text, "pi"));
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> old, view.SitePi(site));
  if (!old) return core::NotFound("site " + site + " does not exist");
  BOURSE_RETURN_IF_ERROR(CheckAdminOrPi(view, by, site, old, "its PI key"));
  BOURSE_RETURN_IF_ERROR(CheckNewKey(view, pi, *old, "site " + site));
  BOURSE_RETURN_IF_ERROR(view.PutSitePi(site, *old, pi));
  return KeyChange{kEntrySitePiChanged, site, pi, *old, by};
}

Status ApplyKeyChangeEntry(KeyView& view, std::string_view type, const json& body) {
  const bool node = type == kEntryNodeKeyChanged;
  if (!node && type != kEntrySitePiChanged) {
    return core::InvalidArgument("not a key change entry: " + std::string(type));
  }
  const char* owner_m = node ? "node" : "site";
  const char* key_m = node ? "key" : "pi";
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "body", {owner_m, key_m, "old", "by"}));
  std::string fields[4];
  const char* names[4] = {owner_m, key_m, "old", "by"};
  for (int i = 0; i < 4; ++i) {
    BOURSE_ASSIGN_OR_RETURN(const json* m, core::RequireMember(body, "body", names[i]));
    BOURSE_ASSIGN_OR_RETURN(fields[i],
                            core::StringFromJson(*m, std::string("body.") + names[i], 256));
  }
  const std::string& owner = fields[0];
  const std::string& old = fields[2];
  std::optional<std::string> current;
  if (node) {
    BOURSE_ASSIGN_OR_RETURN(std::optional<KeyView::NodeKey> n, view.Node(owner));
    if (n) current = n->key;
  } else {
    BOURSE_ASSIGN_OR_RETURN(current, view.SitePi(owner));
  }
  if (current && *current != old) {
    return core::FailedPrecondition("body.old: " + std::string(owner_m) + " " + owner +
                                    "'s key at this point is " + *current + ", not " + old);
  }
  auto change = node ? ApplyNodeKeyChange(view, owner, fields[1], fields[3])
                     : ApplySitePiChange(view, owner, fields[1], fields[3]);
  return change.status();
}

}  // namespace bourse::ledger
