#!/usr/bin/env bash
# Installs what is missing, builds (the first time about 5 minutes on 2 cores, with progress),
# and starts kpid on config/kpid.toml: data under ./data, HTTP on 127.0.0.1:9470, TCP line
# protocol on 127.0.0.1:9471, loopback only.
#
# Usage: scripts/run.sh [--wait] [kpid options, e.g. --log-level debug]
#   without --wait  kpid runs in the foreground and logs here; Ctrl-C stops it cleanly.
#   --wait          kpid runs in the background, logging to data/kpid.log; the script returns
#                   once kpid is ready (exit 0), or says why it is not (exit 1). Stop it with
#                   kill $(cat data/kpid.pid).
# Either way kpid writes its process id to data/kpid.pid once it is ready (and removes it when it
# exits), so `kill -HUP $(cat data/kpid.pid)` reloads the config as `build/src/kpictl reload`
# does.
#
# Environment:
#   KPID_BUILD_DIR     the build directory (default build)
#   KPID_SKIP_BUILD=1  use the binaries already in KPID_BUILD_DIR: no install, no build
#   KPID_RUN_DIR       where kpid.pid and (--wait) kpid.log go (default data)
#   KPID_WAIT_TIMEOUT  --wait: seconds to wait for kpid to be ready (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."

wait_ready=0
if [[ "${1:-}" == --wait ]]; then
  wait_ready=1
  shift
fi
build_dir="${KPID_BUILD_DIR:-build}"
run_dir="${KPID_RUN_DIR:-data}"
timeout="${KPID_WAIT_TIMEOUT:-300}"
if ! [[ "$timeout" =~ ^[0-9]+$ ]]; then
  echo "run: bad KPID_WAIT_TIMEOUT '$timeout' (whole seconds)" >&2
  exit 2
fi

if [[ "${KPID_SKIP_BUILD:-}" != 1 ]]; then
  scripts/install-deps.sh
  if [[ "$build_dir" == build ]]; then
    scripts/build.sh -DKPID_BUILD_TESTS=OFF -DKPID_BUILD_BENCH=OFF
  else
    # Someone's own, already configured build dir: build what this runs, keep its options.
    echo "run: building kpid and kpictl in $build_dir/"
    cmake --build "$build_dir" -j2 --target kpid kpictl
  fi
fi
kpid="$build_dir/src/kpid"
if [[ ! -x "$kpid" ]]; then
  echo "run: $kpid is missing (build it, or unset KPID_SKIP_BUILD)" >&2
  exit 1
fi
mkdir -p "$run_dir"
pid_file="$run_dir/kpid.pid"

if ((!wait_ready)); then
  exec "$kpid" --config config/kpid.toml --pid-file "$pid_file" "$@"
fi

# A kpid (not just any process that got its old pid) already running from here?
if [[ -f "$pid_file" ]]; then
  old="$(cat "$pid_file" 2>/dev/null || true)"
  if [[ "$old" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$old/comm" 2>/dev/null)" == kpid ]]; then
    echo "run: kpid is already running (pid $old, from $pid_file); stop it with:" \
      "kill \$(cat $pid_file)" >&2
    exit 1
  fi
fi

# True while the process runs (a child that exited stays a zombie until reaped: not running).
running() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

rm -f "$pid_file"
log="$run_dir/kpid.log"
echo "run: starting kpid in the background (log: $log)"
# Its own session: no terminal, so neither Ctrl-C here nor closing the terminal stops it.
setsid "$kpid" --config config/kpid.toml --pid-file "$pid_file" "$@" </dev/null >"$log" 2>&1 &
pid=$!
start=$SECONDS
said=$SECONDS
# kpid writes the pid file once its storage is open and it listens: that is ready.
until [[ "$(cat "$pid_file" 2>/dev/null || true)" == "$pid" ]]; do
  if ! running "$pid"; then
    status=0
    wait "$pid" || status=$?
    echo "run: kpid exited (status $status) before it was ready; the end of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  if ((SECONDS - start >= timeout)); then
    echo "run: kpid (pid $pid) is still not ready after $timeout s; it keeps running, see $log" \
      "(stop it with: kill $pid)" >&2
    exit 1
  fi
  if ((SECONDS - said >= 5)); then
    echo "run: waiting for kpid to open its storage and listen ($((SECONDS - start)) s)"
    said=$SECONDS
  fi
  sleep 0.1
done
listening="$(sed -n 's/.*\] \(.* listening on .*\)$/\1/p' "$log" | paste -sd, - | sed 's/,/, /g')"
echo "run: kpid is ready (pid $pid${listening:+; $listening})"
echo "run: reload its config with $build_dir/src/kpictl reload; stop it with" \
  "kill \$(cat $pid_file)"
