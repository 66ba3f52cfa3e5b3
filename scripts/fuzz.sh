#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) into build-fuzz/ and runs
# each for a while, starting from a scratch copy of its corpus (tests/fuzz/corpus/<target>/).
# Interesting new inputs stay in a temp dir this script names; nothing is written to the repo.
# A crash, leak, timeout or out-of-memory input is saved to <build dir>/findings/<target>/ and
# makes the script exit 1, after printing how to reproduce and minimize it.
#
# Usage: scripts/fuzz.sh [TARGET...] [--time SECONDS] [--jobs N] [--smoke] [--build-dir DIR]
#   TARGET     line_protocol, selector, config, chunk, remote_write, otlp_protobuf, otlp_json
#              (default: all, one after the other)
#   --time S   seconds per target (default 60)
#   --jobs N   fuzzing processes per target (libFuzzer -fork=N) and build jobs (default 1 and 2)
#   --smoke    a short run for CI: 10 seconds per target unless --time says otherwise, as many
#              targets at a time as there are cores
#   --build-dir DIR  use DIR, already configured with KPID_FUZZ=ON (scripts/test.sh's
#              build-asan/), instead of configuring build-fuzz/
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(line_protocol selector config chunk remote_write otlp_protobuf otlp_json)
targets=()
seconds=""
jobs=1
smoke=0
build=""
while (($#)); do
  case "$1" in
    --time) seconds="${2:?--time needs seconds}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --build-dir) build="${2:?--build-dir needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *)
      if [[ " ${all_targets[*]} " != *" $1 "* ]]; then
        echo "fuzz.sh: unknown target $1 (one of: ${all_targets[*]})" >&2
        exit 2
      fi
      targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")
[[ -n "$seconds" ]] || seconds=$((smoke ? 10 : 60))
if ! [[ "$seconds" =~ ^[0-9]+$ && "$jobs" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: --time and --jobs take whole numbers" >&2
  exit 2
fi

scripts/install-deps.sh --fuzz

if [[ -z "$build" ]]; then
  build=build-fuzz
  cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DKPID_FUZZ=ON -DKPID_BUILD_TESTS=OFF -DKPID_BUILD_BENCH=OFF -DKPID_WERROR=ON >/dev/null
elif ! grep -q "^KPID_FUZZ:BOOL=ON" "$build/CMakeCache.txt" 2>/dev/null; then
  echo "fuzz.sh: $build is not configured with -DKPID_FUZZ=ON" >&2
  exit 2
fi
build_jobs=$((jobs > 1 ? jobs : 2))
cmake --build "$build" -j"$build_jobs" --target "${targets[@]/%/_fuzz}"

# UBSan findings abort (the build has -fno-sanitize-recover); leaks are findings too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
work=$(mktemp -d "${TMPDIR:-/tmp}/kpid-fuzz.XXXXXX")
root=$(pwd)
# One target's run; its report goes to $work/$t.report and its verdict (0 or 1) to
# $work/$t.failed, so targets can run side by side and be reported in order.
run_target() {
  local t=$1
  local findings="$root/$build/findings/$t"
  mkdir -p "$work/$t/corpus" "$findings"
  cp "tests/fuzz/corpus/$t/"* "$work/$t/corpus/"
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$findings/")
  # Whole config files with included ones are larger than the other targets' inputs.
  if [[ "$t" == config ]]; then args+=(-max_len=16384); else args+=(-max_len=4096); fi
  if [[ -f "tests/fuzz/$t.dict" ]]; then args+=(-dict="$root/tests/fuzz/$t.dict"); fi
  if ((jobs > 1)); then args+=(-fork="$jobs"); fi
  ls "$findings" | sort >"$work/$t.before"
  local status=0
  # In its own dir: fork mode keeps temp files in the working directory.
  (cd "$work/$t" && "$root/$build/tests/fuzz/${t}_fuzz" "${args[@]}" corpus) \
    >"$work/$t.log" 2>&1 || status=$?
  local stats runs fresh new_findings
  stats=$(grep -oE "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+" "$work/$t.log" | tail -1 || true)
  runs=$(grep -oE "stat::number_of_executed_units: [0-9]+|^#[0-9]+" "$work/$t.log" | tail -1 |
         grep -oE "[0-9]+$" || true)
  fresh=$(comm -13 <(ls "tests/fuzz/corpus/$t" | sort) <(ls "$work/$t/corpus" | sort) | wc -l)
  new_findings=$(comm -13 "$work/$t.before" <(ls "$findings" | sort))
  {
    echo "$t: ${runs:-?} executions, ${stats:-no coverage line}, $fresh new inputs in" \
         "$work/$t/corpus (log: $work/$t.log)"
    if ((status != 0)) || [[ -n "$new_findings" ]]; then
      echo "$t: FOUND A PROBLEM (fuzzer exit status $status). The report:"
      # What went wrong and the frames in kpid's own code, not libFuzzer's.
      grep -E "ERROR: |SUMMARY: |fuzz invariant broken|runtime error|^  [^ ]|#[0-9]+ .* $root/" \
        "$work/$t.log" | grep -v "/tests/fuzz/fuzz_check.h" | head -20 | sed 's/^/    /'
      for f in $new_findings; do
        echo "  reproduce: $build/tests/fuzz/${t}_fuzz $build/findings/$t/$f"
        echo "  minimize:  $build/tests/fuzz/${t}_fuzz -minimize_crash=1 -max_total_time=60" \
             "-exact_artifact_path=$build/findings/$t/$f.min $build/findings/$t/$f"
      done
      echo "  Once fixed, add the minimized input as tests/fuzz/corpus/$t/regress-<what>: the ctest"
      echo "  \"fuzz: $t corpus\" then replays it in every build."
    fi
  } >"$work/$t.report"
  if ((status != 0)) || [[ -n "$new_findings" ]]; then echo 1; else echo 0; fi >"$work/$t.failed"
}

# Targets side by side, one per core in a smoke (each still gets its full time on a core of its
# own), one at a time otherwise (a long run with --jobs uses the cores itself).
side_by_side=1
if ((smoke && jobs == 1)); then side_by_side=$(nproc 2>/dev/null || echo 1); fi
echo "fuzzing ${targets[*]} for ${seconds}s each (jobs $jobs, $side_by_side at a time);" \
     "scratch corpora in $work"
running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if ((running >= side_by_side)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
failed=()
for t in "${targets[@]}"; do
  cat "$work/$t.report"
  if [[ "$(cat "$work/$t.failed")" != 0 ]]; then failed+=("$t"); fi
done

if ((${#failed[@]})); then
  echo "fuzz.sh: findings in ${failed[*]} ($build/findings/)" >&2
  exit 1
fi
echo "fuzz.sh: no findings"
# A smoke's scratch corpora hold nothing worth keeping.
if ((smoke)); then rm -rf "$work"; fi
