#!/usr/bin/env bash
# Configures and builds kpid (and kpictl, kpid-demo) into build/ (RelWithDebInfo, warnings are
# errors). Extra arguments go to cmake's configure step.
#
# The first build takes about 5 minutes on 2 cores; later ones rebuild only what changed. On a
# terminal the build shows one line that says how far it is; elsewhere (CI, a pipe) cmake's own
# progress lines. Either way compiler errors are shown in full, and the whole output is kept in
# build/build.log.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x build/src/kpid ]]; then
  echo "build: building kpid in build/: the first build takes about" \
    "5 minutes on 2 cores (later builds only what changed)"
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKPID_WERROR=ON "$@" >/dev/null
mkdir -p build
log=build/build.log
start=$SECONDS

elapsed() {
  local s=$((SECONDS - start))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# Make's "[ 42%] Building CXX object src/CMakeFiles/kpid_store.dir/store/chunk_codec.cpp.o"
# becomes "build: [ 42%] 1m05s  store/chunk_codec.cpp", rewritten in place; other lines
# (warnings, errors) are printed whole.
one_line_progress() {
  local line shown="" what
  local progress='^\[ *([0-9]+)%\] (.*)$'
  while IFS= read -r line; do
    if [[ "$line" =~ $progress ]]; then
      what="${BASH_REMATCH[2]}"
      what="${what#Building CXX object }"
      what="${what#src/CMakeFiles/}"
      what="${what%.o}"
      what="${what#*.dir/}"
      printf '\r\033[Kbuild: [%3d%%] %s  %.60s' "${BASH_REMATCH[1]}" "$(elapsed)" "$what"
      shown=1
    else
      if [[ -n "$shown" ]]; then printf '\r\033[K'; fi
      printf '%s\n' "$line"
      shown=""
    fi
  done
  if [[ -n "$shown" ]]; then printf '\r\033[K'; fi
}

set +e
if [[ -t 1 ]]; then
  cmake --build build -j2 2>&1 | tee "$log" | one_line_progress
else
  cmake --build build -j2 2>&1 | tee "$log"
fi
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
  echo "build: failed after $(elapsed) (the whole output: $log)" >&2
  exit "$status"
fi
echo "build: done in $(elapsed)"
