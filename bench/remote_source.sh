#!/usr/bin/env bash
# KPI evaluations per second against a remote data source: a real VictoriaMetrics (Debian's
# victoria-metrics) holding kpid_bench's data set, and a real kpid whose K KPIs all have
# datasource = "vm" and interval = "10s". Both on 127.0.0.1 with temporary data dirs, stopped
# by PID, the dir removed on exit.
#
#   bench/remote_source.sh [K] [SECONDS] [HOSTS]     # defaults 1000 KPIs, 60 s, 1000 hosts
#
# VictoriaMetrics gets HOSTS x 10 regions tag sets (3 fields each: bench_usage, bench_idle,
# bench_busy, the names kpid gives them too), one scrape every 10 s for the 10 minutes before
# now, as InfluxDB line protocol on /write with nanosecond timestamps (the protocol's default
# precision, so no ?precision is needed); a count() query checks that every series arrived.
# The KPIs are `kpi_bench kpis --count K --hosts HOSTS` (5-minute windows), so the data stays
# in their windows for a run of up to 4 minutes. kpid starts, the first full round is awaited,
# then SECONDS are measured: KPI evaluations/s (kpid_kpi_evaluations_total{trigger="timer"},
# the counter remote evaluations increment), requests/s to VictoriaMetrics
# (kpid_datasource_requests_total), request latency p50 from kpid's histogram, kpid's and
# VictoriaMetrics' CPU seconds, and whether every KPI has a value (GET /api/v1/kpis).
# "keeps up" means the evaluations reached K per 10 s round (at least 98% of K/10 per second).
# Lines starting with RESULT are the figures. Uses BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

kpis=${1:-1000}
seconds=${2:-60}
hosts=${3:-1000}
[[ $kpis =~ ^[0-9]+$ && $seconds =~ ^[0-9]+$ && $hosts =~ ^[0-9]+$ ]] ||
  { echo "remote_source: K, SECONDS and HOSTS must be numbers" >&2; exit 2; }
((seconds <= 240)) || { echo "remote_source: SECONDS at most 240 (the data's 5-minute windows)" >&2; exit 2; }
build=${BUILD_DIR:-build}
kpid=${KPID:-$build/src/kpid}
kpi_bench=${KPI_BENCH:-$build/bench/kpi_bench}
vm_bin=$(command -v victoria-metrics || echo /usr/bin/victoria-metrics)
for b in "$kpid" "$kpi_bench" "$vm_bin"; do
  [[ -x $b ]] || { echo "remote_source: $b not found (build kpid and kpi_bench; apt install victoria-metrics)" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpid-remote-source.XXXXXX")
kpid_pid="" vm_pid=""
cleanup() {
  stop_pid "$kpid_pid" 30
  stop_pid "$vm_pid" 30
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "== remote source benchmark $(date -u '+%F %H:%M') UTC on $(nproc) cores, ${cpu_model:-unknown CPU}"
echo "   $kpis KPIs (interval 10s) over $hosts hosts, measured for $seconds s; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

vm_port=$(free_port)
start_victoria_metrics "$vm_bin" "$vm_port" "$tmp/vm" "$tmp/vm.log" -search.latencyOffset=0s
vm_url="http://127.0.0.1:$vm_port"

echo "== loading VictoriaMetrics: $((hosts * 10)) tag sets x 3 fields, every 10 s for 10 minutes"
load_start=$(date +%s.%N)
python3 - "$vm_port" "$hosts" <<'PY'
import http.client, random, sys, time
port, hosts = int(sys.argv[1]), int(sys.argv[2])
now_ns = time.time_ns()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
rng = random.Random(1)
lines = []
def flush():
    if not lines:
        return
    conn.request("POST", "/write", body="\n".join(lines).encode())
    r = conn.getresponse()
    r.read()
    if r.status != 204:
        sys.exit(f"VictoriaMetrics /write answered {r.status}")
    lines.clear()
busy = {}
for k in range(60, 0, -1):  # scrape k is k*10 s before now, oldest first
    for i in range(hosts * 10):
        ts = now_ns - k * 10_000_000_000 + (i * 7919 % 10_000) * 1_000_000
        b = busy.get(i, 0.0) + rng.uniform(0, 30)
        busy[i] = b
        lines.append(f"bench,host=h{i // 10},region=r{i % 10} usage={rng.uniform(0, 100):.1f},"
                     f"idle={rng.randint(0, 100)}i,busy={b:.1f} {ts}")
        if len(lines) >= 5000:
            flush()
flush()
PY
# VictoriaMetrics makes new samples searchable within about a second.
expect=$((hosts * 10))
got=0
for _ in $(seq 1 100); do
  got=$(curl -sf "$vm_url/api/v1/query" --data-urlencode 'query=count(bench_usage)' |
    sed -n 's/.*"value":\[[0-9.]*,"\([0-9]*\)"\].*/\1/p')
  [[ ${got:-0} == "$expect" ]] && break
  sleep 0.2
done
[[ ${got:-0} == "$expect" ]] || { echo "remote_source: VictoriaMetrics has ${got:-0} of $expect bench_usage series" >&2; exit 1; }
echo "   loaded $((expect * 3 * 60)) samples in $(awk -v s="$load_start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s; count(bench_usage) = $got"

{
  cat <<TOML
[[datasource]]
name = "vm"
url = "$vm_url"
batch_size = 50
max_concurrency = 4

TOML
  # Every [[kpi]] on the source, every 10 s: the two keys right after its owner line.
  "$kpi_bench" kpis --count "$kpis" --hosts "$hosts" |
    awk '{print} /^owner = / {print "datasource = \"vm\""; print "interval = \"10s\""}'
} >"$tmp/kpid.toml"

: >"$tmp/kpid.log"
"$kpid" --config "$tmp/kpid.toml" --data-dir "$tmp/data" --http-listen 127.0.0.1:0 \
  --line-listen 127.0.0.1:0 2>"$tmp/kpid.log" &
kpid_pid=$!
port=$(kpid_http_port "$tmp/kpid.log" "$kpid_pid" 600)

metrics() { curl -sf "http://127.0.0.1:$port/metrics"; }
# sum_of FILE NAME [LABEL-FILTER]: the sum of a metric's samples (0 when absent).
sum_of() {
  awk -v n="$1" -v f="${2:-}" '($1 == n || index($1, n "{") == 1) && index($1, f) {s += $2} END {printf "%.0f", s}' "$3"
}
cpu_of() {  # user+sys seconds of a PID
  sed 's/^.*) //' "/proc/$1/stat" | awk -v h="$(getconf CLK_TCK)" '{printf "%.2f", ($12 + $13) / h}'
}

# Warm-up: at start kpid also reads each KPI's history from the source once (query_range, one
# request per KPI, in the background); wait until a round of K evaluations has been made and
# the range requests have stopped (K of them, or none new for 5 s), then start the clock 5 s
# after the next 10 s boundary.
warm_start=$(date +%s)
last_range=-1 still=0
for _ in $(seq 1 1200); do
  metrics >"$tmp/m0" || true
  range_now=$(sum_of kpid_datasource_requests_total 'kind="range"' "$tmp/m0")
  if [[ $range_now == "$last_range" ]]; then still=$((still + 1)); else still=0; fi
  last_range=$range_now
  if [[ $(sum_of kpid_kpi_evaluations_total 'trigger="timer"' "$tmp/m0") -ge $kpis ]] &&
    ((range_now >= kpis || still >= 10)); then
    break
  fi
  sleep 0.5
done
echo "   warm-up (first rounds, $last_range history reads): $(($(date +%s) - warm_start)) s"
sleep "$(awk -v t="$(date +%s.%N)" 'BEGIN {printf "%.2f", 10 - (t - int(t / 10) * 10) + 5}')"

snap() {  # snap N: metrics and CPU into $tmp/mN, $tmp/cN
  metrics >"$tmp/m$1"
  echo "$(date +%s.%N) $(cpu_of "$kpid_pid") $(cpu_of "$vm_pid")" >"$tmp/c$1"
}
snap 1
sleep "$seconds"
snap 2
read -r t1 kc1 vc1 <"$tmp/c1"
read -r t2 kc2 vc2 <"$tmp/c2"
dt=$(awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}')
delta() { awk -v a="$(sum_of "$1" "${2:-}" "$tmp/m1")" -v b="$(sum_of "$1" "${2:-}" "$tmp/m2")" 'BEGIN {print b - a}'; }
evals=$(delta kpid_kpi_evaluations_total 'trigger="timer"')
instant=$(delta kpid_datasource_requests_total 'kind="instant"')
range=$(delta kpid_datasource_requests_total 'kind="range"')
failed=$(delta kpid_datasource_request_failures_total)
per_s() { awk -v x="$1" -v t="$dt" 'BEGIN {printf "%.1f", x / t}'; }

# p50 from the histogram's bucket deltas, interpolated linearly inside the bucket.
p50=$(join <(grep '^kpid_datasource_request_duration_seconds_bucket' "$tmp/m1" | sort) \
  <(grep '^kpid_datasource_request_duration_seconds_bucket' "$tmp/m2" | sort) |
  sed 's/.*le="\([^"]*\)"}* \([0-9.e+]*\) \([0-9.e+]*\)/\1 \2 \3/' | sort -g |
  awk '{le[NR] = ($1 == "+Inf" ? 1e9 : $1); c[NR] = $3 - $2} END {
    total = c[NR]; if (total <= 0) {print "n/a"; exit}
    prev_le = 0; prev_c = 0
    for (i = 1; i <= NR; i++) {
      if (c[i] >= total / 2) {
        frac = (c[i] == prev_c) ? 0 : (total / 2 - prev_c) / (c[i] - prev_c)
        printf "%.1f", 1000 * (prev_le + frac * (le[i] - prev_le)); exit
      }
      prev_le = le[i]; prev_c = c[i]
    }}')

echo "RESULT remote_kpis $kpis  interval 10s  measured $(printf '%.1f' "$dt") s"
echo "RESULT remote_kpi_evaluations_per_second $(per_s "$evals")  (needed to keep up: $(awk -v k="$kpis" 'BEGIN {printf "%.1f", k / 10}'))"
echo "RESULT remote_keeps_up $(awk -v e="$evals" -v t="$dt" -v k="$kpis" 'BEGIN {print (e / t >= 0.98 * k / 10 ? "yes" : "no")}')"
echo "RESULT remote_requests_per_second $(per_s "$instant") instant, $(per_s "$range") range, failures $failed"
echo "RESULT remote_request_latency_p50_ms $p50"
echo "RESULT remote_cpu_seconds kpid $(awk -v a="$kc1" -v b="$kc2" 'BEGIN {printf "%.2f", b - a}')  victoria-metrics $(awk -v a="$vc1" -v b="$vc2" 'BEGIN {printf "%.2f", b - a}')  (over $(printf '%.1f' "$dt") s)"

if kpi_json=$(curl -sf "http://127.0.0.1:$port/api/v1/kpis"); then
  count() { { grep -o "$1" <<<"$kpi_json" || true; } | wc -l; }
  total=$(count '"value":')
  null=$(count '"value":null')
  statuses=$({ grep -o '"status":"[a-z_]*"' <<<"$kpi_json" || true; } | { grep -v '"success"' || true; } |
    cut -d'"' -f4 | sort | uniq -c | awk '{printf "%s%s %s", sep, $2, $1; sep=", "}')
  echo "RESULT remote_kpis_with_a_value $((total - null)) of $total (status: $statuses)"
else
  echo "remote_source: GET /api/v1/kpis failed" >&2
  exit 1
fi
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
