#!/usr/bin/env bash
# cosmic-tagger in the demo: fresh synthetic larcv3 data, training at 1, 2 and 4
# (oversubscribed) ranks with the same global batch (strong scaling, the
# Theta/Cooley list), an iotest of the root-read-and-scatter loader, and inference
# writing predicted labels back as a larcv3 producer.
set -euo pipefail
source scripts/common.sh
OUT=${OUT:-demo-runs}
DATA="$OUT/cosmic-data"
mlscale data cosmic-tagger --out "$DATA" --events 64 --test-events 16 --height 128 --width 256
NET=(--n-initial-filters 8 --network-depth 4 --res-blocks-per-layer 1 --res-blocks-deepest-layer 1
     --res-blocks-final 1 --lr 2e-3)
for n in 1 2 4; do
  echo "-- cosmic-tagger at $n rank(s)"
  "${MPIRUN[@]}" -np "$n" mlscale run cosmic-tagger --data "$DATA" "${NET[@]}" --global-batch-size 4 --epochs 2 \
    --infer --system "$(hostname)" --out "$OUT/cosmic-tagger" --no-progress
done
echo "-- cosmic-tagger iotest (root reads, scatters sparse buffers) at 2 ranks"
"${MPIRUN[@]}" -np 2 mlscale run cosmic-tagger --mode iotest --data "$DATA" --io-strategy scatter \
  --global-batch-size 4 --system "$(hostname)" --out "$OUT/cosmic-tagger-io" --no-progress
