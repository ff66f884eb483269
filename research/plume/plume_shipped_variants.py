"""methane-plume: does the shipped `--dense-consistency` training fall short of the research script because
of its tiles' nodata borders or its per-tile augmentation? (research, not a test)

    python research/plume/plume_shipped_variants.py [--no-nodata] [--batch-turns] [--tile 256] [--tiles 1500]
        [--epochs 5] [--seed N] [--threads 2] [--keep DIR]

Writes the benchmark's tiles (`benchmarks/plume_dense_training.py`: the same call, the same tiles for a seed) and
trains GoogLeNet through the runner with the shipped recipe (one-cycle to 0.02, weight decay 1e-4, batch
32, `--dense-consistency 4`), with the two remaining differences from research/plume/plume_dense_consistency.py
switched to the script's: `--no-nodata` writes no tile over a nodata border (the same random stream
otherwise), `--batch-turns` turns and flips each batch as a whole instead of each tile alone. Prints the
epoch losses (the runner's log) and the benchmark's fcn/cnn correlations on the same held-out crops.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from mlscale.bench.config import RunConfig
from mlscale.bench.runner import run_benchmark
from mlscale.workloads.methane_plume import synth
from mlscale.workloads.methane_plume.checkpoint import load_checkpoint
from mlscale.workloads.methane_plume.workload import MethanePlume, MethanePlumeConfig, MethanePlumeData

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from plume_dense_training import correlations  # noqa: E402


class BatchTurns(MethanePlume):
    """The research script's augmentation: one random quarter turn (and a flip half the time) per batch."""

    name = "methane-plume-batch-turns"  # a workload name of its own (names are unique)

    def forward(self, model, batch):
        if model.training and isinstance(batch, (list, tuple)):
            x = torch.rot90(batch[0], int(torch.randint(4, ())), (2, 3))
            batch = (x.flip(3) if torch.rand(()) < 0.5 else x, *batch[1:])
        return super().forward(model, batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-nodata", action="store_true", help="no training tile overlaps a nodata border")
    ap.add_argument("--batch-turns", action="store_true", help="turn each batch as a whole, not each tile")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--tiles", type=int, default=1500)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="the tiles' seed; training gets 1234 + N")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--keep", type=Path, help="keep the tiles and the model here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = args.keep or Path(tempfile.mkdtemp(prefix="plume-variants-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.no_nodata:
        synth.NODATA_TILES = 0.0
    # the benchmark's `mlscale data methane-plume` call: without --no-nodata, its very tiles
    data = MethanePlumeData(lines=64, samples=64, train_tiles=args.tiles, test_tiles=max(50, args.tiles // 5),
                            tile_size=args.tile, context=64, positive_fraction=0.4, seed=args.seed)  # fmt: skip
    print(MethanePlume.write_data(data, work), flush=True)
    config = MethanePlumeConfig(tiles=str(work / "tiles.h5"), tile_size=args.tile, lr_schedule="one-cycle",
                                weight_decay=1e-4, dense_consistency=4.0, augment=not args.batch_turns)  # fmt: skip
    run = RunConfig(mode="train", epochs=args.epochs, batch_size=32, lr=0.02, save_weights=str(work / "model.pt"),
                    out=str(work / "runs"), progress=False, seed=1234 + args.seed)  # fmt: skip
    run_benchmark(BatchTurns if args.batch_turns else MethanePlume, config, run)
    model, _ = load_checkpoint(work / "model.pt")
    found = correlations(model, args.tile, 192, 12)
    print(f"correlations {', '.join(f'{c:.3f}' for c in found)}: median {np.median(found):.3f}", flush=True)


if __name__ == "__main__":
    main()
