#!/usr/bin/env bash
# Installs what is missing, builds everything once and runs the whole test suite through ctest,
# then a short libFuzzer smoke of each fuzz target. This is what CI runs (.ci/run).
#
# The one build is clang with AddressSanitizer + UndefinedBehaviorSanitizer (KPID_SANITIZE,
# implied by KPID_FUZZ; any finding aborts the process, so it fails its test) and libFuzzer
# coverage, unoptimised: every test, integration tests included, runs under the sanitizers,
# and the build takes about half the time of a release one (clang -O0 compiles Asio and Beast
# much faster than g++ -O2), which keeps the suite well inside CI's time. build/ (release,
# scripts/build.sh) is left alone. KPID_TEST_BUILD_DIR overrides build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/format.sh --check
build=${KPID_TEST_BUILD_DIR:-build-asan}
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
  "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1" -DKPID_FUZZ=ON -DKPID_SANITIZE=address,undefined \
  -DKPID_BUILD_TESTS=ON -DKPID_BUILD_BENCH=OFF -DKPID_WERROR=ON >/dev/null
cmake --build "$build" -j2
(cd "$build" && ctest --output-on-failure -j2 --timeout 300)
scripts/fuzz.sh --smoke --build-dir "$build"
