#!/usr/bin/env bash
# packaging_debs (ctest label `packaging`): the Debian packages from CPack
# (packaging/CMakeLists.txt), installed, run as services, stopped and purged.
#
#   tests/packaging/packages_test.sh BUILD_DIR
#
# 1. `cpack -G DEB` in a scratch directory; each package's files, conffiles,
#    Depends and stripped binaries are checked.
# 2. `apt-get install` of the four .debs (pulling run-time dependencies):
#    users, state directories, the broker's database and keys; installing
#    again keeps them; `systemd-analyze verify` on each installed unit.
# 3. Each service is started from its installed unit: with `systemctl` when
#    systemd runs as PID 1, else by hand with the unit's own ExecStart= line
#    (EnvironmentFile= expanded), as its User=/Group= with its
#    NoNewPrivileges= and CapabilityBoundingSet=, through setpriv. Unedited
#    configs must make the guard and the agent exit with the unit's
#    RestartPreventExitStatus= (no restart loop). Then, configured:
#    broker: GET /healthz, the dashboard at / and /app.js;
#    guard (dry-run cgroups): registered with the broker, its status socket
#    shows the broker reached (and READY=1 on $NOTIFY_SOCKET, Type=notify,
#    once the binary sends it);
#    agent: running, `bourse-agent status` answers;
#    backup: `sqlite3 DB ".backup FILE"` of the live database, and
#    `bourse ledger verify --db FILE` on the copy; restored as the docs say,
#    the broker starts again on it and `bourse ledger verify --url` passes.
#    Each is stopped with SIGTERM and must exit 0.
# 4. `apt-get purge`: no file of the packages, no state directory, no
#    /etc/bourse, no systemd link or deb-systemd-helper state is left. The
#    system users bourse-broker and bourse-agent stay (Debian practice).
#
# Needs root (exit 77: skipped otherwise, or when bourse packages that this
# test did not install are on the machine). Never runs twice at once (flock).
# Everything is removed on exit, also on failure (trap).
set -euo pipefail

BUILD=${1:?usage: packages_test.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
PKGS=(bourse-cli bourse-broker bourse-nodeguard bourse-agent)
MARKER=/var/lib/bourse-packaging-test.installed
LOCK=/tmp/bourse-packaging-test.lock
UNITDIR=/usr/lib/systemd/system
STEP=start

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL ($STEP): $*" >&2; exit 1; }
step() { STEP=$1; echo "== $1"; }

[[ $(id -u) -eq 0 ]] || skip "needs root (installs packages)"
for tool in cpack dpkg apt-get setpriv runuser curl flock sqlite3 readelf systemd-analyze \
            systemd-socket-activate; do
  command -v "$tool" >/dev/null || skip "$tool is missing"
done
[[ -f $BUILD/CPackConfig.cmake ]] || fail "$BUILD/CPackConfig.cmake is missing (configure first)"

exec 9>"$LOCK"
flock -w 120 9 || fail "another run holds $LOCK"

installed() {  # PKG: installed or config-files left
  local st
  st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [[ $st =~ \ (installed|config-files|half-installed|unpacked|half-configured)$ ]]
}
purge_all() {
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PKGS[@]}" >"$T/purge.log" 2>&1 ||
    dpkg --purge "${PKGS[@]}" >>"$T/purge.log" 2>&1 || true
}

T=$(mktemp -d /tmp/bourse-packaging.XXXXXX)
# The stand-in notify sockets live apart from $T (0700, keys): a unit's own
# user must reach its socket, as it reaches systemd's.
NOTIFY_DIR=$(mktemp -d /tmp/bourse-packaging-notify.XXXXXX)
chmod 755 "$NOTIFY_DIR"
chmod 0755 "$T"
PIDS=()
cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  if [[ -d /run/systemd/system ]]; then
    systemctl stop bourse-agent bourse-nodeguard bourse-broker 2>/dev/null
  fi
  if [[ -f $MARKER ]]; then purge_all; rm -f "$MARKER"; fi
  if ((rc != 0 && rc != 77)); then
    for f in "$T"/*.log; do [[ -f $f ]] && { echo "--- $f"; tail -n 30 "$f"; }; done
  fi
  rm -rf "$T" "$NOTIFY_DIR"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run killed before its cleanup left its packages: they are ours.
if [[ -f $MARKER ]]; then purge_all; rm -f "$MARKER"; fi
for p in "${PKGS[@]}"; do
  installed "$p" && skip "$p is installed on this machine and not by this test; not touching it"
done

step "cpack"
(cd "$T" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$T/cpack" >"$T/cpack.log" 2>&1) ||
  fail "cpack failed: $(tail -n 20 "$T/cpack.log")"
DEBS=()
for p in "${PKGS[@]}"; do
  d=$(ls "$T"/cpack/"$p"_*.deb 2>/dev/null) || fail "no ${p}_*.deb in $T/cpack"
  DEBS+=("$d")
done
deb_field() { dpkg-deb -f "$1" "$2"; }
for d in "${DEBS[@]}"; do
  pkg=$(deb_field "$d" Package)
  deps=$(deb_field "$d" Depends)
  [[ $deps == *libc6* ]] || fail "$pkg: Depends lacks the shared libraries (dpkg-shlibdeps): $deps"
  case $pkg in
    bourse-broker | bourse-agent)
      [[ $deps == *adduser* ]] || fail "$pkg: Depends lacks adduser: $deps" ;;
    bourse-nodeguard)
      for need in iproute2 nftables e2fsprogs mount util-linux; do
        [[ $deps == *"$need"* ]] || fail "$pkg: Depends lacks $need: $deps"
      done ;;
  esac
done
# (Output captured first: with pipefail, grep -q closing the pipe fails the writer.)
dpkg-deb -c "${DEBS[1]}" >"$T/broker.contents"
grep -q '\./usr/share/bourse/web/index.html$' "$T/broker.contents" ||
  fail "bourse-broker does not ship the dashboard as /usr/share/bourse/web"

# Left over from an install outside the packages, these would hide a missing file.
for f in /usr/bin/bourse /usr/bin/bourse-broker /usr/bin/bourse-nodeguard /usr/bin/bourse-agent \
         /usr/share/bourse /etc/bourse /var/lib/bourse-broker /var/lib/bourse-nodeguard \
         /var/lib/bourse-agent; do
  [[ -e $f ]] && skip "$f exists outside the packages; not touching it"
done

step "install"
touch "$MARKER"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${DEBS[@]}" \
  >"$T/install.log" 2>&1 || fail "apt-get install failed: $(tail -n 20 "$T/install.log")"
for p in "${PKGS[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p") == 'install ok installed' ]] || fail "$p is not installed"
done
for b in bourse bourse-broker bourse-nodeguard bourse-agent; do
  [[ -x /usr/bin/$b ]] || fail "/usr/bin/$b is missing"
  [[ $(readelf -S "/usr/bin/$b") == *.debug_info* ]] && fail "/usr/bin/$b is not stripped"
done
[[ $(stat -c '%U %a' /usr/lib/bourse/bourse-login) == "root 4755" ]] ||
  fail "/usr/lib/bourse/bourse-login is $(stat -c '%U %a' /usr/lib/bourse/bourse-login), want root 4755"
for c in bourse-broker:broker.env bourse-nodeguard:nodeguard.conf bourse-agent:agent.conf; do
  [[ $(dpkg-query -W -f='${Conffiles}' "${c%%:*}") == *"/etc/bourse/${c#*:} "* ]] ||
    fail "${c%%:*}: /etc/bourse/${c#*:} is not a conffile"
done
for u in bourse-broker bourse-agent; do
  getent passwd "$u" >/dev/null || fail "postinst did not create the user $u"
  [[ $(stat -c %U "/var/lib/$u") == "$u" ]] || fail "/var/lib/$u is not owned by $u"
done
DB=/var/lib/bourse-broker/bourse.db
ADMIN_KEY=$DB.admin-key.pem
for f in "$DB" "$DB.ledger-key.pem" "$ADMIN_KEY"; do
  [[ -f $f ]] || fail "postinst did not run bourse-broker init: $f is missing"
done
[[ $(stat -c '%U %a' "$ADMIN_KEY") == "bourse-broker 600" ]] ||
  fail "$ADMIN_KEY is $(stat -c '%U %a' "$ADMIN_KEY"), want bourse-broker 600"

# Installing again (an upgrade runs the same postinst with the old version)
# keeps the users, the database and its keys.
sum_before=$(sha256sum "$DB" "$DB.ledger-key.pem" "$ADMIN_KEY")
DEBIAN_FRONTEND=noninteractive dpkg -i "${DEBS[@]}" >"$T/reinstall.log" 2>&1 ||
  fail "installing the packages again failed: $(tail -n 20 "$T/reinstall.log")"
[[ $(sha256sum "$DB" "$DB.ledger-key.pem" "$ADMIN_KEY") == "$sum_before" ]] ||
  fail "installing again changed the broker's database or keys"

step "systemd-analyze verify"
for u in bourse-broker bourse-nodeguard bourse-agent; do
  [[ -f $UNITDIR/$u.service ]] || fail "$UNITDIR/$u.service is missing"
  out=$(systemd-analyze verify "$UNITDIR/$u.service" 2>&1) ||
    fail "systemd-analyze verify $u.service: $out"
  if grep -F "$u.service" <<<"$out"; then fail "systemd-analyze verify $u.service warns"; fi
done

# --- Running a unit -------------------------------------------------------
# unit_values UNIT KEY: the unit's values of KEY, one per line.
unit_values() { sed -n "s/^$2=//p" "$UNITDIR/$1.service"; }
unit_value() { unit_values "$1" "$2" | tail -n 1; }

# unit_argv UNIT: fills ARGV with the unit's ExecStart=, with the variables of
# its EnvironmentFile= expanded as systemd does ($X split on spaces, ${X} one word).
unit_argv() {
  local unit=$1 line envfile k v w
  declare -gA UNIT_ENV=()
  ARGV=()
  for envfile in $(unit_values "$unit" EnvironmentFile); do
    envfile=${envfile#-}
    while IFS= read -r line; do
      [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
      [[ $line == *=* ]] || fail "$envfile: not KEY=VALUE: $line"
      k=${line%%=*} v=${line#*=}
      [[ $v =~ ^\"(.*)\"$ || $v =~ ^\'(.*)\'$ ]] && v=${BASH_REMATCH[1]}
      UNIT_ENV[$k]=$v
    done <"$envfile"
  done
  line=$(unit_value "$unit" ExecStart)
  [[ $line == /* ]] || fail "$unit: ExecStart= with a prefix or a relative path: $line"
  [[ $line == *[\"\'\\]* ]] && fail "$unit: ExecStart= with quotes is not handled here: $line"
  for w in $line; do
    if [[ $w =~ ^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$ ]]; then
      ARGV+=("${UNIT_ENV[${BASH_REMATCH[1]}]-}")
    elif [[ $w =~ ^\$([A-Za-z_][A-Za-z0-9_]*)$ ]]; then
      # shellcheck disable=SC2206  # split on spaces, as systemd does
      ARGV+=(${UNIT_ENV[${BASH_REMATCH[1]}]-})
    elif [[ $w == *'$'* ]]; then
      fail "$unit: ExecStart= word $w: only whole-word \$VAR and \${VAR} are handled here"
    else
      ARGV+=("$w")
    fi
  done
}

# unit_setpriv UNIT: fills SETPRIV with the setpriv(1) command line that gives
# a process the unit's user, group, no_new_privs and capability bounding set.
unit_setpriv() {
  local unit=$1 user group caps c bset="-all"
  user=$(unit_value "$unit" User) group=$(unit_value "$unit" Group)
  SETPRIV=(setpriv --inh-caps=-all)
  if [[ -n $user ]]; then
    SETPRIV+=(--reuid="$user" --regid="${group:-$user}" --init-groups)
  fi
  [[ $(unit_value "$unit" NoNewPrivileges) == yes ]] && SETPRIV+=(--no-new-privs)
  caps=$(unit_values "$unit" CapabilityBoundingSet | tr '\n' ' ')
  for c in $caps; do
    c=${c,,}
    bset+=",+${c#cap_}"
  done
  SETPRIV+=(--bounding-set="$bset")
}

# unit_statedir UNIT: creates /var/lib/<StateDirectory=> as systemd would.
unit_statedir() {
  local unit=$1 d mode user
  d=$(unit_value "$unit" StateDirectory)
  [[ -n $d ]] || return 0
  mode=$(unit_value "$unit" StateDirectoryMode)
  user=$(unit_value "$unit" User)
  install -d -m "${mode:-0755}" -o "${user:-root}" -g "${user:-root}" "/var/lib/$d"
}

SYSTEMD=0
[[ -d /run/systemd/system ]] && SYSTEMD=1
echo "systemd as PID 1: $SYSTEMD"

# start_unit UNIT: starts it (systemctl or by hand); by hand, its output goes
# to $T/UNIT.log and its pid to UNIT_PID[UNIT].
declare -A UNIT_PID=()
start_unit() {
  local unit=$1
  if ((SYSTEMD)); then
    systemctl start "$unit" || fail "systemctl start $unit: $(journalctl -u "$unit" -n 20 --no-pager)"
    return
  fi
  unit_argv "$unit"
  unit_setpriv "$unit"
  unit_statedir "$unit"
  local env=()
  if [[ $(unit_value "$unit" Type) == notify ]]; then
    # systemd's side of sd_notify: a datagram socket; what arrives goes to
    # $T/UNIT.notify (systemd-socket-activate hands the socket to cat as fd 3).
    systemd-socket-activate --datagram -l "$NOTIFY_DIR/$unit.sock" sh -c 'exec cat <&3' \
      >"$T/$unit.notify" 2>"$T/$unit.notify.log" &
    PIDS+=($!)
    wait_for 10 "the notify socket" test -S "$NOTIFY_DIR/$unit.sock"
    chmod 666 "$NOTIFY_DIR/$unit.sock"
    env=(NOTIFY_SOCKET="$NOTIFY_DIR/$unit.sock")
  fi
  (cd / && exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
     "${env[@]}" "${SETPRIV[@]}" -- "${ARGV[@]}" </dev/null >"$T/$unit.log" 2>&1) &
  UNIT_PID[$unit]=$!
  PIDS+=($!)
  echo "started $unit (pid ${UNIT_PID[$unit]}): ${SETPRIV[*]} -- ${ARGV[*]}"
}

# stop_unit UNIT: SIGTERM (systemctl stop), then the unit must have exited 0.
stop_unit() {
  local unit=$1 rc=0
  if ((SYSTEMD)); then
    systemctl stop "$unit"
    [[ $(systemctl show -p Result --value "$unit") == success ]] ||
      fail "$unit did not stop cleanly: $(systemctl status "$unit" --no-pager)"
    return
  fi
  kill -TERM "${UNIT_PID[$unit]}"
  wait "${UNIT_PID[$unit]}" || rc=$?
  ((rc == 0)) || fail "$unit exited $rc on SIGTERM: $(tail -n 20 "$T/$unit.log")"
  echo "stopped $unit"
}

alive() {  # UNIT
  if ((SYSTEMD)); then systemctl is-active -q "$1"; else kill -0 "${UNIT_PID[$1]}" 2>/dev/null; fi
}

# wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds (a deadline, not a timing assert).
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what: not within ${secs} s"
    sleep 0.2
  done
}

# A unit that is not configured stops at once with its RestartPreventExitStatus=.
refuses_unconfigured() {
  local unit=$1 want rc=0
  want=$(unit_value "$unit" RestartPreventExitStatus)
  [[ -n $want ]] || fail "$unit has no RestartPreventExitStatus="
  unit_argv "$unit"
  unit_setpriv "$unit"
  unit_statedir "$unit"
  "${SETPRIV[@]}" -- "${ARGV[@]}" </dev/null >"$T/$unit.unconfigured.log" 2>&1 || rc=$?
  ((rc == want)) ||
    fail "$unit with the shipped config exited $rc, want $want: $(cat "$T/$unit.unconfigured.log")"
  echo "$unit refuses the shipped config: $(head -n 1 "$T/$unit.unconfigured.log")"
}

step "unconfigured guard and agent"
refuses_unconfigured bourse-nodeguard
refuses_unconfigured bourse-agent

step "broker"
# As an operator would: a port of its own (0 = any free port, read back).
sed -i 's|^BOURSE_BROKER_OPTS=.*|BOURSE_BROKER_OPTS=--listen 127.0.0.1:0|' /etc/bourse/broker.env
start_unit bourse-broker
broker_log() {  # this start's output only
  if ((SYSTEMD)); then
    journalctl --no-pager -o cat \
      _SYSTEMD_INVOCATION_ID="$(systemctl show -p InvocationID --value bourse-broker)"
  else
    cat "$T/bourse-broker.log"
  fi
}
listening() { [[ $(broker_log) =~ \"listening\":\"http://127.0.0.1:[0-9]+\" ]]; }
wait_for 30 "bourse-broker prints its listening line" listening
URL=$(broker_log | sed -n 's/.*"listening":"\(http:[^"]*\)".*/\1/p' | tail -n 1)
echo "broker at $URL"
if ((!SYSTEMD)); then
  wait_for 30 "the broker sends READY=1 on \$NOTIFY_SOCKET" grep -aq 'READY=1' "$T/bourse-broker.notify"
fi
curl -fsS "$URL/healthz" >"$T/healthz.out" || fail "GET /healthz failed"
[[ $(curl -fsS "$URL/") == *'<title>bourse</title>'* ]] || fail "GET / is not the dashboard"
curl -fsS "$URL/app.js" >/dev/null || fail "GET /app.js failed"
curl -fsS "$URL/vendor/uplot/uPlot.esm.js" >/dev/null ||
  echo "note: the dashboard has no charts library (web/node_modules missing at build time)"

bourse_admin() { bourse --url "$URL" --key "$ADMIN_KEY" "$@"; }
bourse key new "$T/pi.pem" >/dev/null
bourse_admin site add pkgtest --pi "$T/pi.pem" >/dev/null || fail "site add"

step "node guard"
bourse key new "$T/node.pem" >/dev/null
bourse key pub "$T/pi.pem" >"$T/trust"
bourse --url "$URL" --key "$T/pi.pem" node add pkgtest pkgtest-n1 --key "$T/node.pem" \
  --res cpu_mcores=2000,mem_mib=2048 >/dev/null || fail "node add"
cat >/etc/bourse/nodeguard.conf <<EOF
node_id = pkgtest-n1
trust_file = $T/trust
state_dir = /var/lib/bourse-nodeguard
broker_url = $URL
node_key = $T/node.pem
cgroup_mode = dry-run
disk_root = none
reconcile_period_s = 1
EOF
start_unit bourse-nodeguard
SOCK=/var/lib/bourse-nodeguard/status.sock
guard_reached_broker() {
  bourse-nodeguard status --socket "$SOCK" >"$T/guard-status.json" &&
    grep -Eq '"broker":\{[^}]*"ok":true' "$T/guard-status.json" &&
    grep -q '"node":"pkgtest-n1"' "$T/guard-status.json"
}
wait_for 60 "the guard's status socket shows the broker reached" guard_reached_broker
if ((SYSTEMD)); then
  echo "guard active (Type=notify: systemctl start returned after READY=1)"
else
  wait_for 60 "the guard sends READY=1 on \$NOTIFY_SOCKET" \
    grep -aq 'READY=1' "$T/bourse-nodeguard.notify"
  echo "guard sent READY=1: $(tr '\n' ' ' <"$T/bourse-nodeguard.notify")"
fi
alive bourse-nodeguard || fail "the guard exited: $(tail -n 20 "$T/bourse-nodeguard.log")"
stop_unit bourse-nodeguard

step "agent"
runuser -u bourse-agent -- bourse key new /var/lib/bourse-agent/agent.pem >/dev/null
bourse_admin principal add /var/lib/bourse-agent/agent.pem --kind agent --name pkgagent >/dev/null ||
  fail "principal add"
cat >/etc/bourse/agent.conf <<EOF
broker_url = $URL
key = /var/lib/bourse-agent/agent.pem
state_dir = /var/lib/bourse-agent
sites = pkgtest
markets = auto
policy = fixed
price = 0.5
unit = cpu_mcores=1000
reprice_period_s = 1
EOF
start_unit bourse-agent
agent_status() {
  runuser -u bourse-agent -- bourse-agent status --config /etc/bourse/agent.conf >"$T/agent-status.out"
}
wait_for 30 "bourse-agent status answers" agent_status
wait_for 30 "the agent writes its log" test -s /var/lib/bourse-agent/agent.log
alive bourse-agent || fail "the agent exited: $(tail -n 20 "$T/bourse-agent.log")"
stop_unit bourse-agent

step "backup (docs/operations.md)"
# SQLite's online backup of the live WAL database, checked offline.
sqlite3 "$DB" ".backup $T/backup.db" || fail "sqlite3 .backup"
bourse ledger verify --db "$T/backup.db" >"$T/verify.out" 2>&1 ||
  fail "bourse ledger verify --db on the backup: $(cat "$T/verify.out")"

step "restore (docs/operations.md)"
stop_unit bourse-broker
rm -f "$DB-wal" "$DB-shm"
install -m 0600 -o bourse-broker -g bourse-broker "$T/backup.db" "$DB"
runuser -u bourse-broker -- bourse ledger verify --db "$DB" >"$T/verify.out" 2>&1 ||
  fail "bourse ledger verify --db on the restored database: $(cat "$T/verify.out")"
start_unit bourse-broker
wait_for 30 "the restored broker prints its listening line" listening
URL=$(broker_log | sed -n 's/.*"listening":"\(http:[^"]*\)".*/\1/p' | tail -n 1)
bourse ledger verify --url "$URL" >"$T/verify.out" 2>&1 ||
  fail "bourse ledger verify --url on the restored broker: $(cat "$T/verify.out")"
[[ $(bourse --url "$URL" node list --site pkgtest) == *pkgtest-n1* ]] ||
  fail "the restored broker does not know node pkgtest-n1"

step "broker stop"
stop_unit bourse-broker

step "purge"
purge_all
rm -f "$MARKER"
for p in "${PKGS[@]}"; do
  installed "$p" && fail "$p is still installed or has config files: $(dpkg -l "$p" | tail -n 1)"
done
left=()
for f in /usr/bin/bourse /usr/bin/bourse-broker /usr/bin/bourse-nodeguard /usr/bin/bourse-agent \
         /usr/share/bourse /usr/lib/bourse /usr/share/doc/bourse-broker /usr/share/doc/bourse-nodeguard \
         /usr/share/doc/bourse-agent /usr/share/doc/bourse-cli /etc/bourse \
         /var/lib/bourse-broker /var/lib/bourse-nodeguard /var/lib/bourse-agent \
         "$UNITDIR"/bourse-*.service /lib/systemd/system/bourse-*.service \
         /etc/systemd/system/bourse-*.service /etc/systemd/system/*/bourse-*.service \
         /var/lib/systemd/deb-systemd-helper-enabled/*bourse* \
         /var/lib/systemd/deb-systemd-helper-masked/*bourse*; do
  [[ -e $f || -L $f ]] && left+=("$f")
done
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
echo "PASS: packages built, installed, run, stopped and purged (users bourse-broker and bourse-agent stay)"
