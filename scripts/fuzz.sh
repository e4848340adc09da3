#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD/fuzz for SECONDS each, seeded from
# fuzz/corpus/<target>/ (copied to a scratch dir so the repository is unchanged).
set -euo pipefail
build=$1
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
targets=("$build"/fuzz/fuzz_*)
if ((${#targets[@]} == 0)); then
  echo "fuzz: no fuzz targets built yet"
  exit 0
fi
for t in "${targets[@]}"; do
  [[ -x $t ]] || continue
  name=$(basename "$t")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  if [[ -d $root/fuzz/corpus/$name ]]; then cp -r "$root/fuzz/corpus/$name/." "$work/"; fi
  echo "fuzz: $name for ${secs}s"
  "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work" \
    2> "$work.log" || { tail -50 "$work.log"; echo "fuzz: $name FAILED"; exit 1; }
  grep -E "stat::number_of_executed_units|Done" "$work.log" | tail -2 || true
  rm -rf "$work" "$work.log"
  trap - EXIT
done
