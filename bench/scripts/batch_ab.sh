#!/usr/bin/env bash
# Alternates the batch-order scenario (bench/scripts/orders.sh BUILD 8 8 batch) over several
# builds in one sitting, ROUNDS times, and prints one line per run: the build, ops/s, p50 and
# p99 ms per batch, op errors, and the ledger writer thread's CPU time per op (utime + stime of
# the broker's "bourse-writer" thread, sampled until it exits, over the run's ops plus the
# setup's 800 placements). The writer is the serial part (docs/perf/batch.md), and its CPU per
# op is the figure a noisy machine disturbs least. Each BUILD is a build directory (or a tree
# laid out like one: broker/bourse-broker, clients/bourse, bench/broker_load).
#
#   bench/scripts/batch_ab.sh ROUNDS BUILD [BUILD...]      e.g. 3 /tmp/build-before build
set -euo pipefail
rounds=${1:?usage: bench/scripts/batch_ab.sh ROUNDS BUILD [BUILD...]}
shift
[[ $# -ge 1 ]] || { echo "usage: bench/scripts/batch_ab.sh ROUNDS BUILD [BUILD...]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp /tmp/batch-ab.XXXXXX)
trap 'rm -f "$out"' EXIT
writer_ticks() {  # the bourse-writer thread's utime+stime of broker $1, in clock ticks
  local t
  for t in /proc/"$1"/task/*; do
    if [[ $(cat "$t/comm" 2>/dev/null) == bourse-writer ]]; then
      awk '{print $14 + $15}' "$t/stat" 2>/dev/null
      return
    fi
  done
}
hz=$(getconf CLK_TCK)
for _ in $(seq "$rounds"); do
  for build in "$@"; do
    "$here/orders.sh" "$build" 8 8 batch >"$out" 2>&1 &
    run=$!
    ticks=0
    while kill -0 "$run" 2>/dev/null; do
      pid=$(pgrep -f "^$build/broker/bourse-broker --db /tmp/bourse-orders" | head -1 || true)
      if [[ -n $pid ]]; then
        t=$(writer_ticks "$pid" || true)
        [[ -n $t ]] && ticks=$t
      fi
      sleep 0.2
    done
    wait "$run" || { echo "$build: the scenario failed:" >&2; cat "$out" >&2; exit 1; }
    tail -1 "$out" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
ticks, hz, build = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
us = ticks * 1e6 / hz / (d["ops"] + 800)
print("%s ops/s=%s p50_ms=%s p99_ms=%s op_errors=%s writer_us_per_op=%.1f"
      % (build, d["ops_per_s"], d["p50_ms"], d["p99_ms"], d["op_errors"], us))' "$ticks" "$hz" "$build"
  done
done
