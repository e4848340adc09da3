// NodeCapacityAt (internal/node_capacity.h): registered and sold capacity
// per node, read from the broker's b_nodes and b_rcaps.
#include "broker/internal/node_capacity.h"

#include <map>
#include <nlohmann/json.hpp>

#include "broker/internal/sql.h"
#include "broker/internal/util.h"
#include "core/json_codec.h"

namespace bourse::broker::internal {

namespace {

// ?1 the broker's key, ?2 the instant. `pool` is every rcap valid now that
// the broker holds and whose ancestors the broker holds; `sold` the rcaps
// valid now held by someone else whose parent is in `pool` (or which are
// roots). Children lie within their parent's interval, so the walk may
// stop at rcaps not valid now.
constexpr const char* kSoldSql = R"sql(
WITH RECURSIVE pool(id) AS (
  SELECT id FROM b_rcaps WHERE parent IS NULL AND holder=?1 AND not_before<=?2 AND not_after>?2
  UNION ALL
  SELECT c.id FROM b_rcaps c JOIN pool p ON c.parent=p.id
   WHERE c.holder=?1 AND c.not_before<=?2 AND c.not_after>?2),
sold(node, body) AS (
  SELECT node, body FROM b_rcaps
   WHERE parent IS NULL AND holder<>?1 AND not_before<=?2 AND not_after>?2
  UNION ALL
  SELECT c.node, c.body FROM b_rcaps c JOIN pool p ON c.parent=p.id
   WHERE c.holder<>?1 AND c.not_before<=?2 AND c.not_after>?2)
SELECT node, SUM(json_extract(body,'$.res.cpu_mcores')), SUM(json_extract(body,'$.res.mem_mib')),
  SUM(json_extract(body,'$.res.disk_mib')), SUM(json_extract(body,'$.res.net_min_kbps'))
FROM sold GROUP BY node
)sql";

}  // namespace

core::Result<std::vector<NodeGauges>> NodeCapacityAt(storage::Connection* db,
                                                     std::string_view broker_key, int64_t now_s) {
  std::map<std::string, NodeGauges> nodes;
  {
    BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT id,capacity FROM b_nodes"));
    while (true) {
      BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      NodeGauges& n = nodes[s.Text(0)];
      n.node = s.Text(0);
      auto cap = core::ResourceVectorFromJson(ParseStored(s.Text(1)), "capacity");
      if (cap.ok()) n.capacity = *cap;
    }
  }
  BOURSE_ASSIGN_OR_RETURN(Stmt s, db->Prepare(kSoldSql));
  s.Bind(1, broker_key);
  s.Bind(2, now_s);
  while (true) {
    BOURSE_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    auto it = nodes.find(s.Text(0));
    if (it == nodes.end()) continue;  // an rcap for a node not registered here
    it->second.sold = {.cpu_mcores = s.Int(1),
                       .mem_mib = s.Int(2),
                       .disk_mib = s.Int(3),
                       .net_min_kbps = s.Int(4)};
  }
  std::vector<NodeGauges> out;
  out.reserve(nodes.size());
  for (auto& [id, n] : nodes) out.push_back(std::move(n));
  return out;
}

}  // namespace bourse::broker::internal
