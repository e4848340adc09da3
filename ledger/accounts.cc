#include "ledger/accounts.h"

#include <sqlite3.h>

#include <unordered_map>

#include "core/canonical_json.h"
#include "core/json_codec.h"
#include "ledger/internal/account_rules.h"
#include "ledger/internal/capacity_rules.h"
#include "ledger/internal/sqlite_util.h"
#include "ledger/internal/timeline.h"
#include "storage/sqlite.h"

namespace bourse::ledger {

using core::Money;
using core::Result;
using core::Status;
using internal::Resetter;

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
    // A store written before the capacity book gains its roots here.
    "INSERT OR IGNORE INTO rcap_roots SELECT id, json_extract(data, '$.node'), cpu, mem, disk,"
    " netmin, nb, na FROM rcap_tickets WHERE parent IS NULL;";

bool NoSuchTable(sqlite3* db) {
  const char* m = sqlite3_errmsg(db);
  return m && std::string_view(m).find("no such table") != std::string_view::npos;
}

// Statements either cached on the store's writer (inside a Txn) or owned here
// (read connections).
class Sql {
 public:
  explicit Sql(Txn& txn) : txn_(&txn), db_(txn.db()->raw()) {}
  explicit Sql(storage::Connection* db) : db_(db->raw()) {}

  // Ok(nullptr) when a table does not exist (read side only).
  Result<sqlite3_stmt*> Get(const char* sql) {
    if (txn_) {
      auto s = txn_->Prepare(sql);
      if (s.ok()) return s->raw();  // reset again when next fetched
      if (!NoSuchTable(db_)) return s.status();
      BOURSE_RETURN_IF_ERROR(txn_->Exec(kSchema));
      BOURSE_ASSIGN_OR_RETURN(storage::Statement again, txn_->Prepare(sql));
      return again.raw();
    }
    auto it = owned_.find(sql);
    if (it != owned_.end()) {
      sqlite3_reset(it->second.get());
      sqlite3_clear_bindings(it->second.get());
      return it->second.get();
    }
    internal::Stmt st;
    int rc = sqlite3_prepare_v2(db_, sql, -1, st.out(), nullptr);
    if (rc != SQLITE_OK) {
      if (NoSuchTable(db_)) return static_cast<sqlite3_stmt*>(nullptr);
      return internal::SqliteError(db_, "accounts");
    }
    sqlite3_stmt* raw = st.get();
    owned_.emplace(sql, std::move(st));
    return raw;
  }
  sqlite3* db() const { return db_; }

 private:
  Txn* txn_ = nullptr;
  sqlite3* db_;
  std::unordered_map<std::string, internal::Stmt> owned_;
};

Status StepDone(sqlite3_stmt* s, const char* what) {
  if (sqlite3_step(s) != SQLITE_DONE) return internal::SqliteError(sqlite3_db_handle(s), what);
  return Status::Ok();
}

Result<Money> MoneyColumn(sqlite3_stmt* s, int col, const char* what) {
  auto m = Money::Parse(internal::ColumnText(s, col));
  if (!m.ok()) return core::Internal(std::string(what) + ": stored amount unreadable");
  return m;
}

class SqlView final : public internal::AccountView {
 public:
  explicit SqlView(Sql& sql) : sql_(sql) {}

  Result<Money> GetBalance(const std::string& account) override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            sql_.Get("SELECT amount FROM acct_balances WHERE account=?"));
    if (!s) return Money();
    Resetter r(s);
    internal::BindTextStatic(s, 1, account);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return MoneyColumn(s, 0, "acct_balances");
    if (rc == SQLITE_DONE) return Money();
    return internal::SqliteError(sql_.db(), "acct_balances read");
  }
  Status SetBalance(const std::string& account, const Money& m) override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            sql_.Get("INSERT INTO acct_balances(account, amount) VALUES(?1,?2)"
                                     " ON CONFLICT(account) DO UPDATE SET amount=?2"));
    Resetter r(s);
    internal::BindTextStatic(s, 1, account);
    internal::BindText(s, 2, m.ToString());
    return StepDone(s, "acct_balances write");
  }
  Result<std::optional<EscrowState>> GetEscrow(const std::string& id) override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            sql_.Get("SELECT account, remaining FROM acct_escrows WHERE id=?"));
    if (!s) return std::optional<EscrowState>();
    Resetter r(s);
    internal::BindTextStatic(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      BOURSE_ASSIGN_OR_RETURN(Money rem, MoneyColumn(s, 1, "acct_escrows"));
      return std::optional<EscrowState>(EscrowState{id, internal::ColumnText(s, 0), rem});
    }
    if (rc == SQLITE_DONE) return std::optional<EscrowState>();
    return internal::SqliteError(sql_.db(), "acct_escrows read");
  }
  Status PutEscrow(const EscrowState& e) override {
    BOURSE_ASSIGN_OR_RETURN(
        sqlite3_stmt * s,
        sql_.Get("INSERT INTO acct_escrows(id, account, remaining) VALUES(?1,?2,?3)"
                 " ON CONFLICT(id) DO UPDATE SET remaining=?3"));
    Resetter r(s);
    internal::BindTextStatic(s, 1, e.id);
    internal::BindTextStatic(s, 2, e.account);
    internal::BindText(s, 3, e.remaining.ToString());
    return StepDone(s, "acct_escrows write");
  }
  Result<bool> IsAdmin(const std::string& key) override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s, sql_.Get("SELECT 1 FROM acct_admins WHERE key=?"));
    if (!s) return false;
    Resetter r(s);
    internal::BindTextStatic(s, 1, key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return internal::SqliteError(sql_.db(), "acct_admins read");
  }
  Result<bool> HasAdmins() override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s, sql_.Get("SELECT 1 FROM acct_admins LIMIT 1"));
    if (!s) return false;
    Resetter r(s);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return internal::SqliteError(sql_.db(), "acct_admins read");
  }
  Status AddAdmin(const std::string& key) override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s, sql_.Get("INSERT INTO acct_admins(key) VALUES(?)"));
    Resetter r(s);
    internal::BindTextStatic(s, 1, key);
    return StepDone(s, "acct_admins write");
  }
  Status AddMinted(const Money& m) override {
    BOURSE_ASSIGN_OR_RETURN(Money cur, Minted());
    BOURSE_ASSIGN_OR_RETURN(Money next, cur.Add(m));
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            sql_.Get("INSERT INTO acct_totals(k, v) VALUES('minted', ?1)"
                                     " ON CONFLICT(k) DO UPDATE SET v=?1"));
    Resetter r(s);
    internal::BindText(s, 1, next.ToString());
    return StepDone(s, "acct_totals write");
  }
  Result<Money> Minted() {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            sql_.Get("SELECT v FROM acct_totals WHERE k='minted'"));
    if (!s) return Money();
    Resetter r(s);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return MoneyColumn(s, 0, "acct_totals");
    if (rc == SQLITE_DONE) return Money();
    return internal::SqliteError(sql_.db(), "acct_totals read");
  }

 private:
  Sql& sql_;
};

Status ApplyAndAppend(Txn& txn, std::string_view type, nlohmann::json body) {
  Sql sql(txn);
  SqlView view(sql);
  BOURSE_RETURN_IF_ERROR(internal::ApplyCreditEntry(view, type, body));
  return txn.Append(type, std::move(body)).status();
}

nlohmann::json AmountJson(const Money& m) { return m.ToString(); }

// ---- rcap rows ----

Result<std::optional<Rcap>> LoadRcap(Sql& sql, std::string_view id) {
  BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s, sql.Get("SELECT data FROM rcap_tickets WHERE id=?"));
  if (!s) return std::optional<Rcap>();
  Resetter r(s);
  internal::BindTextStatic(s, 1, id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return std::optional<Rcap>();
  if (rc != SQLITE_ROW) return internal::SqliteError(sql.db(), "rcap_tickets read");
  auto rc2 = Rcap::Parse(internal::ColumnText(s, 0));
  if (!rc2.ok())
    return core::Internal("rcap_tickets: stored rcap unreadable: " + rc2.status().message());
  return std::optional<Rcap>(std::move(*rc2));
}

core::ResourceVector QuadColumns(sqlite3_stmt* s, int first) {
  return core::ResourceVector{.cpu_mcores = sqlite3_column_int64(s, first),
                              .mem_mib = sqlite3_column_int64(s, first + 1),
                              .disk_mib = sqlite3_column_int64(s, first + 2),
                              .net_min_kbps = sqlite3_column_int64(s, first + 3),
                              .net_max_kbps = 0};
}

// Use timeline from rows (cpu, mem, disk, netmin, nb, na) of `s`, bound to `key`.
Result<internal::Timeline> UseOf(Sql& sql, sqlite3_stmt* s, std::string_view key,
                                 const char* what) {
  internal::Timeline t;
  if (!s) return t;
  Resetter r(s);
  internal::BindTextStatic(s, 1, key);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    t.Add({sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5)}, QuadColumns(s, 0));
  }
  if (rc != SQLITE_DONE) return internal::SqliteError(sql.db(), what);
  return t;
}

// Binds (cpu, mem, disk, netmin, nb, na) of `r` from parameter `first` on:
// the columns UseOf reads back.
void BindUse(sqlite3_stmt* s, int first, const Rcap& r) {
  const int64_t v[6] = {r.res.cpu_mcores,   r.res.mem_mib,         r.res.disk_mib,
                        r.res.net_min_kbps, r.interval.not_before, r.interval.not_after};
  for (int i = 0; i < 6; ++i) sqlite3_bind_int64(s, first + i, v[i]);
}

Status InsertRcap(Sql& sql, const Rcap& r) {
  BOURSE_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      sql.Get("INSERT INTO rcap_tickets(id, parent, data, cpu, mem, disk, netmin, nb, na)"
              " VALUES(?,?,?,?,?,?,?,?,?)"));
  Resetter rs(s);
  internal::BindTextStatic(s, 1, r.id);
  if (r.parent) {
    internal::BindTextStatic(s, 2, *r.parent);
  } else {
    sqlite3_bind_null(s, 2);
  }
  internal::BindText(s, 3, r.Canonical());
  BindUse(s, 4, r);
  BOURSE_RETURN_IF_ERROR(StepDone(s, "rcap_tickets write"));
  if (r.parent) return Status::Ok();
  BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * t,
                          sql.Get("INSERT INTO rcap_roots(id, node, cpu, mem, disk, netmin, nb, na)"
                                  " VALUES(?,?,?,?,?,?,?,?)"));
  Resetter rt(t);
  internal::BindTextStatic(t, 1, r.id);
  internal::BindTextStatic(t, 2, r.node);
  BindUse(t, 3, r);
  return StepDone(t, "rcap_roots write");
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
        sqlite3_stmt * s,
        sql_.Get("SELECT cpu, mem, disk, netmin, nb, na FROM rcap_tickets WHERE parent=?"));
    BOURSE_ASSIGN_OR_RETURN(children_, UseOf(sql_, s, id, "rcap_tickets read"));
    return &children_;
  }
  Result<bool> HasChildren(const std::string& id) override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            sql_.Get("SELECT 1 FROM rcap_tickets WHERE parent=? LIMIT 1"));
    return Exists(s, id, "rcap_tickets read");
  }
  Result<std::optional<std::string>> BoundTo(const std::string& id) override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s, sql_.Get("SELECT slice FROM rcap_bound WHERE id=?"));
    if (!s) return std::optional<std::string>();
    Resetter r(s);
    internal::BindTextStatic(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return std::optional<std::string>(internal::ColumnText(s, 0));
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    return internal::SqliteError(sql_.db(), "rcap_bound read");
  }
  Result<std::optional<core::ResourceVector>> NodeCapacity(const std::string& node) override {
    BOURSE_ASSIGN_OR_RETURN(
        sqlite3_stmt * s,
        sql_.Get("SELECT cpu, mem, disk, netmin, netmax FROM rcap_nodes WHERE node=?"));
    if (!s) return std::optional<core::ResourceVector>();
    Resetter r(s);
    internal::BindTextStatic(s, 1, node);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      core::ResourceVector cap = QuadColumns(s, 0);
      cap.net_max_kbps = sqlite3_column_int64(s, 4);
      return std::optional<core::ResourceVector>(cap);
    }
    if (rc == SQLITE_DONE) return std::optional<core::ResourceVector>();
    return internal::SqliteError(sql_.db(), "rcap_nodes read");
  }
  Result<internal::Timeline*> RootsUse(const std::string& node) override {
    BOURSE_ASSIGN_OR_RETURN(
        sqlite3_stmt * s,
        sql_.Get("SELECT cpu, mem, disk, netmin, nb, na FROM rcap_roots WHERE node=?"));
    BOURSE_ASSIGN_OR_RETURN(roots_, UseOf(sql_, s, node, "rcap_roots read"));
    return &roots_;
  }
  Status PutRcap(const Rcap& r) override { return InsertRcap(sql_, r); }
  Status PutBound(const Rcap& r, const std::string& slice) override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            sql_.Get("INSERT INTO rcap_bound(id, slice) VALUES(?,?)"));
    Resetter rs(s);
    internal::BindTextStatic(s, 1, r.id);
    internal::BindTextStatic(s, 2, slice);
    return StepDone(s, "rcap_bound write");
  }
  Status PutNode(const std::string& node, const core::ResourceVector& cap) override {
    BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            sql_.Get("INSERT INTO rcap_nodes(node, cpu, mem, disk, netmin, netmax)"
                                     " VALUES(?,?,?,?,?,?)"));
    Resetter rs(s);
    internal::BindTextStatic(s, 1, node);
    sqlite3_bind_int64(s, 2, cap.cpu_mcores);
    sqlite3_bind_int64(s, 3, cap.mem_mib);
    sqlite3_bind_int64(s, 4, cap.disk_mib);
    sqlite3_bind_int64(s, 5, cap.net_min_kbps);
    sqlite3_bind_int64(s, 6, cap.net_max_kbps);
    return StepDone(s, "rcap_nodes write");
  }

 private:
  Result<bool> Exists(sqlite3_stmt* s, std::string_view key, const char* what) {
    if (!s) return false;
    Resetter r(s);
    internal::BindTextStatic(s, 1, key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return internal::SqliteError(sql_.db(), what);
  }
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

Status Accounts::EscrowRelease(Txn& txn, std::string_view escrow_id, const Money& amount) {
  nlohmann::json body{{"amount", AmountJson(amount)}, {"escrow", std::string(escrow_id)}};
  return ApplyAndAppend(txn, kEntryEscrowRelease, std::move(body));
}

Status Accounts::EscrowSettle(Txn& txn, std::string_view escrow_id, std::string_view to,
                              const Money& amount) {
  nlohmann::json body{
      {"amount", AmountJson(amount)}, {"escrow", std::string(escrow_id)}, {"to", std::string(to)}};
  return ApplyAndAppend(txn, kEntryEscrowSettle, std::move(body));
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
  BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                          sql.Get("SELECT id, remaining FROM acct_escrows WHERE account=?"
                                  " AND remaining!='0.000000000' ORDER BY id"));
  std::vector<EscrowState> out;
  if (!s) return out;
  internal::BindTextStatic(s, 1, account);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    BOURSE_ASSIGN_OR_RETURN(Money rem, MoneyColumn(s, 1, "acct_escrows"));
    out.push_back(EscrowState{internal::ColumnText(s, 0), std::string(account), rem});
  }
  if (rc != SQLITE_DONE) return internal::SqliteError(db->raw(), "acct_escrows read");
  return out;
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

Result<AccountTotals> Accounts::Totals(storage::Connection* db) {
  Sql sql(db);
  SqlView view(sql);
  AccountTotals t;
  BOURSE_ASSIGN_OR_RETURN(t.minted, view.Minted());
  BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s, sql.Get("SELECT amount FROM acct_balances"));
  if (s) {
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      BOURSE_ASSIGN_OR_RETURN(Money m, MoneyColumn(s, 0, "acct_balances"));
      BOURSE_ASSIGN_OR_RETURN(t.balances, t.balances.Add(m));
    }
    sqlite3_reset(s);
  }
  BOURSE_ASSIGN_OR_RETURN(s, sql.Get("SELECT remaining FROM acct_escrows"));
  if (s) {
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      BOURSE_ASSIGN_OR_RETURN(Money m, MoneyColumn(s, 0, "acct_escrows"));
      BOURSE_ASSIGN_OR_RETURN(t.escrowed, t.escrowed.Add(m));
    }
    sqlite3_reset(s);
  }
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
  BOURSE_ASSIGN_OR_RETURN(internal::Timeline * use, view.ChildrenUse(r->id));
  core::ResourceVector peak = use->Peak(window);
  core::ResourceVector free = r->res;
  free.cpu_mcores -= peak.cpu_mcores;
  free.mem_mib -= peak.mem_mib;
  free.disk_mib -= peak.disk_mib;
  free.net_min_kbps -= peak.net_min_kbps;
  return free;
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
  BOURSE_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                          sql.Get("INSERT OR IGNORE INTO rcap_redeemed(id) VALUES(?)"));
  {
    Resetter r(s);
    internal::BindTextStatic(s, 1, rcap.id);
    BOURSE_RETURN_IF_ERROR(StepDone(s, "rcap_redeemed write"));
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

Status CapacityLog::RecordExpired(Txn& txn, const Rcap& rcap) {
  Sql sql(txn);
  BOURSE_RETURN_IF_ERROR(RequireRecorded(sql, rcap));
  return txn.Append(kEntryRcapExpired, nlohmann::json{{"rcap", rcap.ToJson()}}).status();
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
  for (size_t i = 0; i <= kMaxChainLength; ++i) {
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
