#!/usr/bin/env bash
# bench/restart.sh: how long kpid takes to be ready (/readyz 200) again with a large store.
#
# Starts kpid on 127.0.0.1 with a fresh temporary data dir, loads ROUNDS x SERIES x POINTS
# samples with peer_load (10 s apart, consecutive time ranges ending now), then measures:
#   1. a clean restart (SIGTERM, start again): time from exec to /readyz 200, RSS once ready;
#   2. a crash restart (load a little more, kill -9 mid-write, start again): the same, which
#      includes replaying the head log.
# Default: 10 rounds x 10,000 series x 1,000 points = 100 million samples.
#
# Usage: bench/restart.sh [--series N] [--points N] [--rounds N]
# Environment: BUILD_DIR (default <repo>/build), KPID, PEER_LOAD.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build}
kpid=${KPID:-$build/src/kpid}
load=${PEER_LOAD:-$build/bench/peer_load}
series=10000
points=1000
rounds=10
while [[ $# -gt 0 ]]; do
  case $1 in
    --series) series=$2; shift 2 ;;
    --points) points=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "restart.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
for exe in "$kpid" "$load"; do
  [[ -x $exe ]] || { echo "restart.sh: $exe not found; run scripts/build.sh" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpid-restart.XXXXXX")
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$load" free-port)
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Starts kpid and sets ready_ms to the milliseconds until /readyz answered 200.
ready_ms=0
start_kpid() {
  local t0 t1
  t0=$(ms)
  "$kpid" --data-dir "$tmp/data" --http-listen "127.0.0.1:$port" --line-listen "" \
    2>>"$tmp/kpid.log" &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do
    kill -0 "$pid" 2>/dev/null || { echo "kpid exited; log:" >&2; tail -20 "$tmp/kpid.log" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(ms)
  ready_ms=$((t1 - t0))
}

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }

stop_kpid() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
}

echo "== kpid restart benchmark $(date -u +%F), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
start_kpid
now=$(date +%s)
total=0
for ((r = 0; r < rounds; r++)); do
  end=$((now - 60 - (rounds - 1 - r) * points * 10))
  "$load" ingest --port "$port" --path /write --param precision=s --series "$series" \
    --points "$points" --end "$end" --seed $((r + 1)) >"$tmp/load.out"
  total=$((total + series * points))
  echo "   loaded round $((r + 1))/$rounds: $total samples ($(sed -n 's/^RESULT ingest .* samples_per_s \([0-9]*\).*/\1 samples\/s/p' "$tmp/load.out"))"
done
curl -sf -X POST "http://127.0.0.1:$port/api/v1/admin/compact" >/dev/null
echo "   on disk after compaction: $(du -sb "$tmp/data" | cut -f1) bytes; RSS before restart $(rss_mb) MB"

stop_kpid
start_kpid
clean_ms=$ready_ms
sleep 1
clean_rss=$(rss_mb)
echo "   clean restart: ready in $clean_ms ms, RSS $clean_rss MB"

# Crash: write more, kill -9 while writing, restart.
"$load" ingest --port "$port" --path /write --param precision=s --series "$series" \
  --points 30 --end $((now + 300)) --seed 99 >/dev/null 2>&1 &
writer=$!
sleep 1
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
wait "$writer" 2>/dev/null || true
pid=""
start_kpid
crash_ms=$ready_ms
sleep 1
crash_rss=$(rss_mb)
echo "   crash restart (kill -9 mid-write): ready in $crash_ms ms, RSS $crash_rss MB"
grep -h "replayed" "$tmp/kpid.log" | tail -1 | sed 's/^/   /' || true
stop_kpid
echo "RESULT samples $total clean_ready_ms $clean_ms clean_rss_mb $clean_rss crash_ready_ms $crash_ms crash_rss_mb $crash_rss"
