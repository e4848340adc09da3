// The credit rules, written once and applied both by Accounts (on SQLite
// tables, inside a store transaction) and by the ledger auditor (in memory,
// on replay), so what is written and what is checked cannot drift apart.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/money.h"
#include "core/status.h"
#include "ledger/accounts.h"

namespace bourse::ledger::internal {

class AccountView {
 public:
  virtual ~AccountView() = default;
  virtual core::Result<core::Money> GetBalance(const std::string& account) = 0;
  virtual core::Status SetBalance(const std::string& account, const core::Money& m) = 0;
  virtual core::Result<std::optional<EscrowState>> GetEscrow(const std::string& id) = 0;
  virtual core::Status PutEscrow(const EscrowState& e) = 0;  // insert or replace
  virtual core::Result<bool> IsAdmin(const std::string& key_text) = 0;
  virtual core::Result<bool> HasAdmins() = 0;
  virtual core::Status AddAdmin(const std::string& key_text) = 0;
  virtual core::Status AddMinted(const core::Money& m) = 0;
};

// Is this one of the credit entry types?
bool IsCreditEntryType(std::string_view type);

// Checks a credit entry's body strictly and applies it. All checks happen
// before the first write. Errors as accounts.h documents.
core::Status ApplyCreditEntry(AccountView& view, std::string_view type, const nlohmann::json& body);

// Account / escrow id check: 1..256 bytes of printable ASCII.
core::Status CheckAccountId(std::string_view id, std::string_view field);

}  // namespace bourse::ledger::internal
