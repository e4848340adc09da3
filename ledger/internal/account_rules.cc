#include "ledger/internal/account_rules.h"

#include "core/json_codec.h"
#include "core/keys.h"

namespace bourse::ledger::internal {

using core::Money;
using core::Result;
using core::Status;

namespace {

Result<std::string> IdField(const nlohmann::json& body, std::string_view key) {
  std::string field = "body." + std::string(key);
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* v, core::RequireMember(body, "body", key));
  BOURSE_ASSIGN_OR_RETURN(std::string s, core::StringFromJson(*v, field, 256));
  BOURSE_RETURN_IF_ERROR(CheckAccountId(s, field));
  return s;
}

Result<Money> AmountField(const nlohmann::json& body) {
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* v, core::RequireMember(body, "body", "amount"));
  BOURSE_ASSIGN_OR_RETURN(Money m, core::MoneyFromJson(*v, "body.amount"));
  if (!m.is_positive()) return core::InvalidArgument("body.amount: must be positive");
  if (v->get_ref<const std::string&>() != m.ToString()) {
    return core::InvalidArgument("body.amount: must be in canonical form \"" + m.ToString() + "\"");
  }
  return m;
}

Result<std::string> KeyField(const nlohmann::json& body, std::string_view key) {
  std::string field = "body." + std::string(key);
  BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* v, core::RequireMember(body, "body", key));
  BOURSE_ASSIGN_OR_RETURN(std::string s, core::StringFromJson(*v, field, 128));
  auto k = core::PublicKey::FromText(s);
  if (!k.ok()) return core::InvalidArgument(field + ": " + k.status().message());
  return s;
}

Status Insufficient(const std::string& who, const Money& have, const Money& need) {
  return core::FailedPrecondition("insufficient funds: " + who + " has " + have.ToString() +
                                  ", needs " + need.ToString());
}

}  // namespace

Status CheckAccountId(std::string_view id, std::string_view field) {
  if (id.empty() || id.size() > 256) {
    return core::InvalidArgument(std::string(field) + ": must be 1 to 256 bytes");
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c > 0x7e) {
      return core::InvalidArgument(std::string(field) + ": only printable ASCII allowed");
    }
  }
  return Status::Ok();
}

bool IsCreditEntryType(std::string_view t) {
  return t == kEntryAdminAdded || t == kEntryMint || t == kEntryTransfer || t == kEntryEscrowHold ||
         t == kEntryEscrowRelease || t == kEntryEscrowSettle || t == kEntryEscrowTopUp;
}

Status ApplyCreditEntry(AccountView& v, std::string_view type, const nlohmann::json& body) {
  if (type == kEntryAdminAdded) {
    BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "body", {"admin", "by"}));
    BOURSE_ASSIGN_OR_RETURN(std::string admin, KeyField(body, "admin"));
    BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* by, core::RequireMember(body, "body", "by"));
    BOURSE_ASSIGN_OR_RETURN(bool has_admins, v.HasAdmins());
    if (by->is_null()) {
      if (has_admins) {
        return core::PermissionDenied(
            "admin_added: only an admin may add an admin once one exists");
      }
    } else {
      BOURSE_ASSIGN_OR_RETURN(std::string by_text, KeyField(body, "by"));
      BOURSE_ASSIGN_OR_RETURN(bool is_admin, v.IsAdmin(by_text));
      if (!is_admin) return core::PermissionDenied("admin_added: " + by_text + " is not an admin");
    }
    BOURSE_ASSIGN_OR_RETURN(bool already, v.IsAdmin(admin));
    if (already) return core::AlreadyExists("admin_added: " + admin + " is already an admin");
    return v.AddAdmin(admin);
  }
  if (type == kEntryMint) {
    BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "body", {"account", "amount", "by"}));
    BOURSE_ASSIGN_OR_RETURN(std::string account, IdField(body, "account"));
    BOURSE_ASSIGN_OR_RETURN(Money amount, AmountField(body));
    BOURSE_ASSIGN_OR_RETURN(std::string by, KeyField(body, "by"));
    BOURSE_ASSIGN_OR_RETURN(bool is_admin, v.IsAdmin(by));
    if (!is_admin) return core::PermissionDenied("mint: " + by + " is not an admin");
    BOURSE_ASSIGN_OR_RETURN(Money bal, v.GetBalance(account));
    BOURSE_ASSIGN_OR_RETURN(Money nb, bal.Add(amount));
    BOURSE_RETURN_IF_ERROR(v.SetBalance(account, nb));
    return v.AddMinted(amount);
  }
  if (type == kEntryTransfer) {
    BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "body", {"amount", "from", "to"}));
    BOURSE_ASSIGN_OR_RETURN(std::string from, IdField(body, "from"));
    BOURSE_ASSIGN_OR_RETURN(std::string to, IdField(body, "to"));
    BOURSE_ASSIGN_OR_RETURN(Money amount, AmountField(body));
    if (from == to) return core::InvalidArgument("transfer: from and to are the same account");
    BOURSE_ASSIGN_OR_RETURN(Money fb, v.GetBalance(from));
    if (fb < amount) return Insufficient("account " + from, fb, amount);
    BOURSE_ASSIGN_OR_RETURN(Money tb, v.GetBalance(to));
    BOURSE_ASSIGN_OR_RETURN(Money fb2, fb.Sub(amount));
    BOURSE_ASSIGN_OR_RETURN(Money tb2, tb.Add(amount));
    BOURSE_RETURN_IF_ERROR(v.SetBalance(from, fb2));
    return v.SetBalance(to, tb2);
  }
  if (type == kEntryEscrowHold) {
    BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "body", {"account", "amount", "escrow"}));
    BOURSE_ASSIGN_OR_RETURN(std::string account, IdField(body, "account"));
    BOURSE_ASSIGN_OR_RETURN(std::string escrow, IdField(body, "escrow"));
    BOURSE_ASSIGN_OR_RETURN(Money amount, AmountField(body));
    BOURSE_ASSIGN_OR_RETURN(auto existing, v.GetEscrow(escrow));
    if (existing) return core::AlreadyExists("escrow_hold: escrow " + escrow + " already exists");
    BOURSE_ASSIGN_OR_RETURN(Money bal, v.GetBalance(account));
    if (bal < amount) return Insufficient("account " + account, bal, amount);
    BOURSE_ASSIGN_OR_RETURN(Money nb, bal.Sub(amount));
    BOURSE_RETURN_IF_ERROR(v.SetBalance(account, nb));
    return v.PutEscrow({escrow, account, amount});
  }
  if (type == kEntryEscrowRelease || type == kEntryEscrowSettle) {
    bool settle = type == kEntryEscrowSettle;
    if (settle) {
      BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "body", {"amount", "escrow", "to"}));
    } else {
      BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "body", {"amount", "escrow"}));
    }
    BOURSE_ASSIGN_OR_RETURN(std::string escrow, IdField(body, "escrow"));
    BOURSE_ASSIGN_OR_RETURN(Money amount, AmountField(body));
    std::string to;
    if (settle) {
      BOURSE_ASSIGN_OR_RETURN(to, IdField(body, "to"));
    }
    BOURSE_ASSIGN_OR_RETURN(auto e, v.GetEscrow(escrow));
    if (!e) return core::NotFound(std::string(type) + ": no escrow " + escrow);
    if (e->remaining < amount) return Insufficient("escrow " + escrow, e->remaining, amount);
    if (!settle) to = e->account;
    BOURSE_ASSIGN_OR_RETURN(Money tb, v.GetBalance(to));
    BOURSE_ASSIGN_OR_RETURN(Money tb2, tb.Add(amount));
    BOURSE_ASSIGN_OR_RETURN(Money rem, e->remaining.Sub(amount));
    e->remaining = rem;
    BOURSE_RETURN_IF_ERROR(v.PutEscrow(*e));
    return v.SetBalance(to, tb2);
  }
  if (type == kEntryEscrowTopUp) {
    BOURSE_RETURN_IF_ERROR(core::CheckObjectFields(body, "body", {"amount", "escrow"}));
    BOURSE_ASSIGN_OR_RETURN(std::string escrow, IdField(body, "escrow"));
    BOURSE_ASSIGN_OR_RETURN(Money amount, AmountField(body));
    BOURSE_ASSIGN_OR_RETURN(auto e, v.GetEscrow(escrow));
    if (!e) return core::NotFound("escrow_topup: no escrow " + escrow);
    if (!e->remaining.is_positive()) {  // an emptied escrow is over
      return core::NotFound("escrow_topup: escrow " + escrow +
                            " is closed (nothing remains in it)");
    }
    BOURSE_ASSIGN_OR_RETURN(Money bal, v.GetBalance(e->account));
    if (bal < amount) return Insufficient("account " + e->account, bal, amount);
    BOURSE_ASSIGN_OR_RETURN(Money nb, bal.Sub(amount));
    BOURSE_ASSIGN_OR_RETURN(Money rem, e->remaining.Add(amount));
    BOURSE_RETURN_IF_ERROR(v.SetBalance(e->account, nb));
    e->remaining = rem;
    return v.PutEscrow(*e);
  }
  return core::InvalidArgument("not a credit entry type: " + std::string(type));
}

}  // namespace bourse::ledger::internal
