#!/usr/bin/env bash
# The main job: the broker on its embedded SQLite default, seeded with a small
# demo (a site, two nodes, root grants held by the broker, a user with
# credits, a slice with a bound rcap chain), a demo order-book market with a
# trade in it, and a node guard for node demo-n1 that fetches, verifies and
# redeems what is bound to its node. The guard runs with its dry-run backend
# (settings written under demo/guard/state/dry) so the demo changes nothing on
# the host; tests exercise the real cgroup/HTB/loop backends. Runs in the
# foreground until Ctrl-C; SIGTERM/SIGINT drain in-flight requests and exit 0.
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
guard=$build/nodeguard/bourse-nodeguard
for b in "$broker" "$bourse" "$guard"; do
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
gpid=
trap 'kill -TERM $pid $gpid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 100); do
  [[ -s demo/broker.out ]] && break
  kill -0 $pid 2>/dev/null || { echo "demo: the broker did not start (is $listen in use?)" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' demo/broker.out)
admin_key=$db.admin-key.pem
if [[ $fresh == 1 ]]; then
  "$bourse" broker seed-demo --url "$url" --admin-key "$admin_key" --dir demo/keys
  # A demo market: 100-mcore units on demo-n2 for tomorrow, the broker's pool
  # selling 10 units at 0.5 credits, alice buying 2 of them.
  nb=$(( $(date +%s) + 3600 )); na=$(( nb + 86400 ))
  unit='{"cpu_mcores":100,"mem_mib":128,"disk_mib":0,"net_min_kbps":0,"net_max_kbps":1000}'
  "$bourse" broker call --url "$url" --key "$admin_key" POST /v1/markets \
    "{\"node\":\"demo-n2\",\"unit\":$unit,\"not_before\":$nb,\"not_after\":$na}" > demo/market.json
  market=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' demo/market.json | head -1)
  "$bourse" broker call --url "$url" --key "$admin_key" POST "/v1/markets/$market/orders" \
    '{"side":"sell","type":"limit","tif":"gtc","qty":10,"price":"0.5","rcap":"grant-demo-n2"}' > /dev/null
  "$bourse" broker call --url "$url" --key demo/keys/alice.pem POST "/v1/markets/$market/orders" \
    '{"side":"buy","type":"limit","tif":"gtc","qty":2,"price":"0.5"}' > demo/trade.json
  echo "demo: market $market created; alice bought 2 units (demo/trade.json)"
fi
market=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' demo/market.json 2>/dev/null | head -1)

# The node guard of demo-n1: trusts the demo site's key, talks to the broker.
mkdir -p demo/guard/state
chmod 700 demo/guard/state
pi_pub=$(openssl pkey -in demo/keys/pi.pem -pubout -outform DER | tail -c 32 | base64 |
  tr '+/' '-_' | tr -d '=\n')
echo "ed25519:$pi_pub" > demo/guard/trust
# The broker's ledger key, which signs the share tables the guard applies.
broker_pub=$(openssl pkey -in "$db.ledger-key.pem" -pubout -outform DER | tail -c 32 | base64 |
  tr '+/' '-_' | tr -d '=\n')
cat > demo/guard/nodeguard.conf <<CONF
node_id = demo-n1
trust_file = $PWD/demo/guard/trust
state_dir = $PWD/demo/guard/state
node_key = $PWD/demo/keys/node-demo-n1.pem
broker_url = $url
broker_key = ed25519:$broker_pub
cgroup_mode = dry-run
disk_root = none
launch = false
reconcile_period_s = 5
CONF
"$guard" run --config demo/guard/nodeguard.conf > demo/guard/guard.out 2>&1 &
gpid=$!
cat <<MSG

bourse broker running at $url   (database $db, access log demo/access.log)
  dashboard: open $url/ in a browser (docs/broker.md "Dashboard")
  curl $url/healthz
  curl $url/v1/slices/demo_hello
  curl $url/v1/pools
  curl $url/v1/ledger/head
  curl $url/openapi.json
  curl $url/v1/markets/$market/depth
  curl $url/v1/markets/$market/trades
  $guard status --socket demo/guard/state/status.sock /v1/slivers
  $bourse --url $url --key demo/keys/alice.pem slice create demo_mine   (docs/cli.md)
  $bourse ledger verify --url $url
Keys: admin $db.admin-key.pem, site PI demo/keys/pi.pem, user demo/keys/alice.pem,
      nodes demo/keys/node-demo-n1.pem and node-demo-n2.pem.   Ctrl-C stops it.
MSG
wait $pid
kill -TERM $gpid 2>/dev/null || true
wait $gpid 2>/dev/null || true
