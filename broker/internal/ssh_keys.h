// Slice owners' ssh keys (docs/broker.md "ssh keys"): every key belongs to
// one owner of the slice, and a node is handed only the keys of the slice's
// current owners, so an owner removed with assign_owners loses ssh access
// to every sliver on the guards' next pass.
//
//   BOURSE_ASSIGN_OR_RETURN(json keys, ParseSshKeys(body["ssh_keys"], owners, caller));
//   json live = OwnersSshKeys(row.owners, row.ssh_keys);   // [{"owner","key"}]
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/status.h"

namespace bourse::broker::internal {

// The ssh_keys member of PUT /v1/slices/{slice}/owners: an array (at most 64)
// of {"owner":KEY,"key":"ssh-ed25519 AAAA... c"} or of plain key strings,
// which belong to `caller`. Returns [{"owner","key"}] with each key in the
// form core::ParseSshPublicKey accepts. Errors: invalid_argument naming the
// element: not an array, an unknown member, a key that is not one OpenSSH
// public key line, an owner not among `owners` (a plain string when the
// caller is not an owner), the same owner and key twice.
core::Result<nlohmann::json> ParseSshKeys(const nlohmann::json& value,
                                          const std::set<std::string>& owners,
                                          const std::string& caller);

// The keys of `ssh_keys` whose owner is in `owners` (a slice row's two
// members). Entries without an owner (stored as plain strings before keys
// had owners) belong to no one and are left out.
nlohmann::json OwnersSshKeys(const nlohmann::json& owners, const nlohmann::json& ssh_keys);

}  // namespace bourse::broker::internal
