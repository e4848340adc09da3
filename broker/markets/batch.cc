// Markets: batch orders (POST /v1/orders:batch, docs/markets.md "Batch
// orders"). Up to kMaxBatchOps places, cancels, moves and reduces, across
// markets, in one signed request and ONE commit: each op runs the single
// route's own code (internal/order_ops.h), and an op that fails is rolled
// back alone, with the error its route would give.
//
// Savepoints (docs/perf/batch.md): a placement runs in its own savepoint (it
// may be refused after it wrote, e.g. insufficient_funds after fills). A
// cancel, move or reduce makes all its checks (market fresh, order resting and
// the caller's, qty or price valid) before it writes anything, and after them
// it cannot fail but internally; so it runs without a savepoint of its own,
// its check failures being its result with nothing written. The whole batch
// runs in one savepoint: should an op without its own savepoint fail after
// it wrote (an internal error), the batch is rolled back and run again with
// a savepoint for every op, so that op is rolled back alone as before.
#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker/markets/internal/market_state.h"
#include "broker/markets/internal/order_ops.h"
#include "broker/markets/markets.h"
#include "core/json_codec.h"

namespace bourse::markets {

using internal::MarketState;
using internal::OpCtx;
using nlohmann::json;

namespace {

enum class OpKind { kPlace, kCancel, kMove, kReduce };

// One op of a batch, decoded before the transaction.
struct BatchOp {
  OpKind kind = OpKind::kPlace;
  core::Status decoded;  // the op's own decoding error (its result), or ok
  std::shared_ptr<internal::PlacedOrder> place;
  internal::OrderChange change;
  json result;  // an error result, set in the writer
  // A success: the order as the op left it and its trades, made into the
  // result after the commit, off the writer thread (Markets::Batch).
  bool ok = false;
  std::optional<internal::LiveOrder> order;
  json trades;
};

struct BatchState {
  std::vector<BatchOp> ops;
  std::set<MarketState*> touched;  // books a failed commit leaves stale
};

json ErrorResult(const core::Status& st) {
  return {{"ok", false},
          {"error",
           {{"code", std::string(core::StatusCodeName(st.code()))}, {"message", st.message()}}}};
}

// The op's "order": a decimal string, or an integer as the orders' JSON gives it.
core::Result<std::string> OrderRef(const json& op, const std::string& at) {
  const json* o = core::OptionalMember(op, "order");
  if (o == nullptr) {
    return core::InvalidArgument(at + ".order: required for a " + op["op"].get<std::string>());
  }
  if (o->is_string()) return o->get<std::string>();
  if (o->is_number_unsigned()) return std::to_string(o->get<uint64_t>());
  return core::InvalidArgument(at + ".order: must be an order id (a string or an integer)");
}

// The op's kind, market, order and the body its single route would get.
struct OpShape {
  OpKind kind;
  std::string market;
  std::string order;
  json body = json::object();
};

core::Result<OpShape> Shape(const json& op, size_t i) {
  const std::string at = "ops[" + std::to_string(i) + "]";
  if (!op.is_object()) return core::InvalidArgument(at + ": must be an object");
  const json* k = core::OptionalMember(op, "op");
  if (k == nullptr || !k->is_string()) {
    return core::InvalidArgument(at + ".op: required: place, cancel, move or reduce");
  }
  const std::string kind = k->get<std::string>();
  OpShape s;
  if (kind == "place") {
    s.kind = OpKind::kPlace;
  } else if (kind == "cancel") {
    s.kind = OpKind::kCancel;
  } else if (kind == "move") {
    s.kind = OpKind::kMove;
  } else if (kind == "reduce") {
    s.kind = OpKind::kReduce;
  } else {
    return core::InvalidArgument(at + ".op: unknown op \"" + kind +
                                 "\" (place, cancel, move or reduce)");
  }
  const json* m = core::OptionalMember(op, "market");
  if (m == nullptr || !m->is_string() || m->get_ref<const std::string&>().empty()) {
    return core::InvalidArgument(at + ".market: required (a market id)");
  }
  s.market = m->get<std::string>();
  if (s.kind != OpKind::kPlace) {
    BOURSE_ASSIGN_OR_RETURN(s.order, OrderRef(op, at));
  }
  for (const auto& [name, value] : op.items()) {
    if (name == "op" || name == "market" || (name == "order" && s.kind != OpKind::kPlace)) continue;
    if (s.kind == OpKind::kCancel) {
      return core::InvalidArgument(at + ": a cancel takes only op, market and order (not \"" +
                                   name + "\")");
    }
    s.body[name] = value;
  }
  return s;
}

// The op's book operation inside RunBookOpIn (the market's lock held).
core::Status ApplyOp(Markets& m, OpCtx& c, BatchOp& op, const std::string& caller, int64_t now_ms,
                     size_t index) REQUIRES(c.ms->mu) {
  if (op.kind == OpKind::kPlace) {
    BOURSE_RETURN_IF_ERROR(internal::PlaceOrderInBook(m, c, *op.place, now_ms, caller));
  } else {
    BOURSE_RETURN_IF_ERROR(internal::ApplyChange(c, op.change, caller));
  }
  if (static_cast<int>(index) == internal::batch_fault_at_for_test.load()) {
    return core::Internal("injected fault after op " + std::to_string(index) + " (test)");
  }
  return core::Status::Ok();
}

// Runs decoded op `index`, in its own savepoint unless `fast` and it is a
// change (see the top of the file); its result (or error) goes into
// op.result. Errors: the transaction is lost (the batch fails as a whole),
// or a change run without a savepoint failed after it wrote (*late is then
// set: the caller rolls back the batch's savepoint and runs it again).
core::Status RunBatchOp(Markets& m, ledger::Txn& txn, BatchOp& op, const std::string& caller,
                        int64_t now_ms, size_t index, bool fast, BatchState& b, bool* late) {
  if (!op.decoded.ok()) {
    op.result = ErrorResult(op.decoded);
    return core::Status::Ok();
  }
  const bool place = op.kind == OpKind::kPlace;
  MarketState* ms = place ? op.place->ms : op.change.ms;
  OpCtx ctx;
  bool touched = false;
  auto run = [&]() -> core::Status {
    return internal::RunBookOpIn(
        &m, ms, txn,
        [&](OpCtx& c) -> core::Status {
          c.ms->mu.AssertHeld();  // RunBookOpIn holds it
          return ApplyOp(m, c, op, caller, now_ms, index);
        },
        &ctx, &touched);
  };
  // A change writes nothing before touching the book (ApplyChange).
  const bool own_savepoint = place || !fast;
  core::Status st = own_savepoint ? txn.Nested(run) : run();
  if (touched) b.touched.insert(ms);
  if (!st.ok()) {
    if (touched) internal::MarkStale(ms);  // its writes are rolled back
    if (!txn.db()->InTransaction()) return st;
    if (touched && !own_savepoint) {
      *late = true;
      return st;
    }
    op.result = ErrorResult(st);
    return core::Status::Ok();
  }
  auto it = ctx.final_orders.find(place ? op.place->id : op.change.id);
  if (it != ctx.final_orders.end()) op.order = std::move(it->second);
  op.trades = std::move(ctx.trades);
  op.ok = true;
  return core::Status::Ok();
}

core::Status RunOps(Markets& m, ledger::Txn& txn, BatchState& b, const std::string& caller,
                    int64_t now_ms, bool fast, bool* late) {
  for (size_t i = 0; i < b.ops.size(); ++i) {
    BOURSE_RETURN_IF_ERROR(RunBatchOp(m, txn, b.ops[i], caller, now_ms, i, fast, b, late));
  }
  return core::Status::Ok();
}

// The batch's Mutate fn: its ops without savepoints for the changes, and
// should one of them fail late, all of them again with one savepoint each.
core::Status RunBatch(Markets& m, ledger::Txn& txn, BatchState& b, const std::string& caller,
                      int64_t now_ms) {
  bool late = false;
  core::Status st =
      txn.Nested([&]() { return RunOps(m, txn, b, caller, now_ms, /*fast=*/true, &late); });
  if (st.ok() || !late || !txn.db()->InTransaction()) return st;
  for (MarketState* ms : b.touched) internal::MarkStale(ms);  // rolled back
  for (BatchOp& op : b.ops) {
    op.result = json();
    op.ok = false;
    op.order.reset();
    op.trades = json();
  }
  late = false;
  return RunOps(m, txn, b, caller, now_ms, /*fast=*/false, &late);
}

}  // namespace

std::atomic<int> internal::batch_fault_at_for_test{-1};

void Markets::Batch(const json& body, const std::string& caller, int64_t now_ms, PlaceDone done) {
  auto fail = [&done](core::Status st) { done([st]() -> core::Result<json> { return st; }); };
  if (core::Status st = core::CheckObjectFields(body, "", {"ops"}); !st.ok()) return fail(st);
  const json* ops = core::OptionalMember(body, "ops");
  if (ops == nullptr || !ops->is_array()) {
    return fail(core::InvalidArgument("ops: required (an array of 1 to " +
                                      std::to_string(kMaxBatchOps) + " operations)"));
  }
  if (ops->empty() || ops->size() > kMaxBatchOps) {
    return fail(core::InvalidArgument("ops: must hold 1 to " + std::to_string(kMaxBatchOps) +
                                      " operations, has " + std::to_string(ops->size())));
  }
  // The whole array is checked before anything runs: a malformed op refuses
  // the request with nothing applied.
  std::vector<OpShape> shapes;
  shapes.reserve(ops->size());
  for (size_t i = 0; i < ops->size(); ++i) {
    core::Result<OpShape> s = Shape((*ops)[i], i);
    if (!s.ok()) return fail(s.status());
    shapes.push_back(std::move(*s));
  }
  auto b = std::make_shared<BatchState>();
  b->ops.resize(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    OpShape& s = shapes[i];
    BatchOp& op = b->ops[i];
    op.kind = s.kind;
    core::Result<internal::OrderChange> ch = internal::OrderChange{};
    switch (s.kind) {
      case OpKind::kPlace:
        op.place = std::make_shared<internal::PlacedOrder>();
        op.decoded = DecodeOrder(s.market, s.body, caller, op.place.get());
        continue;
      case OpKind::kCancel:
        ch = internal::DecodeCancel(*this, s.market, s.order);
        break;
      case OpKind::kMove:
        ch = internal::DecodeMove(*this, s.market, s.order, s.body);
        break;
      case OpKind::kReduce:
        ch = internal::DecodeReduce(*this, s.market, s.order, s.body);
        break;
    }
    if (ch.ok()) {
      op.change = std::move(*ch);
    } else {
      op.decoded = ch.status();
    }
  }
  host_->MutateAsync(
      [this, b, caller, now_ms](ledger::Txn& txn) -> core::Status {
        return RunBatch(*this, txn, *b, caller, now_ms);
      },
      [b, done = std::move(done)](core::Result<ledger::CommitResult> r) {
        if (!r.ok()) {
          for (MarketState* ms : b->touched) internal::MarkStale(ms);
        }
        done([b, st = r.status()]() -> core::Result<json> {
          if (!st.ok()) return st;
          json results = json::array();
          for (BatchOp& op : b->ops) {
            if (op.ok) {
              op.result = {{"ok", true},
                           {"order", op.order ? op.order->ToJson() : json()},
                           {"trades", std::move(op.trades)}};
            }
            results.push_back(std::move(op.result));
          }
          return json{{"results", std::move(results)}};
        });
      });
}

}  // namespace bourse::markets
