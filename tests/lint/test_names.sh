#!/usr/bin/env bash
# ctest splits a discovered test's name at ';' (CMake's list separator), so a Catch TEST_CASE
# whose name holds one is registered under a cut name that matches no case: it never runs, and
# ctest reports it passed. This fails, naming them, when any test name holds a ';'.
set -euo pipefail
root=${1:?usage: test_names.sh TESTS_DIR}
found=0
while IFS= read -r -d '' file; do
  # The name is the run of adjacent string literals right after TEST_CASE( (one or more lines).
  if names=$(grep -Pzo 'TEST_CASE\(\s*(?:"(?:[^"\\]|\\.)*"\s*)+' "$file" | tr '\0' '\n' |
    grep -a ';'); then
    echo "$file: a test name holds ';' (ctest would cut it there and run nothing):"
    echo "$names"
    found=1
  fi
done < <(find "$root" -name '*.cpp' -print0)
exit "$found"
