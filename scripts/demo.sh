#!/usr/bin/env bash
# `make demo`: real benchmarks end to end at 1 and 2 MPI ranks, then the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
OUT=${OUT:-demo-runs}
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== mlscale info under mpirun -np 2"
"${MPIRUN[@]}" -np 2 mlscale info

# The synthetic workload: Horovod's synthetic benchmark computation, sized for a CPU.
SYNTH=(--model resnet18 --image-size 96 --batch-size 8 --steps-per-epoch 10 --test-steps 3 --epochs 2 --infer
       --system "$(hostname)" --out "$OUT/synthetic")
for n in 1 2; do
  echo "== synthetic at $n rank(s)"
  "${MPIRUN[@]}" -np "$n" mlscale run synthetic "${SYNTH[@]}" --no-progress
done

for part in scripts/demo.d/*.sh; do
  [ -e "$part" ] || continue
  echo "== $(basename "$part" .sh)"
  OUT="$OUT" bash "$part"
done

echo
echo "== mlscale report $OUT"
mlscale report "$OUT"
