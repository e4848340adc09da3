#include "clients/agent/book_ops.h"

#include <algorithm>

#include "clients/orders_batch.h"

namespace bourse::agent {

namespace {

// One batch op's result as the single route would have answered it.
OpResult FromBatchResult(const nlohmann::json& r) {
  if (r.is_object() && r.value("ok", false)) {
    nlohmann::json reply = r;
    reply.erase("ok");
    return {.status = core::Status::Ok(), .reply = std::move(reply)};
  }
  clients::HttpReply as_error;
  as_error.status = 400;  // only used when the code name is unknown
  as_error.json = r.is_object() && r.contains("error") ? nlohmann::json{{"error", r["error"]}}
                                                       : nlohmann::json();
  return {.status = clients::StatusFromReply(as_error), .reply = nullptr};
}

void AddTo(clients::OrdersBatch& b, const BookOp& op) {
  switch (op.kind) {
    case BookOp::kPlace:
      b.Place(op.market, op.body);
      break;
    case BookOp::kMove:
      b.Move(op.market, std::to_string(op.order), op.body.value("price", std::string()));
      break;
    case BookOp::kCancel:
      b.Cancel(op.market, std::to_string(op.order));
      break;
  }
}

}  // namespace

std::vector<OpResult> ApplyBookOps(clients::Client& client, const std::vector<BookOp>& ops) {
  std::vector<OpResult> out;
  out.reserve(ops.size());
  for (size_t at = 0; at < ops.size(); at += clients::OrdersBatch::kMaxOps) {
    const size_t end = std::min(ops.size(), at + clients::OrdersBatch::kMaxOps);
    clients::OrdersBatch batch;
    for (size_t i = at; i < end; ++i) AddTo(batch, ops[i]);
    core::Result<nlohmann::json> results = batch.Send(client);
    for (size_t i = at; i < end; ++i) {
      if (!results.ok()) {
        out.push_back({.status = results.status(), .reply = nullptr, .whole = true});
      } else {
        out.push_back(FromBatchResult((*results)[i - at]));
      }
    }
  }
  return out;
}

}  // namespace bourse::agent
