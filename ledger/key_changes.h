// Key changes of nodes and sites: the rule, written once and applied both by
// the broker (over its tables, inside the Mutate that appends the entry) and
// by the ledger auditor (in memory, on replay), so what the broker allows and
// what `bourse ledger verify` accepts cannot drift apart (as account_rules
// and capacity_rules do for credits and capacity).
//
//   BrokerKeyView view(txn);  // the caller's KeyView
//   BOURSE_ASSIGN_OR_RETURN(KeyChange c,
//                           ApplyNodeKeyChange(view, "n1", new_key_text, caller_text));
//   BOURSE_RETURN_IF_ERROR(txn.Append(kEntryNodeKeyChanged, c.ToEntryBody()).status());
//
// Entry types and bodies:
//   node_key_changed {"by":K,"key":NEW,"node":N,"old":OLD}  N's key is NEW from here on
//   site_pi_changed  {"by":K,"old":OLD,"pi":NEW,"site":S}   S's PI key is NEW from here on
// The rule (both):
//   - the node or site exists (not_found);
//   - `by` is an admin or the current PI key of the site (the node's site
//     for a node) (permission_denied); a node's own key never changes its
//     key, so an exposed node key cannot be rotated to the thief's key;
//   - the new key is not the current one (already_exists);
//   - the new key is no principal's, node's or site's key, now or before
//     (already_exists): a key names one principal, once;
//   - on replay, `old` is the key the log says is current.
// Thread safety: stateless functions over the caller's view.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace bourse::ledger {

inline constexpr std::string_view kEntryNodeKeyChanged = "node_key_changed";
inline constexpr std::string_view kEntrySitePiChanged = "site_pi_changed";

// What a rule needs to know, and the two writes a change makes.
class KeyView {
 public:
  virtual ~KeyView() = default;
  virtual core::Result<bool> IsAdmin(const std::string& key) = 0;
  // The current PI key of `site`; nullopt when the site does not exist.
  virtual core::Result<std::optional<std::string>> SitePi(const std::string& site) = 0;
  struct NodeKey {
    std::string site, key;
  };
  // The node's site and current key; nullopt when the node does not exist.
  virtual core::Result<std::optional<NodeKey>> Node(const std::string& node) = 0;
  // Whether `key` is or was the key of any principal, node or site PI.
  virtual core::Result<bool> KeyUsed(const std::string& key) = 0;
  virtual core::Status PutNodeKey(const std::string& node, const std::string& old_key,
                                  const std::string& key) = 0;
  virtual core::Status PutSitePi(const std::string& site, const std::string& old_pi,
                                 const std::string& pi) = 0;
};

// One key change, as its entry records it.
struct KeyChange {
  std::string_view type;  // kEntryNodeKeyChanged or kEntrySitePiChanged
  std::string owner;      // the node id or the site name
  std::string key, old, by;
  nlohmann::json ToEntryBody() const;
};

// Changes node `node`'s key to `key` (ed25519 text) by `by`. Errors as above;
// invalid_argument "key: ..." for a malformed key. Nothing is written on error.
core::Result<KeyChange> ApplyNodeKeyChange(KeyView& view, const std::string& node,
                                           const std::string& key, const std::string& by);
// Changes site `site`'s PI key to `pi` by `by`. Errors as above;
// invalid_argument "pi: ..." for a malformed key.
core::Result<KeyChange> ApplySitePiChange(KeyView& view, const std::string& site,
                                          const std::string& pi, const std::string& by);

// Replays a node_key_changed or site_pi_changed entry: its body is checked
// strictly (invalid_argument naming the member), `old` must be the current
// key (failed_precondition), then the rule above applies.
core::Status ApplyKeyChangeEntry(KeyView& view, std::string_view type, const nlohmann::json& body);

}  // namespace bourse::ledger
