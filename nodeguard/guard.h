// Guard: the node guard daemon's logic (issue #7, DESIGN §1 step 4 and §6).
//
// At boot it opens its StateStore, reads chains from the spool directory and,
// when the broker answers, the chains bound to this node (signed GET
// /v1/nodes/{node}/bindings, retried with backoff; when the broker is down it
// boots from the last good state in its database); verifies and redeems each
// chain offline; then enforces. Each ReconcileOnce() pass picks up new spool
// files and bindings, expiries and vanished bindings (deleted slices), turns
// the live leaves into one SliverSpec per slice, adds the proportional shares
// of the last good broker-signed share table (nodeguard/share_table.h; fetched
// each pass when `broker_key` is configured, kept in the database) and lets
// the Enforcer apply only the differences; it reports redemptions, refusals
// and usage to the broker and keeps them locally until acknowledged.
//
// A sliver the Enforcer could not set up as desired (Enforcer::Failures) is
// shown as "state":"error" with the step and the error in the status API, and
// its leaves are not reported "active" to the broker; when it still fails
// after kMaxEnforceAttempts passes its leaves are refused (reason
// enforcement_failed, released, reported to the broker like any refusal) and
// the sliver is torn down.
//
//   BOURSE_ASSIGN_OR_RETURN(GuardConfig cfg, GuardConfig::Load(path));
//   BOURSE_ASSIGN_OR_RETURN(std::unique_ptr<Guard> g, Guard::Create(cfg, &SystemClock::Get()));
//   BOURSE_RETURN_IF_ERROR(g->ServeStatus());          // Unix socket API
//   std::atomic<bool> stop{false};
//   g->Run(&stop);                                      // pass every reconcile_period_s
//
// Thread safety: ReconcileOnce/Run from one thread; StatusJson and the status
// socket from any thread (the snapshot is locked).
#pragma once

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "nodeguard/config.h"
#include "nodeguard/enforcement.h"
#include "nodeguard/share_table.h"
#include "nodeguard/state_store.h"

namespace bourse::nodeguard {

struct PassStats {
  int redeemed = 0;  // chains newly redeemed this pass
  int refused = 0;   // chains newly refused this pass
  int expired = 0;   // slices touched by expiry or start of a scheduled leaf
  int revoked = 0;   // leaves whose binding vanished
  bool broker_ok = false;
  bool shares_accepted = false;  // a share table was fetched and accepted this pass
  std::string shares_refused;    // else the reason a fetched table was refused, if one was
  ReconcileStats enforce;
  int enforce_failed = 0;   // slivers not enforced as desired after this pass
  int enforce_refused = 0;  // leaves refused (enforcement_failed) this pass
};

class Guard {
 public:
  // `enforcer` overrides the one the config describes (tests). Errors:
  // invalid_argument / not_found for the trust file or node key,
  // failed_precondition when enforcement is unavailable, internal for the DB.
  static core::Result<std::unique_ptr<Guard>> Create(const GuardConfig& config,
                                                     const core::Clock* clock,
                                                     std::unique_ptr<Enforcer> enforcer = nullptr);
  ~Guard();

  // One reconcile pass (see file comment). Errors only for local failures
  // (database, kernel); an unreachable broker is not an error.
  core::Result<PassStats> ReconcileOnce();
  // Meter (and report) usage in every pass, the first included, instead of
  // once per reconcile_period_s starting one period after boot. For one-shot
  // runs (`run --once`, from cron), which would otherwise never meter.
  void MeterEveryPass(bool on);
  // Passes every reconcile_period_s until *stop; returns after the pass in progress.
  void Run(std::atomic<bool>* stop);

  // Listens on config.status_socket (HTTP over a Unix socket, mode 0600):
  // GET /v1/status, /v1/slivers, /v1/refusals, /v1/usage. Errors: unavailable.
  core::Status ServeStatus();
  void StopStatus();

  // {"node":..,"slivers":[...],"refusals":[...],"pending_usage":N,"shares":{..},...}
  nlohmann::json StatusJson() const;

  StateStore& store();
  Enforcer& enforcer();

 private:
  struct Impl;
  explicit Guard(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// `bourse-nodeguard redeem --state DIR --trust FILE --node ID CHAIN.json`
// (DESIGN §7): the JSON printed and the exit code (0 redeemed, 1 refused, 2
// usage or local error). The chain file holds a chain array, or an object
// {"slice":..,"chain":[..],"boot_script":..}; the slice defaults to --slice
// or the file's stem.
struct CommandOutput {
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_text;
};
CommandOutput RunRedeemCommand(const std::vector<std::string>& args, const core::Clock& clock);

}  // namespace bourse::nodeguard
