#!/usr/bin/env bash
# The main job: the broker on its embedded SQLite default with a demo market
# and a node guard. Until the broker exists this runs what the build has.
set -euo pipefail
build=$1
shift || true
if [[ -x $build/broker/bourse-broker ]]; then
  echo "demo: broker binary found but demo seeding not wired yet" >&2
fi
echo "demo: core self-check (bench_core, short)"
"$build/bench/bench_core" --benchmark_min_time=0.05 "$@"
