// The broker's half of the best-effort sliver rule (ledger/sliver_settings.h):
// it gathers from its tables what the rule needs (the site's limits, per
// node of a slice its disk and the shares of the site's other live slices)
// and lets the ledger's function decide, as `bourse ledger verify` does over
// its replay. Also the slices a node's guard is told to keep a sliver for.
//
//   BOURSE_RETURN_IF_ERROR(CheckSliceSliverSettings(db, "mit_web", "mit", nodes, settings, now_s));
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"
#include "ledger/sliver_settings.h"
#include "storage/sqlite.h"

namespace bourse::broker::internal {

// The site's limits (b_sliver_limits), else kDefaultSliverLimits.
core::Result<ledger::SliverLimits> SiteSliverLimits(storage::Connection* db,
                                                    const std::string& site);

// The rule for slice `slice` of `site` on `nodes` (a JSON array of node ids)
// with `settings`, at `now_s`. Errors: those of ledger::CheckSliceSettings.
core::Status CheckSliceSliverSettings(storage::Connection* db, const std::string& slice,
                                      const std::string& site, const nlohmann::json& nodes,
                                      const ledger::SliverSettings& settings, int64_t now_s);

// The live slices instantiated on `node`, each
// {"slice","expires","boot_script","share","disk_mib","mem_mib"}, the
// settings clamped to the site's current limits; ordered by slice.
core::Result<nlohmann::json> InstantiatedSlicesOf(storage::Connection* db, const std::string& node,
                                                  int64_t now_s);

}  // namespace bourse::broker::internal
