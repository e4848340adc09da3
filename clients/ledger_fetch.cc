#include "clients/ledger_fetch.h"

#include <algorithm>

#include "clients/client.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"

namespace bourse::clients {

core::Result<ledger::AuditReport> AuditUrl(const std::string& url,
                                           const std::optional<core::PublicKey>& expected_key,
                                           const ledger::AuditOptions& options) {
  Client c(url);
  BOURSE_ASSIGN_OR_RETURN(nlohmann::json kj, c.Call("GET", "/v1/ledger/key"));
  if (!kj.is_object() || !kj.contains("key") || !kj["key"].is_string()) {
    return core::InvalidArgument("GET /v1/ledger/key: malformed answer");
  }
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey served,
                          core::PublicKey::FromText(kj["key"].get<std::string>()));
  core::PublicKey key = expected_key.value_or(served);
  ledger::AuditReport report;
  report.key = key.ToText();
  if (expected_key && !(served == *expected_key)) {
    report.violation = ledger::Violation{"final", 0, "ledger_key",
                                         "the broker serves key " + served.ToText() +
                                             ", not the expected " + expected_key->ToText()};
    return report;
  }
  BOURSE_ASSIGN_OR_RETURN(nlohmann::json hj, c.Call("GET", "/v1/ledger/head"));
  auto head = ledger::TreeHeadFromJson(hj);
  if (!head.ok()) return core::InvalidArgument("GET /v1/ledger/head: " + head.status().message());
  ledger::LedgerAuditor auditor(key, options);
  constexpr uint64_t kPage = 10000;
  for (uint64_t from = 0; from < head->size; from += kPage) {
    uint64_t to = std::min<uint64_t>(head->size, from + kPage);
    BOURSE_ASSIGN_OR_RETURN(HttpReply r, c.Send("GET",
                                                "/v1/ledger/entries?from=" + std::to_string(from) +
                                                    "&to=" + std::to_string(to),
                                                "", false));
    if (!r.ok()) return StatusFromReply(r);
    if (!r.json.is_object() || !r.json.contains("entries") || !r.json["entries"].is_array() ||
        r.json["entries"].size() != to - from) {
      return core::InvalidArgument("GET /v1/ledger/entries: malformed answer");
    }
    for (const nlohmann::json& e : r.json["entries"]) {
      auto entry = ledger::EntryFromJson(e);
      if (!entry.ok()) {
        report.violation =
            ledger::Violation{"entry", from, "entry_format", entry.status().message()};
        report.summary = auditor.summary();
        return report;
      }
      if (!auditor.AddEntry(*entry)) break;
    }
    if (!auditor.ok()) break;
  }
  if (auditor.ok()) auditor.AddHead(*head);
  auditor.Finish();
  report.violation = auditor.violation();
  report.summary = auditor.summary();
  if (!report.ok()) return report;
  // The log only grows: the newest head must be consistent with the audited one.
  BOURSE_ASSIGN_OR_RETURN(nlohmann::json nj, c.Call("GET", "/v1/ledger/head"));
  auto now = ledger::TreeHeadFromJson(nj);
  if (!now.ok()) return core::InvalidArgument("GET /v1/ledger/head: " + now.status().message());
  core::Status st = ledger::VerifyTreeHead(*now, key);
  if (st.ok() && now->size > head->size) {
    BOURSE_ASSIGN_OR_RETURN(
        nlohmann::json pj,
        c.Call("GET", "/v1/ledger/proof/consistency?first=" + std::to_string(head->size) +
                          "&second=" + std::to_string(now->size)));
    auto path = ledger::ProofPathFromJson(pj.value("path", nlohmann::json()));
    if (!path.ok()) return core::InvalidArgument("consistency proof: " + path.status().message());
    st = ledger::VerifyConsistency(head->size, now->size, head->root, now->root, *path);
  } else if (st.ok() &&
             (now->size < head->size || (now->size == head->size && now->root != head->root))) {
    st = core::Unauthenticated("the broker's newest head does not extend the audited one");
  }
  if (!st.ok()) {
    report.violation = ledger::Violation{"head", now->size, "consistency", st.message()};
  }
  return report;
}

}  // namespace bourse::clients
