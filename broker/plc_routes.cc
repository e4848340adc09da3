// The PLC operations: principals, sites, nodes, slices, bindings.
#include <algorithm>
#include <regex>
#include <set>

#include "broker/broker.h"
#include "broker/internal/binding_state.h"
#include "broker/internal/plc_tables.h"
#include "broker/internal/schemas.h"
#include "broker/internal/slice_cache.h"
#include "broker/internal/sliver_settings.h"
#include "broker/internal/sql.h"
#include "broker/internal/ssh_keys.h"
#include "broker/internal/util.h"
#include "core/encoding.h"
#include "core/json_codec.h"
#include "core/sha256.h"
#include "ledger/accounts.h"
#include "ledger/sliver_settings.h"

namespace bourse::broker {

using internal::Stmt;
using nlohmann::json;

namespace {

const std::regex kSiteName("^[a-z0-9.]{1,32}$");
const std::regex kSliceName("^[a-z0-9.]+_[a-zA-Z0-9_.]+$");
const std::regex kSliceUrl("^https?://[^\\s]+$");
const std::regex kPrincipalName("^[A-Za-z0-9._@-]{1,64}$");
const std::regex kNodeId("^[A-Za-z0-9._-]{1,64}$");
constexpr size_t kMaxBootScript = 64 * 1024;
constexpr size_t kMaxOwners = 64;
constexpr size_t kMaxSliceNodes = 1024;

struct SliceRow {
  std::string name, site, creator, boot_script, description, url;
  json owners, ssh_keys, resources, nodes;
  json instantiated = json::array();  // nodes instantiate_slice placed it on (best-effort slivers)
  int64_t expires = 0, created_ms = 0;
};

core::Result<SliceRow> LoadSlice(storage::Connection* db, std::string_view name) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, internal::GetOneOrNotFound(
                  db,
                  "SELECT name,site,creator,owners,ssh_keys,boot_script,resources,nodes,"
                  "description,expires,created_ms,url,instantiated FROM b_slices WHERE name=?",
                  name, "slice"));
  SliceRow r;
  r.name = s.Text(0);
  r.site = s.Text(1);
  r.creator = s.Text(2);
  r.owners = internal::ParseStored(s.Text(3));
  r.ssh_keys = internal::ParseStored(s.Text(4));
  r.boot_script = s.Text(5);
  r.resources = internal::ParseStored(s.Text(6));
  r.nodes = internal::ParseStored(s.Text(7));
  r.description = s.Text(8);
  r.expires = s.Int(9);
  r.created_ms = s.Int(10);
  r.url = s.Text(11);
  r.instantiated = internal::ParseStored(s.Text(12));
  return r;
}

json SliceJson(const SliceRow& r, int64_t now_s) {
  return {{"name", r.name},
          {"site", r.site},
          {"creator", r.creator},
          {"owners", r.owners},
          {"ssh_keys", r.ssh_keys},
          {"boot_script", r.boot_script},
          {"resources", ledger::SliverSettings::FromStored(r.resources).ToJson()},
          {"nodes", r.nodes},
          {"instantiated", r.instantiated},
          {"description", r.description},
          {"url", r.url},
          {"expires", r.expires},
          {"expired", r.expires <= now_s},
          {"created_ms", r.created_ms}};
}

core::Status SaveSlice(storage::Connection* db, const SliceRow& r) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, db->Prepare("UPDATE b_slices SET owners=?,ssh_keys=?,boot_script=?,resources=?,"
                          "nodes=?,description=?,expires=?,instantiated=? WHERE name=?"));
  s.Bind(1, internal::Dump(r.owners));
  s.Bind(2, internal::Dump(r.ssh_keys));
  s.Bind(3, r.boot_script);
  s.Bind(4, internal::Dump(r.resources));
  s.Bind(5, internal::Dump(r.nodes));
  s.Bind(6, r.description);
  s.Bind(7, r.expires);
  s.Bind(8, internal::Dump(r.instantiated));
  s.Bind(9, r.name);
  return s.Run();
}

bool IsOwner(const SliceRow& r, const std::string& key) {
  for (const json& o : r.owners) {
    if (o.is_string() && o.get<std::string>() == key) return true;
  }
  return false;
}

// PLC: admins, the slice's site PI and the slice's owners manage a slice.
core::Status CheckManage(const Principal& p, const SliceRow& r) {
  if (p.kind == PrincipalKind::kAdmin) return core::Status::Ok();
  if (p.kind == PrincipalKind::kSite && p.site == r.site) return core::Status::Ok();
  if (IsOwner(r, p.key)) return core::Status::Ok();
  return core::PermissionDenied("slice " + r.name + ": caller " + p.key +
                                " is neither an owner nor the PI of site " + r.site);
}

json PrincipalRowJson(Stmt& s) {
  json site = s.IsNull(3) ? json() : json(s.Text(3));
  return {{"key", s.Text(0)},
          {"kind", s.Text(1)},
          {"name", s.Text(2)},
          {"site", site},
          {"created_ms", s.Int(4)}};
}

json NodeRowJson(Stmt& s) {
  return {{"id", s.Text(0)},
          {"site", s.Text(1)},
          {"key", s.Text(2)},
          {"capacity", internal::ParseStored(s.Text(3))},
          {"created_ms", s.Int(4)}};
}

core::Status InsertPrincipal(ledger::Txn& txn, const std::string& key, std::string_view kind,
                             const std::string& name, const std::string& site,
                             const std::string& by) {
  // A key a rotation retired (b_retired_keys, key_routes.cc) names no one
  // again.
  BOURSE_ASSIGN_OR_RETURN(Stmt e,
                          txn.db()->Prepare("SELECT 1 FROM b_principals WHERE key=? OR name=? "
                                            "UNION ALL SELECT 1 FROM b_retired_keys WHERE key=?"));
  e.Bind(1, key);
  e.Bind(2, name);
  e.Bind(3, key);
  BOURSE_ASSIGN_OR_RETURN(bool exists, e.Step());
  if (exists) {
    return core::AlreadyExists("a principal with key " + key + " or name " + name +
                               " already exists (or the key was retired by a key rotation)");
  }
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, txn.db()->Prepare("INSERT INTO b_principals(key,kind,name,site,created_ms) "
                                "VALUES(?,?,?,?,?)"));
  s.Bind(1, key);
  s.Bind(2, kind);
  s.Bind(3, name);
  if (site.empty()) {
    s.BindNull(4);
  } else {
    s.Bind(4, site);
  }
  s.Bind(5, txn.now_millis());
  BOURSE_RETURN_IF_ERROR(s.Run());
  return txn
      .Append("principal_added", {{"key", key},
                                  {"kind", kind},
                                  {"name", name},
                                  {"site", site.empty() ? json() : json(site)},
                                  {"by", by}})
      .status();
}

// One owner's ssh key (internal/ssh_keys.h).
json SshKeySchema() {
  using namespace internal;
  return SObj({{"owner", SKey()}, {"key", SStr("one OpenSSH public key line")}}, {"owner", "key"});
}

json SliceSchema() {
  using namespace internal;
  return SObj({{"name", SStr()},
               {"site", SStr()},
               {"creator", SKey()},
               {"owners", SArr(SKey())},
               {"ssh_keys", SArr(SshKeySchema())},
               {"boot_script", SStr()},
               {"resources", SObj({{"share", SInt()}, {"disk_mib", SInt()}, {"mem_mib", SInt()}})},
               {"nodes", SArr(SStr())},
               {"instantiated", SArr(SStr("nodes instantiate_slice placed it on"))},
               {"description", SStr()},
               {"url", SStr("the slice's web page, or \"\"")},
               {"expires", SInt("unix s")},
               {"expired", SBool()},
               {"created_ms", SInt()}});
}

json PrincipalSchema() {
  using namespace internal;
  return SObj({{"key", SKey()},
               {"kind", SStr("admin|site|node|broker|agent|user")},
               {"name", SStr()},
               {"site", {{"type", json::array({"string", "null"})}}},
               {"created_ms", SInt()}});
}

json NodeSchema() {
  using namespace internal;
  return SObj({{"id", SStr()},
               {"site", SStr()},
               {"key", SKey()},
               {"capacity", SResources()},
               {"created_ms", SInt()}});
}

json SiteSchema() {
  using namespace internal;
  return SObj({{"name", SStr()},
               {"pi", SKey()},
               {"slice_limit", SInt()},
               {"slices", SInt()},
               {"created_ms", SInt()}});
}

json BindingSchema() {
  using namespace internal;
  return SObj({{"slice", SStr()},
               {"leaf", SStr()},
               {"node", SStr()},
               {"state", SStr("scheduled|active|redeemed|refused|expired")},
               {"report", BindingReportSchema()},
               {"not_after", SInt()},
               {"chain", SArr(SRcap())}});
}

json SiteRowJson(Stmt& s) {
  return json{{"name", s.Text(0)},
              {"pi", s.Text(1)},
              {"slice_limit", s.Int(2)},
              {"slices", s.Int(3)},
              {"created_ms", s.Int(4)}};
}

constexpr const char* kPrincipalSql =
    "SELECT key,kind,name,site,created_ms FROM b_principals WHERE key=?";
constexpr const char* kSiteSql =
    "SELECT s.name,s.pi,s.slice_limit,(SELECT COUNT(*) FROM b_slices WHERE site=s.name),"
    "s.created_ms FROM b_sites s";
constexpr const char* kNodeSql = "SELECT id,site,key,capacity,created_ms FROM b_nodes WHERE id=?";

// ---- principals, sites, nodes: the rules, run inside a Mutate fn ----

struct NewPrincipal {
  core::PublicKey key;
  std::string kind, name, site;
};

// An admin registers any principal; a site PI only users of its own site.
core::Result<json> RegisterPrincipal(ledger::Txn& txn, const NewPrincipal& p,
                                     const core::PublicKey& by, const std::string& by_text) {
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, by_text));
  bool admin = caller.kind == PrincipalKind::kAdmin;
  if (!admin) {
    if (caller.kind != PrincipalKind::kSite || p.kind != "user" || p.site != caller.site) {
      return core::PermissionDenied(
          "only an admin registers principals, or a site PI users "
          "of its own site");
    }
  }
  if (!p.site.empty()) {
    BOURSE_RETURN_IF_ERROR(
        internal::GetOneOrNotFound(txn.db(), "SELECT 1 FROM b_sites WHERE name=?", p.site, "site")
            .status());
  }
  BOURSE_RETURN_IF_ERROR(InsertPrincipal(txn, p.key.ToText(), p.kind, p.name, p.site, by_text));
  if (p.kind == "admin") {
    BOURSE_RETURN_IF_ERROR(ledger::Accounts::AddAdmin(txn, p.key, &by));
  }
  return json{{"key", p.key.ToText()},
              {"kind", p.kind},
              {"name", p.name},
              {"site", p.site.empty() ? json() : json(p.site)},
              {"created_ms", txn.now_millis()}};
}

// Only an admin registers a site; its PI key becomes a site principal.
core::Result<json> RegisterSite(ledger::Txn& txn, const std::string& name,
                                const core::PublicKey& pi, int64_t limit,
                                const std::string& by_text) {
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, by_text));
  if (caller.kind != PrincipalKind::kAdmin) {
    return core::PermissionDenied("only an admin registers sites");
  }
  BOURSE_ASSIGN_OR_RETURN(bool exists, internal::SiteExists(txn.db(), name));
  if (exists) return core::AlreadyExists("site " + name + " already exists");
  BOURSE_RETURN_IF_ERROR(InsertPrincipal(txn, pi.ToText(), "site", name + ".pi", name, by_text));
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          txn.db()->Prepare("INSERT INTO b_sites(name,pi,slice_limit,created_ms) "
                                            "VALUES(?,?,?,?)"));
  s.Bind(1, name);
  s.Bind(2, pi.ToText());
  s.Bind(3, limit);
  s.Bind(4, txn.now_millis());
  BOURSE_RETURN_IF_ERROR(s.Run());
  BOURSE_RETURN_IF_ERROR(
      txn.Append("site_added",
                 {{"site", name}, {"pi", pi.ToText()}, {"slice_limit", limit}, {"by", by_text}})
          .status());
  return json{{"name", name},
              {"pi", pi.ToText()},
              {"slice_limit", limit},
              {"slices", 0},
              {"created_ms", txn.now_millis()}};
}

struct NewNode {
  std::string id, site;
  core::PublicKey key;
  core::ResourceVector capacity;
};

// The site's PI (or an admin) registers a node; its capacity enters the
// capacity log.
core::Result<json> RegisterNode(ledger::Txn& txn, const NewNode& n, const std::string& by_text) {
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, by_text));
  BOURSE_RETURN_IF_ERROR(
      internal::GetOneOrNotFound(txn.db(), "SELECT 1 FROM b_sites WHERE name=?", n.site, "site")
          .status());
  if (caller.kind != PrincipalKind::kAdmin &&
      !(caller.kind == PrincipalKind::kSite && caller.site == n.site)) {
    return core::PermissionDenied("only site " + n.site + "'s PI registers its nodes");
  }
  BOURSE_ASSIGN_OR_RETURN(Stmt d, txn.db()->Prepare("SELECT 1 FROM b_nodes WHERE id=?"));
  d.Bind(1, n.id);
  BOURSE_ASSIGN_OR_RETURN(bool dup, d.Step());
  if (dup) return core::AlreadyExists("node " + n.id + " already exists");
  BOURSE_RETURN_IF_ERROR(
      InsertPrincipal(txn, n.key.ToText(), "node", "node." + n.id, n.site, by_text));
  json capj = core::ResourceVectorToJson(n.capacity);
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          txn.db()->Prepare("INSERT INTO b_nodes(id,site,key,capacity,created_ms) "
                                            "VALUES(?,?,?,?,?)"));
  s.Bind(1, n.id);
  s.Bind(2, n.site);
  s.Bind(3, n.key.ToText());
  s.Bind(4, internal::Dump(capj));
  s.Bind(5, txn.now_millis());
  BOURSE_RETURN_IF_ERROR(s.Run());
  BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordNode(txn, n.id, n.capacity,
                                                         {{"node", n.id},
                                                          {"site", n.site},
                                                          {"key", n.key.ToText()},
                                                          {"capacity", capj},
                                                          {"by", by_text}}));
  return json{{"id", n.id},
              {"site", n.site},
              {"key", n.key.ToText()},
              {"capacity", capj},
              {"created_ms", txn.now_millis()}};
}

// ---- slices ----

core::Status InsertSlice(storage::Connection* db, const SliceRow& r) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s,
                          db->Prepare("INSERT INTO b_slices(name,site,creator,owners,ssh_keys,"
                                      "boot_script,resources,nodes,description,expires,created_ms,url)"
                                      " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"));
  s.Bind(1, r.name);
  s.Bind(2, r.site);
  s.Bind(3, r.creator);
  s.Bind(4, internal::Dump(r.owners));
  s.Bind(5, internal::Dump(r.ssh_keys));
  s.Bind(6, r.boot_script);
  s.Bind(7, internal::Dump(r.resources));
  s.Bind(8, internal::Dump(r.nodes));
  s.Bind(9, r.description);
  s.Bind(10, r.expires);
  s.Bind(11, r.created_ms);
  s.Bind(12, r.url);
  return s.Run();
}

// PLC: a member or the PI of the site (or an admin) creates <site>_<name>,
// within the site's slice limit; nodes never do.
core::Status CheckCreateSlice(ledger::Txn& txn, const Principal& caller, const std::string& name,
                              const std::string& site) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt e, internal::GetOneOrNotFound(txn.db(), "SELECT slice_limit FROM b_sites WHERE name=?",
                                         site, "site", "name"));
  int64_t limit = e.Int(0);
  if (caller.kind != PrincipalKind::kAdmin && caller.site != site) {
    return core::PermissionDenied("name: caller does not belong to site " + site);
  }
  if (caller.kind == PrincipalKind::kNode) {
    return core::PermissionDenied("nodes do not create slices");
  }
  BOURSE_ASSIGN_OR_RETURN(bool dup, internal::SliceExists(txn.db(), name));
  if (dup) return core::AlreadyExists("slice " + name + " already exists");
  BOURSE_ASSIGN_OR_RETURN(Stmt c, txn.db()->Prepare("SELECT COUNT(*) FROM b_slices WHERE site=?"));
  c.Bind(1, site);
  BOURSE_ASSIGN_OR_RETURN(bool ignored, c.Step());
  (void)ignored;
  if (c.Int(0) >= limit) {
    return core::FailedPrecondition("site " + site + " has reached its limit of " +
                                    std::to_string(limit) + " slices");
  }
  return core::Status::Ok();
}

core::Result<SliceRow> CreateSliceRow(ledger::Txn& txn, const std::string& name,
                                      const std::string& description, const std::string& url,
                                      const std::string& by_text, int64_t now_s) {
  std::string site = name.substr(0, name.find('_'));
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, by_text));
  BOURSE_RETURN_IF_ERROR(CheckCreateSlice(txn, caller, name, site));
  SliceRow r;
  r.name = name;
  r.site = site;
  r.creator = by_text;
  // DESIGN 4.1: only users and agents own slices; an admin or a
  // site PI manages the slice by its role and names owners later.
  r.owners = json::array();
  if (caller.kind == PrincipalKind::kUser || caller.kind == PrincipalKind::kAgent) {
    r.owners.push_back(by_text);
  }
  r.ssh_keys = json::array();
  r.resources = nullptr;
  r.nodes = json::array();
  r.description = description;
  r.url = url;
  r.expires = now_s + kDefaultSliceLifetimeS;
  r.created_ms = txn.now_millis();
  BOURSE_RETURN_IF_ERROR(InsertSlice(txn.db(), r));
  BOURSE_RETURN_IF_ERROR(
      txn.Append("slice_created",
                 {{"slice", name}, {"site", site}, {"by", by_text}, {"expires", r.expires}})
          .status());
  return r;
}

// The slice updates (PUT owners|state|resources, POST instantiate|renew):
// each applies the decoded body to the row and notes it in the ledger entry;
// an optional check then runs against the database.
using SliceApply = core::Status (*)(const json& body, SliceRow* r, json* entry, int64_t now_s);
using SliceCheck = core::Status (*)(storage::Connection* db, const SliceRow& r, int64_t now_s);

// assign_owners. Each ssh key belongs to one owner (internal/ssh_keys.h):
// with `ssh_keys` the list is replaced; without it the owners who stay keep
// their keys and the removed owners' keys go with them.
core::Status ApplyOwners(const json& body, SliceRow* r, json* entry, int64_t) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"owners", "ssh_keys"}));
  BOURSE_ASSIGN_OR_RETURN(std::vector<std::string> owners,
                          internal::KeyListField(body, "owners", kMaxOwners));
  if (owners.empty()) return core::InvalidArgument("owners: at least one owner");
  std::set<std::string> uniq(owners.begin(), owners.end());
  if (uniq.size() != owners.size()) return core::InvalidArgument("owners: duplicate key");
  json ssh;
  if (const json* s = internal::Optional(body, "ssh_keys")) {
    BOURSE_ASSIGN_OR_RETURN(ssh,
                            internal::ParseSshKeys(*s, uniq, (*entry)["by"].get<std::string>()));
  } else {
    ssh = internal::OwnersSshKeys(json(owners), r->ssh_keys);
  }
  r->owners = owners;
  r->ssh_keys = ssh;
  (*entry)["owners"] = owners;
  (*entry)["ssh_keys"] = ssh;
  return core::Status::Ok();
}

core::Status CheckOwners(storage::Connection* db, const SliceRow& r, int64_t) {
  for (const json& o : r.owners) {
    auto p = Broker::LookupPrincipal(db, o.get<std::string>());
    if (!p.ok()) {
      return core::NotFound("owners: " + o.get<std::string>() + " is not a registered principal");
    }
    // DESIGN 4.1: owners are users or services (agents); the broker's,
    // admins', sites' and nodes' keys never own a slice.
    if (p->kind != PrincipalKind::kUser && p->kind != PrincipalKind::kAgent) {
      return core::PermissionDenied("owners: " + o.get<std::string>() + " is a " +
                                    std::string(PrincipalKindName(p->kind)) +
                                    " key; slice owners are user or agent principals");
    }
  }
  return core::Status::Ok();
}

core::Status ApplyBootScript(const json& body, SliceRow* r, json* entry, int64_t) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"boot_script"}));
  BOURSE_ASSIGN_OR_RETURN(std::string script,
                          internal::StrField(body, "boot_script", kMaxBootScript, true));
  r->boot_script = script;
  (*entry)["boot_script_sha256"] = core::HexEncode(core::Sha256(script));
  return core::Status::Ok();
}

// set_resources: the slice's best-effort settings (ledger/sliver_settings.h),
// checked against its site's limits and its nodes by CheckSliverSettings.
core::Status ApplyResources(const json& body, SliceRow* r, json* entry, int64_t) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"resources"}));
  BOURSE_ASSIGN_OR_RETURN(const json* rj, core::RequireMember(body, "", "resources"));
  BOURSE_ASSIGN_OR_RETURN(ledger::SliverSettings set,
                          ledger::SliverSettings::FromJson(*rj, "resources"));
  r->resources = set.ToJson();
  (*entry)["resources"] = r->resources;
  return core::Status::Ok();
}

// The best-effort rule over the slice's settings and every node it is on.
core::Status CheckSliverSettings(storage::Connection* db, const SliceRow& r, int64_t now_s) {
  return internal::CheckSliceSliverSettings(db, r.name, r.site, r.instantiated,
                                            ledger::SliverSettings::FromStored(r.resources), now_s);
}

core::Status ApplyNodes(const json& body, SliceRow* r, json* entry, int64_t now_s) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"nodes"}));
  BOURSE_ASSIGN_OR_RETURN(const json* nj, core::RequireMember(body, "", "nodes"));
  if (!nj->is_array()) return core::InvalidArgument("nodes: must be an array");
  if (nj->empty()) return core::InvalidArgument("nodes: at least one node");
  if (nj->size() > kMaxSliceNodes) return core::InvalidArgument("nodes: too many");
  if (r->expires <= now_s) return core::FailedPrecondition("slice " + r->name + " has expired");
  std::set<std::string> have, placed;
  for (const json& n : r->nodes) have.insert(n.get<std::string>());
  for (const json& n : r->instantiated) placed.insert(n.get<std::string>());
  for (size_t i = 0; i < nj->size(); ++i) {
    BOURSE_ASSIGN_OR_RETURN(std::string n,
                            core::StringFromJson((*nj)[i], "nodes[" + std::to_string(i) + "]", 64));
    if (have.insert(n).second) r->nodes.push_back(n);
    if (placed.insert(n).second) r->instantiated.push_back(n);
  }
  // The nodes the slice is instantiated on (a binding adds its node to
  // `nodes` but instantiates nothing): what the best-effort rule checks.
  (*entry)["nodes"] = r->instantiated;
  return core::Status::Ok();
}

// delete_slice_from_nodes: the slivers on these nodes are torn down on their
// guards' next pass. Every node named must be one of the slice's.
core::Status ApplyRemoveNodes(const json& body, SliceRow* r, json* entry, int64_t) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"nodes"}));
  BOURSE_ASSIGN_OR_RETURN(const json* nj, core::RequireMember(body, "", "nodes"));
  if (!nj->is_array()) return core::InvalidArgument("nodes: must be an array");
  if (nj->empty()) return core::InvalidArgument("nodes: at least one node");
  if (nj->size() > kMaxSliceNodes) return core::InvalidArgument("nodes: too many");
  std::set<std::string> drop;
  for (size_t i = 0; i < nj->size(); ++i) {
    std::string f = "nodes[" + std::to_string(i) + "]";
    BOURSE_ASSIGN_OR_RETURN(std::string n, core::StringFromJson((*nj)[i], f, 64));
    bool held = false;
    for (const json& h : r->instantiated) held = held || h.get<std::string>() == n;
    if (!held)
      return core::NotFound(f + ": slice " + r->name + " is not instantiated on node " + n);
    drop.insert(n);
  }
  json left = json::array();
  for (const json& h : r->instantiated) {
    if (!drop.count(h.get<std::string>())) left.push_back(h);
  }
  r->instantiated = left;
  (*entry)["nodes"] = left;
  (*entry)["removed"] = drop;
  return core::Status::Ok();
}

core::Status CheckSliceNodes(storage::Connection* db, const SliceRow& r, int64_t now_s) {
  for (const json& n : r.nodes) {
    BOURSE_RETURN_IF_ERROR(internal::GetOneOrNotFound(db, "SELECT 1 FROM b_nodes WHERE id=?",
                                                      n.get<std::string>(), "node", "nodes")
                               .status());
  }
  return CheckSliverSettings(db, r, now_s);
}

// PLC: renewal defaults to now + 2 weeks and never reaches beyond now + 8.
core::Status ApplyRenewal(const json& body, SliceRow* r, json* entry, int64_t now_s) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"expires"}));
  int64_t want = now_s + kDefaultSliceLifetimeS;
  if (const json* e = internal::Optional(body, "expires")) {
    BOURSE_ASSIGN_OR_RETURN(want, core::IntFromJson(*e, "expires", 0, core::kMaxSafeInteger));
    if (want <= now_s) return core::InvalidArgument("expires: must be in the future");
  }
  int64_t granted = std::min(want, now_s + kMaxSliceLifetimeS);
  r->expires = granted;
  (*entry)["expires"] = r->expires;
  (*entry)["requested"] = want;
  return core::Status::Ok();
}

// The slice updates share one shape: decode, then load + authorise + change
// + record in one transaction.
core::Result<ApiResponse> UpdateSlice(Broker& broker, const ApiRequest& q,
                                      const std::string& entry_type, SliceApply apply,
                                      SliceCheck check_extra) {
  json out;
  const std::string name = q.Param("slice");
  int64_t now_s = q.now_ms / 1000;
  BOURSE_RETURN_IF_ERROR(broker
                             .Mutate([&](ledger::Txn& txn) -> core::Status {
                               BOURSE_ASSIGN_OR_RETURN(Principal caller,
                                                       Broker::LookupPrincipal(txn, q.caller_text));
                               BOURSE_ASSIGN_OR_RETURN(SliceRow r, LoadSlice(txn.db(), name));
                               BOURSE_RETURN_IF_ERROR(CheckManage(caller, r));
                               json entry = {{"slice", name}, {"by", q.caller_text}};
                               BOURSE_RETURN_IF_ERROR(apply(q.json, &r, &entry, now_s));
                               if (check_extra) {
                                 BOURSE_RETURN_IF_ERROR(check_extra(txn.db(), r, now_s));
                               }
                               BOURSE_RETURN_IF_ERROR(SaveSlice(txn.db(), r));
                               BOURSE_RETURN_IF_ERROR(txn.Append(entry_type, entry).status());
                               out = SliceJson(r, now_s);
                               return core::Status::Ok();
                             })
                             .status());
  broker.InvalidateSlice(name);
  return JsonResponse(200, out);
}

// Ends everything of the slice in one transaction (the rule of DELETE
// /v1/slices/{slice}); `ended` gets the share bids it ended.
core::Status EndSlice(Markets& markets, ledger::Txn& txn, const std::string& name,
                      const ApiRequest& q, std::vector<std::string>* ended) {
  ended->clear();
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, q.caller_text));
  BOURSE_ASSIGN_OR_RETURN(SliceRow r, LoadSlice(txn.db(), name));
  BOURSE_RETURN_IF_ERROR(CheckManage(caller, r));
  // Orders and round bids carry no slice (what they buy is bound
  // later, by whoever holds it): only share bids are the slice's.
  BOURSE_RETURN_IF_ERROR(markets.EndSliceShares(txn, name, q.now_ms, ended));
  BOURSE_ASSIGN_OR_RETURN(Stmt s, txn.db()->Prepare("DELETE FROM b_slices WHERE name=?"));
  s.Bind(1, name);
  BOURSE_RETURN_IF_ERROR(s.Run());
  BOURSE_ASSIGN_OR_RETURN(Stmt b, txn.db()->Prepare("DELETE FROM b_bindings WHERE slice=?"));
  b.Bind(1, name);
  BOURSE_RETURN_IF_ERROR(b.Run());
  return txn
      .Append("slice_deleted", {{"slice", name}, {"by", q.caller_text}, {"share_bids", *ended}})
      .status();
}

// ---- bindings ----

core::Status InsertBinding(ledger::Txn& txn, const ledger::Rcap& leaf, const std::string& slice,
                           const std::string& node, const json& chain_json) {
  BOURSE_ASSIGN_OR_RETURN(
      Stmt s, txn.db()->Prepare("INSERT INTO b_bindings(leaf,slice,node,chain,not_after,"
                                "created_ms) VALUES(?,?,?,?,?,?)"));
  s.Bind(1, leaf.id);
  s.Bind(2, slice);
  s.Bind(3, node);
  s.Bind(4, internal::Dump(chain_json));
  s.Bind(5, leaf.interval.not_after);
  s.Bind(6, txn.now_millis());
  return s.Run();
}

// The chain checks out against the key of the site that runs its node. A
// root signed by one of the site's former PI keys (b_retired_keys) verifies
// only if it was recorded before the change: a replaced key grants nothing
// new, and what it granted stays valid until it ends.
core::Result<ledger::EffectiveLeaf> VerifyBindChain(ledger::Txn& txn,
                                                    const std::vector<ledger::Rcap>& chain,
                                                    int64_t now_s) {
  const std::string& node = chain.front().node;
  BOURSE_ASSIGN_OR_RETURN(
      Stmt n, internal::GetOneOrNotFound(txn.db(),
                                         "SELECT s.pi,s.name FROM b_nodes n JOIN b_sites s ON "
                                         "s.name=n.site WHERE n.id=?",
                                         node, "node", "chain"));
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey site_key, core::PublicKey::FromText(n.Text(0)));
  std::vector<core::PublicKey> trusted = {site_key};
  const ledger::Rcap& root = chain.front();
  if (!(root.issuer == site_key)) {
    BOURSE_ASSIGN_OR_RETURN(
        Stmt r, txn.db()->Prepare("SELECT 1 FROM b_retired_keys WHERE kind='site' AND owner=? "
                                  "AND key=?"));
    r.Bind(1, n.Text(1));
    r.Bind(2, root.issuer.ToText());
    BOURSE_ASSIGN_OR_RETURN(bool former, r.Step());
    if (former) {
      auto recorded = ledger::CapacityLog::Get(txn.db(), root.id);
      if (!recorded.ok() || !(*recorded == root)) {
        return core::PermissionDenied("chain: untrusted_root: root " + root.id +
                                      " is signed by a former PI key of site " + n.Text(1) +
                                      " and was not granted before the key changed");
      }
      trusted.push_back(root.issuer);
    }
  }
  ledger::Verdict<ledger::EffectiveLeaf> v = ledger::VerifyChain(chain, trusted, node, now_s);
  if (!v.ok()) return v.refusal().ToStatus().WithContext("chain");
  return *v;
}

// Binds a verified chain's leaf to slice `name` (the rule of POST
// /v1/slices/{slice}/bindings); returns the binding as the route answers it.
core::Result<json> BindChainToSlice(Broker& broker, ledger::Txn& txn, const std::string& name,
                                    const std::vector<ledger::Rcap>& chain,
                                    const std::string& by_text, int64_t now_s) {
  BOURSE_ASSIGN_OR_RETURN(Principal caller, Broker::LookupPrincipal(txn, by_text));
  BOURSE_ASSIGN_OR_RETURN(SliceRow r, LoadSlice(txn.db(), name));
  BOURSE_RETURN_IF_ERROR(CheckManage(caller, r));
  if (r.expires <= now_s) return core::FailedPrecondition("slice " + name + " has expired");
  const std::string& node = chain.front().node;
  BOURSE_ASSIGN_OR_RETURN(ledger::EffectiveLeaf eff, VerifyBindChain(txn, chain, now_s));
  const ledger::Rcap& leaf = chain.back();
  // DESIGN 4.1: only the leaf's holder binds it (owners manage the
  // slice, they do not spend each other's tickets).
  BOURSE_RETURN_IF_ERROR(RequireHolder(leaf, by_text, "chain"));
  // Unrecorded links (a root signed by the site, a child its holder
  // signed) are recorded under the capacity rule like any grant or
  // split; then the binding itself is a use of the leaf.
  for (const ledger::Rcap& link : chain)
    BOURSE_RETURN_IF_ERROR(broker.RecordRcapIfNew(txn, link).WithContext("chain"));
  BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordBound(txn, leaf, name).WithContext("chain"));
  json chain_json = ledger::ChainToJson(chain);
  BOURSE_RETURN_IF_ERROR(InsertBinding(txn, leaf, name, node, chain_json));
  bool has_node = false;
  for (const json& x : r.nodes) has_node = has_node || x.get<std::string>() == node;
  if (!has_node) {
    r.nodes.push_back(node);
    BOURSE_RETURN_IF_ERROR(SaveSlice(txn.db(), r));
  }
  return json{{"slice", name},      {"leaf", leaf.id},
              {"node", node},       {"state", std::string(ledger::LeafStateName(eff.state))},
              {"report", nullptr},  {"not_after", leaf.interval.not_after},
              {"chain", chain_json}};
}

// The bindings of slice `name`, each with its state as the node guard
// reported it.
core::Result<json> LoadBindings(storage::Connection* db, const std::string& name, int64_t now_s) {
  BOURSE_RETURN_IF_ERROR(LoadSlice(db, name).status());
  json list = json::array();
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT leaf,node,not_after,chain FROM b_bindings "
                                              "WHERE slice=? ORDER BY created_ms, leaf"));
  s.Bind(1, name);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    json chain = internal::ParseStored(s.Text(3));
    int64_t nb = 0;
    if (chain.is_array() && !chain.empty()) {
      nb = chain.back().value("not_before", int64_t{0});
    }
    json b = {{"slice", name},
              {"leaf", s.Text(0)},
              {"node", s.Text(1)},
              {"not_after", s.Int(2)},
              {"chain", std::move(chain)}};
    BOURSE_RETURN_IF_ERROR(internal::AddBindingState(db, s.Text(0), name, nb, s.Int(2), now_s, &b));
    list.push_back(std::move(b));
  }
  return list;
}

core::Result<bool> RowExists(storage::Connection* db, const char* sql, std::string_view key) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare(sql));
  s.Bind(1, key);
  return s.Step();
}

}  // namespace

// ---- the PLC tables as other code reads them (internal/plc_tables.h) ----

core::Result<std::optional<markets::NodeInfo>> internal::FindNode(storage::Connection* db,
                                                                  std::string_view node) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT n.site,s.pi,n.capacity FROM b_nodes n "
                                              "LEFT JOIN b_sites s ON s.name=n.site WHERE n.id=?"));
  s.Bind(1, node);
  BOURSE_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) return std::optional<markets::NodeInfo>();
  markets::NodeInfo n{.site = s.Text(0), .site_pi = s.Text(1)};
  json cap = internal::ParseStored(s.Text(2));
  if (cap.is_object() && cap.contains("net_max_kbps") && cap["net_max_kbps"].is_number_integer()) {
    n.net_max_kbps = cap["net_max_kbps"].get<int64_t>();
  }
  return std::optional<markets::NodeInfo>(std::move(n));
}

core::Result<bool> internal::SiteExists(storage::Connection* db, std::string_view site) {
  return RowExists(db, "SELECT 1 FROM b_sites WHERE name=?", site);
}

core::Result<std::optional<markets::SliceOwnership>> internal::SliceOwners(storage::Connection* db,
                                                                           std::string_view slice) {
  core::Result<SliceRow> r = LoadSlice(db, slice);
  if (!r.ok() && r.status().code() == core::StatusCode::kNotFound) {
    return std::optional<markets::SliceOwnership>();
  }
  BOURSE_RETURN_IF_ERROR(r.status());
  markets::SliceOwnership o;
  o.creator = r->creator;
  if (r->owners.is_array()) {
    for (const json& k : r->owners) {
      if (k.is_string()) o.owners.push_back(k.get<std::string>());
    }
  }
  return std::optional<markets::SliceOwnership>(std::move(o));
}

core::Result<bool> internal::SliceExists(storage::Connection* db, std::string_view slice) {
  return RowExists(db, "SELECT 1 FROM b_slices WHERE name=?", slice);
}

core::Status internal::CheckSliceManager(storage::Connection* db, std::string_view slice,
                                         std::string_view caller) {
  BOURSE_ASSIGN_OR_RETURN(SliceRow r, LoadSlice(db, slice));
  BOURSE_ASSIGN_OR_RETURN(Principal p, Broker::LookupPrincipal(db, caller));
  return CheckManage(p, r);
}

// ---- the routes: each decodes, calls its rule, encodes ----

core::Result<ApiResponse> Broker::GetRow(const ApiRequest& q, const std::string& sql,
                                         const std::string& param, const std::string& what,
                                         json (*row_json)(internal::Stmt&)) {
  json out;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, internal::GetOneOrNotFound(db, sql, q.Param(param), what));
    out = row_json(s);
    return core::Status::Ok();
  }));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Broker::AddPrincipal(const ApiRequest& q) {
  using namespace internal;
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(q.json, "", {"key", "kind", "name", "site"}));
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey key, KeyField(q.json, "key"));
  BOURSE_ASSIGN_OR_RETURN(std::string kind, StrField(q.json, "kind", 16));
  BOURSE_ASSIGN_OR_RETURN(std::string name, StrField(q.json, "name", 64));
  if (!Matches(kPrincipalName, name)) {
    return core::InvalidArgument("name: must match [A-Za-z0-9._@-]{1,64}");
  }
  std::string site;
  if (Optional(q.json, "site") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(site, StrField(q.json, "site", 32));
  }
  if (kind != "admin" && kind != "agent" && kind != "user") {
    return core::InvalidArgument(
        "kind: must be admin, agent or user (sites and nodes have their own endpoints)");
  }
  NewPrincipal p{std::move(key), kind, name, site};
  json out;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               out, RegisterPrincipal(txn, p, *q.caller, q.caller_text));
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(201, out);
}

core::Result<ApiResponse> Broker::ListPrincipals(const ApiRequest&) {
  json list;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(list, internal::QueryArray(
                                      db,
                                      "SELECT key,kind,name,site,created_ms FROM b_principals "
                                      "ORDER BY created_ms, key",
                                      [](Stmt&) {}, PrincipalRowJson));
    return core::Status::Ok();
  }));
  return JsonResponse(200, {{"principals", list}});
}

core::Result<ApiResponse> Broker::AddSite(const ApiRequest& q) {
  using namespace internal;
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(q.json, "", {"name", "pi", "slice_limit"}));
  BOURSE_ASSIGN_OR_RETURN(std::string name, StrField(q.json, "name", 32));
  if (!Matches(kSiteName, name)) return core::InvalidArgument("name: must match [a-z0-9.]{1,32}");
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey pi, KeyField(q.json, "pi"));
  int64_t limit = kDefaultSiteSliceLimit;
  if (const json* l = Optional(q.json, "slice_limit")) {
    BOURSE_ASSIGN_OR_RETURN(limit, core::IntFromJson(*l, "slice_limit", 0, 100000));
  }
  json out;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               out, RegisterSite(txn, name, pi, limit, q.caller_text));
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(201, out);
}

core::Result<ApiResponse> Broker::ListSites(const ApiRequest&) {
  json list;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(
        list, internal::QueryArray(
                  db, std::string(kSiteSql) + " ORDER BY s.name", [](Stmt&) {}, SiteRowJson));
    return core::Status::Ok();
  }));
  return JsonResponse(200, {{"sites", list}});
}

core::Result<ApiResponse> Broker::AddNode(const ApiRequest& q) {
  using namespace internal;
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(q.json, "", {"id", "key", "capacity"}));
  BOURSE_ASSIGN_OR_RETURN(std::string id, StrField(q.json, "id", 64));
  if (!Matches(kNodeId, id)) return core::InvalidArgument("id: must match [A-Za-z0-9._-]{1,64}");
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey key, KeyField(q.json, "key"));
  BOURSE_ASSIGN_OR_RETURN(const json* cj, core::RequireMember(q.json, "", "capacity"));
  BOURSE_ASSIGN_OR_RETURN(core::ResourceVector cap, core::ResourceVectorFromJson(*cj, "capacity"));
  NewNode n{id, q.Param("site"), std::move(key), std::move(cap)};
  json out;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(out, RegisterNode(txn, n, q.caller_text));
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(201, out);
}

core::Result<ApiResponse> Broker::ListNodes(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> site, q.Query("site"));
  json list;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(list, internal::QueryArray(
                                      db,
                                      site ? "SELECT id,site,key,capacity,created_ms FROM b_nodes "
                                             "WHERE site=? ORDER BY id"
                                           : "SELECT id,site,key,capacity,created_ms FROM b_nodes "
                                             "ORDER BY id",
                                      [&](Stmt& s) {
                                        if (site) s.Bind(1, *site);
                                      },
                                      NodeRowJson));
    return core::Status::Ok();
  }));
  return JsonResponse(200, {{"nodes", list}});
}

core::Result<ApiResponse> Broker::CreateSlice(const ApiRequest& q) {
  using namespace internal;
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(q.json, "", {"name", "description", "url"}));
  BOURSE_ASSIGN_OR_RETURN(std::string name, StrField(q.json, "name", 1024));
  if (name.size() > kMaxSliceNameLength) {
    return core::InvalidArgument("name: at most 64 characters");
  }
  if (!Matches(kSliceName, name)) {
    return core::InvalidArgument("name: must match ^[a-z0-9.]+_[a-zA-Z0-9_.]+$");
  }
  std::string description;
  if (Optional(q.json, "description") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(description, StrField(q.json, "description", 1024, true));
  }
  std::string url;  // PLC's slice url: the slice's web page
  if (Optional(q.json, "url") != nullptr) {
    BOURSE_ASSIGN_OR_RETURN(url, StrField(q.json, "url", 512, true));
    if (!url.empty() && !Matches(kSliceUrl, url)) {
      return core::InvalidArgument("url: must be an http:// or https:// URL without spaces");
    }
  }
  int64_t now_s = q.now_ms / 1000;
  json out;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               SliceRow r,
                               CreateSliceRow(txn, name, description, url, q.caller_text, now_s));
                           out = SliceJson(r, now_s);
                           return core::Status::Ok();
                         }).status());
  InvalidateSlice(name);
  return JsonResponse(201, out);
}

core::Result<ApiResponse> Broker::ListSlices(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> site, q.Query("site"));
  std::vector<std::string> names;
  json list = json::array();
  int64_t now_s = q.now_ms / 1000;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(
        Stmt s, db->Prepare(site ? "SELECT name FROM b_slices WHERE site=? ORDER BY name"
                                 : "SELECT name FROM b_slices ORDER BY name"));
    if (site) s.Bind(1, *site);
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      names.push_back(s.Text(0));
    }
    for (const std::string& n : names) {
      BOURSE_ASSIGN_OR_RETURN(SliceRow r, LoadSlice(db, n));
      list.push_back(SliceJson(r, now_s));
    }
    return core::Status::Ok();
  }));
  return JsonResponse(200, {{"slices", list}});
}

core::Result<ApiResponse> Broker::GetSlice(const ApiRequest& q) {
  const std::string& name = q.Param("slice");
  int64_t now_s = q.now_ms / 1000;
  ApiResponse resp;
  if (auto hit = slice_cache_->Get(name, now_s)) {
    resp.body = std::move(*hit);
    return resp;
  }
  uint64_t gen = slice_cache_->Generation();
  internal::SliceCache::Entry e;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(SliceRow r, LoadSlice(db, name));
    e.expires = r.expires;
    e.live = internal::Dump(SliceJson(r, r.expires - 1));
    e.expired = internal::Dump(SliceJson(r, r.expires));
    return core::Status::Ok();
  }));
  resp.body = now_s < e.expires ? e.live : e.expired;
  slice_cache_->Put(name, std::move(e), gen);
  return resp;
}

core::Result<ApiResponse> Broker::DeleteSlice(const ApiRequest& q) {
  const std::string name = q.Param("slice");
  std::vector<std::string> ended;
  BOURSE_RETURN_IF_ERROR(
      Mutate([&](ledger::Txn& txn) { return EndSlice(markets(), txn, name, q, &ended); }).status());
  InvalidateSlice(name);
  return JsonResponse(200, {{"deleted", name}, {"share_bids", ended}});
}

core::Result<ApiResponse> Broker::SetSliceOwners(const ApiRequest& q) {
  return UpdateSlice(*this, q, "slice_owners_set", ApplyOwners, CheckOwners);
}

core::Result<ApiResponse> Broker::SetSliceState(const ApiRequest& q) {
  return UpdateSlice(*this, q, "slice_state_set", ApplyBootScript, nullptr);
}

core::Result<ApiResponse> Broker::SetSliceResources(const ApiRequest& q) {
  return UpdateSlice(*this, q, std::string(ledger::kEntrySliceResourcesSet), ApplyResources,
                     CheckSliverSettings);
}

core::Result<ApiResponse> Broker::InstantiateSlice(const ApiRequest& q) {
  return UpdateSlice(*this, q, std::string(ledger::kEntrySliceInstantiated), ApplyNodes,
                     CheckSliceNodes);
}

core::Result<ApiResponse> Broker::RemoveSliceNodes(const ApiRequest& q) {
  return UpdateSlice(*this, q, std::string(ledger::kEntrySliceNodesRemoved), ApplyRemoveNodes,
                     nullptr);
}

core::Result<ApiResponse> Broker::RenewSlice(const ApiRequest& q) {
  return UpdateSlice(*this, q, "slice_renewed", ApplyRenewal, nullptr);
}

core::Result<ApiResponse> Broker::AddBinding(const ApiRequest& q) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(q.json, "", {"chain"}));
  BOURSE_ASSIGN_OR_RETURN(const json* cj, core::RequireMember(q.json, "", "chain"));
  auto chain_r = ledger::ChainFromJson(*cj);
  if (!chain_r.ok()) return core::InvalidArgument("chain: " + chain_r.status().message());
  std::vector<ledger::Rcap> chain = std::move(chain_r).value();
  const std::string name = q.Param("slice");
  int64_t now_s = q.now_ms / 1000;
  json out;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(out, BindChainToSlice(*this, txn, name, chain,
                                                                         q.caller_text, now_s));
                           return core::Status::Ok();
                         }).status());
  InvalidateSlice(name);
  return JsonResponse(201, out);
}

core::Result<ApiResponse> Broker::ListBindings(const ApiRequest& q) {
  json list;
  const std::string name = q.Param("slice");
  int64_t now_s = q.now_ms / 1000;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(list, LoadBindings(db, name, now_s));
    return core::Status::Ok();
  }));
  return JsonResponse(200, {{"slice", name}, {"bindings", list}});
}

// ---- the route table ----

void Broker::RegisterPlcRoutes() {
  RegisterPrincipalRoutes();
  RegisterSiteRoutes();
  RegisterSliceRoutes();
  RegisterSliceUpdateRoutes();
}

void Broker::RegisterPrincipalRoutes() {
  using namespace internal;
  router_.Add({.method = "POST",
               .pattern = "/v1/principals",
               .auth = Auth::kSigned,
               .signer_kinds = {"admin", "site"},
               .summary = "Register a principal (admin: any kind; a site PI: users of its site)",
               .tag = "principals",
               .request_schema = SObj({{"key", SKey()},
                                       {"kind", SStr("admin|agent|user")},
                                       {"name", SStr()},
                                       {"site", SStr()}},
                                      {"key", "kind", "name"}),
               .response_schema = PrincipalSchema(),
               .success_status = 201,
               .handler = [this](const ApiRequest& q) { return AddPrincipal(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/principals",
               .summary = "List principals",
               .tag = "principals",
               .response_schema = SObj({{"principals", SArr(PrincipalSchema())}}),
               .handler = [this](const ApiRequest& q) { return ListPrincipals(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/principals/{key}",
               .summary = "Get a principal by key",
               .tag = "principals",
               .response_schema = PrincipalSchema(),
               .handler = [this](const ApiRequest& q) {
                 return GetRow(q, kPrincipalSql, "key", "principal", PrincipalRowJson);
               }});
}

void Broker::RegisterSiteRoutes() {
  using namespace internal;
  router_.Add(
      {.method = "POST",
       .pattern = "/v1/sites",
       .auth = Auth::kSigned,
       .signer_kinds = {"admin"},
       .summary = "Register a site and its PI key (admin only); the PI key signs root rcaps",
       .tag = "sites",
       .request_schema =
           SObj({{"name", SStr("[a-z0-9.]{1,32}")}, {"pi", SKey()}, {"slice_limit", SInt()}},
                {"name", "pi"}),
       .response_schema = SiteSchema(),
       .success_status = 201,
       .handler = [this](const ApiRequest& q) { return AddSite(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/sites",
               .summary = "List sites",
               .tag = "sites",
               .response_schema = SObj({{"sites", SArr(SiteSchema())}}),
               .handler = [this](const ApiRequest& q) { return ListSites(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/sites/{site}",
               .summary = "Get a site",
               .tag = "sites",
               .response_schema = SiteSchema(),
               .handler = [this](const ApiRequest& q) {
                 return GetRow(q, std::string(kSiteSql) + " WHERE s.name=?", "site", "site",
                               SiteRowJson);
               }});
  router_.Add({.method = "POST",
               .pattern = "/v1/sites/{site}/nodes",
               .auth = Auth::kSigned,
               .signer_kinds = {"admin", "site"},
               .summary = "Register a node with its key and capacity (the site's PI or an admin)",
               .tag = "nodes",
               .request_schema = SObj({{"id", SStr()}, {"key", SKey()}, {"capacity", SResources()}},
                                      {"id", "key", "capacity"}),
               .response_schema = NodeSchema(),
               .success_status = 201,
               .handler = [this](const ApiRequest& q) { return AddNode(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/nodes",
               .summary = "List nodes (optionally of one site)",
               .tag = "nodes",
               .query_params = {{"site", "string", false, "only this site's nodes"}},
               .response_schema = SObj({{"nodes", SArr(NodeSchema())}}),
               .handler = [this](const ApiRequest& q) { return ListNodes(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/nodes/{node}",
               .summary = "Get a node",
               .tag = "nodes",
               .response_schema = NodeSchema(),
               .handler = [this](const ApiRequest& q) {
                 return GetRow(q, kNodeSql, "node", "node", NodeRowJson);
               }});
}

void Broker::RegisterSliceRoutes() {
  using namespace internal;
  router_.Add(
      {.method = "POST",
       .pattern = "/v1/slices",
       .auth = Auth::kSigned,
       .summary = "create_slice: <site>_<name>, by a member or PI of the site",
       .tag = "slices",
       .request_schema = SObj({{"name", SStr("^[a-z0-9.]+_[a-zA-Z0-9_.]+$, at most 64 chars")},
                               {"description", SStr()},
                               {"url", SStr("http:// or https://, at most 512 chars")}},
                              {"name"}),
       .response_schema = SliceSchema(),
       .success_status = 201,
       .handler = [this](const ApiRequest& q) { return CreateSlice(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/slices",
               .summary = "List slices (optionally of one site)",
               .tag = "slices",
               .query_params = {{"site", "string", false, "only this site's slices"}},
               .response_schema = SObj({{"slices", SArr(SliceSchema())}}),
               .handler = [this](const ApiRequest& q) { return ListSlices(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/slices/{slice}",
               .summary = "Get a slice",
               .tag = "slices",
               .response_schema = SliceSchema(),
               .handler = [this](const ApiRequest& q) { return GetSlice(q); }});
  router_.Add(
      {.method = "DELETE",
       .pattern = "/v1/slices/{slice}",
       .auth = Auth::kSigned,
       .summary = "delete_slice: ends everything of the slice in one transaction: its share bids "
                  "pay up to now and release the rest of their budgets (it leaves every node's "
                  "share table), its bindings go (node guards tear the slivers down)",
       .tag = "slices",
       .response_schema =
           SObj({{"deleted", SStr()}, {"share_bids", SArr(SStr("id of a share bid ended"))}}),
       .handler = [this](const ApiRequest& q) { return DeleteSlice(q); }});
}

// The slice updates, then the bindings.
void Broker::RegisterSliceUpdateRoutes() {
  using namespace internal;
  auto add_update = [this](std::string method, std::string suffix, std::string summary,
                           json request_schema, Handler handler) {
    router_.Add({.method = method,
                 .pattern = "/v1/slices/{slice}/" + suffix,
                 .auth = Auth::kSigned,
                 .summary = summary,
                 .tag = "slices",
                 .request_schema = request_schema,
                 .response_schema = SliceSchema(),
                 .handler = std::move(handler)});
  };
  add_update("PUT", "owners",
             "assign_owners: the slice's owner keys and their ssh keys (each key belongs to one "
             "owner; a plain string is the caller's; without ssh_keys the owners who stay keep "
             "theirs)",
             SObj({{"owners", SArr(SKey())},
                   {"ssh_keys",
                    SArr({{"oneOf", json::array({SshKeySchema(), SStr("the caller's key")})}})}},
                  {"owners"}),
             [this](const ApiRequest& q) { return SetSliceOwners(q); });
  add_update("PUT", "state", "set_state: the slice's boot script (at most 64 KiB)",
             SObj({{"boot_script", SStr()}}, {"boot_script"}),
             [this](const ApiRequest& q) { return SetSliceState(q); });
  add_update("PUT", "resources",
             "set_resources: the best-effort share of the slice's slivers in the CPU and link "
             "no rcap guarantees, and their disk and memory, within the site's sliver_limits",
             SObj({{"resources", SObj({{"share", SInt("weight, 1..max_share (default 1)")},
                                       {"disk_mib", SInt("0..max_disk_mib (default 64)")},
                                       {"mem_mib", SInt("1..max_mem_mib (default 256)")}})}},
                  {"resources"}),
             [this](const ApiRequest& q) { return SetSliceResources(q); });
  add_update("POST", "instantiate",
             "instantiate_slice: place slivers on these nodes (best-effort, plus the slice's "
             "rcaps there)",
             SObj({{"nodes", SArr(SStr())}}, {"nodes"}),
             [this](const ApiRequest& q) { return InstantiateSlice(q); });
  add_update("POST", "remove_nodes",
             "delete_slice_from_nodes: the slice leaves these nodes; their guards tear the "
             "slivers down on their next pass (the slice's rcaps there stay bound)",
             SObj({{"nodes", SArr(SStr())}}, {"nodes"}),
             [this](const ApiRequest& q) { return RemoveSliceNodes(q); });
  add_update("POST", "renew",
             "renew: extend the expiry (default now + 2 weeks, never beyond now + 8 weeks); the "
             "granted expiry is returned",
             SObj({{"expires", SInt("requested expiry, unix s")}}),
             [this](const ApiRequest& q) { return RenewSlice(q); });

  router_.Add({.method = "POST",
               .pattern = "/v1/slices/{slice}/bindings",
               .auth = Auth::kSigned,
               .summary = "bind: attach a verified rcap chain (root first) to the slice",
               .tag = "slices",
               .request_schema = SObj({{"chain", SArr(SRcap())}}, {"chain"}),
               .response_schema = BindingSchema(),
               .success_status = 201,
               .handler = [this](const ApiRequest& q) { return AddBinding(q); }});
  router_.Add({.method = "GET",
               .pattern = "/v1/slices/{slice}/bindings",
               .summary = "The chains bound to a slice, each with its state as the node guard "
                          "reported it (scheduled|active|redeemed|refused|expired)",
               .tag = "slices",
               .response_schema = SObj({{"slice", SStr()}, {"bindings", SArr(BindingSchema())}}),
               .handler = [this](const ApiRequest& q) { return ListBindings(q); }});
}

}  // namespace bourse::broker
