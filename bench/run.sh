#!/usr/bin/env bash
# Runs kpid's benchmark: starts kpid from the build dir on a fresh temporary data dir on
# loopback ports, runs kpid_bench against it (ingest throughput, then query latency),
# stops kpid with SIGTERM by PID, and removes the temporary dir on exit.
#
# Usage: bench/run.sh [--kpis N] [kpid_bench options...]     (see: kpid_bench --help)
#   --kpis N (or KPIS=N in the environment): start kpid with a generated config of N KPIs over
#   the benchmark's data (kpi_bench kpis --count N), then check after the run that they have
#   values and print kpid_kpi_evaluations_total. Must come before the kpid_bench options.
# Environment: BUILD_DIR (default: <repo>/build, as scripts/build.sh makes it), KPID, KPID_BENCH,
# KPI_BENCH (binaries' paths), KPIS, BENCH_RUNS (run kpid_bench this many times against the same
# kpid, default 1: the later runs write to series kpid already knows).
set -euo pipefail

kpis=${KPIS:-0}
while [[ $# -gt 0 && $1 == --kpis ]]; do
  [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || { echo "run.sh: --kpis needs a number" >&2; exit 2; }
  kpis=$2
  shift 2
done
[[ $kpis =~ ^[0-9]+$ ]] || { echo "run.sh: KPIS must be a number" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build=${BUILD_DIR:-$root/build}
kpid=${KPID:-$build/src/kpid}
bench=${KPID_BENCH:-$build/bench/kpid_bench}
kpi_bench=${KPI_BENCH:-$build/bench/kpi_bench}

exes=("$kpid" "$bench")
[[ $kpis -gt 0 ]] && exes+=("$kpi_bench")
for exe in "${exes[@]}"; do
  if [[ ! -x $exe ]]; then
    echo "run.sh: $exe not found; build it first:" >&2
    echo "  cmake -S $root -B $build -DKPID_BUILD_BENCH=ON && cmake --build $build --target kpid kpid_bench kpi_bench -j1" >&2
    exit 2
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpid-bench.XXXXXX")
kpid_pid=""

cleanup() {
  stop_pid "$kpid_pid" 30
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "== kpid benchmark $(date -u +%F) on $(nproc) cores $(uname -m), ${cpu_model:-unknown CPU}"
echo "   kpid: $kpid ($("$kpid" --version 2>/dev/null || echo '?'))"
echo "   client and server share the machine's cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

kpid_args=(--data-dir "$tmp/data" --http-listen 127.0.0.1:0 --line-listen 127.0.0.1:0)
if [[ $kpis -gt 0 ]]; then
  # The KPIs watch one host each, spread over the hosts kpid_bench writes (--series / --regions).
  series=10000 regions=10
  args=("$@")
  for ((i = 0; i + 1 < ${#args[@]}; i++)); do
    [[ ${args[i]} == --series ]] && series=${args[i + 1]}
    [[ ${args[i]} == --regions ]] && regions=${args[i + 1]}
  done
  hosts=$(( (series + regions - 1) / regions ))
  "$kpi_bench" kpis --count "$kpis" --hosts "$hosts" >"$tmp/kpis.toml"
  kpid_args+=(--config "$tmp/kpis.toml")
  echo "   kpid config: $kpis KPIs over $hosts hosts (kpi_bench kpis --count $kpis --hosts $hosts)"
else
  echo "   kpid config: none (no KPIs)"
fi

: >"$tmp/kpid.log"  # exists before the first read below, however fast that comes
"$kpid" "${kpid_args[@]}" 2>"$tmp/kpid.log" &
kpid_pid=$!

port=$(kpid_http_port "$tmp/kpid.log" "$kpid_pid")
echo "   kpid pid $kpid_pid, HTTP on 127.0.0.1:$port, data dir $tmp/data"

bench_rc=0
runs=${BENCH_RUNS:-1}
for ((run = 1; run <= runs; run++)); do
  [[ $runs -gt 1 ]] && echo "== kpid_bench run $run of $runs against the same kpid (series known after the first)"
  "$bench" --port "$port" "$@" || bench_rc=$?
done

if [[ $kpis -gt 0 ]]; then
  # The evaluator must really have worked: every KPI with a value, and its evaluation counters.
  if kpi_json=$(curl -sf "http://127.0.0.1:$port/api/v1/kpis"); then
    count() { { grep -o "$1" <<<"$kpi_json" || true; } | wc -l; }
    total=$(count '"value":')
    null=$(count '"value":null')
    statuses=$({ grep -o '"status":"[a-z_]*"' <<<"$kpi_json" || true; } | { grep -v '"success"' || true; } |
      cut -d'"' -f4 | sort | uniq -c | awk '{printf "%s%s %s", sep, $2, $1; sep=", "}')
    echo "RESULT kpis with a value  $((total - null)) of $total (status: $statuses)"
    [[ $total -eq $kpis && $null -eq 0 ]] || { echo "run.sh: some KPIs have no value" >&2; bench_rc=1; }
  else
    echo "run.sh: GET /api/v1/kpis failed" >&2
    bench_rc=1
  fi
  curl -sf "http://127.0.0.1:$port/metrics" | grep '^kpid_kpi_evaluations_total' | sed 's/^/  server: /' || true
fi

# kpid's own cost, read before it exits: CPU time (user+sys) and peak resident memory.
if [[ -r /proc/$kpid_pid/stat ]]; then
  ticks=$(getconf CLK_TCK)
  read -r utime stime < <(sed 's/^.*) //' "/proc/$kpid_pid/stat" | awk '{print $12, $13}')
  hwm=$(sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$kpid_pid/status")
  echo "RESULT kpid cpu seconds  user $(awk -v t="$utime" -v h="$ticks" 'BEGIN{printf "%.1f", t/h}')  sys $(awk -v t="$stime" -v h="$ticks" 'BEGIN{printf "%.1f", t/h}')"
  echo "RESULT kpid peak RSS     $hwm"
fi
echo "RESULT kpid data dir     $(du -sh "$tmp/data" | cut -f1)"
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

kill -TERM "$kpid_pid"
kpid_rc=0
for _ in $(seq 1 300); do kill -0 "$kpid_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$kpid_pid" 2>/dev/null; then
  echo "run.sh: kpid did not exit within 30 s of SIGTERM; killing it" >&2
  kill -KILL "$kpid_pid" 2>/dev/null || true
  kpid_rc=1
fi
wait "$kpid_pid" || kpid_rc=$?
kpid_pid=""
if [[ $kpid_rc -ne 0 ]]; then
  echo "run.sh: kpid exited with status $kpid_rc after SIGTERM; its log:" >&2
  tail -n 50 "$tmp/kpid.log" >&2
  exit 1
fi
echo "   kpid stopped cleanly (SIGTERM, exit 0)"
if [[ $bench_rc -ne 0 ]]; then
  echo "run.sh: kpid_bench FAILED (exit $bench_rc); kpid log tail:" >&2
  tail -n 20 "$tmp/kpid.log" >&2
fi
exit "$bench_rc"
