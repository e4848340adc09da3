// What each registered node's capacity is, and how much of it is sold, at
// one instant: the per-node gauges of GET /metrics (docs/broker.md,
// "Metrics").
//
//   BOURSE_ASSIGN_OR_RETURN(std::vector<NodeGauges> nodes,
//                           NodeCapacityAt(db, broker_key.ToText(), now_s));
//
// Sold, precisely: an rcap R on the node counts when it is valid at now_s
// (not_before <= now_s < not_after), its holder is not the broker, and every
// ancestor of R is held by the broker: R is where capacity left the broker's
// pool (a fill, a pool split, a round or RFQ award, acquire), or a root
// granted to another principal (a pooling agent). What such an R's holder
// does with it later (splits, resale through an escrow, a binding) is not
// counted again, so by DESIGN 4.1 a node's sold capacity never exceeds its
// roots valid now, and so its registered capacity. Escrows of sell orders
// are held by the broker but descend from the seller's rcap, which already
// counts (or, for pool sells, are still the broker's: not sold).
// The quantities are cpu_mcores, mem_mib, disk_mib and net_min_kbps;
// net_max_kbps is a ceiling, not summed (left 0 in `sold`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/metrics.h"
#include "core/status.h"
#include "storage/sqlite.h"

namespace bourse::broker::internal {

// Every registered node (capacity as registered), in id order: two queries (nodes; sold rcaps by
// node, a walk down the broker's own rcaps from the roots valid now).
// Errors: the store's.
core::Result<std::vector<NodeGauges>> NodeCapacityAt(storage::Connection* db,
                                                     std::string_view broker_key, int64_t now_s);

}  // namespace bourse::broker::internal
