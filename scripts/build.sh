#!/usr/bin/env bash
# Configures and builds kpid into build/ (warnings are errors). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKPID_WERROR=ON "$@" >/dev/null
cmake --build build -j2
