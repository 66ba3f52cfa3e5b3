#!/usr/bin/env bash
# bench/memory_limit.sh: storage.memory_limit under a load that needs far more memory.
#
# Runs the same ingest twice against a fresh release kpid: first without a limit, then with
# storage.memory_limit. The load is bench/peer_load ingest of --series new series with --points
# samples each (POST /api/v2/write); the series index is what grows memory, so with the limit
# kpid must shed, then answer 503 with Retry-After instead of growing. peer_load sends a 503'd
# body again after 1 s, up to --busy-retries times, then gives it up (counted).
#
# Records for each run: peak RSS (VmHWM), RSS at the end, series stored, 503 answers, bodies
# given up, whether kpid is alive at the end and /readyz answers 200. When a memory cgroup can be
# made (root; cgroup v2 memory.max or v1 memory.limit_in_bytes), the limited run's kpid is put
# in one whose hard limit is --cgroup-margin above memory_limit, and its OOM kill count is
# reported (it must stay 0).
#
# Usage: bench/memory_limit.sh [--limit 400MiB] [--series 2000000] [--points 2]
#                              [--busy-retries 3] [--cgroup-margin-pct 25] [--batch-lines 20000]
#                              [--no-control]
# With a cgroup, a third run (unless --no-control) puts kpid without memory_limit in the same
# cgroup: what the limit saves it from.
# Environment: BUILD_DIR (default <repo>/build-rel), KPID, PEER_LOAD (binaries' paths).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/lib.sh"
build=${BUILD_DIR:-$root/build-rel}
kpid=${KPID:-$build/src/kpid}
load=${PEER_LOAD:-$build/bench/peer_load}
limit=400MiB
series=2000000
points=2
busy_retries=3
margin_pct=25
batch_lines=20000
control=yes
cgroup_made=no
while (($#)); do
  case $1 in
    --limit) limit=$2; shift 2 ;;
    --series) series=$2; shift 2 ;;
    --points) points=$2; shift 2 ;;
    --busy-retries) busy_retries=$2; shift 2 ;;
    --cgroup-margin-pct) margin_pct=$2; shift 2 ;;
    --batch-lines) batch_lines=$2; shift 2 ;;
    --no-control) control=no; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "memory_limit.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for exe in "$kpid" "$load"; do
  [[ -x $exe ]] || { echo "memory_limit.sh: $exe not built (cmake --build $build --target kpid peer_load -j2)" >&2; exit 2; }
done
to_bytes() {  # 400MiB, 2GiB, 123 -> bytes
  local v=$1 n unit
  n=${v%%[A-Za-z]*}; unit=${v#"$n"}
  case $unit in
    ''|B) echo "$n" ;; KiB) echo $((n << 10)) ;; MiB) echo $((n << 20)) ;; GiB) echo $((n << 30)) ;;
    *) echo "memory_limit.sh: size $v: use B, KiB, MiB or GiB" >&2; exit 2 ;;
  esac
}
limit_bytes=$(to_bytes "$limit")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpid-memlimit.XXXXXX")
pid=""
cgroup=""
cleanup() {
  stop_pid "$pid" 60
  pid=""
  [[ -n $cgroup && -d $cgroup ]] && rmdir "$cgroup" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A memory cgroup for the limited run, when this process may make one.
make_cgroup() {  # make_cgroup HARD_LIMIT_BYTES; sets cgroup, cgroup_kind
  local hard=$1 name="kpid-memlimit.$$"
  if [[ -w /sys/fs/cgroup/cgroup.subtree_control ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    cgroup=/sys/fs/cgroup/$name
    mkdir "$cgroup" && echo "$hard" >"$cgroup/memory.max" && echo 0 >"$cgroup/memory.swap.max" 2>/dev/null || true
    cgroup_kind=v2
  elif [[ -d /sys/fs/cgroup/memory ]] && mkdir "/sys/fs/cgroup/memory/$name" 2>/dev/null; then
    cgroup=/sys/fs/cgroup/memory/$name
    echo "$hard" >"$cgroup/memory.limit_in_bytes"
    echo "$hard" >"$cgroup/memory.memsw.limit_in_bytes" 2>/dev/null || true  # no swapping out
    cgroup_kind=v1
  else
    cgroup=""
    cgroup_kind=none
  fi
}
oom_kills() {
  case $cgroup_kind in
    v2) sed -n 's/^oom_kill \([0-9]*\)/\1/p' "$cgroup/memory.events" ;;
    v1) sed -n 's/^oom_kill \([0-9]*\)/\1/p' "$cgroup/memory.oom_control" ;;
    *) echo "n/a" ;;
  esac
}
metric() {  # metric PORT NAME: the first sample of NAME on /metrics
  "$load" request --port "$1" --path /metrics 2>/dev/null |
    awk -v n="$2" '$1 == n && v == "" { v = $2 } END { print v }'
}

# run NAME MEMORY_LIMIT USE_CGROUP
run() {
  local name=$1 mem=$2 use_cgroup=$3 dir port="" i
  dir=$(mktemp -d "$tmp/$name.XXXXXX")
  cat >"$dir/kpid.toml" <<TOML
[storage]
data_dir = "$dir/data"
max_series = 100000000
max_series_per_metric = 100000000
memory_limit = $mem
TOML
  cgroup_kind=none
  if [[ $use_cgroup == yes ]]; then
    make_cgroup $((limit_bytes + limit_bytes * margin_pct / 100))
  fi
  if [[ -n $cgroup ]]; then
    cgroup_made=yes
    # Joins the cgroup, then becomes kpid (same PID).
    bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$cgroup" \
      "$kpid" --config "$dir/kpid.toml" --http-listen 127.0.0.1:0 --line-listen 127.0.0.1:0 \
      2>"$dir/log" &
  else
    "$kpid" --config "$dir/kpid.toml" --http-listen 127.0.0.1:0 --line-listen 127.0.0.1:0 \
      2>"$dir/log" &
  fi
  pid=$!
  port=$(kpid_http_port "$dir/log" "$pid")
  "$load" wait --port "$port" --path /readyz --timeout 60 >/dev/null
  echo "== $name: kpid pid $pid, storage.memory_limit = $mem, cgroup: $cgroup_kind${cgroup:+ ($cgroup, hard limit $((limit_bytes + limit_bytes * margin_pct / 100)) bytes)}"
  local t0 out rc=0
  t0=$(date +%s.%N)
  out=$("$load" ingest --port "$port" --path /api/v2/write --param precision=s --series "$series" \
        --points "$points" --batch-lines "$batch_lines" --busy-retries "$busy_retries" \
        --timeout 3000 2>&1) || rc=$?
  echo "$out" | sed 's/^/  /'
  local elapsed alive=no ready=no hwm rss stored busy given_up oom
  elapsed=$(echo "$(date +%s.%N) - $t0" | bc)
  if kill -0 "$pid" 2>/dev/null; then alive=yes; fi
  hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || echo 0)
  rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || echo 0)
  [[ $("$load" request --port "$port" --path /readyz 2>/dev/null | awk 'NR == 1') == 200 ]] && ready=yes
  stored=$(metric "$port" kpid_store_series || true)
  busy=$(echo "$out" | awk '$1 == "RESULT" && $2 == "busy" { print $4 }')
  given_up=$(echo "$out" | awk '$1 == "RESULT" && $2 == "busy" { print $6 }')
  oom=$(oom_kills)
  echo "  RESULT $name peak_rss_mib $((hwm / 1024)) end_rss_mib $((rss / 1024)) series_stored ${stored:-?} 503s ${busy:-0} bodies_given_up ${given_up:-0} alive $alive readyz_200 $ready oom_kills $oom ingest_rc $rc seconds $(printf %.1f "$elapsed")"
  grep -E "storage: (resident memory|block cache)" "$dir/log" | awk 'NR <= 8 { print "  log: " $0 }' || true
  stop_pid "$pid" 60
  pid=""
  if [[ -n $cgroup ]]; then rmdir "$cgroup" 2>/dev/null || true; cgroup=""; fi
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "== memory_limit.sh $(date -u '+%F %T UTC') on $(nproc) cores, ${cpu_model:-unknown CPU}; kpid $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== load: $series new series x $points points (peer_load ingest, POST /api/v2/write), limit $limit"
run unlimited 0 no
run limited "\"$limit\"" yes
# The control: the same cgroup without storage.memory_limit, where the OOM killer may fire.
[[ $control == yes && $cgroup_made == yes ]] && run no_limit_in_cgroup 0 yes
