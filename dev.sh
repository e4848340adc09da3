#!/usr/bin/env bash
# bourse developer entry point. The README's two commands:
#   ./dev.sh run    install missing Debian packages, build, run the living testbed
#                   (scripts/testbed.sh: [--listen HOST:PORT] [--fresh] [--enforce])
#   ./dev.sh test   install missing Debian packages, build, run every test
# Also: ./dev.sh build | asan (every test under ASan+UBSan) | fuzz [SECONDS] (the
# libFuzzer targets) | bench. asan and fuzz share one clang build, build-check/,
# which also checks lock contracts (-Wthread-safety -Werror).
# Idempotent: packages are installed only when missing, builds are incremental.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}
# A ccache launcher (CMAKE_CXX_COMPILER_LAUNCHER=ccache) hits with the
# precompiled headers (BOURSE_PCH) only with this sloppiness; without ccache it is unused.
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}

PACKAGES=(build-essential cmake ninja-build pkg-config git
  libboost-dev libsqlite3-dev libcpp-httplib-dev nlohmann-json3-dev libssl-dev openssl
  libsodium-dev libcli11-dev coinor-libcbc-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  iproute2 e2fsprogs util-linux procps sqlite3 curl nftables
  systemd  # systemd-analyze verify, systemd-socket-activate: tests/packaging/packages_test.sh
  openssh-server openssh-client  # ssh into a sliver (docs/nodeguard.md), its test
  nodejs chromium)
# npm: Debian's package, unless a nodejs that bundles it (nodesource's) is installed.
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(npm); fi

ensure_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]})); then
    echo "dev.sh: installing missing packages: ${missing[*]}" >&2
    if [[ $(id -u) -ne 0 ]]; then
      echo "dev.sh: need root to install packages (run as root or: sudo apt-get install ${missing[*]})" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The dashboard's npm packages (web/package-lock.json: uPlot, and puppeteer-core
# for the browser tests), installed with `npm ci` when web/node_modules is
# missing or older than the lock file.
ensure_web_packages() {
  local stamp=web/node_modules/.package-lock.json
  if [[ ! -f $stamp || web/package-lock.json -nt $stamp ]]; then
    echo "dev.sh: npm ci in web/" >&2
    (cd web && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
  fi
}

configure_and_build() {  # DIR [cmake args...]
  local dir=$1
  shift
  if [[ ! -f $dir/build.ninja ]]; then
    cmake -S "$ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$JOBS"
}

run_tests() {  # DIR
  local dir=$1
  # ctest's closing line reports the counts.
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" --timeout 900 ${CTEST_ARGS:-})
}

# The checked build, build-check/, serves both `asan` and `fuzz`: clang with
# ASan+UBSan on everything, the libFuzzer targets (coverage on the libraries
# they link), and -Wthread-safety -Werror on every library and executable (not
# the tests; target bourse_checked). -O0 with line tables: clang compiles it in
# about half the time g++ takes for its ASan build (docs/perf/ci.md). Without
# precompiled headers, so it also checks that every source includes what it uses.
# Our own assert()s are on; Boost's internal BOOST_ASSERTs are off, as in the
# release build (NDEBUG), so the fuzzers test Boost.Beast as it runs in production
# (Beast 1.74 asserts on a last-chunk line ending in a bare LF; its release path
# handles it without a memory error under ASan: docs/perf/ci.md).
configure_checked_build() {
  if [[ ! -f build-check/build.ninja ]]; then
    cmake -S "$ROOT" -B build-check -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_CXX_FLAGS_DEBUG="-O0 -gline-tables-only -DBOOST_DISABLE_ASSERTS" \
      -DBOURSE_SANITIZE=ON -DBOURSE_FUZZ=ON -DBOURSE_THREAD_SAFETY=ON \
      -DBOURSE_BUILD_BENCH=OFF -DBOURSE_PCH=OFF >/dev/null
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  build)
    ensure_packages
    ensure_web_packages
    configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    ;;
  run)
    ensure_packages
    ensure_web_packages
    configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    exec "$ROOT/scripts/testbed.sh" "$ROOT/build" "$@"
    ;;
  test)
    ensure_packages
    ensure_web_packages
    configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    run_tests build
    ;;
  asan)
    ensure_packages
    configure_checked_build
    cmake --build build-check -j "$JOBS"
    # The testbed and package tests (labels testbed, packaging) run the same
    # code as the suites and only in the release build; the solver's 1,500
    # tiny rounds against the exhaustive search run there, 300 of them here.
    BOURSE_WDP_TINY_ROUNDS=${BOURSE_WDP_TINY_ROUNDS:-300} \
    CTEST_ARGS=${CTEST_ARGS:--LE testbed|packaging} \
      ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
      LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0} \
      UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} run_tests build-check
    ;;
  fuzz)
    ensure_packages
    secs=${1:-60}
    configure_checked_build
    cmake --build build-check -j "$JOBS" --target fuzzers bourse_checked
    "$ROOT/scripts/fuzz.sh" "$ROOT/build-check" "$secs"
    ;;
  bench)
    ensure_packages
    ensure_web_packages
    configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    for b in build/bench/bench_*; do [[ -x $b ]] && "$b" "$@"; done
    ;;
  *)
    echo "usage: ./dev.sh run|test|build|asan|fuzz [SECONDS]|bench" >&2
    exit 2
    ;;
esac
