#!/usr/bin/env bash
# bench/year.sh: a year of history. year_bench generates --series series at --interval-ms for
# --days days ending now (40% two-decimal random walks, 30% counters, 15% constants, 15% noisy
# floats, host label h00000...) and backfills them into a fresh data dir, in-process through
# RocksDbStore::append, one day of a group of series per append. Windows past raw retention
# (retention.raw, 30 days by default) go straight into the 5-minute and 1-hour
# rollups; the newest 30 days are stored raw. Then the real kpid opens the data dir with one
# KPI whose baseline window is 365 days, and the script records:
#   - backfill samples/s, and the data dir's bytes after kpid settled it by itself (no admin
#     call), per sample and per series;
#   - a one-year avg_over_time of one series (at now: from 5-minute buckets; on the hour: from
#     1-hour ones) and of all gauges (on the hour), through kpid's HTTP API (curl's time_total,
#     --reps times: median and max);
#   - the one-year KPI baseline: kpid's own recompute (the KPI's baseline in /api/v1/kpis is
#     trusted and spans the year), and the history query it runs (the KPI's value every hour
#     over 365 days, /api/v1/query_range), timed the same way.
# Runs on 127.0.0.1 with a temporary data dir (removed at the end unless --keep DIR; --reuse DIR
# skips the backfill and measures a dir kept by an earlier run with the same --series, --days
# and --interval-ms).
#
# Usage: bench/year.sh [--series N] [--days D] [--interval-ms MS] [--reps R] [--keep DIR]
#                      [--reuse DIR]
# Environment: BUILD_DIR (default <repo>/build), KPID, YEAR_BENCH (binaries' paths).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build}
kpid=${KPID:-$build/src/kpid}
year_bench=${YEAR_BENCH:-$build/bench/year_bench}
cmdline="bench/year.sh${*:+ $*}"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

series=10000
days=365
interval_ms=10000
reps=20
keep=""
reuse=""

usage() {
  header_usage "${BASH_SOURCE[0]}"
  echo "Defaults: --series $series --days $days --interval-ms $interval_ms --reps $reps"
}

while [[ $# -gt 0 ]]; do
  split_flag year.sh "" "$@"
  shift "$taken"
  case $flag in
    --help|-h) usage; exit 0 ;;
    --series) series=$value ;;
    --days) days=$value ;;
    --interval-ms) interval_ms=$value ;;
    --reps) reps=$value ;;
    --keep) keep=$value ;;
    --reuse) reuse=$value ;;
    *) echo "year.sh: unknown option $flag (see bench/year.sh --help)" >&2; exit 2 ;;
  esac
done
for v in series days interval_ms reps; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "year.sh: --${v//_/-} needs a positive integer, got '${!v}'" >&2; exit 2; }
done
((days >= 31)) || { echo "year.sh: --days must be at least 31 (past raw retention)" >&2; exit 2; }
[[ -z $keep || ! -e $keep ]] || { echo "year.sh: --keep $keep exists already" >&2; exit 2; }
[[ -z $reuse || -d $reuse ]] || { echo "year.sh: --reuse $reuse is not a directory" >&2; exit 2; }
needed=("$kpid")
[[ -n $reuse ]] || needed+=("$year_bench")
for exe in "${needed[@]}"; do
  if [[ ! -x $exe ]]; then
    echo "year.sh: $exe not found; build it first:" >&2
    echo "  cmake -S $root -B $build -DKPID_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release && cmake --build $build --target kpid year_bench -j2" >&2
    exit 2
  fi
done

log() { echo "year: $*"; }
die() { echo "year: FAILED: $*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpid-year.XXXXXX")
data=${reuse:-${keep:-$tmp/data}}
kpid_pid=""
cleanup() {
  stop_pid "$kpid_pid" 60
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

samples=$((series * days * 86400000 / interval_ms))
if [[ -n $reuse ]]; then
  log "reusing $data (backfilled by an earlier run)"
  rate="- (reused)"
  backfill_s="-"
else
  log "backfilling $series series x $days days every $interval_ms ms ($samples samples) into $data"
  t0=$(date +%s.%N)
  "$year_bench" --data-dir "$data" --series "$series" --days "$days" --interval-ms "$interval_ms" |
    tee "$tmp/backfill.log" | sed 's/^/  /'
  backfill_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  rate=$(sed -n 's/.*in [0-9.]* s: \([0-9]*\) samples\/s.*/\1/p' "$tmp/backfill.log")
  [[ -n $rate ]] || die "year_bench printed no rate"
fi

# Trusted once the history spans nine tenths of the data.
min_history_days=$((days * 9 / 10))
((min_history_days > 365)) && min_history_days=365
# One KPI over a gauge with a one-year quantile baseline (its history: the KPI's value every
# hour for 365 days, from the 1-hour rollups).
cat >"$tmp/kpid.toml" <<EOF
[[kpi]]
id = "year"
owner = "bench"
direction = "lower_is_better"
[kpi.value]
selector = 'bench_gauge{host="h00000"}'
over_time = "avg"
window = "1h"
[kpi.band]
warn = 1000000
crit = 2000000
[kpi.baseline]
method = "quantile"
window = "365d"
quantiles = [0.05, 0.95]
min_history = "${min_history_days}d"
EOF
"$kpid" --config "$tmp/kpid.toml" --data-dir "$data" --http-listen 127.0.0.1:0 --line-listen "" \
  >"$tmp/kpid.log" 2>&1 &
kpid_pid=$!
port=$(kpid_http_port "$tmp/kpid.log" "$kpid_pid" 1200) || die "kpid did not start"
base="http://127.0.0.1:$port"

# Settled by itself: no write, no admin call; wait until the data dir stops changing (its size
# equal over 30 s), at most 10 minutes.
prev=-1
for _ in $(seq 1 20); do
  sleep 30
  now_bytes=$(du -sb "$data" | cut -f1)
  [[ $now_bytes == "$prev" ]] && break
  prev=$now_bytes
done
disk=$(du -sb "$data" | cut -f1)

# time_query PATH: curl's time_total of GET $base$PATH, --reps times after one untimed call;
# prints "median max" in ms. Fails when kpid answers anything but success.
time_query() {
  local url=$base$1 t
  curl -sf -g "$url" | grep -q '"status":"success"' || die "GET $1 failed: $(curl -s -g "$url" | head -c 400)"
  for _ in $(seq 1 "$reps"); do
    t=$(curl -sf -g -o /dev/null -w '%{time_total}' "$url") || die "GET $1 failed"
    echo "$t"
  done | sort -n | awk '{a[NR] = $1 * 1000} END {printf "%.1f %.1f", a[int((NR + 1) / 2)], a[NR]}'
}
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }

# At now (not on the hour: the year is read from 5-minute buckets, the window widened to whole
# ones) and at the last whole hour (1-hour buckets, exact).
end=$(date +%s)
hour=$((end / 3600 * 3600))
one=$(enc 'avg_over_time(bench_gauge{host="h00000"}[365d])')
all=$(enc 'avg_over_time(bench_gauge[365d])')
hist=$(enc 'avg_over_time(bench_gauge{host="h00000"}[1h])')
q_one=$(time_query "/api/v1/query?query=$one&time=$end")
q_one_h=$(time_query "/api/v1/query?query=$one&time=$hour")
q_all=$(time_query "/api/v1/query?query=$all&time=$hour")
hist_start=$((end / 3600 * 3600 - 365 * 86400 + 3600))
q_hist=$(time_query "/api/v1/query_range?query=$hist&start=$hist_start&end=$((end / 3600 * 3600))&step=3600")
points=$(curl -sf -g "$base/api/v1/query_range?query=$hist&start=$hist_start&end=$((end / 3600 * 3600))&step=3600" |
  python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(len(r[0]["values"]) if r else 0)')
one_value=$(curl -sf -g "$base/api/v1/query?query=$one&time=$end" |
  python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")')

# kpid's own baseline recompute of the KPI: trusted once its history spans min_history.
baseline=""
for _ in $(seq 1 600); do
  baseline=$(curl -sf "$base/api/v1/kpis" | python3 -c '
import json, sys
for k in json.load(sys.stdin)["data"]:
    b = k.get("baseline")
    if k["id"] == "year" and b and b.get("trusted"):
        print(b["lower"], b["center"], b["upper"], b["window"])')
  [[ -n $baseline ]] && break
  sleep 0.2
done
[[ -n $baseline ]] || die "the KPI's one-year baseline was not trusted within 2 minutes: $(curl -s "$base/api/v1/kpis" | head -c 600)"
rss_kb=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$kpid_pid/status")
stop_pid "$kpid_pid" 60
kpid_pid=""

per_sample=$(awk -v d="$disk" -v s="$samples" 'BEGIN {printf "%.4f", d / s}')
per_series=$(awk -v d="$disk" -v n="$series" 'BEGIN {printf "%.0f", d / n}')
echo
echo "== $cmdline ($(date -u +%Y-%m-%d), $(nproc) cores)"
printf '%-44s %s\n' "samples backfilled" "$samples ($series series x $days d every $interval_ms ms)"
printf '%-44s %s\n' "backfill (year_bench, in-process)" "$rate samples/s, $backfill_s s in all"
printf '%-44s %s\n' "data dir, settled by kpid (no admin call)" "$(awk -v d="$disk" 'BEGIN {printf "%.1f MB", d / 1e6}'): $per_sample bytes/sample, $per_series bytes/series"
printf '%-44s %s\n' "kpid RSS after the queries" "$((rss_kb / 1024)) MB"
printf '%-44s %s\n' "avg_over_time(1 series [365d]) at now, ms" "median / max: ${q_one/ / / } (value $one_value)"
printf '%-44s %s\n' "the same on the hour, ms" "median / max: ${q_one_h/ / / }"
printf '%-44s %s\n' "avg_over_time(all $((series * 40 / 100)) gauges [365d]) on the hour, ms" "median / max: ${q_all/ / / }"
printf '%-44s %s\n' "KPI history (1h steps over 365d) ms" "median / max: ${q_hist/ / / } ($points points)"
printf '%-44s %s\n' "KPI baseline (kpid's own, trusted)" "lower center upper window: $baseline"
