// OrdersBatch: builds and sends POST /v1/orders:batch (docs/markets.md
// "Batch orders"): places, cancels, moves and reduces across markets, each
// op with its own result, up to Markets::kMaxBatchOps (100) ops per signed
// request and one commit for all of them.
//
//   clients::OrdersBatch b;
//   b.Place("mk_1", {{"side", "buy"}, {"qty", 2}, {"price", "1.5"}})
//       .Move("mk_1", "17", "1.25")
//       .Reduce("mk_2", "18", 1)
//       .Cancel("mk_2", "19");
//   BOURSE_ASSIGN_OR_RETURN(nlohmann::json results, b.Send(client));
//   // results[i]: {"ok":true,"order":{...},"trades":[...]} or
//   //             {"ok":false,"error":{"code":"...","message":"..."}}
//
// The body alone (body()) is what Client::Call("POST", "/v1/orders:batch",
// body) takes. Thread safety: none (a value type); Send uses the client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "clients/client.h"
#include "core/status.h"

namespace bourse::clients {

class OrdersBatch {
 public:
  // The most ops the broker takes in one request.
  static constexpr size_t kMaxOps = 100;

  // `order`: the body of POST /v1/markets/{market}/orders (side, type, tif,
  // qty, price, escrow or rcap).
  OrdersBatch& Place(const std::string& market, nlohmann::json order);
  OrdersBatch& Cancel(const std::string& market, const std::string& order);
  OrdersBatch& Move(const std::string& market, const std::string& order, const std::string& price);
  OrdersBatch& Reduce(const std::string& market, const std::string& order, int64_t qty);

  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  // {"ops":[...]}, all of them (more than kMaxOps is refused by the broker).
  nlohmann::json body() const { return {{"ops", ops_}}; }

  // Sends the ops, kMaxOps per request, in order, and returns every op's
  // result in op order (an array). Each request is atomic per op, not
  // across ops or requests. Errors: the first request refused whole (its
  // Status, e.g. invalid_argument for a malformed op, or unavailable); the
  // results of the requests before it are then lost to the caller, so keep
  // batches at most kMaxOps when that matters. An empty batch sends nothing.
  core::Result<nlohmann::json> Send(Client& client) const;

 private:
  nlohmann::json ops_ = nlohmann::json::array();
};

}  // namespace bourse::clients
