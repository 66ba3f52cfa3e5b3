#!/usr/bin/env bash
# kpictl is an API client: it must not link RocksDB (ldd) nor carry code of kpid's daemon modules
# (its symbols). Usage: kpictl_links.sh KPICTL [LINK_TXT]
#   KPICTL    the kpictl binary
#   LINK_TXT  optional: CMake's link line for it (CMakeFiles/kpictl.dir/link.txt), checked for
#             the daemon's static libraries
set -euo pipefail
kpictl="$1"
link_txt="${2:-}"
failed=0

libs="$(ldd "$kpictl")"
if grep -qi rocksdb <<<"$libs"; then
  echo "kpictl links RocksDB:" >&2
  grep -i rocksdb <<<"$libs" >&2
  failed=1
fi

# Symbols of the daemon's modules (kpid::store::..., kpid::app::...) in the binary.
daemon='kpid::(store|query|kpi|alert|okr|ingest|server|app|config|auth|metrics)::'
found="$(nm -C --defined-only "$kpictl" | grep -E "$daemon" | head -n 5 || true)"
if [[ -n "$found" ]]; then
  echo "kpictl carries code of kpid's daemon modules, e.g.:" >&2
  echo "$found" >&2
  failed=1
fi

if [[ -n "$link_txt" ]]; then
  modules='libkpid_(store|query|kpi|alert|okr|ingest|lineproto|server|app|config|auth|metrics)\.a'
  linked="$(grep -oE "$modules" "$link_txt" | sort -u || true)"
  if [[ -n "$linked" ]]; then
    echo "kpictl's link line names daemon libraries:" $linked >&2
    failed=1
  fi
fi

if ((failed)); then exit 1; fi
echo "kpictl: no RocksDB, no daemon modules ($(wc -l <<<"$libs") shared libraries)"
