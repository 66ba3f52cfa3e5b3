#!/usr/bin/env bash
# bench/scale.sh: kpid with a million active series, side by side with VictoriaMetrics and
# Prometheus on the same series.
#
# One server at a time (kpid, then VictoriaMetrics, then Prometheus) on 127.0.0.1 with a fresh
# temporary data dir gets the same data set from the same client (peer_load, Prometheus
# remote write 1.0, which all three take): --series active series x --points samples every
# --interval s, ending about a minute ago, time-major (one sample per series per request), the
# series spread over 4 x --names-per-kind metric names. For each it measures:
#   - ingest samples/s at that cardinality;
#   - RSS: idle before the ingest, peak (VmHWM) and settled (VmRSS after --quiet s without
#     writes), each also divided by the series count;
#   - query latency p50/p99 over --query-reps (after one warm-up): an instant query with a
#     regex on __name__ narrowed by a regex on host (40 series), /api/v1/series with the same
#     selector, /api/v1/label/host/values (every host: --series values) and
#     /api/v1/label/__name__/values;
# and for kpid also:
#   - restart: time from SIGTERM to exit, then from exec on the same data dir to /readyz 200,
#     and RSS once ready;
#   - the cardinality guard: a fresh kpid with default limits gets more than
#     storage.max_series_per_metric series of one metric name; prints the refused write's
#     reply and kpid's log lines about it.
# Prints one summary table at the end. See bench/README.md ("A million active series").
#
# Usage: bench/scale.sh [--series N] [--points N] [--interval S] [--names-per-kind K]
#                       [--concurrency N] [--batch-lines N] [--quiet S] [--query-reps N]
#                       [--systems LIST] [--no-guard]
# Environment: BUILD_DIR (default <repo>/build), KPID, PEER_LOAD (binaries' paths).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build}
kpid=${KPID:-$build/src/kpid}
load=${PEER_LOAD:-$build/bench/peer_load}
cmdline="bench/scale.sh${*:+ $*}"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

series=1000000
points=8
interval=10
names_per_kind=8
concurrency=4
batch_lines=2000
quiet=30
query_reps=20
systems=kpid,victoria-metrics,prometheus
guard=1

usage() {
  header_usage "${BASH_SOURCE[0]}"
  cat <<EOF
Defaults: --series $series --points $points --interval $interval --names-per-kind $names_per_kind
          --concurrency $concurrency --batch-lines $batch_lines (at most series / concurrency)
          --quiet $quiet --query-reps $query_reps --systems $systems
EOF
}

while [[ $# -gt 0 ]]; do
  split_flag scale.sh "--no-guard" "$@"
  shift "$taken"
  case $flag in
    --help|-h) usage; exit 0 ;;
    --series) series=$value ;;
    --points) points=$value ;;
    --interval) interval=$value ;;
    --names-per-kind) names_per_kind=$value ;;
    --concurrency) concurrency=$value ;;
    --batch-lines) batch_lines=$value ;;
    --quiet) quiet=$value ;;
    --query-reps) query_reps=$value ;;
    --systems) systems=$value ;;
    --no-guard) guard=0 ;;
    *) echo "scale.sh: unknown option $flag (see bench/scale.sh --help)" >&2; exit 2 ;;
  esac
done
for v in series points interval names_per_kind concurrency batch_lines quiet query_reps; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "scale.sh: --${v//_/-} needs a positive integer, got '${!v}'" >&2; exit 2; }
done
((series >= 1300)) || { echo "scale.sh: --series must be at least 1300 (the queries select group 12)" >&2; exit 2; }
# One sample per series per request: a connection's request holds at most its own series.
((series / concurrency < batch_lines)) && batch_lines=$((series / concurrency))
IFS=, read -r -a system_list <<<"$systems"
for s in "${system_list[@]}"; do
  case $s in kpid|victoria-metrics|prometheus) ;; *) echo "scale.sh: unknown system '$s'" >&2; exit 2 ;; esac
done
want() { [[ ,$systems, == *,$1,* ]]; }

for exe in "$load" "$kpid"; do
  if [[ ! -x $exe ]]; then
    echo "scale.sh: $exe not found; build it first:" >&2
    echo "  cmake -S $root -B $build -DKPID_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release && cmake --build $build --target kpid peer_load -j2" >&2
    exit 2
  fi
done

log() { echo "scale: $*"; }
die() { echo "scale: FAILED: $*" >&2; exit 1; }

# --- Packages: Debian's victoria-metrics and prometheus; their services are never started here.
install_packages() {
  local need=() p sudo=""
  for p in victoria-metrics prometheus; do
    want "$p" || continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
  done
  [[ ${#need[@]} -eq 0 ]] && return 0
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  log "installing ${need[*]}"
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"; then
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
  fi
}
install_packages
find_bin() { dpkg -L "$1" | grep -E "bin/$2\$" | head -1; }
vm_bin="" prom_bin=""
if want victoria-metrics; then
  vm_bin=$(find_bin victoria-metrics victoria-metrics)
  [[ -x $vm_bin ]] || die "no victoria-metrics binary in package victoria-metrics"
fi
if want prometheus; then
  prom_bin=$(find_bin prometheus prometheus)
  [[ -x $prom_bin ]] || die "no prometheus binary in package prometheus"
fi

# --- Cleanup on every exit path: the running server by PID, temp dirs.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpid-scale.XXXXXX")
server_pid=""
cleanup() {
  stop_pid "$server_pid" 30
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ms() { echo $(($(date +%s%N) / 1000000)); }
proc_kb() { sed -n "s/^$2:[[:space:]]*\\([0-9]*\\) kB/\\1/p" "/proc/$1/status"; }  # PID FIELD
mb() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
per_series() { awk -v k="$1" -v n="$series" 'BEGIN {printf "%.0f", k * 1024 / n}'; }  # kB -> bytes/series

# --- The data set and the queries, the same for every system.
data_end=$((($(date +%s) - 60) / interval * interval))
data_first=$((data_end - (points - 1) * interval))
samples=$((series * points))
data_args=(--series "$series" --points "$points" --interval "$interval" --end "$data_end"
           --concurrency "$concurrency" --batch-lines "$batch_lines" --names-per-kind "$names_per_kind"
           --wire remote_write --timeout 1800)
host_width=${#series}; ((series == 10 ** (host_width - 1))) && host_width=$((host_width - 1))
((host_width >= 4)) || host_width=4
host_prefix=$(printf 'h%0*d' $((host_width - 2)) 12)  # group 12's hosts: 100 series, 40 gauges
selector="{__name__=~\"bench_gauge.*\",host=~\"$host_prefix.*\"}"
groups=$(((series + 99) / 100))
names=$((4 * (names_per_kind < groups ? names_per_kind : groups)))
((names_per_kind == 1)) && names=4
range=(--param "start=$((data_first - 60))" --param "end=$((data_end + 60))")

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "== kpid at scale $(date -u '+%F %T UTC') on $(nproc) cores $(uname -m), ${cpu_model:-unknown CPU}, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)"
echo "   $cmdline"
echo "   data: $series series x $points points every $interval s = $samples samples," \
     "$(date -u -d "@$data_first" '+%F %T') .. $(date -u -d "@$data_end" '+%T') UTC, $names metric names;" \
     "remote write 1.0, $concurrency connections, $batch_lines series per request"
echo "   queries: $selector (40 series), label values of host ($series) and __name__ ($names);" \
     "1 warm-up + $query_reps timed"

declare -A r_rate r_idle r_hwm r_rss r_q
declare -A r_restart

# wait_ready NAME PORT PATH
wait_ready() {
  if ! "$load" wait --port "$2" --path "$3" --timeout 120; then
    tail -n 40 "$dir/log" >&2 || true
    die "$1 did not become ready"
  fi
  kill -0 "$server_pid" 2>/dev/null || { tail -n 40 "$dir/log" >&2; die "$1 exited during startup"; }
}

# query NAME KEY FORMAT EXPECT PATH PARAMS...: p50/p99 of one kind into r_q[NAME,KEY].
query() {
  local name=$1 key=$2 format=$3 expect=$4 path=$5 out
  shift 5
  out=$("$load" query --port "$port" --format "$format" --expect-series "$expect" --reps "$query_reps" \
        --path "$path" "$@" --timeout 900) || { echo "$out"; die "$name query $key"; }
  echo "$out"
  r_q[$name,$key]=$(sed -n 's/^RESULT query p50_ms \([0-9.]*\) p99_ms \([0-9.]*\).*/\1 \/ \2/p' <<<"$out")
}

# measure NAME EXTRA_QUERY_PARAMS...: ingest, RSS, queries; needs server_pid, dir, port.
measure() {
  local name=$1 out
  shift
  r_idle[$name]=$(proc_kb "$server_pid" VmRSS)
  echo "   load average before $name: $(cut -d' ' -f1-3 /proc/loadavg); idle RSS ${r_idle[$name]} kB"
  out=$("$load" ingest --port "$port" --path /api/v1/write "${data_args[@]}") || {
    echo "$out"; tail -n 40 "$dir/log" >&2; die "$name ingest"; }
  echo "$out"
  r_rate[$name]=$(sed -n 's/^RESULT ingest .* samples_per_s \([0-9]*\).*/\1/p' <<<"$out")
  local sent
  sent=$(sed -n 's/^RESULT ingest samples \([0-9]*\) .*/\1/p' <<<"$out")
  [[ $sent == "$samples" ]] || die "$name: sent $sent samples, expected $samples"
  log "$name: RSS right after the ingest $(proc_kb "$server_pid" VmRSS) kB; quiet for $quiet s"
  sleep "$quiet"
  kill -0 "$server_pid" 2>/dev/null || { tail -n 40 "$dir/log" >&2; die "$name exited"; }
  r_rss[$name]=$(proc_kb "$server_pid" VmRSS)
  r_hwm[$name]=$(proc_kb "$server_pid" VmHWM)
  log "$name: settled RSS ${r_rss[$name]} kB, peak (VmHWM) ${r_hwm[$name]} kB"

  query "$name" instant prom 40 /api/v1/query --param "query=$selector" --param "time=$data_end" "$@"
  query "$name" series prom-list 40 /api/v1/series --param "match[]=$selector" "${range[@]}" "$@"
  query "$name" host prom-list "$series" /api/v1/label/host/values "${range[@]}" "$@"
  query "$name" name prom-list "$names" /api/v1/label/__name__/values "${range[@]}" "$@"
  log "$name: VmHWM after the queries $(proc_kb "$server_pid" VmHWM) kB"
}

# --- kpid
start_kpid() {  # start_kpid CONFIG: sets server_pid, port (fixed once chosen)
  "$kpid" --config "$1" --data-dir "$dir/data" --http-listen "127.0.0.1:$port" --line-listen "" \
    2>>"$dir/log" &
  server_pid=$!
}
run_kpid() {
  echo "== $("$kpid" --version 2>/dev/null || echo 'kpid ?') ($kpid)"
  dir=$(mktemp -d "$tmp/kpid.XXXXXX")
  port=$("$load" free-port)
  # The default storage.max_series is exactly 1,000,000; leave room. The per-metric limit
  # stays at its default (100,000): --names-per-kind spreads the series below it.
  cat >"$dir/kpid.toml" <<EOF
[storage]
max_series = $((series * 2 > 1000000 ? series * 2 : 1000000))
EOF
  start_kpid "$dir/kpid.toml"
  wait_ready kpid "$port" /readyz
  log "kpid pid $server_pid on 127.0.0.1:$port, data dir $dir/data, config: $(tr '\n' ' ' <"$dir/kpid.toml")"
  measure kpid
  local metrics
  metrics=$("$load" request --port "$port" --path /metrics) || die "kpid /metrics"
  log "kpid: $(grep -E '^kpid_store_(series|head_samples|size_bytes|wal_bytes) ' <<<"$metrics" | tr '\n' ' ')"
  grep -q "^kpid_store_series $series\$" <<<"$metrics" ||
    echo "scale: WARNING: kpid_store_series is not $series" >&2

  # Restart: SIGTERM to exit, then exec to /readyz 200 on the same data dir.
  local t0 t1 pid=$server_pid rc=0
  t0=$(ms)
  kill -TERM "$pid"
  local i
  for ((i = 0; i < 12000; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
  t1=$(ms)
  if kill -0 "$pid" 2>/dev/null; then
    echo "scale: kpid did not exit within 120 s of SIGTERM; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" || rc=$?
  server_pid=""
  [[ $rc -eq 0 ]] || echo "scale: WARNING: kpid exited with status $rc after SIGTERM" >&2
  r_restart[exit]=$((t1 - t0))
  t0=$(ms)
  start_kpid "$dir/kpid.toml"
  until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do
    kill -0 "$server_pid" 2>/dev/null || { tail -n 40 "$dir/log" >&2; die "kpid exited during restart"; }
    sleep 0.01
  done
  t1=$(ms)
  r_restart[ready]=$((t1 - t0))
  r_restart[rss]=$(proc_kb "$server_pid" VmRSS)
  log "kpid restart: exit ${r_restart[exit]} ms after SIGTERM, ready ${r_restart[ready]} ms after exec," \
      "RSS once ready ${r_restart[rss]} kB"
  sleep 5
  r_restart[rss5]=$(proc_kb "$server_pid" VmRSS)
  log "kpid RSS 5 s after the restart ${r_restart[rss5]} kB"
  query kpid instant_restarted prom 40 /api/v1/query --param "query=$selector" --param "time=$data_end"
  stop_pid "$server_pid" 120
  server_pid=""
  log "kpid data dir: $(du -sb "$dir/data" | cut -f1) bytes"
  rm -rf "$dir"
}

# --- VictoriaMetrics
run_victoria_metrics() {
  echo "== victoria-metrics $(dpkg-query -W -f='${Version}' victoria-metrics) ($vm_bin)"
  dir=$(mktemp -d "$tmp/vm.XXXXXX")
  port=$("$load" free-port)
  # -search.maxTagValues: its default (100,000) would cut the host values short.
  "$vm_bin" -storageDataPath "$dir/data" -httpListenAddr "127.0.0.1:$port" -retentionPeriod 1y \
    -search.maxTagValues $((series * 2)) >"$dir/log" 2>&1 &
  server_pid=$!
  wait_ready victoria-metrics "$port" /health
  log "victoria-metrics pid $server_pid on 127.0.0.1:$port, data dir $dir/data"
  # nocache=1: measure the query, not VictoriaMetrics' rollup result cache (kpid has none).
  measure victoria-metrics --param nocache=1
  stop_pid "$server_pid" 120
  server_pid=""
  rm -rf "$dir"
}

# --- Prometheus
run_prometheus() {
  echo "== prometheus $(dpkg-query -W -f='${Version}' prometheus) ($prom_bin)"
  dir=$(mktemp -d "$tmp/prom.XXXXXX")
  port=$("$load" free-port)
  cat >"$dir/prometheus.yml" <<EOF
# Written by bench/scale.sh: no scrape jobs; samples arrive by remote write only.
global:
  scrape_interval: 1m
EOF
  "$prom_bin" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver >"$dir/log" 2>&1 &
  server_pid=$!
  wait_ready prometheus "$port" /-/ready
  log "prometheus pid $server_pid on 127.0.0.1:$port, data dir $dir/data"
  measure prometheus
  stop_pid "$server_pid" 120
  server_pid=""
  rm -rf "$dir"
}

# --- kpid's cardinality guard with default limits.
run_guard() {
  echo "== kpid cardinality guard (default limits: storage.max_series_per_metric = 100000)"
  dir=$(mktemp -d "$tmp/guard.XXXXXX")
  port=$("$load" free-port)
  : >"$dir/empty.toml"
  start_kpid "$dir/empty.toml"
  wait_ready kpid "$port" /readyz
  # 250,100 series with one name per kind: 100,040 gauges, so the 100,001st bench_gauge series
  # is refused. One connection, so the refused request is the one that crosses the limit.
  local out rc=0
  out=$("$load" ingest --port "$port" --path /api/v1/write --wire remote_write --series 250100 \
        --points 1 --end "$data_end" --concurrency 1 --batch-lines 2000 2>&1) || rc=$?
  [[ $rc -ne 0 ]] || die "kpid took 100,040 series of bench_gauge with default limits"
  echo "   the write's reply (peer_load shows its first 2000 bytes):"
  sed -n '/FAILED/,$p' <<<"$out" | head -4 | sed 's/^/     /'
  r_guard_reply=$(grep -m1 -o 'bench_gauge{[^}]*}: metric "[^"]*" has [0-9]* series, the limit of [a-z_.]*' <<<"$out" || true)
  [[ -n $r_guard_reply ]] || r_guard_reply=$(grep -m1 FAILED <<<"$out")
  r_guard_log=$(grep -E 'max_series_per_metric|bench_gauge' "$dir/log" | head -3 || true)
  echo "   kpid's log: ${r_guard_log:-(no line names it)}"
  "$load" request --port "$port" --path /metrics | grep '^kpid_store_series_refused_total' || true
  stop_pid "$server_pid" 60
  server_pid=""
  rm -rf "$dir"
}

r_guard_reply="" r_guard_log=""
for s in kpid victoria-metrics prometheus; do
  want "$s" && "run_$(tr - _ <<<"$s")"
done
((guard)) && run_guard

# --- The table.
ratio() {  # ratio A B: A/B with 2 decimals, or - when either is missing
  if [[ -n ${1:-} && -n ${2:-} ]]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; else echo -; fi
}
echo
echo "== kpid at scale: $series active series x $points points every $interval s ($samples samples, $names metric names), remote write, $concurrency connections x $batch_lines series per request"
echo "   $cmdline"
echo "   $(date -u '+%F %T UTC'), $(nproc) cores, ${cpu_model:-unknown CPU}"
echo "   $("$kpid" --version 2>/dev/null || echo 'kpid ?') ($kpid)"
want victoria-metrics && echo "   victoria-metrics $(dpkg-query -W -f='${Version}' victoria-metrics)"
want prometheus && echo "   prometheus $(dpkg-query -W -f='${Version}' prometheus)"
printf '%-17s %11s %9s %9s %11s %8s %11s %15s %15s %17s %15s\n' system samples/s "idle MB" "peak MB" \
  "settled MB" "peak B/ser" "settled B/ser" "instant ms" "series ms" "host values ms" "names ms"
for s in kpid victoria-metrics prometheus; do
  want "$s" || continue
  printf '%-17s %11s %9s %9s %11s %8s %11s %15s %15s %17s %15s\n' "$s" "${r_rate[$s]}" \
    "$(mb "${r_idle[$s]}")" "$(mb "${r_hwm[$s]}")" "$(mb "${r_rss[$s]}")" \
    "$(per_series "${r_hwm[$s]}")" "$(per_series "${r_rss[$s]}")" \
    "${r_q[$s,instant]}" "${r_q[$s,series]}" "${r_q[$s,host]}" "${r_q[$s,name]}"
done
echo "(B/ser: bytes of RSS per active series; query columns: p50 / p99 ms over $query_reps)"
for peer in victoria-metrics prometheus; do
  want kpid && want "$peer" || continue
  echo "kpid/$peer: ingest $(ratio "${r_rate[kpid]}" "${r_rate[$peer]}")x," \
       "peak RSS $(ratio "${r_hwm[kpid]}" "${r_hwm[$peer]}")x, settled RSS $(ratio "${r_rss[kpid]}" "${r_rss[$peer]}")x"
done
if want kpid; then
  echo "kpid restart with $series series: exit ${r_restart[exit]} ms after SIGTERM," \
       "/readyz 200 ${r_restart[ready]} ms after exec (goal < 5000), RSS once ready $(mb "${r_restart[rss]}") MB," \
       "5 s later $(mb "${r_restart[rss5]}") MB; instant query after it ${r_q[kpid,instant_restarted]} ms"
fi
if ((guard)); then
  echo "kpid cardinality guard, the refused write's reply: ${r_guard_reply:-?}"
  echo "  log: ${r_guard_log:-(no line names it)}"
fi
