// `bourse ledger ...` commands as plain functions (cli_ledger.cc), so any
// argument parser can call them. Each prints its result (a summary, or one
// JSON document when `json`) on stdout, errors as `error: <code>: <message>`
// on stderr, and returns the exit code of DESIGN §8: 0 ok; 1 a check failed
// or the broker refused (4xx); 3 the broker unreachable or 5xx (3 also when
// a --db file cannot be read).
//
// `ledger_key`: trust this ledger key; without it, the key the broker (or
// the file) records is used and printed. What each checks: docs/ledger.md,
// "Auditing a running broker".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/keys.h"
#include "ledger/audit.h"

namespace bourse::clients {

// `ledger verify --db PATH`: AuditStore.
int LedgerVerifyDb(const std::string& db, const std::optional<core::PublicKey>& ledger_key,
                   const ledger::AuditOptions& options, bool json);
// `ledger verify --url URL`: AuditUrl (clients/ledger_fetch.h).
int LedgerVerifyUrl(const std::string& url, const std::optional<core::PublicKey>& ledger_key,
                    const ledger::AuditOptions& options, bool json);
// `ledger head`: the current signed head, its signature checked.
int LedgerHead(const std::string& url, const std::optional<core::PublicKey>& ledger_key, bool json);
// `ledger proof inclusion SEQ [--size N]` (size: the current head's by default).
int LedgerProofInclusion(const std::string& url, uint64_t seq, std::optional<uint64_t> size,
                         const std::optional<core::PublicKey>& ledger_key, bool json);
// `ledger proof consistency M N`.
int LedgerProofConsistency(const std::string& url, uint64_t first, uint64_t second,
                           const std::optional<core::PublicKey>& ledger_key, bool json);

}  // namespace bourse::clients
