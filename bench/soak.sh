#!/usr/bin/env bash
# bench/soak.sh: kpid under sustained load with KPIs, alerts and queries (bench/README.md,
# "Soak").
#
# 1. Unless --rate is given, measures the maximum ingest rate: a fresh kpid with the soak's
#    config, kpid_bench streaming as fast as it can for --measure-seconds; the soak's target
#    is 80% of that.
# 2. The soak: a fresh kpid on a new temporary data dir with --kpis KPIs over kpid_bench's data
#    (every 5th with a warn alert rule) plus --probes probe KPIs with crit alert rules, a
#    webhook receiver (soak_receiver) for their notifications, then for --duration seconds:
#    kpid_bench ingest paced to the target, --query-rate queries/s, and probe series that
#    breach periodically so alerts fire and resolve. kpid's RSS, CPU time, head samples and
#    data dir size are sampled every --rss-interval seconds into OUT/rss.csv.
# 3. The summary: achieved vs target rate, errors, query latency, RSS at 1 min / end / max and
#    the slope of a least-squares fit over the second half, alerts fired and delivered.
#    Exit status non-zero on any write or query error, an achieved rate below 95% of the
#    target, rejected lines, failed or missing deliveries, or kpid not exiting 0 on SIGTERM.
#
# Everything runs on 127.0.0.1 (ephemeral ports). kpid, the receiver and the sampler are
# stopped by PID and the temporary dirs removed on any exit; the results stay in OUT.
#
# Usage: bench/soak.sh [--duration S] [--rate SAMPLES_PER_S] [--kpis N] [--series N]
#                      [--connections N] [--query-rate Q] [--probes N] [--probe-period S]
#                      [--measure-seconds S] [--rss-interval S] [--out DIR]
# Environment: BUILD_DIR (default <repo>/build), KPID, KPID_BENCH, KPI_BENCH, SOAK_RECEIVER.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build}
kpid=${KPID:-$build/src/kpid}
bench=${KPID_BENCH:-$build/bench/kpid_bench}
kpi_bench=${KPI_BENCH:-$build/bench/kpi_bench}
receiver=${SOAK_RECEIVER:-$build/bench/soak_receiver}
cmdline="bench/soak.sh${*:+ $*}"

duration=600
rate=""
kpis=50
series=10000
regions=10          # kpid_bench's default; the KPIs watch its hosts
connections=4
query_rate=20
probes=10
probe_period=60
measure_seconds=30
rss_interval=10
out=""
secret="soak-secret"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  flag=$1
  [[ $flag == --help || $flag == -h ]] && { usage; exit 0; }
  [[ $# -ge 2 ]] || { echo "soak.sh: $flag needs a value" >&2; exit 2; }
  value=$2
  shift 2
  case $flag in
    --duration) duration=$value ;;
    --rate) rate=$value ;;
    --kpis) kpis=$value ;;
    --series) series=$value ;;
    --connections) connections=$value ;;
    --query-rate) query_rate=$value ;;
    --probes) probes=$value ;;
    --probe-period) probe_period=$value ;;
    --measure-seconds) measure_seconds=$value ;;
    --rss-interval) rss_interval=$value ;;
    --out) out=$value ;;
    *) echo "soak.sh: unknown flag $flag (see --help)" >&2; exit 2 ;;
  esac
done
for v in duration kpis series connections query_rate probes probe_period measure_seconds rss_interval; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "soak.sh: --${v//_/-} needs a whole number, got '${!v}'" >&2; exit 2; }
done
[[ -z $rate || $rate =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: --rate needs a positive whole number" >&2; exit 2; }
[[ $duration -ge 60 ]] || { echo "soak.sh: --duration must be at least 60 s (RSS at 1 min)" >&2; exit 2; }
[[ $kpis -ge 1 && $rss_interval -ge 1 ]] || { echo "soak.sh: --kpis and --rss-interval must be at least 1" >&2; exit 2; }

for exe in "$kpid" "$bench" "$kpi_bench" "$receiver"; do
  if [[ ! -x $exe ]]; then
    echo "soak.sh: $exe not found; build it first:" >&2
    echo "  cmake -S $root -B $build -DKPID_BUILD_BENCH=ON && cmake --build $build -j1 --target kpid kpid_bench kpi_bench soak_receiver" >&2
    exit 2
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpid-soak-tmp.XXXXXX")
out=${out:-${TMPDIR:-/tmp}/kpid-soak-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
kpid_pid="" receiver_pid="" sampler_pid=""

# shellcheck source=bench/lib.sh
source "$here/lib.sh"
cleanup() {
  stop_pid "$sampler_pid" 5
  stop_pid "$kpid_pid" 30
  stop_pid "$receiver_pid" 5
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hosts=$(( (series + regions - 1) / regions ))

# Starts the webhook receiver; sets receiver_pid and receiver_port. $1: log file.
start_receiver() {
  : >"$1"  # exists before the sed below, whichever process runs first
  "$receiver" --secret "$secret" >"$1" 2>&1 &
  receiver_pid=$!
  receiver_port=""
  for _ in $(seq 1 100); do
    receiver_port=$(sed -n 's/^soak_receiver listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$1" || true)
    [[ -n $receiver_port ]] && return 0
    kill -0 "$receiver_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "soak.sh: soak_receiver did not start:" >&2
  cat "$1" >&2
  exit 1
}

# kpid's config: alerting to the receiver on port $1, the probe KPIs, and kpi_bench's KPI set
# with a warn rule on every 5th KPI (some of them sit in warn, so those fire and repeat).
write_config() {
  cat <<EOF
# bench/soak.sh: $probes probe KPIs and $kpis KPIs over kpid_bench's data ($hosts hosts)
[alerting]
repeat_interval = "1m"
retry_initial = "100ms"
retry_max = "2s"

[[receiver]]
name = "soak"
type = "webhook"
url = "http://127.0.0.1:$1/hook"
secret = "$secret"
EOF
  for ((p = 0; p < probes; p++)); do
    cat <<EOF

[[kpi]]
id = "probe_$p"
owner = "soak"
unit = "ms"
direction = "lower_is_better"
[kpi.value]
selector = 'soak_probe{probe="$p"}'
over_time = "last"
window = "1m"
[kpi.band]
warn = 100
crit = 200
[[kpi.alert]]
condition = "crit"
for = "5s"
clear_for = "5s"
EOF
  done
  "$kpi_bench" kpis --count "$kpis" --hosts "$hosts" | awk '
    function rule() { if (n % 5 == 1) print "[[kpi.alert]]\ncondition = \"warn\"\nfor = \"30s\"\nclear_for = \"30s\"" }
    /^\[\[kpi\]\]$/ { if (n > 0) rule(); n++ }
    { print }
    END { if (n > 0) rule() }'
}

# Starts kpid on a fresh data dir $1 with config $2; sets kpid_pid and port. $3: log file.
start_kpid() {
  : >"$3"  # exists before the sed below, whichever process runs first
  "$kpid" --config "$2" --data-dir "$1" --http-listen 127.0.0.1:0 --line-listen 127.0.0.1:0 2>"$3" &
  kpid_pid=$!
  port=""
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*HTTP listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$3" | head -1 || true)
    [[ -n $port ]] && return 0
    if ! kill -0 "$kpid_pid" 2>/dev/null; then
      echo "soak.sh: kpid exited during startup:" >&2
      cat "$3" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "soak.sh: kpid did not log its HTTP port within 30 s:" >&2
  cat "$3" >&2
  exit 1
}

# SIGTERM to kpid; sets kpid_rc (1 if it had to be killed).
stop_kpid() {
  kill -TERM "$kpid_pid"
  kpid_rc=0
  for _ in $(seq 1 300); do kill -0 "$kpid_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$kpid_pid" 2>/dev/null; then
    echo "soak.sh: kpid did not exit within 30 s of SIGTERM; killing it" >&2
    kill -KILL "$kpid_pid" 2>/dev/null || true
    kpid_rc=1
  fi
  wait "$kpid_pid" || kpid_rc=$?
  kpid_pid=""
}

# A value from a "SOAK k=v ..." or "WEBHOOK k=v ..." line: field $2 of file $1.
field() { sed -n "s/^[A-Z]* .*\b$2=\([^ ]*\).*/\1/p" "$1" | tail -1; }
# The sum of a metric's samples in a /metrics dump: $1 file, $2 name with optional {labels...
metric() { awk -v m="$2" 'index($0, m) == 1 && (substr($0, length(m) + 1, 1) ~ /[ {]/ || m ~ /[{]/) { s += $NF } END { printf "%.0f", s }' "$1"; }

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "== kpid soak $(date -u '+%F %H:%M UTC') on $(nproc) cores $(uname -m), ${cpu_model:-unknown CPU}"
echo "   command: $cmdline"
echo "   kpid: $kpid ($("$kpid" --version 2>/dev/null || echo '?')), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
echo "   output dir: $out"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg) (client and kpid share the cores)"
common=(--series "$series" --regions "$regions" --connections "$connections")

# --- 1. the maximum ingest rate, unless given --------------------------------------------
if [[ -z $rate ]]; then
  echo "== measuring the maximum: a fresh kpid with the same config, kpid_bench unpaced for $measure_seconds s"
  start_receiver "$out/receiver-max.log"
  write_config "$receiver_port" >"$tmp/max.toml"
  start_kpid "$tmp/max-data" "$tmp/max.toml" "$out/kpid-max.log"
  max_rc=0
  "$bench" --port "$port" "${common[@]}" --duration "$measure_seconds" --rate 0 \
    --probes "$probes" --probe-period "$probe_period" --progress-seconds 5 |
    tee "$out/max.log" | sed 's/^/   /' || max_rc=$?
  stop_kpid
  stop_pid "$receiver_pid" 5
  receiver_pid=""
  rm -rf "$tmp/max-data"
  max=$(field "$out/max.log" achieved)
  if [[ $max_rc -ne 0 || $kpid_rc -ne 0 || -z $max || $max -le 0 ]]; then
    echo "soak.sh: the maximum-rate run failed (kpid_bench $max_rc, kpid $kpid_rc); see $out/max.log, $out/kpid-max.log" >&2
    exit 1
  fi
  rate=$(( max * 80 / 100 ))
  echo "RESULT maximum ingest samples/s  $max (unpaced, $measure_seconds s, fresh kpid; client CPU $(field "$out/max.log" client_cpu_s) s)"
  echo "RESULT soak target samples/s     $rate (80% of the maximum)"
  rate_note="80% of the measured maximum $max"
else
  rate_note="given with --rate"
  echo "RESULT soak target samples/s     $rate (given)"
fi

# --- 2. the soak -------------------------------------------------------------------------
echo "== soak: $duration s at $rate samples/s, $kpis KPIs + $probes probe KPIs with alerts, $query_rate queries/s"
start_receiver "$out/receiver.log"
write_config "$receiver_port" >"$out/kpid.toml"
start_kpid "$tmp/data" "$out/kpid.toml" "$out/kpid.log"
echo "   kpid pid $kpid_pid, HTTP on 127.0.0.1:$port; webhook receiver pid $receiver_pid on 127.0.0.1:$receiver_port"

# The sampler: one CSV row every rss_interval s, on a fixed schedule from the start.
(
  nap=""
  trap '[[ -n $nap ]] && kill "$nap" 2>/dev/null; exit 0' TERM  # its sleep goes with it
  ticks=$(getconf CLK_TCK)
  echo "t_s,rss_kb,hwm_kb,cpu_s,head_samples,data_dir_mb"
  t0=$(date +%s%N)
  for ((i = 0; ; i++)); do
    [[ -r /proc/$kpid_pid/status ]] || break
    rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$kpid_pid/status")
    hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$kpid_pid/status")
    cpu=$(sed 's/^.*) //' "/proc/$kpid_pid/stat" | awk -v t="$ticks" '{printf "%.1f", ($12 + $13) / t}')
    head=$(curl -sf --max-time 5 "http://127.0.0.1:$port/metrics" | awk '$1 == "kpid_store_head_samples" {printf "%.0f", $2}' || true)
    mb=$(du -sm "$tmp/data" 2>/dev/null | cut -f1 || true)
    echo "$((i * rss_interval)),$rss,$hwm,$cpu,${head:-},${mb:-}"
    next=$((t0 + (i + 1) * rss_interval * 1000000000))
    now=$(date +%s%N)
    if [[ $next -gt $now ]]; then
      sleep "$(awk -v d=$((next - now)) 'BEGIN{printf "%.3f", d / 1e9}')" &
      nap=$!
      wait "$nap" || true
    fi
  done
) >"$out/rss.csv" 2>/dev/null &
sampler_pid=$!

soak_rc=0
"$bench" --port "$port" "${common[@]}" --duration "$duration" --rate "$rate" \
  --query-rate "$query_rate" --probes "$probes" --probe-period "$probe_period" |
  tee "$out/soak.log" | sed 's/^/   /' || soak_rc=$?

# Let the outbox drain (deliveries are asynchronous), then read kpid's view.
for _ in $(seq 1 100); do
  depth=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 ~ /^kpid_outbox_depth/ {s += $2} END {printf "%.0f", s}' || echo "?")
  [[ $depth == 0 ]] && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/metrics" >"$out/metrics-end.txt" || echo "soak.sh: GET /metrics failed" >&2
curl -sf "http://127.0.0.1:$port/api/v1/kpis" >"$out/kpis-end.json" || true
curl -sf "http://127.0.0.1:$port/api/v1/alerts" >"$out/alerts-end.json" || true
stop_pid "$sampler_pid" 5
sampler_pid=""
hwm_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$kpid_pid/status" 2>/dev/null || echo 0)
data_mb=$(du -sm "$tmp/data" | cut -f1)
stop_kpid
sleep 0.5  # a delivery already sent is read completely before the receiver stops
stop_pid "$receiver_pid" 5
receiver_pid=""
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 3. the summary ------------------------------------------------------------------------
m=$out/metrics-end.txt
touch "$m"
read -r rss_1m rss_end rss_max slope rows < <(awk -F, -v half=$((duration / 2)) '
  NR > 1 && $2 != "" {
    t = $1; r = $2 / 1024; rows++
    if (!have || (t - 60) ^ 2 < best) { best = (t - 60) ^ 2; r1 = r; have = 1 }
    last = r; if (r > max) max = r
    if (t >= half) { n++; sx += t; sy += r; sxx += t * t; sxy += t * r }
  }
  END {
    slope = (n > 1 && n * sxx - sx * sx > 0) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60 : 0
    printf "%.1f %.1f %.1f %.2f %d\n", r1, last, max, slope, rows
  }' "$out/rss.csv")

achieved=$(field "$out/soak.log" achieved)
write_errors=$(field "$out/soak.log" write_errors)
write_requests=$(field "$out/soak.log" write_requests)
query_errors=$(field "$out/soak.log" query_errors)
queries=$(field "$out/soak.log" queries)
probe_episodes=$(field "$out/soak.log" probe_episodes)
received=$(field "$out/receiver.log" received)
fired=$(field "$out/receiver.log" firing)
resolved=$(field "$out/receiver.log" resolved)
repeats=$(field "$out/receiver.log" repeat)
bad_signature=$(field "$out/receiver.log" bad_signature)
duplicates=$(field "$out/receiver.log" duplicates)
delivered=$(metric "$m" kpid_outbox_delivered_total)
delivery_failures=$(metric "$m" kpid_outbox_delivery_failures_total)
expired=$(metric "$m" kpid_outbox_expired_total)
rejected=$(metric "$m" kpid_ingest_lines_rejected_total)
refused=$(metric "$m" kpid_store_series_refused_total)
ingested=$(metric "$m" kpid_ingest_samples_total)
evaluations=$(metric "$m" kpid_kpi_evaluations_total)
log_errors=$({ grep -c '\[error\]\|\[critical\]' "$out/kpid.log" || true; })
log_warnings=$({ grep -c '\[warning\]' "$out/kpid.log" || true; })
cpu_s=$(tail -1 "$out/rss.csv" | cut -d, -f4)

echo "== soak summary ($duration s; $kpis KPIs + $probes probe KPIs; $query_rate queries/s; output in $out)"
echo "RESULT ingest samples/s      achieved ${achieved:-?} of target $rate ($(awk -v a="${achieved:-0}" -v t="$rate" 'BEGIN{printf "%.1f", 100 * a / t}')%; target $rate_note)"
echo "RESULT write errors          ${write_errors:-?} of ${write_requests:-?} requests; kpid: lines rejected $rejected, series refused $refused"
echo "RESULT query errors          ${query_errors:-?} of ${queries:-?} answered"
echo "RESULT query latency ms      p50 $(field "$out/soak.log" query_p50_ms)  p99 $(field "$out/soak.log" query_p99_ms)  max $(field "$out/soak.log" query_max_ms)  (per kind above and in soak.log)"
echo "RESULT write latency ms      p50 $(field "$out/soak.log" write_p50_ms)  p99 $(field "$out/soak.log" write_p99_ms)"
echo "RESULT kpid RSS MB           at 1 min $rss_1m, at end $rss_end, max $rss_max (VmHWM $((hwm_kb / 1024))); slope over the second half $slope MB/min ($rows samples in rss.csv)"
echo "RESULT alerts                probe breaches ${probe_episodes:-?}; received alert.firing ${fired:-?}, alert.resolved ${resolved:-?}, alert.repeat ${repeats:-?} (all ${received:-?}); kpid delivered $delivered, failures $delivery_failures, expired $expired; bad signatures ${bad_signature:-?}, duplicates ${duplicates:-?}"
echo "RESULT kpid                  samples ingested $ingested, KPI evaluations $evaluations, CPU ${cpu_s:-?} s (client $(field "$out/soak.log" client_cpu_s) s), data dir $data_mb MB, log: $log_errors errors, $log_warnings warnings"

failed=()
[[ $soak_rc -eq 0 ]] || failed+=("kpid_bench exit $soak_rc")
[[ ${write_errors:-1} -eq 0 ]] || failed+=("write errors")
[[ ${query_errors:-1} -eq 0 ]] || failed+=("query errors")
awk -v a="${achieved:-0}" -v t="$rate" 'BEGIN{exit !(a >= 0.95 * t)}' || failed+=("achieved rate below 95% of the target")
[[ $rejected -eq 0 && $refused -eq 0 ]] || failed+=("rejected lines or refused series")
[[ $delivery_failures -eq 0 && $expired -eq 0 ]] || failed+=("alert delivery failures")
[[ ${received:-x} == "$delivered" ]] || failed+=("receiver got ${received:-?} notifications, kpid delivered $delivered")
[[ ${bad_signature:-1} -eq 0 ]] || failed+=("bad webhook signatures")
[[ $probes -eq 0 || ${fired:-0} -gt 0 ]] || failed+=("no alert fired")
[[ $log_errors -eq 0 ]] || failed+=("errors in kpid's log")
[[ $kpid_rc -eq 0 ]] || failed+=("kpid exit $kpid_rc on SIGTERM")
if [[ ${#failed[@]} -gt 0 ]]; then
  printf 'soak.sh: FAILED: %s\n' "$(IFS=';'; echo "${failed[*]}" | sed 's/;/; /g')" >&2
  [[ $log_errors -gt 0 ]] && grep '\[error\]\|\[critical\]' "$out/kpid.log" | head -5 >&2
  exit 1
fi
echo "   soak passed; memory: judge the slope above (flat = near 0 MB/min after warm-up)"
