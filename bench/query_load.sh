#!/usr/bin/env bash
# Ingest and health checks under heavy query load, in one run: starts kpid from the build dir
# on a fresh temporary data dir on loopback ports, runs query_load_bench against it (backfill
# a year of hourly history and its rollups, then ingest alone, then ingest while 16 clients run
# heavy range queries), stops kpid with SIGTERM by PID, removes the temporary dir on exit.
#
# Usage: bench/query_load.sh [query_load_bench options...]   (see: query_load_bench --help)
# Environment: BUILD_DIR (default: <repo>/build-rel), KPID, QUERY_LOAD_BENCH (binaries' paths).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build=${BUILD_DIR:-$root/build-rel}
kpid=${KPID:-$build/src/kpid}
bench=${QUERY_LOAD_BENCH:-$build/bench/query_load_bench}
for exe in "$kpid" "$bench"; do
  if [[ ! -x $exe ]]; then
    echo "query_load.sh: $exe not found; build it first:" >&2
    echo "  cmake -S $root -B $build -DCMAKE_BUILD_TYPE=Release -DKPID_BUILD_BENCH=ON && cmake --build $build --target kpid query_load_bench" >&2
    exit 2
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpid-query-load.XXXXXX")
kpid_pid=""
cleanup() {
  stop_pid "$kpid_pid" 30
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "== kpid query-load benchmark $(date -u '+%F %H:%M UTC') on $(nproc) cores $(uname -m), ${cpu_model:-unknown CPU}"
echo "   kpid: $kpid ($("$kpid" --version 2>/dev/null || echo '?'))"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

: >"$tmp/kpid.log"
"$kpid" --data-dir "$tmp/data" --http-listen 127.0.0.1:0 --line-listen 127.0.0.1:0 \
  2>"$tmp/kpid.log" &
kpid_pid=$!

http_port="" line_port=""
for _ in $(seq 1 300); do
  http_port=$(sed -n 's/.*HTTP listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/kpid.log" | head -1)
  line_port=$(sed -n 's/.*line protocol listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/kpid.log" | head -1)
  [[ -n $http_port && -n $line_port ]] && break
  if ! kill -0 "$kpid_pid" 2>/dev/null; then
    echo "query_load.sh: kpid exited during startup:" >&2
    cat "$tmp/kpid.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z $http_port || -z $line_port ]]; then
  echo "query_load.sh: kpid did not log its ports within 30 s:" >&2
  cat "$tmp/kpid.log" >&2
  exit 1
fi
echo "   kpid pid $kpid_pid, HTTP on 127.0.0.1:$http_port, line protocol on 127.0.0.1:$line_port"

bench_rc=0
"$bench" --port "$http_port" --line-port "$line_port" "$@" || bench_rc=$?
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

start=$(date +%s.%N)
kpid_rc=0
if ! kill -TERM "$kpid_pid" 2>/dev/null; then
  echo "query_load.sh: kpid (pid $kpid_pid) died during the run" >&2
fi
for _ in $(seq 1 300); do kill -0 "$kpid_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$kpid_pid" 2>/dev/null; then
  echo "query_load.sh: kpid did not exit within 30 s of SIGTERM; killing it" >&2
  kill -KILL "$kpid_pid" 2>/dev/null || true
  kpid_rc=1
fi
wait "$kpid_pid" || kpid_rc=$?
kpid_pid=""
echo "RESULT kpid exit $kpid_rc after SIGTERM in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}') s"
if [[ $bench_rc -ne 0 || $kpid_rc -ne 0 ]]; then
  echo "query_load.sh: the last 40 lines of kpid's log:" >&2
  tail -n 40 "$tmp/kpid.log" >&2
fi
[[ $bench_rc -eq 0 && $kpid_rc -eq 0 ]]
