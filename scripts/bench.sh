#!/usr/bin/env bash
# `make bench`: every benchmark in benchmarks/, each printing its ratio against its baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
for script in benchmarks/*.py; do
  echo "== $script"
  if grep -q "MPIRUN-RANKS" "$script"; then
    # A benchmark that needs several ranks names them in a comment: "# MPIRUN-RANKS: 2".
    ranks=$(sed -n 's/^# MPIRUN-RANKS: *\([0-9]*\).*/\1/p' "$script")
    "${MPIRUN[@]}" -np "$ranks" python "$script"
  else
    python "$script"
  fi
done
