#!/usr/bin/env bash
# Installs what is missing, builds, and starts kpid in the foreground on config/kpid.toml
# (data under ./data, listening on 127.0.0.1 only). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DKPID_BUILD_TESTS=OFF -DKPID_BUILD_BENCH=OFF
exec build/src/kpid --config config/kpid.toml "$@"
