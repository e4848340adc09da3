// Building rcap chains for node guard tests: honest ones through the ledger's
// issuing API, dishonest ones signed by hand (a forger or a cheating
// delegator signs whatever it likes).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/keys.h"
#include "ledger/rcap.h"

namespace bourse::nodeguard::testing {

struct Principals {
  core::PrivateKey site = core::PrivateKey::Generate().value();
  core::PrivateKey broker = core::PrivateKey::Generate().value();
  core::PrivateKey alice = core::PrivateKey::Generate().value();
  core::PrivateKey bob = core::PrivateKey::Generate().value();
  core::PrivateKey mallory = core::PrivateKey::Generate().value();
};

inline core::ResourceVector Res(int64_t cpu, int64_t mem, int64_t disk, int64_t nmin,
                                int64_t nmax) {
  return {.cpu_mcores = cpu,
          .mem_mib = mem,
          .disk_mib = disk,
          .net_min_kbps = nmin,
          .net_max_kbps = nmax};
}

// Signs whatever is asked, with no checks.
inline ledger::Rcap Forge(const core::PrivateKey& signer, const core::PublicKey& holder,
                          const std::string& id, const std::string& node,
                          const core::ResourceVector& res, int64_t nb, int64_t na,
                          std::optional<std::string> parent) {
  ledger::Rcap r{id, signer.public_key(), holder, node, res, {nb, na}, std::move(parent), {}};
  r.sig = signer.Sign(r.SigningBytes());
  return r;
}

inline ledger::Rcap Root(const Principals& p, const std::string& node, int64_t nb, int64_t na,
                         const std::string& id = "") {
  auto r = ledger::IssueRoot(p.site, {.id = id,
                                      .holder = p.broker.public_key(),
                                      .node = node,
                                      .res = Res(4000, 8192, 10240, 100000, 1000000),
                                      .interval = {nb, na}});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return *r;
}

inline ledger::Rcap Child(const ledger::Rcap& parent, const core::PrivateKey& holder_key,
                          const core::PublicKey& to, const core::ResourceVector& res, int64_t nb,
                          int64_t na, const std::string& id = "") {
  auto r = ledger::Delegate(parent, holder_key,
                            {.id = id, .holder = to, .res = res, .interval = {nb, na}});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return *r;
}

inline std::string ChainText(const std::vector<ledger::Rcap>& chain) {
  return ledger::ChainToJson(chain).dump();
}

}  // namespace bourse::nodeguard::testing
