#include "clients/orders_batch.h"

#include <algorithm>
#include <utility>

namespace bourse::clients {

using nlohmann::json;

OrdersBatch& OrdersBatch::Place(const std::string& market, json order) {
  order["op"] = "place";
  order["market"] = market;
  ops_.push_back(std::move(order));
  return *this;
}

OrdersBatch& OrdersBatch::Cancel(const std::string& market, const std::string& order) {
  ops_.push_back({{"op", "cancel"}, {"market", market}, {"order", order}});
  return *this;
}

OrdersBatch& OrdersBatch::Move(const std::string& market, const std::string& order,
                               const std::string& price) {
  ops_.push_back({{"op", "move"}, {"market", market}, {"order", order}, {"price", price}});
  return *this;
}

OrdersBatch& OrdersBatch::Reduce(const std::string& market, const std::string& order, int64_t qty) {
  ops_.push_back({{"op", "reduce"}, {"market", market}, {"order", order}, {"qty", qty}});
  return *this;
}

core::Result<json> OrdersBatch::Send(Client& client) const {
  json all = json::array();
  for (size_t at = 0; at < ops_.size(); at += kMaxOps) {
    const size_t end = std::min(ops_.size(), at + kMaxOps);
    json chunk = json::array();
    for (size_t i = at; i < end; ++i) chunk.push_back(ops_[i]);
    BOURSE_ASSIGN_OR_RETURN(json reply,
                            client.Call("POST", "/v1/orders:batch", {{"ops", std::move(chunk)}}));
    const json* results =
        reply.is_object() && reply.contains("results") ? &reply["results"] : nullptr;
    if (results == nullptr || !results->is_array() || results->size() != end - at) {
      return core::Internal("orders batch: the broker's reply has no result per op: " +
                            reply.dump().substr(0, 200));
    }
    for (const json& r : *results) all.push_back(r);
  }
  return all;
}

}  // namespace bourse::clients
