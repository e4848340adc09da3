// Reads of the broker's PLC tables (b_sites, b_nodes, b_slices) for code
// outside the PLC routes, chiefly the markets engine through MarketsHost
// (broker/markets/host.h). Defined in plc_routes.cc, next to the routes
// that write these tables.
//
//   BOURSE_ASSIGN_OR_RETURN(std::optional<markets::NodeInfo> n, FindNode(txn.db(), node));
//   if (!n) return core::NotFound("node " + node + " does not exist");
#pragma once

#include <optional>
#include <string_view>

#include "broker/markets/host.h"
#include "core/status.h"
#include "storage/sqlite.h"

namespace bourse::broker::internal {

// The node's site, its site's PI and its net_max_kbps; nullopt if unregistered.
core::Result<std::optional<markets::NodeInfo>> FindNode(storage::Connection* db,
                                                        std::string_view node);
core::Result<bool> SiteExists(storage::Connection* db, std::string_view site);
// The slice's creator and owners; nullopt if there is no such slice.
core::Result<std::optional<markets::SliceOwnership>> SliceOwners(storage::Connection* db,
                                                                 std::string_view slice);
core::Result<bool> SliceExists(storage::Connection* db, std::string_view slice);
// PLC's rule: `caller` (a registered key) manages `slice` when it is an
// admin, the PI of the slice's site or one of its owners. Errors: not_found
// for the slice; permission_denied for anyone else, naming who may.
core::Status CheckSliceManager(storage::Connection* db, std::string_view slice,
                               std::string_view caller);

}  // namespace bourse::broker::internal
