# Shell helpers the bench scripts share; source it, do not run it.

# Stops one of the script's own processes by PID: TERM, then KILL after $2 seconds (default
# 30), and reaps it. Nothing to do for an empty or already ended PID.
stop_pid() {
  local pid=$1 wait_s=${2:-30}
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((wait_s * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# A TCP port free on 127.0.0.1 now (bound to port 0, then closed).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# kpid_http_port LOG PID [TENTHS]: prints the port kpid (PID) logged in LOG as "HTTP listening on
# 127.0.0.1:PORT", waiting up to TENTHS tenths of a second (default 300). Fails with LOG on
# stderr when kpid exits first or never logs it.
kpid_http_port() {
  local log=$1 pid=$2 tenths=${3:-300} port=""
  for _ in $(seq 1 "$tenths"); do
    port=$(sed -n 's/.*HTTP listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -1)
    [[ -n $port ]] && { echo "$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || { echo "kpid exited during startup:" >&2; cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "kpid did not log its HTTP port within $((tenths / 10)) s:" >&2
  cat "$log" >&2
  return 1
}

# start_victoria_metrics BIN PORT DATA_DIR LOG [ARG...]: VictoriaMetrics on 127.0.0.1:PORT in the
# background (its PID in vm_pid), appending to LOG; returns once GET /health answers (fails
# with LOG on stderr after 10 s).
start_victoria_metrics() {
  local bin=$1 port=$2 data=$3 log=$4
  shift 4
  "$bin" -httpListenAddr "127.0.0.1:$port" -storageDataPath "$data" "$@" >>"$log" 2>&1 &
  vm_pid=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "victoria-metrics did not start:" >&2
  cat "$log" >&2
  return 1
}

# header_usage FILE: prints FILE's header comment (line 2 up to `set -euo`) without the '# '.
header_usage() {
  sed -n '2,/^set -euo/p' "$1" | sed '$d' | sed 's/^# \{0,1\}//'
}

# split_flag SCRIPT NO_VALUE ARG...: splits the first ARG into `flag` and `value` (--name=value or
# --name value) and sets `taken` to how many arguments it used. The flags listed in NO_VALUE
# (space-separated; --help and -h always) take none. A missing value exits 2 naming SCRIPT.
split_flag() {
  local script=$1 no_value=" $2 --help -h "
  shift 2
  flag=$1
  value=""
  taken=1
  if [[ $flag == --*=* ]]; then
    value=${flag#*=}
    flag=${flag%%=*}
  elif [[ $no_value != *" $flag "* ]]; then
    [[ $# -ge 2 ]] || { echo "$script: $flag needs a value" >&2; exit 2; }
    value=$2
    taken=2
  fi
}
