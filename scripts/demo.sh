#!/usr/bin/env bash
# The one-command demo: installs what is missing, builds, starts kpid on config/demo/kpid.toml
# with a fresh temporary data dir, and runs kpid-demo, which backfills 30 days of a web shop's
# business metrics and then plays an incident live (alert, then OKR draft, within a minute).
# Ctrl-C or SIGTERM stops both and removes the data dir.
#
# Usage: scripts/demo.sh [kpid-demo options]   (e.g. --days 7, --incident-after 30s; see
#        build/src/kpid-demo --help)
# Environment:
#   KPID_DEMO_HTTP_PORT  kpid's HTTP port on 127.0.0.1 (default 9470)
#   KPID_DEMO_LINE_PORT  kpid's TCP line-protocol port on 127.0.0.1 (default 9471)
#   KPID_BUILD_DIR       the build directory (default build)
#   KPID_SKIP_BUILD=1    use the binaries already in KPID_BUILD_DIR: no install, no build
set -euo pipefail
cd "$(dirname "$0")/.."

http_port="${KPID_DEMO_HTTP_PORT:-9470}"
line_port="${KPID_DEMO_LINE_PORT:-9471}"
build_dir="${KPID_BUILD_DIR:-build}"
for port in "$http_port" "$line_port"; do
  if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    echo "demo: bad port '$port' (KPID_DEMO_HTTP_PORT, KPID_DEMO_LINE_PORT: 1-65535)" >&2
    exit 2
  fi
done

if [[ "${KPID_SKIP_BUILD:-}" != 1 ]]; then
  scripts/install-deps.sh
  if [[ "$build_dir" == build ]]; then
    scripts/build.sh -DKPID_BUILD_TESTS=OFF -DKPID_BUILD_BENCH=OFF
  else
    # Someone's own, already configured build dir: build what the demo runs, keep its options.
    echo "demo: building kpid, kpid-demo and kpictl in $build_dir/"
    cmake --build "$build_dir" -j2 --target kpid kpid-demo kpictl
  fi
fi
kpid="$build_dir/src/kpid"
demo="$build_dir/src/kpid-demo"
for bin in "$kpid" "$demo"; do
  if [[ ! -x "$bin" ]]; then
    echo "demo: $bin is missing (build it, or unset KPID_SKIP_BUILD)" >&2
    exit 1
  fi
done

url="http://127.0.0.1:$http_port"
if (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; then
  echo "demo: something already listens on 127.0.0.1:$http_port (another kpid?); stop it or" \
    "set KPID_DEMO_HTTP_PORT" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/kpid-demo-XXXXXX")"
kpid_pid=""
demo_pid=""
# Stops kpid-demo, then kpid (each gets SIGTERM and is waited for), and removes the data dir.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "$demo_pid" "$kpid_pid"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
# The children run in the background and the script waits for them with `wait`, which a trapped
# signal interrupts at once (a foreground child would hold the trap until it exited).
trap 'exit 130' INT
trap 'exit 143' TERM

echo "demo: starting kpid on $url (data in $work, removed on exit; log: $work/kpid.log)"
"$kpid" --config config/demo/kpid.toml --data-dir "$work/data" \
  --http-listen "127.0.0.1:$http_port" --line-listen "127.0.0.1:$line_port" \
  >"$work/kpid.log" 2>&1 &
kpid_pid=$!

ready=""
for _ in $(seq 1 150); do
  if ! kill -0 "$kpid_pid" 2>/dev/null; then break; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$http_port" &&
      printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
      head -n1 <&3 | grep -q ' 200 ') 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
if [[ -z "$ready" ]]; then
  echo "demo: kpid did not become ready; its log:" >&2
  tail -n 20 "$work/kpid.log" >&2
  exit 1
fi

kpictl="$build_dir/src/kpictl"
if [[ "$http_port" != 9470 ]]; then kpictl+=" --url $url"; fi  # its default is port 9470
cat <<EOF

  Dashboard: $url/   CLI: $kpictl status
  API:       $url/api/v1/kpis   $url/api/v1/alerts   $url/api/v1/okrs

  kpid-demo now backfills 30 days of history, then writes live data; about 10 s later an
  incident starts, and within a minute you see the breach, the alert and the OKR draft.
  Ctrl-C (or SIGTERM) stops everything.

EOF
# Ctrl-C reaches kpid-demo too (it is in the terminal's foreground process group); SIGTERM
# reaches only this script, whose trap then stops kpid-demo and kpid.
"$demo" --url "$url" --reload-pid "$kpid_pid" "$@" &
demo_pid=$!
status=0
wait "$demo_pid" || status=$?
demo_pid=""
if ((status != 0)) && ! kill -0 "$kpid_pid" 2>/dev/null; then
  echo "demo: kpid stopped; its log:" >&2
  tail -n 20 "$work/kpid.log" >&2
fi
exit "$status"
