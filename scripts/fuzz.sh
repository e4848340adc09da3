#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD/fuzz for SECONDS each, seeded from
# fuzz/corpus/<target>/ (copied to a scratch dir so the repository is unchanged).
# Targets run side by side, one per core (JOBS, default nproc): each still
# fuzzes for SECONDS on a core of its own, and the stage takes
# ceil(targets / JOBS) x SECONDS instead of targets x SECONDS.
set -euo pipefail
build=$1
secs=${2:-60}
jobs=${JOBS:-$(nproc)}
root=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
targets=()
for t in "$build"/fuzz/fuzz_*; do [[ -x $t ]] && targets+=("$t"); done
if ((${#targets[@]} == 0)); then
  echo "fuzz: no fuzz targets built yet"
  exit 0
fi
scratch=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$scratch"' EXIT

run_one() {  # TARGET: fuzz it; the exit status is libFuzzer's
  local t=$1 name
  name=$(basename "$t")
  mkdir -p "$scratch/$name"
  if [[ -d $root/fuzz/corpus/$name ]]; then cp -r "$root/fuzz/corpus/$name/." "$scratch/$name/"; fi
  "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$scratch/$name" 2> "$scratch/$name.log"
}

failed=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  batch=("${targets[@]:i:jobs}")
  pids=()
  for t in "${batch[@]}"; do
    echo "fuzz: $(basename "$t") for ${secs}s"
    run_one "$t" &
    pids+=($!)
  done
  for j in "${!batch[@]}"; do
    name=$(basename "${batch[j]}")
    if wait "${pids[j]}"; then
      grep -E "stat::number_of_executed_units|Done" "$scratch/$name.log" | tail -2 | sed "s/^/$name: /" || true
    else
      tail -50 "$scratch/$name.log"
      echo "fuzz: $name FAILED"
      failed=1
    fi
  done
done
exit $failed
