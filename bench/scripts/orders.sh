#!/usr/bin/env bash
# Reproduces the #6 order-placement figure: a fresh broker on a temporary
# database, seeded with the demo site/nodes (bourse broker seed-demo) and one
# open market on demo-n2, then broker_load --mix orders against it (GTC limit
# buys signed by the admin key). Prints broker_load's lines; the last one is
# the JSON summary. Cleans up the broker and its directory on exit.
# PRESIGN (optional) is passed to broker_load as --presign: that many requests
# are signed before the clock starts (the broker measured without the
# generator's signing on the same cores). STREAMS (environment, optional) opens
# that many event streams (GET /v1/events) for the whole run (issue #16).
# MIX batch (docs/perf/batch.md) opens a second market on demo-n1 and runs
# broker_load --mix batch --batch ${BATCH:-100}: each connection reprices its
# own book of BATCH resting buys with signed POST /v1/orders:batch requests.
#
#   bench/scripts/orders.sh BUILD_DIR [CONNECTIONS] [SECONDS] [MIX] [PRESIGN]
set -euo pipefail
build=${1:?usage: bench/scripts/orders.sh BUILD_DIR [CONNECTIONS] [SECONDS] [MIX] [PRESIGN]}
conns=${2:-16}
secs=${3:-10}
mix=${4:-orders}
presign=${5:-0}
dir=$(mktemp -d /tmp/bourse-orders.XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$build/broker/bourse-broker" init --db "$dir/b.db" >/dev/null || { cat "$dir/broker.err" >&2; exit 1; }
"$build/broker/bourse-broker" --db "$dir/b.db" --listen 127.0.0.1:0 --rate-limit 0 \
  --access-log "$dir/access.log" >"$dir/broker.out" 2>"$dir/broker.err" &
pid=$!
for _ in $(seq 100); do [[ -s $dir/broker.out ]] && break; sleep 0.1; done
url=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$dir/broker.out")
key=$dir/b.db.admin-key.pem
"$build/clients/bourse" broker seed-demo --url "$url" --admin-key "$key" --dir "$dir/keys" >/dev/null || { cat "$dir/broker.err" >&2; exit 1; }
nb=$(( $(date +%s) + 3600 )); na=$(( nb + 86400 ))
nodes=demo-n2; extra=()
[[ $mix == batch ]] && { nodes="demo-n2 demo-n1"; extra=(--batch "${BATCH:-100}"); }
for node in $nodes; do
  "$build/clients/bourse" broker call --url "$url" --key "$key" POST /v1/markets \
    "{\"node\":\"$node\",\"unit\":{\"cpu_mcores\":100,\"mem_mib\":0,\"disk_mib\":0,\"net_min_kbps\":0,\"net_max_kbps\":0},\"not_before\":$nb,\"not_after\":$na}" >/dev/null || { cat "$dir/broker.err" >&2; exit 1; }
done
"$build/bench/broker_load" --url "$url" --key "$key" --connections "$conns" --seconds "$secs" --mix "$mix" \
  --presign "$presign" --streams "${STREAMS:-0}" "${extra[@]}"
