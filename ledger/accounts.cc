#include "ledger/accounts.h"

#include <unordered_map>

#include "core/canonical_json.h"
#include "core/json_codec.h"
#include "ledger/internal/account_rules.h"
#include "ledger/internal/capacity_rules.h"
#include "ledger/internal/timeline.h"
#include "storage/sqlite.h"

namespace bourse::ledger {

using core::Money;
using core::Result;
using core::Status;

namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS acct_balances(account TEXT PRIMARY KEY, amount TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS acct_escrows(id TEXT PRIMARY KEY, account TEXT NOT NULL,"
    " remaining TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS acct_escrows_account ON acct_escrows(account);"
    "CREATE TABLE IF NOT EXISTS acct_admins(key TEXT PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS acct_totals(k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rcap_tickets(id TEXT PRIMARY KEY, parent TEXT, data TEXT NOT NULL,"
    " cpu INTEGER NOT NULL, mem INTEGER NOT NULL, disk INTEGER NOT NULL, netmin INTEGER NOT NULL,"
    " nb INTEGER NOT NULL, na INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS rcap_tickets_parent ON rcap_tickets(parent);"
    "CREATE TABLE IF NOT EXISTS rcap_redeemed(id TEXT PRIMARY KEY) WITHOUT ROWID;"
    // The capacity book (DESIGN 4.1): bindings, node capacities, roots by node.
    "CREATE TABLE IF NOT EXISTS rcap_bound(id TEXT PRIMARY KEY, slice TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rcap_nodes(node TEXT PRIMARY KEY, cpu INTEGER NOT NULL,"
    " mem INTEGER NOT NULL, disk INTEGER NOT NULL, netmin INTEGER NOT NULL,"
    " netmax INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rcap_roots(id TEXT PRIMARY KEY, node TEXT NOT NULL,"
    " cpu INTEGER NOT NULL, mem INTEGER NOT NULL, disk INTEGER NOT NULL, netmin INTEGER NOT NULL,"
    " nb INTEGER NOT NULL, na INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS rcap_roots_node ON rcap_roots(node);"
    // Unused escrows ended by rcap_released: no longer children of their parent.
    "CREATE TABLE IF NOT EXISTS rcap_released(id TEXT PRIMARY KEY) WITHOUT ROWID;"
    // A store written before the capacity book gains its roots here.
    "INSERT OR IGNORE INTO rcap_roots SELECT id, json_extract(data, '$.node'), cpu, mem, disk,"
    " netmin, nb, na FROM rcap_tickets WHERE parent IS NULL;";

using storage::Statement;

// True when the table `sql` names first does not exist (a store written
// before that table).
bool TableMissing(storage::Connection& c, std::string_view sql) {
  auto s = c.Cached("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?");
  if (!s.ok()) return false;
  s->Bind(1, storage::StatementTarget(sql));
  auto row = s->Step();
  return row.ok() && !*row;
}

// Statements cached on the store's writer (inside a Txn) or on a read
// connection; each handle resets its statement when it goes.
class Sql {
 public:
  explicit Sql(Txn& txn) : txn_(&txn), db_(txn.db()) {}
  explicit Sql(storage::Connection* db) : db_(db) {}

  // An invalid statement when a table does not exist (read side only).
  Result<Statement> Get(const char* sql) {
    if (txn_) {
      auto s = txn_->Prepare(sql);
      if (s.ok()) return s;
      // A table of kSchema is missing (a store from before it): made now; a
      // statement that still fails fails below.
      BOURSE_RETURN_IF_ERROR(txn_->Exec(kSchema));
      return txn_->Prepare(sql);
    }
    auto s = db_->Cached(sql);
    if (!s.ok() && TableMissing(*db_, sql)) return Statement();
    return s;
  }

 private:
  Txn* txn_ = nullptr;
  storage::Connection* db_;
};

Result<Money> MoneyColumn(const Statement& s, int col, const char* what) {
  auto m = Money::Parse(s.TextView(col));
  if (!m.ok()) return core::Internal(std::string(what) + ": stored amount unreadable");
  return m;
}

class SqlView final : public internal::AccountView {
 public:
  explicit SqlView(Sql& sql) : sql_(sql) {}

  Result<Money> GetBalance(const std::string& account) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s,
                            sql_.Get("SELECT amount FROM acct_balances WHERE account=?"));
    if (!s.valid()) return Money();
    s.BindStatic(1, account);
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return MoneyColumn(s, 0, "acct_balances");
    return Money();
  }
  Status SetBalance(const std::string& account, const Money& m) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s,
                            sql_.Get("INSERT INTO acct_balances(account, amount) VALUES(?1,?2)"
                                     " ON CONFLICT(account) DO UPDATE SET amount=?2"));
    s.BindStatic(1, account);
    s.Bind(2, m.ToString());
    return s.Run();
  }
  Result<std::optional<EscrowState>> GetEscrow(const std::string& id) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s,
                            sql_.Get("SELECT account, remaining FROM acct_escrows WHERE id=?"));
    if (!s.valid()) return std::optional<EscrowState>();
    s.BindStatic(1, id);
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<EscrowState>();
    BOURSE_ASSIGN_OR_RETURN(Money rem, MoneyColumn(s, 1, "acct_escrows"));
    last_escrow_account_ = s.Text(0);
    return std::optional<EscrowState>(EscrowState{id, last_escrow_account_, rem});
  }
  Status PutEscrow(const EscrowState& e) override {
    BOURSE_ASSIGN_OR_RETURN(
        Statement s, sql_.Get("INSERT INTO acct_escrows(id, account, remaining) VALUES(?1,?2,?3)"
                              " ON CONFLICT(id) DO UPDATE SET remaining=?3"));
    s.BindStatic(1, e.id);
    s.BindStatic(2, e.account);
    s.Bind(3, e.remaining.ToString());
    return s.Run();
  }
  Result<bool> IsAdmin(const std::string& key) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s, sql_.Get("SELECT 1 FROM acct_admins WHERE key=?"));
    if (!s.valid()) return false;
    s.BindStatic(1, key);
    return s.Step();
  }
  Result<bool> HasAdmins() override {
    BOURSE_ASSIGN_OR_RETURN(Statement s, sql_.Get("SELECT 1 FROM acct_admins LIMIT 1"));
    if (!s.valid()) return false;
    return s.Step();
  }
  Status AddAdmin(const std::string& key) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s, sql_.Get("INSERT INTO acct_admins(key) VALUES(?)"));
    s.BindStatic(1, key);
    return s.Run();
  }
  Status AddMinted(const Money& m) override {
    BOURSE_ASSIGN_OR_RETURN(Money cur, Minted());
    BOURSE_ASSIGN_OR_RETURN(Money next, cur.Add(m));
    BOURSE_ASSIGN_OR_RETURN(Statement s,
                            sql_.Get("INSERT INTO acct_totals(k, v) VALUES('minted', ?1)"
                                     " ON CONFLICT(k) DO UPDATE SET v=?1"));
    s.Bind(1, next.ToString());
    return s.Run();
  }
  Result<Money> Minted() {
    BOURSE_ASSIGN_OR_RETURN(Statement s, sql_.Get("SELECT v FROM acct_totals WHERE k='minted'"));
    if (!s.valid()) return Money();
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return MoneyColumn(s, 0, "acct_totals");
    return Money();
  }

  // The account of the escrow GetEscrow last found (release and settle
  // report it without reading the row again).
  const std::string& last_escrow_account() const { return last_escrow_account_; }

 private:
  Sql& sql_;
  std::string last_escrow_account_;
};

// `escrow_account`, when not null, gets the account of the escrow the entry
// names (release, settle).
Status ApplyAndAppend(Txn& txn, std::string_view type, nlohmann::json body,
                      std::string* escrow_account = nullptr) {
  Sql sql(txn);
  SqlView view(sql);
  BOURSE_RETURN_IF_ERROR(internal::ApplyCreditEntry(view, type, body));
  if (escrow_account != nullptr) *escrow_account = view.last_escrow_account();
  return txn.Append(type, std::move(body)).status();
}

nlohmann::json AmountJson(const Money& m) { return m.ToString(); }

// ---- rcap rows ----

Result<std::optional<Rcap>> LoadRcap(Sql& sql, std::string_view id) {
  BOURSE_ASSIGN_OR_RETURN(Statement s, sql.Get("SELECT data FROM rcap_tickets WHERE id=?"));
  if (!s.valid()) return std::optional<Rcap>();
  s.BindStatic(1, id);
  BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<Rcap>();
  auto rc2 = Rcap::Parse(s.Text(0));
  if (!rc2.ok())
    return core::Internal("rcap_tickets: stored rcap unreadable: " + rc2.status().message());
  return std::optional<Rcap>(std::move(*rc2));
}

core::ResourceVector QuadColumns(const Statement& s, int first) {
  return core::ResourceVector{.cpu_mcores = s.Int(first),
                              .mem_mib = s.Int(first + 1),
                              .disk_mib = s.Int(first + 2),
                              .net_min_kbps = s.Int(first + 3),
                              .net_max_kbps = 0};
}

// Use timeline from rows (cpu, mem, disk, netmin, nb, na) of `s`, bound to `key`.
Result<internal::Timeline> UseOf(Statement& s, std::string_view key) {
  internal::Timeline t;
  if (!s.valid()) return t;
  s.BindStatic(1, key);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return t;
    t.Add({s.Int(4), s.Int(5)}, QuadColumns(s, 0));
  }
}

// Binds (cpu, mem, disk, netmin, nb, na) of `r` from parameter `first` on:
// the columns UseOf reads back.
void BindUse(Statement& s, int first, const Rcap& r) {
  const int64_t v[6] = {r.res.cpu_mcores,   r.res.mem_mib,         r.res.disk_mib,
                        r.res.net_min_kbps, r.interval.not_before, r.interval.not_after};
  for (int i = 0; i < 6; ++i) s.Bind(first + i, v[i]);
}

Status InsertRcap(Sql& sql, const Rcap& r) {
  BOURSE_ASSIGN_OR_RETURN(
      Statement s,
      sql.Get("INSERT INTO rcap_tickets(id, parent, data, cpu, mem, disk, netmin, nb, na)"
              " VALUES(?,?,?,?,?,?,?,?,?)"));
  s.BindStatic(1, r.id);
  if (r.parent) {
    s.BindStatic(2, *r.parent);
  } else {
    s.BindNull(2);
  }
  s.Bind(3, r.Canonical());
  BindUse(s, 4, r);
  BOURSE_RETURN_IF_ERROR(s.Run());
  if (r.parent) return Status::Ok();
  BOURSE_ASSIGN_OR_RETURN(Statement t,
                          sql.Get("INSERT INTO rcap_roots(id, node, cpu, mem, disk, netmin, nb, na)"
                                  " VALUES(?,?,?,?,?,?,?,?)"));
  t.BindStatic(1, r.id);
  t.BindStatic(2, r.node);
  BindUse(t, 3, r);
  return t.Run();
}

Status RequireRecorded(Sql& sql, const Rcap& r) {
  BOURSE_ASSIGN_OR_RETURN(auto existing, LoadRcap(sql, r.id));
  if (!existing || !(*existing == r)) {
    return core::NotFound("rcap " + r.id + " is not recorded with this content");
  }
  return Status::Ok();
}

// The capacity book on the store's tables (the auditor has the in-memory one).
class SqlCapacityView final : public internal::CapacityView {
 public:
  explicit SqlCapacityView(Sql& sql) : sql_(sql) {}

  Result<std::optional<Rcap>> GetRcap(const std::string& id) override { return LoadRcap(sql_, id); }
  Result<internal::Timeline*> ChildrenUse(const std::string& id) override {
    BOURSE_ASSIGN_OR_RETURN(
        Statement s,
        sql_.Get("SELECT cpu, mem, disk, netmin, nb, na FROM rcap_tickets t WHERE parent=?"
                 " AND NOT EXISTS (SELECT 1 FROM rcap_released r WHERE r.id=t.id)"));
    BOURSE_ASSIGN_OR_RETURN(children_, UseOf(s, id));
    return &children_;
  }
  Result<bool> HasChildren(const std::string& id) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s,
                            sql_.Get("SELECT 1 FROM rcap_tickets t WHERE parent=? AND NOT EXISTS"
                                     " (SELECT 1 FROM rcap_released r WHERE r.id=t.id) LIMIT 1"));
    if (!s.valid()) return false;
    s.BindStatic(1, id);
    return s.Step();
  }
  Result<bool> IsReleased(const std::string& id) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s, sql_.Get("SELECT 1 FROM rcap_released WHERE id=?"));
    if (!s.valid()) return false;
    s.BindStatic(1, id);
    return s.Step();
  }
  Status PutReleased(const Rcap& r) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s, sql_.Get("INSERT INTO rcap_released(id) VALUES(?)"));
    s.BindStatic(1, r.id);
    return s.Run();
  }
  Result<std::optional<std::string>> BoundTo(const std::string& id) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s, sql_.Get("SELECT slice FROM rcap_bound WHERE id=?"));
    if (!s.valid()) return std::optional<std::string>();
    s.BindStatic(1, id);
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return std::optional<std::string>(s.Text(0));
    return std::optional<std::string>();
  }
  Result<std::optional<core::ResourceVector>> NodeCapacity(const std::string& node) override {
    BOURSE_ASSIGN_OR_RETURN(
        Statement s,
        sql_.Get("SELECT cpu, mem, disk, netmin, netmax FROM rcap_nodes WHERE node=?"));
    if (!s.valid()) return std::optional<core::ResourceVector>();
    s.BindStatic(1, node);
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<core::ResourceVector>();
    core::ResourceVector cap = QuadColumns(s, 0);
    cap.net_max_kbps = s.Int(4);
    return std::optional<core::ResourceVector>(cap);
  }
  Result<internal::Timeline*> RootsUse(const std::string& node) override {
    BOURSE_ASSIGN_OR_RETURN(
        Statement s,
        sql_.Get("SELECT cpu, mem, disk, netmin, nb, na FROM rcap_roots WHERE node=?"));
    BOURSE_ASSIGN_OR_RETURN(roots_, UseOf(s, node));
    return &roots_;
  }
  Status PutRcap(const Rcap& r) override { return InsertRcap(sql_, r); }
  Status PutBound(const Rcap& r, const std::string& slice) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s, sql_.Get("INSERT INTO rcap_bound(id, slice) VALUES(?,?)"));
    s.BindStatic(1, r.id);
    s.BindStatic(2, slice);
    return s.Run();
  }
  Status PutNode(const std::string& node, const core::ResourceVector& cap) override {
    BOURSE_ASSIGN_OR_RETURN(Statement s,
                            sql_.Get("INSERT INTO rcap_nodes(node, cpu, mem, disk, netmin, netmax)"
                                     " VALUES(?,?,?,?,?,?)"));
    s.BindStatic(1, node);
    s.Bind(2, cap.cpu_mcores);
    s.Bind(3, cap.mem_mib);
    s.Bind(4, cap.disk_mib);
    s.Bind(5, cap.net_min_kbps);
    s.Bind(6, cap.net_max_kbps);
    return s.Run();
  }

 private:
  Sql& sql_;
  internal::Timeline children_;  // scratch for ChildrenUse / RootsUse
  internal::Timeline roots_;
};

}  // namespace

// ---- Accounts -----------------------------------------------------------

Status Accounts::AddAdmin(Txn& txn, const core::PublicKey& admin, const core::PublicKey* by) {
  nlohmann::json body{{"admin", admin.ToText()},
                      {"by", by ? nlohmann::json(by->ToText()) : nlohmann::json(nullptr)}};
  return ApplyAndAppend(txn, kEntryAdminAdded, std::move(body));
}

Status Accounts::Mint(Txn& txn, const core::PublicKey& by, std::string_view account,
                      const Money& amount) {
  nlohmann::json body{
      {"account", std::string(account)}, {"amount", AmountJson(amount)}, {"by", by.ToText()}};
  return ApplyAndAppend(txn, kEntryMint, std::move(body));
}

Status Accounts::Transfer(Txn& txn, std::string_view from, std::string_view to,
                          const Money& amount) {
  nlohmann::json body{
      {"amount", AmountJson(amount)}, {"from", std::string(from)}, {"to", std::string(to)}};
  return ApplyAndAppend(txn, kEntryTransfer, std::move(body));
}

Status Accounts::EscrowHold(Txn& txn, std::string_view escrow_id, std::string_view account,
                            const Money& amount) {
  nlohmann::json body{{"account", std::string(account)},
                      {"amount", AmountJson(amount)},
                      {"escrow", std::string(escrow_id)}};
  return ApplyAndAppend(txn, kEntryEscrowHold, std::move(body));
}

Status Accounts::EscrowRelease(Txn& txn, std::string_view escrow_id, const Money& amount,
                               std::string* account) {
  nlohmann::json body{{"amount", AmountJson(amount)}, {"escrow", std::string(escrow_id)}};
  return ApplyAndAppend(txn, kEntryEscrowRelease, std::move(body), account);
}

Status Accounts::EscrowSettle(Txn& txn, std::string_view escrow_id, std::string_view to,
                              const Money& amount, std::string* account) {
  nlohmann::json body{
      {"amount", AmountJson(amount)}, {"escrow", std::string(escrow_id)}, {"to", std::string(to)}};
  return ApplyAndAppend(txn, kEntryEscrowSettle, std::move(body), account);
}

Status Accounts::EscrowTopUp(Txn& txn, std::string_view escrow_id, const Money& amount,
                             std::string* account) {
  nlohmann::json body{{"amount", AmountJson(amount)}, {"escrow", std::string(escrow_id)}};
  return ApplyAndAppend(txn, kEntryEscrowTopUp, std::move(body), account);
}

Result<Money> Accounts::Balance(storage::Connection* db, std::string_view account) {
  Sql sql(db);
  SqlView view(sql);
  return view.GetBalance(std::string(account));
}

Result<Money> Accounts::Balance(const Store& store, std::string_view account) {
  Money out;
  BOURSE_RETURN_IF_ERROR(store.Read([&](storage::Connection* db) -> Status {
    BOURSE_ASSIGN_OR_RETURN(out, Balance(db, account));
    return Status::Ok();
  }));
  return out;
}

Result<EscrowState> Accounts::Escrow(storage::Connection* db, std::string_view escrow_id) {
  Sql sql(db);
  SqlView view(sql);
  BOURSE_ASSIGN_OR_RETURN(auto e, view.GetEscrow(std::string(escrow_id)));
  if (!e) return core::NotFound("no escrow " + std::string(escrow_id));
  return *e;
}

Result<EscrowState> Accounts::Escrow(Txn& txn, std::string_view escrow_id) {
  Sql sql(txn);
  SqlView view(sql);
  BOURSE_ASSIGN_OR_RETURN(auto e, view.GetEscrow(std::string(escrow_id)));
  if (!e) return core::NotFound("no escrow " + std::string(escrow_id));
  return *e;
}

Result<std::vector<EscrowState>> Accounts::OpenEscrows(storage::Connection* db,
                                                       std::string_view account) {
  Sql sql(db);
  BOURSE_ASSIGN_OR_RETURN(Statement s,
                          sql.Get("SELECT id, remaining FROM acct_escrows WHERE account=?"
                                  " AND remaining!='0.000000000' ORDER BY id"));
  std::vector<EscrowState> out;
  if (!s.valid()) return out;
  s.BindStatic(1, account);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    BOURSE_ASSIGN_OR_RETURN(Money rem, MoneyColumn(s, 1, "acct_escrows"));
    out.push_back(EscrowState{s.Text(0), std::string(account), rem});
  }
}

Status Accounts::EnsureSchema(Txn& txn) { return txn.Exec(kSchema); }
Status Accounts::EnsureSchema(storage::Connection& conn) {
  return conn.Exec(kSchema, "accounts schema");
}

Result<EscrowState> Accounts::Escrow(const Store& store, std::string_view escrow_id) {
  std::optional<EscrowState> out;
  BOURSE_RETURN_IF_ERROR(store.Read([&](storage::Connection* db) -> Status {
    BOURSE_ASSIGN_OR_RETURN(out, Escrow(db, escrow_id));
    return Status::Ok();
  }));
  return *out;
}

Result<bool> Accounts::IsAdmin(storage::Connection* db, const core::PublicKey& key) {
  Sql sql(db);
  SqlView view(sql);
  return view.IsAdmin(key.ToText());
}

namespace {
// The sum of the amounts in column 0 of `query`'s rows (zero without the table).
Result<Money> SumColumn(Sql& sql, const char* query, const char* table) {
  Money sum;
  BOURSE_ASSIGN_OR_RETURN(Statement s, sql.Get(query));
  if (!s.valid()) return sum;
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return sum;
    BOURSE_ASSIGN_OR_RETURN(Money m, MoneyColumn(s, 0, table));
    BOURSE_ASSIGN_OR_RETURN(sum, sum.Add(m));
  }
}
}  // namespace

Result<AccountTotals> Accounts::Totals(storage::Connection* db) {
  Sql sql(db);
  SqlView view(sql);
  AccountTotals t;
  BOURSE_ASSIGN_OR_RETURN(t.minted, view.Minted());
  BOURSE_ASSIGN_OR_RETURN(t.balances,
                          SumColumn(sql, "SELECT amount FROM acct_balances", "acct_balances"));
  BOURSE_ASSIGN_OR_RETURN(t.escrowed,
                          SumColumn(sql, "SELECT remaining FROM acct_escrows", "acct_escrows"));
  return t;
}

Result<AccountTotals> Accounts::Totals(const Store& store) {
  AccountTotals out;
  BOURSE_RETURN_IF_ERROR(store.Read([&](storage::Connection* db) -> Status {
    BOURSE_ASSIGN_OR_RETURN(out, Totals(db));
    return Status::Ok();
  }));
  return out;
}

// ---- CapacityLog --------------------------------------------------------

Status CapacityLog::RecordNode(Txn& txn, std::string_view node,
                               const core::ResourceVector& capacity, nlohmann::json body) {
  BOURSE_ASSIGN_OR_RETURN(internal::NodeEntry e, internal::ParseNodeEntry(body));
  if (e.node != node || !(e.capacity == capacity)) {
    return core::InvalidArgument("node_added: body.node/body.capacity must be the node's");
  }
  Sql sql(txn);
  SqlCapacityView view(sql);
  BOURSE_RETURN_IF_ERROR(internal::ApplyNode(view, std::string(node), capacity));
  return txn.Append(kEntryNodeAdded, std::move(body)).status();
}

Status CapacityLog::RecordIssued(Txn& txn, const Rcap& root) {
  Sql sql(txn);
  SqlCapacityView view(sql);
  BOURSE_RETURN_IF_ERROR(internal::ApplyRoot(view, root, {}));
  return txn.Append(kEntryRcapIssued, nlohmann::json{{"rcap", root.ToJson()}}).status();
}

Status CapacityLog::RecordDelegated(Txn& txn, const Rcap& child) {
  if (!child.parent)
    return core::InvalidArgument("rcap_delegated: rcap " + child.id + " has no parent");
  Sql sql(txn);
  SqlCapacityView view(sql);
  BOURSE_RETURN_IF_ERROR(
      internal::ApplyChildren(view, *child.parent, std::span<const Rcap>(&child, 1), {}));
  return txn.Append(kEntryRcapDelegated, nlohmann::json{{"rcap", child.ToJson()}}).status();
}

Status CapacityLog::RecordSplit(Txn& txn, std::string_view parent_id,
                                std::span<const Rcap> children) {
  Sql sql(txn);
  SqlCapacityView view(sql);
  BOURSE_RETURN_IF_ERROR(internal::ApplyChildren(view, parent_id, children, {}));
  nlohmann::json arr = nlohmann::json::array();
  for (const Rcap& c : children) arr.push_back(c.ToJson());
  return txn
      .Append(kEntryRcapSplit,
              nlohmann::json{{"parent", std::string(parent_id)}, {"children", std::move(arr)}})
      .status();
}

Status CapacityLog::RecordBound(Txn& txn, const Rcap& rcap, std::string_view slice) {
  BOURSE_RETURN_IF_ERROR(internal::CheckAccountId(slice, "slice"));
  Sql sql(txn);
  SqlCapacityView view(sql);
  BOURSE_RETURN_IF_ERROR(internal::ApplyBind(view, rcap, std::string(slice)));
  return txn
      .Append(kEntryRcapBound,
              nlohmann::json{{"rcap", rcap.ToJson()}, {"slice", std::string(slice)}})
      .status();
}

Result<core::ResourceVector> CapacityLog::Free(Txn& txn, std::string_view id,
                                               const core::Interval& window) {
  Sql sql(txn);
  SqlCapacityView view(sql);
  BOURSE_ASSIGN_OR_RETURN(auto r, view.GetRcap(std::string(id)));
  if (!r) return core::NotFound("rcap " + std::string(id) + " is not recorded");
  BOURSE_ASSIGN_OR_RETURN(auto bound, view.BoundTo(r->id));
  if (bound) return core::ResourceVector{};
  BOURSE_ASSIGN_OR_RETURN(bool released, view.IsReleased(r->id));
  if (released) return core::ResourceVector{};
  BOURSE_ASSIGN_OR_RETURN(internal::Timeline * use, view.ChildrenUse(r->id));
  core::ResourceVector peak = use->Peak(window);
  core::ResourceVector free = r->res;
  free.cpu_mcores -= peak.cpu_mcores;
  free.mem_mib -= peak.mem_mib;
  free.disk_mib -= peak.disk_mib;
  free.net_min_kbps -= peak.net_min_kbps;
  return free;
}

Status CapacityLog::RecordReleased(Txn& txn, const Rcap& rcap, const core::PublicKey& broker) {
  Sql sql(txn);
  SqlCapacityView view(sql);
  BOURSE_RETURN_IF_ERROR(internal::ApplyRelease(view, rcap, broker));
  return txn.Append(kEntryRcapReleased, nlohmann::json{{"rcap", rcap.ToJson()}}).status();
}

Result<bool> CapacityLog::IsReleased(storage::Connection* db, std::string_view id) {
  Sql sql(db);
  SqlCapacityView view(sql);
  return view.IsReleased(std::string(id));
}

Result<bool> CapacityLog::InUse(storage::Connection* db, std::string_view id) {
  Sql sql(db);
  SqlCapacityView view(sql);
  BOURSE_ASSIGN_OR_RETURN(bool kids, view.HasChildren(std::string(id)));
  if (kids) return true;
  BOURSE_ASSIGN_OR_RETURN(auto bound, view.BoundTo(std::string(id)));
  return bound.has_value();
}

Result<std::optional<std::string>> CapacityLog::BoundTo(storage::Connection* db,
                                                        std::string_view id) {
  Sql sql(db);
  SqlCapacityView view(sql);
  return view.BoundTo(std::string(id));
}

Status CapacityLog::RecordRedeemed(Txn& txn, const Rcap& rcap, std::string_view node) {
  if (node != rcap.node) {
    return core::InvalidArgument("wrong_node: rcap " + rcap.id + " is for node " + rcap.node);
  }
  Sql sql(txn);
  BOURSE_RETURN_IF_ERROR(RequireRecorded(sql, rcap));
  BOURSE_ASSIGN_OR_RETURN(Statement s,
                          sql.Get("INSERT OR IGNORE INTO rcap_redeemed(id) VALUES(?)"));
  {
    s.BindStatic(1, rcap.id);
    BOURSE_RETURN_IF_ERROR(s.Run());
    if (txn.db()->Changes() == 0) {
      return core::FailedPrecondition("double_redemption: rcap " + rcap.id +
                                      " is already redeemed");
    }
  }
  return txn
      .Append(kEntryRcapRedeemed,
              nlohmann::json{{"node", std::string(node)}, {"rcap", rcap.ToJson()}})
      .status();
}

Status CapacityLog::RecordExpired(Txn& txn, const Rcap& rcap, std::string_view slice) {
  Sql sql(txn);
  BOURSE_RETURN_IF_ERROR(RequireRecorded(sql, rcap));
  SqlCapacityView view(sql);
  BOURSE_ASSIGN_OR_RETURN(std::optional<std::string> bound, view.BoundTo(rcap.id));
  if (!bound || *bound != slice) {
    return core::FailedPrecondition("not_bound: rcap " + rcap.id + " is not bound to slice " +
                                    std::string(slice));
  }
  if (txn.now_millis() < rcap.interval.not_after * 1000) {
    return core::FailedPrecondition("not_expired: rcap " + rcap.id + " is valid until " +
                                    std::to_string(rcap.interval.not_after));
  }
  return txn
      .Append(kEntryRcapExpired,
              nlohmann::json{
                  {"node", rcap.node}, {"rcap", rcap.ToJson()}, {"slice", std::string(slice)}})
      .status();
}

Result<Rcap> CapacityLog::Get(storage::Connection* db, std::string_view id) {
  Sql sql(db);
  BOURSE_ASSIGN_OR_RETURN(auto r, LoadRcap(sql, id));
  if (!r) return core::NotFound("rcap " + std::string(id) + " is not recorded");
  return std::move(*r);
}

Result<std::vector<Rcap>> CapacityLog::ChainOf(storage::Connection* db, std::string_view id) {
  Sql sql(db);
  std::vector<Rcap> rev;
  std::string cur(id);
  for (size_t i = 0; i < kMaxChainLength; ++i) {
    BOURSE_ASSIGN_OR_RETURN(auto r, LoadRcap(sql, cur));
    if (!r) return core::NotFound("rcap " + cur + " is not recorded");
    std::optional<std::string> parent = r->parent;
    rev.push_back(std::move(*r));
    if (!parent) {
      return std::vector<Rcap>(std::make_move_iterator(rev.rbegin()),
                               std::make_move_iterator(rev.rend()));
    }
    cur = *parent;
  }
  return core::FailedPrecondition("rcap " + std::string(id) + ": chain longer than allowed");
}

}  // namespace bourse::ledger
