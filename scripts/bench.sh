#!/usr/bin/env bash
# `make bench`: every benchmark in benchmarks/, each printing its ratio against its baseline.
#
# The rule for benchmarks/: a script there measures mlscale's code against a baseline (another
# library, the original implementation, or the same loop without the part being measured) in one
# run, and prints the ratio. Anything else, e.g. an experiment that tries an idea or measures how far
# a goal is from being met, belongs in research/ and is not run here. Results: docs/benchmarks.md.
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
