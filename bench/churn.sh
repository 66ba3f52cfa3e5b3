#!/usr/bin/env bash
# bench/churn.sh: series churn. A simulated day in which every hour's series are replaced by new
# ones (pods coming and going): hour h sends --series series that differ from hour h-1's only in
# their pod label (pod=rH), each with --points samples spread over that hour, by remote write
# 1.0, time-major. The day ends about a minute ago, so the hours go by as fast as the systems
# take them. After each hour it records the series count, RSS (VmRSS and peak VmHWM) and bytes
# of the data dir; at the end, after --quiet s without writes, the settled RSS and disk, and a
# check that an early hour's series are still found (/api/v1/series with {pod="r1",host=~...},
# 100 series). Runs kpid, then VictoriaMetrics, never both at once, on 127.0.0.1 with fresh
# temporary data dirs, and prints one table. See bench/README.md.
#
# Usage: bench/churn.sh [--series N] [--hours H] [--points P] [--names-per-kind K]
#                       [--concurrency N] [--batch-lines N] [--quiet S] [--systems LIST]
# Environment: BUILD_DIR (default <repo>/build), KPID, PEER_LOAD (binaries' paths).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build}
kpid=${KPID:-$build/src/kpid}
load=${PEER_LOAD:-$build/bench/peer_load}
cmdline="bench/churn.sh${*:+ $*}"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

series=1000000
hours=24
points=4
names_per_kind=8
concurrency=4
batch_lines=2000
quiet=30
systems=kpid,victoria-metrics

usage() {
  header_usage "${BASH_SOURCE[0]}"
  cat <<EOF
Defaults: --series $series --hours $hours --points $points --names-per-kind $names_per_kind
          --concurrency $concurrency --batch-lines $batch_lines (at most series / concurrency)
          --quiet $quiet --systems $systems
EOF
}

while [[ $# -gt 0 ]]; do
  split_flag churn.sh "" "$@"
  shift "$taken"
  case $flag in
    --help|-h) usage; exit 0 ;;
    --series) series=$value ;;
    --hours) hours=$value ;;
    --points) points=$value ;;
    --names-per-kind) names_per_kind=$value ;;
    --concurrency) concurrency=$value ;;
    --batch-lines) batch_lines=$value ;;
    --quiet) quiet=$value ;;
    --systems) systems=$value ;;
    *) echo "churn.sh: unknown option $flag (see bench/churn.sh --help)" >&2; exit 2 ;;
  esac
done
for v in series hours points names_per_kind concurrency batch_lines quiet; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "churn.sh: --${v//_/-} needs a positive integer, got '${!v}'" >&2; exit 2; }
done
((series >= 1300)) || { echo "churn.sh: --series must be at least 1300 (the check selects group 12)" >&2; exit 2; }
((hours >= 2)) || { echo "churn.sh: --hours must be at least 2" >&2; exit 2; }
((3600 % points == 0)) || { echo "churn.sh: --points must divide 3600 (samples every 3600/P s)" >&2; exit 2; }
((series / concurrency < batch_lines)) && batch_lines=$((series / concurrency))
IFS=, read -r -a system_list <<<"$systems"
for s in "${system_list[@]}"; do
  case $s in kpid|victoria-metrics) ;; *) echo "churn.sh: unknown system '$s'" >&2; exit 2 ;; esac
done
want() { [[ ,$systems, == *,$1,* ]]; }

for exe in "$load" "$kpid"; do
  if [[ ! -x $exe ]]; then
    echo "churn.sh: $exe not found; build it first:" >&2
    echo "  cmake -S $root -B $build -DKPID_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release && cmake --build $build --target kpid peer_load -j2" >&2
    exit 2
  fi
done

log() { echo "churn: $*"; }
die() { echo "churn: FAILED: $*" >&2; exit 1; }

vm_bin=""
if want victoria-metrics; then
  if ! dpkg-query -W -f='${Status}' victoria-metrics 2>/dev/null | grep -q 'ok installed'; then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo=sudo
    log "installing victoria-metrics"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends victoria-metrics ||
      { $sudo apt-get update && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends victoria-metrics; }
  fi
  vm_bin=$(dpkg -L victoria-metrics | grep -E 'bin/victoria-metrics$' | head -1)
  [[ -x $vm_bin ]] || die "no victoria-metrics binary in package victoria-metrics"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpid-churn.XXXXXX")
server_pid=""
cleanup() {
  stop_pid "$server_pid" 60
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

proc_kb() { sed -n "s/^$2:[[:space:]]*\\([0-9]*\\) kB/\\1/p" "/proc/$1/status"; }  # PID FIELD
mb() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }

# The day: hour h holds (day_start + h*3600, day_start + (h+1)*3600], ending within the last
# hour before now.
day_end=$((($(date +%s) - 60) / 3600 * 3600))
day_start=$((day_end - hours * 3600))
interval=$((3600 / points))
hour_end() { echo $((day_start + ($1 + 1) * 3600)); }
host_width=${#series}; ((series == 10 ** (host_width - 1))) && host_width=$((host_width - 1))
((host_width >= 4)) || host_width=4
host_prefix=$(printf 'h%0*d' $((host_width - 2)) 12)  # group 12's hosts: 100 series
check_hour=1

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "== series churn $(date -u '+%F %T UTC') on $(nproc) cores $(uname -m), ${cpu_model:-unknown CPU}, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)"
echo "   $cmdline"
echo "   $hours hours x $series new series (pod=r0 .. r$((hours - 1))) x $points samples every $interval s" \
     "= $((hours * series)) series, $((hours * series * points)) samples;" \
     "$(date -u -d "@$day_start" '+%F %T') .. $(date -u -d "@$day_end" '+%F %T') UTC;" \
     "remote write 1.0, $concurrency connections, $batch_lines series per request"

declare -A r_rss r_hwm r_disk r_series r_secs r_final r_check

# run_hours NAME: sends the day hour by hour; needs server_pid, port, dir.
run_hours() {
  local name=$1 h out t0 t1
  shift
  for ((h = 0; h < hours; h++)); do
    t0=$(date +%s%N)
    out=$("$load" ingest --port "$port" --path /api/v1/write --wire remote_write --series "$series" \
          --points "$points" --interval "$interval" --end "$(hour_end "$h")" --tag "pod=r$h" \
          --concurrency "$concurrency" --batch-lines "$batch_lines" \
          --names-per-kind "$names_per_kind" --timeout 3600) || {
      echo "$out"; tail -n 40 "$dir/log" >&2; die "$name: hour $h ingest"; }
    t1=$(date +%s%N)
    kill -0 "$server_pid" 2>/dev/null || { tail -n 40 "$dir/log" >&2; die "$name exited"; }
    r_secs[$name,$h]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e9}')
    r_rss[$name,$h]=$(proc_kb "$server_pid" VmRSS)
    r_hwm[$name,$h]=$(proc_kb "$server_pid" VmHWM)
    r_disk[$name,$h]=$(du -sb "$dir/data" | cut -f1)
    log "$name hour $h: ${r_secs[$name,$h]} s, RSS $(mb "${r_rss[$name,$h]}") MB" \
        "(peak $(mb "${r_hwm[$name,$h]}") MB), disk $((r_disk[$name,$h] >> 20)) MB"
  done
  log "$name: quiet for $quiet s"
  sleep "$quiet"
  r_final[$name,rss]=$(proc_kb "$server_pid" VmRSS)
  r_final[$name,hwm]=$(proc_kb "$server_pid" VmHWM)
  r_final[$name,disk]=$(du -sb "$dir/data" | cut -f1)
  # An early hour's series are still there: group 12's hosts in hour $check_hour.
  out=$("$load" query --port "$port" --format prom-list --expect-series 100 --reps 5 \
        --path /api/v1/series --param "match[]={pod=\"r$check_hour\",host=~\"$host_prefix.*\"}" \
        --param "start=$(($(hour_end "$check_hour") - 3600))" --param "end=$(hour_end "$check_hour")" "$@" \
        --timeout 600) || { echo "$out"; die "$name: hour $check_hour's series not found"; }
  r_check[$name]=$(sed -n 's/^RESULT query p50_ms \([0-9.]*\) p99_ms \([0-9.]*\).*/\1 \/ \2/p' <<<"$out")
  log "$name: settled RSS $(mb "${r_final[$name,rss]}") MB, peak $(mb "${r_final[$name,hwm]}") MB," \
      "disk $((r_final[$name,disk] >> 20)) MB; hour $check_hour's series found in ${r_check[$name]} ms"
}

run_kpid() {
  echo "== $("$kpid" --version 2>/dev/null || echo 'kpid ?') ($kpid)"
  dir=$(mktemp -d "$tmp/kpid.XXXXXX")
  port=$("$load" free-port)
  # Every series of the day counts against the limits, not only the active ones.
  cat >"$dir/kpid.toml" <<EOF
[storage]
max_series = $((series * hours * 2))
max_series_per_metric = $((series * hours))
EOF
  "$kpid" --config "$dir/kpid.toml" --data-dir "$dir/data" --http-listen "127.0.0.1:$port" \
    --line-listen "" 2>>"$dir/log" &
  server_pid=$!
  "$load" wait --port "$port" --path /readyz --timeout 120 || { tail -n 40 "$dir/log" >&2; die "kpid did not start"; }
  log "kpid pid $server_pid on 127.0.0.1:$port, config: $(tr '\n' ' ' <"$dir/kpid.toml")"
  run_hours kpid
  "$load" request --port "$port" --path /metrics |
    grep -E '^kpid_store_(series|head_samples|size_bytes|wal_bytes|family_bytes)' | sed 's/^/   /' || true
  stop_pid "$server_pid" 120
  server_pid=""
  rm -rf "$dir"
}

run_victoria_metrics() {
  echo "== victoria-metrics $(dpkg-query -W -f='${Version}' victoria-metrics) ($vm_bin)"
  dir=$(mktemp -d "$tmp/vm.XXXXXX")
  port=$("$load" free-port)
  start_victoria_metrics "$vm_bin" "$port" "$dir/data" "$dir/log" -retentionPeriod 1y || die "victoria-metrics did not start"
  server_pid=$vm_pid
  log "victoria-metrics pid $server_pid on 127.0.0.1:$port"
  run_hours victoria-metrics --param nocache=1
  stop_pid "$server_pid" 120
  server_pid=""
  rm -rf "$dir"
}

for s in kpid victoria-metrics; do
  want "$s" && "run_$(tr - _ <<<"$s")"
done

ratio() {
  if [[ -n ${1:-} && -n ${2:-} ]]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; else echo -; fi
}
echo
echo "== series churn: $hours hours x $series new series each hour x $points samples"
echo "   $cmdline"
echo "   $(date -u '+%F %T UTC'), $(nproc) cores, ${cpu_model:-unknown CPU}"
header="hour  series"
for s in kpid victoria-metrics; do
  want "$s" && header+=$(printf '  %-16s %8s %8s %8s %6s' "$s" "RSS MB" "peak MB" "disk MB" "s")
done
echo "$header"
for ((h = 0; h < hours; h++)); do
  line=$(printf '%4d %7dK' "$h" $(((h + 1) * series / 1000)))
  for s in kpid victoria-metrics; do
    want "$s" || continue
    line+=$(printf '  %-16s %8s %8s %8s %6s' "" "$(mb "${r_rss[$s,$h]}")" "$(mb "${r_hwm[$s,$h]}")" \
      "$((r_disk[$s,$h] >> 20))" "${r_secs[$s,$h]}")
  done
  echo "$line"
done
for s in kpid victoria-metrics; do
  want "$s" || continue
  half=$((hours / 2))
  growth=$(awk -v a="${r_rss[$s,$((hours - 1))]}" -v b="${r_rss[$s,$((half - 1))]}" -v n=$((hours - half)) \
    'BEGIN {printf "%.0f", (a - b) / 1024 / n}')
  echo "$s: settled RSS $(mb "${r_final[$s,rss]}") MB, peak $(mb "${r_final[$s,hwm]}") MB," \
       "disk $((r_final[$s,disk] >> 20)) MB ($(awk -v d="${r_final[$s,disk]}" -v n=$((hours * series * points)) \
       'BEGIN {printf "%.2f", d / n}') bytes/sample); RSS growth over the second half of the day" \
       "$growth MB/hour; hour $check_hour's series found in ${r_check[$s]} ms (p50 / p99)"
done
if want kpid && want victoria-metrics; then
  echo "kpid/victoria-metrics: settled RSS $(ratio "${r_final[kpid,rss]}" "${r_final[victoria-metrics,rss]}")x," \
       "peak RSS $(ratio "${r_final[kpid,hwm]}" "${r_final[victoria-metrics,hwm]}")x," \
       "disk $(ratio "${r_final[kpid,disk]}" "${r_final[victoria-metrics,disk]}")x"
fi
