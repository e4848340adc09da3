// Broker::ExpireBindings (broker.h): the ledger's record of each binding's
// end. A binding whose rcap's not_after has passed reads as `expired`
// (internal/binding_state.cc) from that instant; this writes the state
// change DESIGN 4 lists ("rcap ... expired") once, soon after: on the next
// markets tick (every second by default).
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/internal/sql.h"
#include "ledger/accounts.h"

namespace bourse::broker {

using internal::Stmt;

namespace {

struct DueBinding {
  std::string leaf;
  std::string slice;
};

// Up to `limit` bindings not yet marked whose rcap has ended by now_s,
// oldest end first (the partial index b_bindings_due holds exactly these).
core::Result<std::vector<DueBinding>> DueBindings(storage::Connection* db, int64_t now_s,
                                                  int limit) {
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT leaf,slice FROM b_bindings WHERE "
                                              "expired_seq IS NULL AND not_after<=? "
                                              "ORDER BY not_after,leaf LIMIT ?"));
  s.Bind(1, now_s);
  s.Bind(2, limit);
  std::vector<DueBinding> out;
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({s.Text(0), s.Text(1)});
  }
  return out;
}

// In one transaction: rcap_expired for each due binding and its mark.
core::Status ExpireBatch(ledger::Txn& txn, size_t* written) {
  const int64_t now_s = txn.now_millis() / 1000;
  BOURSE_ASSIGN_OR_RETURN(std::vector<DueBinding> due,
                          DueBindings(txn.db(), now_s, Broker::kExpireBatch));
  for (const DueBinding& d : due) {
    BOURSE_ASSIGN_OR_RETURN(ledger::Rcap leaf, ledger::CapacityLog::Get(txn.db(), d.leaf));
    const uint64_t seq = txn.next_seq();
    BOURSE_RETURN_IF_ERROR(ledger::CapacityLog::RecordExpired(txn, leaf, d.slice));
    BOURSE_ASSIGN_OR_RETURN(Stmt mark,
                            txn.Prepare("UPDATE b_bindings SET expired_seq=? WHERE leaf=? AND "
                                        "expired_seq IS NULL"));
    mark.Bind(1, static_cast<int64_t>(seq));
    mark.Bind(2, d.leaf);
    BOURSE_RETURN_IF_ERROR(mark.Run());
  }
  *written = due.size();
  return core::Status::Ok();
}

}  // namespace

core::Status Broker::ExpireBindings() {
  for (int batch = 0; batch < kExpireBatches; ++batch) {
    // A read first, so an idle tick commits nothing (no empty batch, no head).
    bool any = false;
    BOURSE_RETURN_IF_ERROR(Read([&](storage::Connection* db) -> core::Status {
      BOURSE_ASSIGN_OR_RETURN(std::vector<DueBinding> due,
                              DueBindings(db, clock_->NowSeconds(), 1));
      any = !due.empty();
      return core::Status::Ok();
    }));
    if (!any) return core::Status::Ok();
    size_t written = 0;
    BOURSE_RETURN_IF_ERROR(
        Mutate([&](ledger::Txn& txn) { return ExpireBatch(txn, &written); }).status());
    if (written < static_cast<size_t>(kExpireBatch)) return core::Status::Ok();
  }
  return core::Status::Ok();
}

}  // namespace bourse::broker
