// The agent's changes to its book — place, move and cancel — sent through one
// function as batch requests (POST /v1/orders:batch: up to 100 operations in
// one signed request and one commit, each with its own result).
//
//   std::vector<BookOp> ops = {{.kind = BookOp::kMove, .market = "m1", .order = 7,
//                               .body = {{"price", "2.5"}}}};
//   for (const OpResult& r : ApplyBookOps(client, ops)) ...
//
// Thread safety: uses `client` (one thread).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "clients/client.h"
#include "core/status.h"

namespace bourse::agent {

struct BookOp {
  enum Kind { kPlace, kMove, kCancel };
  Kind kind = kPlace;
  std::string market;
  int64_t order = 0;    // move and cancel
  nlohmann::json body;  // place: the order; move: {"price":P}
  std::string what;     // for the log, and the key a refusal is remembered by
};

struct OpResult {
  core::Status status;
  nlohmann::json reply;  // the broker's answer when status is ok
  // The whole batch request failed (unreachable, or refused as a request): the broker did not
  // judge this op, so it is not a refusal of it.
  bool whole = false;
};

// One result per op, in order, each as its single route would answer: an op
// the broker refuses does not stop the others. A batch refused whole (the
// broker unreachable, or a malformed op) gives each of its ops that status,
// with `whole` set.
std::vector<OpResult> ApplyBookOps(clients::Client& client, const std::vector<BookOp>& ops);

}  // namespace bourse::agent
