#!/usr/bin/env bash
# Installs the Debian packages kpid needs to build, run and test, skipping those already there.
# Usage: scripts/install-deps.sh [--test] [--fuzz]
#   --test adds the tools the test suite talks to, and what --fuzz adds (the suite is built
#          with clang and its sanitizers, scripts/test.sh)
#   --fuzz adds clang's libFuzzer and sanitizer runtimes for scripts/fuzz.sh
set -euo pipefail

# clang builds kpid (CMakeLists.txt picks it: GCC 12 miscompiles coroutine temporaries).
packages=(clang cmake make libboost1.81-dev libboost-json1.81-dev librocksdb-dev
          prometheus-cpp-dev libspdlog-dev libtomlplusplus-dev catch2 zlib1g-dev libssl-dev
          libsystemd-dev pkg-config
          libyaml-cpp-dev  # OpenSLO import
          libprotobuf-dev protobuf-compiler libsnappy-dev)  # Prometheus remote write bodies
test=0
fuzz=0
for flag in "$@"; do
  case "$flag" in
    --test) test=1 ;;
    --fuzz) fuzz=1 ;;
    *) echo "install-deps.sh: unknown flag $flag" >&2; exit 2 ;;
  esac
done
if ((test)); then
  packages+=(prometheus)  # promtool: checks /metrics and queries kpid as a real client
  packages+=(prometheus-alertmanager)  # a real Alertmanager receives kpid's alerts
  packages+=(openssl)  # the test suite's TLS receiver uses certificates made with it
  packages+=(systemd)  # systemd-analyze verifies the unit
  packages+=(chromium)  # a real headless browser loads the dashboard (tests talk CDP to it)
  packages+=(python3-influxdb)  # a real InfluxDB 1.x client pings, creates databases, writes
  packages+=(influxdb-client)  # the influx CLI imports a file (-import) as InfluxDB users do
  packages+=(victoria-metrics)  # vmagent remote-writes to kpid; VictoriaMetrics is the bench peer
  # The OpenTelemetry JS SDK sends OTLP (tests/integration/otlp, installed with npm below).
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
  fuzz=1
fi
if ((fuzz)); then
  # clang's libFuzzer, ASan and UBSan runtimes (libclang-rt-dev is only recommended by clang,
  # so --no-install-recommends would skip it) and llvm-symbolizer for readable reports.
  packages+=(libclang-rt-dev llvm)
fi
if ((test)); then
  packages+=(clang-format)  # scripts/format.sh --check: the code matches .clang-format
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} > 0)); then
  echo "installing: ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ((test)); then
  # The versions package-lock.json pins, from the npm registry; node_modules is not committed.
  sender="$(cd "$(dirname "$0")/.." && pwd)/tests/integration/otlp"
  if ! npm ci --prefix "$sender" --no-audit --no-fund --loglevel=error >/dev/null; then
    echo "install-deps.sh: npm ci in $sender failed (is the npm registry reachable?);" \
      "the OTLP integration test needs the OpenTelemetry JS SDK it installs" >&2
    exit 1
  fi
fi
