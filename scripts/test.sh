#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs the whole test suite through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh -DKPID_BUILD_TESTS=ON
cd build
ctest --output-on-failure -j2 --timeout 300
