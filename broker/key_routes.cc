// Key rotation: a node's key (POST /v1/nodes/{node}/key) and a site's PI key
// (POST /v1/sites/{site}/pi). The rule is ledger/key_changes.h, the same code
// `bourse ledger verify` replays; here it runs over the broker's tables.
// The key a change replaces is kept in b_retired_keys: it is never
// registered again, and a site's former PI keys still verify the roots they
// signed before the change (bindings of chains already granted).
#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/internal/sql.h"
#include "broker/internal/util.h"
#include "core/json_codec.h"
#include "ledger/accounts.h"
#include "ledger/key_changes.h"

namespace bourse::broker {

using internal::Stmt;
using nlohmann::json;

namespace {

// The rule's view of the broker's tables, inside one Mutate.
class BrokerKeyView final : public ledger::KeyView {
 public:
  explicit BrokerKeyView(ledger::Txn& txn) : txn_(txn) {}

  core::Result<bool> IsAdmin(const std::string& key) override {
    auto k = core::PublicKey::FromText(key);
    if (!k.ok()) return false;
    return ledger::Accounts::IsAdmin(txn_.db(), *k);
  }
  core::Result<std::optional<std::string>> SitePi(const std::string& site) override {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, txn_.Prepare("SELECT pi FROM b_sites WHERE name=?"));
    s.Bind(1, site);
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(s.Text(0));
  }
  core::Result<std::optional<NodeKey>> Node(const std::string& node) override {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, txn_.Prepare("SELECT site,key FROM b_nodes WHERE id=?"));
    s.Bind(1, node);
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<NodeKey>();
    return std::optional<NodeKey>(NodeKey{s.Text(0), s.Text(1)});
  }
  core::Result<bool> KeyUsed(const std::string& key) override {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, txn_.Prepare("SELECT 1 FROM b_principals WHERE key=? UNION ALL "
                                                 "SELECT 1 FROM b_retired_keys WHERE key=?"));
    s.Bind(1, key);
    s.Bind(2, key);
    return s.Step();
  }
  core::Status PutNodeKey(const std::string& node, const std::string& old_key,
                          const std::string& key) override {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, txn_.Prepare("UPDATE b_nodes SET key=? WHERE id=?"));
    s.Bind(1, key);
    s.Bind(2, node);
    BOURSE_RETURN_IF_ERROR(s.Run());
    return Retire("node", node, old_key, key);
  }
  core::Status PutSitePi(const std::string& site, const std::string& old_pi,
                         const std::string& pi) override {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, txn_.Prepare("UPDATE b_sites SET pi=? WHERE name=?"));
    s.Bind(1, pi);
    s.Bind(2, site);
    BOURSE_RETURN_IF_ERROR(s.Run());
    return Retire("site", site, old_pi, pi);
  }

 private:
  // The principal keeps its name, kind and site under the new key; the old
  // key is retired (the seq is the change's entry, appended next).
  core::Status Retire(const char* kind, const std::string& owner, const std::string& old_key,
                      const std::string& key) {
    BOURSE_ASSIGN_OR_RETURN(Stmt p, txn_.Prepare("UPDATE b_principals SET key=? WHERE key=?"));
    p.Bind(1, key);
    p.Bind(2, old_key);
    BOURSE_RETURN_IF_ERROR(p.Run());
    BOURSE_ASSIGN_OR_RETURN(
        Stmt r, txn_.Prepare("INSERT INTO b_retired_keys(key,kind,owner,seq,retired_ms) "
                             "VALUES(?,?,?,?,?)"));
    r.Bind(1, old_key);
    r.Bind(2, kind);
    r.Bind(3, owner);
    r.Bind(4, static_cast<int64_t>(txn_.next_seq()));
    r.Bind(5, txn_.now_millis());
    return r.Run();
  }

  ledger::Txn& txn_;
};

json KeyChangeSchema(const char* owner, const char* key) {
  using namespace internal;
  // key: from now on; old: the key it replaced (retired, never registered
  // again); by: the signer, the site's PI or an admin.
  return SObj({{owner, SStr()}, {key, SKey()}, {"old", SKey()}, {"by", SKey()}});
}

}  // namespace

core::Result<ApiResponse> Broker::ChangeKey(const ApiRequest& q, bool node) {
  const char* member = node ? "key" : "pi";
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(q.json, "", {member}));
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey key, core::KeyField(q.json, member));
  const std::string owner = q.Param(node ? "node" : "site");
  ledger::KeyChange change;
  BOURSE_RETURN_IF_ERROR(
      Mutate([&](ledger::Txn& txn) -> core::Status {
        BrokerKeyView view(txn);
        BOURSE_ASSIGN_OR_RETURN(
            change, node ? ledger::ApplyNodeKeyChange(view, owner, key.ToText(), q.caller_text)
                         : ledger::ApplySitePiChange(view, owner, key.ToText(), q.caller_text));
        return txn.Append(change.type, change.ToEntryBody()).status();
      }).status());
  ForgetPrincipal(change.old);
  return JsonResponse(200, change.ToEntryBody());
}

void Broker::RegisterKeyRoutes() {
  using namespace internal;
  router_.Add({.method = "POST",
               .pattern = "/v1/nodes/{node}/key",
               .auth = Auth::kSigned,
               .signer_kinds = {"admin", "site"},
               .summary =
                   "Rotate a node's key (its site's PI or an admin; never the node itself): from "
                   "now on the node-guard routes accept only the new key (node_key_changed)",
               .tag = "nodes",
               .request_schema = SObj({{"key", SKey()}}, {"key"}),
               .response_schema = KeyChangeSchema("node", "key"),
               .handler = [this](const ApiRequest& q) { return ChangeKey(q, true); }});
  router_.Add({.method = "POST",
               .pattern = "/v1/sites/{site}/pi",
               .auth = Auth::kSigned,
               .signer_kinds = {"admin", "site"},
               .summary =
                   "Rotate a site's PI key (the current PI or an admin): new grants must be signed "
                   "by the new key; roots signed before stay valid until they end "
                   "(site_pi_changed)",
               .tag = "sites",
               .request_schema = SObj({{"pi", SKey()}}, {"pi"}),
               .response_schema = KeyChangeSchema("site", "pi"),
               .handler = [this](const ApiRequest& q) { return ChangeKey(q, false); }});
}

}  // namespace bourse::broker
