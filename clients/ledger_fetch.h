// Audits a broker's ledger over HTTP (DESIGN §7 endpoints), and fetches and
// verifies single proofs for `bourse ledger head|proof` (docs/ledger.md,
// "Auditing a running broker").
//
//   BOURSE_ASSIGN_OR_RETURN(UrlAuditReport rep,
//                           AuditUrl("http://127.0.0.1:8080", std::nullopt, {}));
//   if (!rep.ok()) puts(rep.violation->ToString().c_str());
//   BOURSE_ASSIGN_OR_RETURN(InclusionCheck inc, CheckInclusion(url, 17, std::nullopt, {}));
//   if (!inc.verdict.ok()) puts(inc.verdict.message().c_str());
//
// AuditUrl takes the signed head H first, then:
//  - replays entries [0, H.size) in pages through ledger::LedgerAuditor (the
//    same checks as `ledger verify --db`), feeding it every head the broker
//    has published up to H (GET /v1/ledger/heads, in pages) just ahead of the
//    replay: each head's signature is checked and its root must equal the
//    replayed root at its size; H itself must be one of the published heads;
//  - checks the broker's consistency proofs between consecutive published
//    heads: the first pair, the last pair and a random sample (a reservoir of
//    `consistency_samples` pairs) of those up to H (their consistency already
//    follows from the replay; the proofs check what the broker serves), and
//    every pair among the next `heads_after` heads published after H, then
//    from the last of those to the newest head;
//  - checks inclusion proofs at H for the first and last entry and up to
//    `inclusion_samples` random others, against the leaf hashes it replayed.
// Every proof is verified locally with ledger/merkle.h. Requests: one per
// 10000 entries, one per 1000 heads, plus at most inclusion_samples + 2 +
// consistency_samples + 2 + heads_after + 1 proofs. Memory: the auditor's
// state plus one page.
//
// Thread safety: every function is safe from any thread (its own connection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/keys.h"
#include "core/random.h"
#include "core/status.h"
#include "ledger/audit.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"

namespace bourse::clients {

struct UrlAuditOptions {
  int inclusion_samples = 32;         // random seqs besides the first and last
  int consistency_samples = 32;       // random pairs of consecutive heads up to H
  int heads_after = 64;               // heads published after H checked pair by pair
  core::RandomSource* rng = nullptr;  // nullptr: SystemRandom
};

struct UrlAuditReport : ledger::AuditReport {
  uint64_t heads_fetched = 0;       // published heads read
  uint64_t inclusion_proofs = 0;    // fetched and verified
  uint64_t consistency_proofs = 0;  // fetched and verified
};

// `expected_key`: trust this ledger key; without it the key the broker serves
// is used (and printed by the CLI so an operator can compare).
// A failed check is a violation in the report naming the seq or head size.
// Errors (not violations): unavailable when the broker cannot be reached or
// answers 5xx; the broker's own code when it refuses (4xx); invalid_argument
// when its answers are malformed.
core::Result<UrlAuditReport> AuditUrl(const std::string& url,
                                      const std::optional<core::PublicKey>& expected_key,
                                      const ledger::AuditOptions& options,
                                      const UrlAuditOptions& url_options = {});

// The broker's current head, and whether its signature verifies with the
// ledger key (`expected_key`, else the one the broker serves).
struct HeadCheck {
  ledger::TreeHead head;
  std::string key;       // "ed25519:..." used
  core::Status verdict;  // unauthenticated naming what failed
};
core::Result<HeadCheck> CheckHead(const std::string& url,
                                  const std::optional<core::PublicKey>& expected_key);

// The root of the first `size` leaves as the auditor trusts it: the root of
// the published head of that size (signature checked); when no head of that
// size was published, the root computed from entries [0, size) and proven
// consistent (a consistency proof from the broker, verified locally) with the
// current signed head.
struct TrustedRoot {
  uint64_t size = 0;
  ledger::Hash root{};
  std::string source;  // "signed head" or "entries, consistent with the head of size N"
};

struct InclusionCheck {
  uint64_t seq = 0;
  TrustedRoot at;
  ledger::Hash leaf{};
  std::vector<ledger::Hash> path;
  core::Status verdict;  // unauthenticated naming what failed
};
// Entry `seq` is in the tree of `size` (default: the current head's size).
// Errors: invalid_argument when seq >= size or size is beyond the ledger.
core::Result<InclusionCheck> CheckInclusion(const std::string& url, uint64_t seq,
                                            std::optional<uint64_t> size,
                                            const std::optional<core::PublicKey>& expected_key);

struct ConsistencyCheck {
  TrustedRoot first, second;
  std::vector<ledger::Hash> path;
  core::Status verdict;  // unauthenticated naming what failed
};
// The tree of size `first` is a prefix of the tree of size `second`.
// Errors: invalid_argument when first > second or second is beyond the ledger.
core::Result<ConsistencyCheck> CheckConsistency(const std::string& url, uint64_t first,
                                                uint64_t second,
                                                const std::optional<core::PublicKey>& expected_key);

}  // namespace bourse::clients
