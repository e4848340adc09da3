// Accounts: balance, escrow and history per principal; admin mint; transfers.
#include "broker/broker.h"
#include "broker/internal/schemas.h"
#include "broker/internal/sql.h"
#include "broker/internal/util.h"
#include "core/json_codec.h"
#include "ledger/accounts.h"

namespace bourse::broker {

using internal::Stmt;
using nlohmann::json;

namespace {

// The body of mint and transfer: credits to move and their recipient.
struct Movement {
  core::PublicKey to;
  core::Money amount;
};

// Decodes `{to, amount}`. Errors: invalid_argument naming the field (an
// unknown field, a malformed key, an amount that is not a positive decimal).
core::Result<Movement> ParseMovement(const json& body) {
  BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "", {"to", "amount"}));
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey to, internal::KeyField(body, "to"));
  BOURSE_ASSIGN_OR_RETURN(const json* a, core::RequireMember(body, "", "amount"));
  BOURSE_ASSIGN_OR_RETURN(core::Money amount, core::MoneyFromJson(*a, "amount"));
  if (!amount.is_positive()) return core::InvalidArgument("amount: must be greater than 0");
  return Movement{std::move(to), amount};
}

// An account's balance, open escrows and their sum (unknown accounts are
// empty).
core::Result<json> AccountView(storage::Connection* db, const std::string& key) {
  BOURSE_ASSIGN_OR_RETURN(core::Money bal, ledger::Accounts::Balance(db, key));
  core::Money esc;
  json escrows = json::array();
  BOURSE_ASSIGN_OR_RETURN(auto open, ledger::Accounts::OpenEscrows(db, key));
  for (const auto& e : open) {
    BOURSE_ASSIGN_OR_RETURN(esc, esc.Add(e.remaining));
    escrows.push_back({{"id", e.id}, {"remaining", e.remaining.ToString()}});
  }
  return json{{"account", key},
              {"balance", bal.ToString()},
              {"escrow", esc.ToString()},
              {"escrows", escrows}};
}

// The seqs of at most `limit` history entries of `key` after `after`.
core::Result<std::vector<int64_t>> HistorySeqs(storage::Connection* db, const std::string& key,
                                               int64_t after, int64_t limit) {
  std::vector<int64_t> seqs;
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT seq FROM b_history WHERE account=? AND seq>? "
                                              "ORDER BY seq LIMIT ?"));
  s.Bind(1, key);
  s.Bind(2, after);
  s.Bind(3, limit);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    seqs.push_back(s.Int(0));
  }
  return seqs;
}

// The caller moves credits from its own account to a registered principal's.
core::Result<json> TransferFromCaller(Broker& broker, ledger::Txn& txn, const std::string& from,
                                      const core::PublicKey& to, const core::Money& amount) {
  BOURSE_RETURN_IF_ERROR(Broker::LookupPrincipal(txn, from).status());
  BOURSE_RETURN_IF_ERROR(internal::RequirePrincipal(txn.db(), to.ToText(), "to"));
  uint64_t seq = txn.next_seq();
  BOURSE_RETURN_IF_ERROR(broker.Transfer(txn, from, to.ToText(), amount));
  BOURSE_ASSIGN_OR_RETURN(core::Money bal, ledger::Accounts::Balance(txn.db(), from));
  return json{{"seq", seq},
              {"from", from},
              {"to", to.ToText()},
              {"amount", amount.ToString()},
              {"balance", bal.ToString()}};
}

}  // namespace

// ---- the routes ----

core::Result<ApiResponse> Broker::GetAccount(const ApiRequest& q) {
  const std::string key = q.Param("key");
  json out;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(out, AccountView(db, key));
    return core::Status::Ok();
  }));
  return JsonResponse(200, out);
}

core::Result<ApiResponse> Broker::GetAccountHistory(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(int64_t after, q.QueryInt("after", 0, core::kMaxSafeInteger, -1));
  BOURSE_ASSIGN_OR_RETURN(int64_t limit, q.QueryInt("limit", 1, 1000, 100));
  const std::string key = q.Param("key");
  std::vector<int64_t> seqs;
  BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
    BOURSE_ASSIGN_OR_RETURN(seqs, HistorySeqs(db, key, after, limit));
    return core::Status::Ok();
  }));
  json entries = json::array();
  for (int64_t seq : seqs) {
    BOURSE_ASSIGN_OR_RETURN(
        std::vector<std::string> t,
        store_->EntryTexts(static_cast<uint64_t>(seq), static_cast<uint64_t>(seq) + 1));
    if (!t.empty()) entries.push_back(internal::ParseStored(t[0]));
  }
  return JsonResponse(200, {{"account", key}, {"entries", entries}});
}

core::Result<json> Broker::MintInto(ledger::Txn& txn, const ApiRequest& q,
                                    const core::PublicKey& to, const core::Money& amount) {
  BOURSE_ASSIGN_OR_RETURN(Principal caller, LookupPrincipal(txn, q.caller_text));
  if (caller.kind != PrincipalKind::kAdmin) {
    return core::PermissionDenied("only an admin mints credits");
  }
  BOURSE_RETURN_IF_ERROR(internal::RequirePrincipal(txn.db(), to.ToText(), "to"));
  uint64_t seq = txn.next_seq();
  BOURSE_RETURN_IF_ERROR(ledger::Accounts::Mint(txn, *q.caller, to.ToText(), amount));
  BOURSE_RETURN_IF_ERROR(NoteHistory(txn, to.ToText()));
  BOURSE_ASSIGN_OR_RETURN(core::Money bal, ledger::Accounts::Balance(txn.db(), to.ToText()));
  return json{{"seq", seq},
              {"to", to.ToText()},
              {"amount", amount.ToString()},
              {"balance", bal.ToString()}};
}

// Async: no thread waits for the commit (the `writes` mix of
// bench/broker_load measures this path).
void Broker::MintCredits(const ApiRequest& q, Respond respond) {
  auto m = ParseMovement(q.json);
  if (!m.ok()) {
    respond([st = m.status()]() -> core::Result<ApiResponse> { return st; });
    return;
  }
  auto out = std::make_shared<json>();
  MutateAndRespond(
      [this, &q, m = *m, out](ledger::Txn& txn) -> core::Status {
        BOURSE_ASSIGN_OR_RETURN(*out, MintInto(txn, q, m.to, m.amount));
        return core::Status::Ok();
      },
      std::move(respond), [out]() -> core::Result<ApiResponse> { return JsonResponse(201, *out); });
}

core::Result<ApiResponse> Broker::TransferCredits(const ApiRequest& q) {
  BOURSE_ASSIGN_OR_RETURN(const Movement m, ParseMovement(q.json));
  if (m.to.ToText() == q.caller_text) return core::InvalidArgument("to: is the caller itself");
  json out;
  BOURSE_RETURN_IF_ERROR(Mutate([&](ledger::Txn& txn) -> core::Status {
                           BOURSE_ASSIGN_OR_RETURN(
                               out, TransferFromCaller(*this, txn, q.caller_text, m.to, m.amount));
                           return core::Status::Ok();
                         }).status());
  return JsonResponse(201, out);
}

// ---- the route table ----

void Broker::RegisterAccountRoutes() {
  using namespace internal;
  const json account_schema =
      SObj({{"account", SKey()},
            {"balance", SMoney()},
            {"escrow", SMoney()},
            {"escrows", SArr(SObj({{"id", SStr()}, {"remaining", SMoney()}}))}});
  const json movement = SObj({{"to", SKey()}, {"amount", SMoney()}}, {"to", "amount"});
  const json moved = SObj({{"seq", SInt()},
                           {"from", SKey()},
                           {"to", SKey()},
                           {"amount", SMoney()},
                           {"balance", SMoney()}});
  router_.Add({.method = "GET",
               .pattern = "/v1/accounts/{key}",
               .summary = "An account's balance and escrow (unknown accounts are empty)",
               .tag = "accounts",
               .response_schema = account_schema,
               .handler = [this](const ApiRequest& q) { return GetAccount(q); }});
  router_.Add(
      {.method = "GET",
       .pattern = "/v1/accounts/{key}/history",
       .summary = "The ledger entries that moved this account's credits, oldest first",
       .tag = "accounts",
       .query_params = {{"after", "integer", false, "only entries with seq > after"},
                        {"limit", "integer", false, "at most this many (default 100, max 1000)"}},
       .response_schema = SObj({{"account", SKey()}, {"entries", SArr(SObj({}, {}, false))}}),
       .handler = [this](const ApiRequest& q) { return GetAccountHistory(q); }});
  router_.Add({.method = "POST",
               .pattern = "/v1/accounts/mint",
               .auth = Auth::kSigned,
               .signer_kinds = {"admin"},
               .summary = "Mint credits into an account (admin only; the one "
                          "way credits appear)",
               .tag = "accounts",
               .request_schema = movement,
               .response_schema = moved,
               .success_status = 201,
               .async_handler = [this](const ApiRequest& q, Respond respond) {
                 MintCredits(q, std::move(respond));
               }});
  router_.Add({.method = "POST",
               .pattern = "/v1/accounts/transfer",
               .auth = Auth::kSigned,
               .summary = "Transfer credits from the caller's account to another principal's",
               .tag = "accounts",
               .request_schema = movement,
               .response_schema = moved,
               .success_status = 201,
               .handler = [this](const ApiRequest& q) { return TransferCredits(q); }});
}

}  // namespace bourse::broker
