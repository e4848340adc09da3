#!/usr/bin/env bash
# The main job: the broker on its embedded SQLite default, seeded with a small
# demo (a site, two nodes, root grants held by the broker, a user with
# credits, a slice with a bound rcap chain). Runs in the foreground until
# Ctrl-C; SIGTERM/SIGINT drain in-flight requests and exit 0.
#
#   scripts/demo.sh BUILD_DIR [--listen HOST:PORT]
#
# State lives under ./demo/ (database, keys); delete it to start afresh.
set -euo pipefail
build=${1:?usage: scripts/demo.sh BUILD_DIR [--listen HOST:PORT]}
shift || true
listen=127.0.0.1:8080
if [[ ${1:-} == --listen ]]; then listen=$2; fi
broker=$build/broker/bourse-broker
bourse=$build/clients/bourse
for b in "$broker" "$bourse"; do
  [[ -x $b ]] || { echo "demo: $b not built (run the build first)" >&2; exit 1; }
done
mkdir -p demo
db=demo/bourse.db
fresh=0
if [[ ! -e $db ]]; then
  "$broker" init --db "$db"
  fresh=1
fi
"$broker" --db "$db" --listen "$listen" --access-log demo/access.log > demo/broker.out &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 100); do
  [[ -s demo/broker.out ]] && break
  kill -0 $pid 2>/dev/null || { echo "demo: the broker did not start (is $listen in use?)" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' demo/broker.out)
if [[ $fresh == 1 ]]; then
  "$bourse" broker seed-demo --url "$url" --admin-key "$db.admin-key.pem" --dir demo/keys
fi
cat <<MSG

bourse broker running at $url   (database $db, access log demo/access.log)
  curl $url/healthz
  curl $url/v1/slices/demo_hello
  curl $url/v1/pools
  curl $url/v1/ledger/head
  curl $url/openapi.json
  $bourse broker call --url $url --key demo/keys/alice.pem POST /v1/slices '{"name":"demo_mine"}'
  $bourse ledger verify --url $url
Keys: admin $db.admin-key.pem, site PI demo/keys/pi.pem, user demo/keys/alice.pem,
      nodes demo/keys/node-demo-n1.pem and node-demo-n2.pem.   Ctrl-C stops it.
MSG
wait $pid
