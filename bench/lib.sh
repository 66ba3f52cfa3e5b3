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
