"""methane-plume: which of the two changes that brought the shipped `--dense-consistency` training to the
research script's correlation does it: tiles with context inside the flightline, or one turn per batch?
(research, not a test)

    python research/plume/plume_shipped_variants.py [--tile-turns] [--tile 256] [--tiles 1500] [--epochs 5]
        [--seed N] [--threads 2] [--keep DIR]

Writes the benchmark's tiles (`benchmarks/plume_dense_training.py`: the same call, the same tiles for a seed;
tiles with context lie inside the flightline) and trains GoogLeNet through the runner with the shipped recipe
(one-cycle to 0.02, weight decay 1e-4, batch 32, `--dense-consistency 4`). `--tile-turns` turns and flips
each tile alone, as the shipped path did before it turned each batch as a whole: the tiles' change alone.
Prints the epoch losses (the runner's log) and the benchmark's fcn/cnn correlations on the same held-out
crops. (Its earlier flags --no-nodata and --batch-turns are what `mlscale data` and `plume train` do now.)
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
from mlscale.workloads.methane_plume.checkpoint import load_checkpoint
from mlscale.workloads.methane_plume.workload import MethanePlume, MethanePlumeConfig, MethanePlumeData

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from plume_dense_training import correlations  # noqa: E402


class TileTurns(MethanePlume):
    """The augmentation the shipped dense training had before: a random turn and flip per tile."""

    name = "methane-plume-tile-turns"  # a workload name of its own (names are unique)

    def build_data(self, split: str):
        loader = super().build_data(split)
        if split == "train":
            loader.dataset.augment, loader.collate_fn = True, torch.utils.data.default_collate
        return loader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tile-turns", action="store_true", help="turn each tile alone, not each batch as a whole")
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
    # the benchmark's `mlscale data methane-plume` call: its very tiles
    data = MethanePlumeData(lines=64, samples=64, train_tiles=args.tiles, test_tiles=max(50, args.tiles // 5),
                            tile_size=args.tile, context=64, positive_fraction=0.4, seed=args.seed)  # fmt: skip
    print(MethanePlume.write_data(data, work), flush=True)
    config = MethanePlumeConfig(tiles=str(work / "tiles.h5"), tile_size=args.tile, lr_schedule="one-cycle",
                                weight_decay=1e-4, dense_consistency=4.0)  # fmt: skip
    run = RunConfig(mode="train", epochs=args.epochs, batch_size=32, lr=0.02, save_weights=str(work / "model.pt"),
                    out=str(work / "runs"), progress=False, seed=1234 + args.seed)  # fmt: skip
    run_benchmark(TileTurns if args.tile_turns else MethanePlume, config, run)
    model, _ = load_checkpoint(work / "model.pt")
    found = correlations(model, args.tile, 192, 12)
    print(f"correlations {', '.join(f'{c:.3f}' for c in found)}: median {np.median(found):.3f}", flush=True)


if __name__ == "__main__":
    main()
