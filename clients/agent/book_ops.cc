#include "clients/agent/book_ops.h"

namespace bourse::agent {

namespace {

core::Result<nlohmann::json> ApplyOne(clients::Client& client, const BookOp& op) {
  std::string base = "/v1/markets/" + clients::EscapeSegment(op.market) + "/orders";
  switch (op.kind) {
    case BookOp::kPlace:
      return client.Call("POST", base, op.body);
    case BookOp::kMove:
      return client.Call("POST", base + "/" + std::to_string(op.order) + "/move", op.body);
    case BookOp::kCancel:
      return client.Call("DELETE", base + "/" + std::to_string(op.order));
  }
  return core::InvalidArgument("op: unknown kind");
}

}  // namespace

std::vector<OpResult> ApplyBookOps(clients::Client& client, const std::vector<BookOp>& ops) {
  std::vector<OpResult> out;
  out.reserve(ops.size());
  core::Status down = core::Status::Ok();
  for (const BookOp& op : ops) {
    if (!down.ok()) {
      out.push_back({.status = down, .reply = nullptr});
      continue;
    }
    core::Result<nlohmann::json> r = ApplyOne(client, op);
    if (r.ok()) {
      out.push_back({.status = core::Status::Ok(), .reply = *std::move(r)});
    } else {
      if (r.status().code() == core::StatusCode::kUnavailable) down = r.status();
      out.push_back({.status = r.status(), .reply = nullptr});
    }
  }
  return out;
}

}  // namespace bourse::agent
