#!/usr/bin/env bash
# The living testbed (DESIGN §11, docs/testbed.md): on one machine, the broker;
# three sites (mit, ucb, eth) with two nodes each and a node guard per node;
# two pooling agents with different policies holding most of the sites'
# grants; and the example services of clients/examples/ that keep trading:
# a content-distribution service (RFQs, renewals on the markets), a
# measurement service (sealed-bid rounds), a batch service (proportional
# share), and the testbed operator's loop (markets per node and period,
# rounds from the broker's pool). Runs in the foreground until Ctrl-C, which
# stops every process it started and waits for them.
#
#   scripts/testbed.sh BUILD_DIR [--listen HOST:PORT] [--dir DIR] [--fresh]
#                      [--enforce] [--period SECONDS]
#
# State lives under DIR (default ./testbed): the broker's database and keys,
# every principal's key, each node's guard configuration and state, the
# agents' state, and logs/. Running it again continues from that state;
# --fresh deletes it first. Guards use the dry-run backend (settings written
# under DIR/nodes/NODE/state/dry, nothing changes on the host) unless
# --enforce is given as root: then each node is a network namespace with a
# veth pair, real cgroups, HTB on its link and loop-mounted disks, all removed
# on exit.
set -euo pipefail

usage() {
  echo "usage: scripts/testbed.sh BUILD_DIR [--listen HOST:PORT] [--dir DIR] [--fresh] [--enforce] [--period S]" >&2
  exit 2
}
build=${1:-}
[[ -n $build ]] || usage
shift
build=$(cd "$build" && pwd)
listen=127.0.0.1:8080
dir=$PWD/testbed
fresh=0
enforce=0
period=600
while (($#)); do
  case $1 in
    --listen) listen=${2:?--listen needs HOST:PORT}; shift 2 ;;
    --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --enforce) enforce=1; shift ;;
    --period) period=${2:?--period needs seconds}; shift 2 ;;
    *) echo "testbed: unknown argument: $1" >&2; usage ;;
  esac
done
[[ $period =~ ^[0-9]+$ ]] && ((period >= 120)) || { echo "testbed: --period: whole seconds, at least 120" >&2; exit 2; }

broker=$build/broker/bourse-broker
bourse=$build/clients/bourse
guard=$build/nodeguard/bourse-nodeguard
agent=$build/clients/bourse-agent
ex=$build/clients/examples
for b in "$broker" "$bourse" "$guard" "$agent"; do
  [[ -x $b ]] || { echo "testbed: $b is not built (run ./dev.sh build)" >&2; exit 1; }
done
if ((enforce)); then
  [[ $(id -u) -eq 0 ]] || { echo "testbed: --enforce needs root (cgroups, network namespaces, loop devices)" >&2; exit 1; }
fi

SITES=(mit ucb eth)
NODES=(mit-1 mit-2 ucb-1 ucb-2 eth-1 eth-2)
site_of() { echo "${1%-*}"; }
# What each node has, and how its site shares it out (rcaps are granted in
# DESIGN §8's resource syntax): each pooling agent gets 1500 mcores, the
# broker's pool 1000 (the operator's rounds), of which the monitoring slice
# gets 200. An agent's 1500 is not a whole number of its 1000-mcore pricing
# units, so each keeps capacity out of its asks to quote RFQs with.
NODE_RES=cpu_mcores=4000,mem_mib=8192,disk_mib=40960,net_min_kbps=200000,net_max_kbps=1000000
AGENT_RES=cpu_mcores=1500,mem_mib=3072,disk_mib=16384,net_min_kbps=80000,net_max_kbps=1000000
POOL_RES=cpu_mcores=1000,mem_mib=2048,disk_mib=8192,net_min_kbps=40000,net_max_kbps=1000000
MONITOR_RES=cpu_mcores=200,mem_mib=256,disk_mib=512,net_min_kbps=1000,net_max_kbps=10000
# One unit of every order-book market the operator opens.
MARKET_UNIT=cpu_mcores=250,mem_mib=512,disk_mib=1024,net_min_kbps=2000,net_max_kbps=100000

if ((fresh)); then rm -rf "$dir"; fi
mkdir -p "$dir"/{broker,keys,logs,nodes,agents,services}
chmod 700 "$dir/keys"
dir=$(cd "$dir" && pwd)
db=$dir/broker/bourse.db
logs=$dir/logs
admin_key=$db.admin-key.pem

# ---- processes: every one we start is remembered and stopped on exit ----
pids=()   # in start order; 0 once it has exited and been reaped
names=()
netns_made=()
start() {  # NAME COMMAND...: runs it in the background, output to logs/NAME.log
  local name=$1
  shift
  "$@" >> "$logs/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}
stop_and_wait() {  # SECONDS PID...: SIGTERM each, wait, SIGKILL what is left
  local limit=$1
  shift
  local pid deadline=$((SECONDS + limit))
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "testbed: process $pid did not stop within $limit s: killed" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
cleanup() {
  local code=$?
  trap - INT TERM EXIT
  # Services, agents and guards first, the broker last, so that their final
  # requests (a guard's reports) still find it.
  local i others=() brokers=()
  for i in "${!pids[@]}"; do
    ((pids[i] > 0)) || continue
    if [[ ${names[i]} == broker ]]; then brokers+=("${pids[i]}"); else others+=("${pids[i]}"); fi
  done
  echo "testbed: stopping $((${#others[@]} + ${#brokers[@]})) processes" >&2
  ((${#others[@]})) && stop_and_wait 20 "${others[@]}"
  ((${#brokers[@]})) && stop_and_wait 30 "${brokers[@]}"
  if ((enforce)); then
    for n in "${NODES[@]}"; do
      [[ -f $dir/nodes/$n/nodeguard.conf ]] || continue
      "$guard" teardown --config "$dir/nodes/$n/nodeguard.conf" >> "$logs/guard-$n.log" 2>&1 || true
    done
    for ns in "${netns_made[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  fi
  echo "testbed: stopped (state kept in $dir; --fresh starts over)" >&2
  exit "$code"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# ---- the broker ----
if [[ ! -e $db ]]; then
  "$broker" init --db "$db" > "$logs/broker-init.log"
  seed=1
else
  seed=0
fi
# Each run's broker log starts empty (the last run's is kept as broker.log.1),
# so the URL read below is this run's.
[[ -f $logs/broker.log ]] && mv -f "$logs/broker.log" "$logs/broker.log.1"
: > "$logs/broker.log"  # there before the broker's own shell opens it
start broker "$broker" --db "$db" --listen "$listen" --access-log "$logs/access.log"
# The broker prints {"listening":"http://..."} once it listens.
url=
for _ in $(seq 300); do
  url=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$logs/broker.log" 2>/dev/null | tail -1 || true)
  [[ -n $url ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "testbed: the broker did not start (is $listen in use? see $logs/broker.log)" >&2; exit 1; }
  sleep 0.1
done
[[ -n $url ]] || { echo "testbed: the broker did not listen within 30 s" >&2; exit 1; }
cli() { "$bourse" --url "$url" "$@"; }
pub() { "$bourse" key pub "$1"; }

# ---- the world, seeded once with the CLI (docs/cli.md) ----
if ((seed)); then
  echo "testbed: seeding sites, nodes, grants and principals" >&2
  k=$dir/keys
  for p in agent-fixed agent-demand cdn measure batch monitor; do "$bourse" key new "$k/$p.pem" > /dev/null; done
  for s in "${SITES[@]}"; do
    "$bourse" key new "$k/pi-$s.pem" > /dev/null
    cli --key "$admin_key" site add "$s" --pi "$k/pi-$s.pem" > /dev/null
  done
  cli --key "$admin_key" principal add "$k/agent-fixed.pem" --kind agent --name agent-fixed > /dev/null
  cli --key "$admin_key" principal add "$k/agent-demand.pem" --kind agent --name agent-demand > /dev/null
  cli --key "$admin_key" principal add "$k/cdn.pem" --kind user --name cdn --site mit > /dev/null
  cli --key "$admin_key" principal add "$k/measure.pem" --kind user --name measure --site ucb > /dev/null
  cli --key "$admin_key" principal add "$k/batch.pem" --kind user --name batch --site eth > /dev/null
  cli --key "$admin_key" principal add "$k/monitor.pem" --kind user --name monitor --site mit > /dev/null
  for p in cdn measure batch; do cli --key "$admin_key" mint "$k/$p.pem" 5000 > /dev/null; done
  for p in agent-fixed agent-demand; do cli --key "$admin_key" mint "$k/$p.pem" 500 > /dev/null; done
  # PlanetLab ran a monitoring slice on every node (CoMon); ours holds a small
  # piece of each node from the broker's pool, so every guard has a sliver.
  cli --key "$k/monitor.pem" slice create mit_monitor --description "testbed monitoring on every node" > /dev/null
  for n in "${NODES[@]}"; do
    s=$(site_of "$n")
    pi=$k/pi-$s.pem
    "$bourse" key new "$k/node-$n.pem" > /dev/null
    cli --key "$pi" node add "$s" "$n" --key "$k/node-$n.pem" --res "$NODE_RES" > /dev/null
    # The site's PI signs root rcaps for 30 days: one per pooling agent and
    # one to the broker's pool.
    cli --key "$pi" grant "$n" --res "$AGENT_RES" --from now --until +30d --to "$k/agent-fixed.pem" --id "grant-$n-fixed" > /dev/null
    cli --key "$pi" grant "$n" --res "$AGENT_RES" --from now --until +30d --to "$k/agent-demand.pem" --id "grant-$n-demand" > /dev/null
    cli --key "$pi" grant "$n" --res "$POOL_RES" --from now --until +30d --id "grant-$n-pool" > /dev/null
    cli --key "$admin_key" rcap split "grant-$n-pool" --to "$k/monitor.pem" --res "$MONITOR_RES" --id "monitor-$n" > /dev/null
    cli --key "$k/monitor.pem" slice bind mit_monitor "monitor-$n" > /dev/null
  done
fi
k=$dir/keys

# ---- node guards: one per node ----
# The broker's ledger key signs the share tables the guards apply.
broker_pub=$(curl -fsS "$url/v1/ledger/key" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
i=0
for n in "${NODES[@]}"; do
  s=$(site_of "$n")
  nd=$dir/nodes/$n
  mkdir -p "$nd/state"
  chmod 700 "$nd/state"
  pub "$k/pi-$s.pem" > "$nd/trust"
  {
    echo "# node $n of site $s (docs/nodeguard.md lists every key)"
    echo "node_id = $n"
    echo "trust_file = $nd/trust"
    echo "state_dir = $nd/state"
    echo "node_key = $k/node-$n.pem"
    echo "broker_url = $url"
    echo "broker_key = $broker_pub"
    echo "cpu_mcores = 4000"
    echo "link_kbps = 1000000"
    echo "reconcile_period_s = 10"
    echo "uid_base = $((300000 + i * 1000))"
    if ((enforce)); then
      ns=tb-$n
      ip netns add "$ns" 2>/dev/null || true
      netns_made+=("$ns")
      ip -n "$ns" link add tb0 type veth peer name tb1 2>/dev/null || true
      ip -n "$ns" addr add "10.77.$i.1/30" dev tb0 2>/dev/null || true
      ip -n "$ns" link set tb0 up
      ip -n "$ns" link set tb1 up
      echo "cgroup_mode = auto"
      echo "cgroup_prefix = bourse-tb-$n"
      echo "netns = $ns"
      echo "interface = tb0"
      echo "disk_root = $nd/state/disk"
      echo "launch = false"
    else
      echo "cgroup_mode = dry-run"
      echo "interface = eth0"
      echo "disk_root = none"
      echo "launch = false"
    fi
  } > "$nd/nodeguard.conf"
  start "guard-$n" "$guard" run --config "$nd/nodeguard.conf"
  i=$((i + 1))
done

# ---- pooling agents: two policies over the same three sites ----
sites_csv=$(IFS=,; echo "${SITES[*]}")
mkdir -p "$dir/agents/fixed" "$dir/agents/demand"
cat > "$dir/agents/fixed/agent.conf" <<CONF
# A cheap, steady seller: the same price per unit-hour whatever happens.
broker_url = $url
key = $k/agent-fixed.pem
state_dir = $dir/agents/fixed
sites = $sites_csv
markets = auto
policy = fixed
price = 0.4
unit = cpu_mcores=1000,mem_mib=2048
reprice_period_s = 5
rfq = true
CONF
cat > "$dir/agents/demand/agent.conf" <<CONF
# A trader: follows demand, and buys what is offered under its own value.
broker_url = $url
key = $k/agent-demand.pem
state_dir = $dir/agents/demand
sites = $sites_csv
markets = auto
policy = demand
price = 0.6
unit = cpu_mcores=1000,mem_mib=2048
floor = 0.3
ceiling = 3
demand_window_s = 120
reprice_period_s = 5
rfq = true
buy = true
buy_budget = 200
buy_below = 0.9
CONF
start agent-fixed "$agent" run --config "$dir/agents/fixed/agent.conf"
start agent-demand "$agent" run --config "$dir/agents/demand/agent.conf"

# ---- the example services (clients/examples/) ----
if [[ -x $ex/bourse-example-operator ]]; then
  start operator "$ex/bourse-example-operator" --url "$url" --key "$admin_key" \
    --unit "$MARKET_UNIT" --period "$period" --round-every 30
  start cdn "$ex/bourse-example-cdn" --url "$url" --key "$k/cdn.pem" --slice mit_cdn \
    --nodes 3 --min-sites 2 --res cpu_mcores=250,mem_mib=512,disk_mib=1024,net_min_kbps=2000,net_max_kbps=50000 \
    --max-price 50 --period "$period"
  start measure "$ex/bourse-example-measure" --url "$url" --key "$k/measure.pem" --slice ucb_measure \
    --count 2 --min-sites 2 --res cpu_mcores=200,mem_mib=256,disk_mib=0,net_min_kbps=1000,net_max_kbps=20000 --limit 5
  start batch "$ex/bourse-example-batch" --url "$url" --key "$k/batch.pem" --slice eth_batch \
    --rate 0.0005 --budget 5 --nodes all
else
  echo "testbed: $ex not built: running without the example services" >&2
fi

cat <<MSG

bourse testbed: 3 sites, ${#NODES[@]} nodes with a guard each$( ((enforce)) && echo " (enforcing in network namespaces)" || echo " (dry-run)"), 2 pooling agents, 4 services
dashboard: $url/
Try, in another shell at the repository root:
  export PATH=$build/clients:\$PATH BOURSE_URL=$url
  bourse market list
  bourse rfq list
  bourse round list
  bourse share list --node mit-1
  bourse --key $k/cdn.pem slice bindings mit_cdn
  bourse ledger verify --url $url
  $guard status --socket $dir/nodes/mit-1/state/status.sock /v1/slivers
Logs: $logs/   State: $dir   Ctrl-C stops everything.
MSG

# Every 30 s: the ledger's size and whether it verifies, so a newcomer sees it
# grow; a process that died is named (and the testbed goes on without it).
last_verify=0
while :; do
  for idx in "${!pids[@]}"; do
    ((pids[idx] > 0)) || continue
    if ! kill -0 "${pids[idx]}" 2>/dev/null; then
      wait "${pids[idx]}" 2>/dev/null && rc=0 || rc=$?
      pids[idx]=0
      echo "testbed: ${names[idx]} exited ($rc); see $logs/${names[idx]}.log" >&2
      [[ ${names[idx]} == broker ]] && exit 1
    fi
  done
  if ((SECONDS - last_verify >= 30)); then
    last_verify=$SECONDS
    if v=$("$bourse" ledger verify --url "$url" 2>&1); then
      echo "testbed: $(date +%T) ${v%%$'\n'*}"
    else
      echo "testbed: $(date +%T) ledger verify FAILED: $v" >&2
    fi
  fi
  sleep 1 &
  wait $! || true
done
