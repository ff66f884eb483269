"""methane-plume: the seed's per-pixel tile CNN against dense evaluation, same crop, same machine.

    python benchmarks/plume_dense_vs_tiles.py [--crop 64] [--cnn-pixels 32] [--batch 8] [--threads 2]

Times, on one crop of a synthetic flightline:
- cnn (GoogLeNet): one 256x256 tile per pixel (timed on a random sample of the crop's pixels);
- fcn (GoogLeNet): dense FCN with tile-sized pooling and shift-and-stitch (`mlscale.plume.dense`);
- cnn (tilenet) and exact (tilenet): the same pair for the padding-free network, where the dense
  map equals the tile CNN.
Prints pixels/s, the dense/tile ratios, and each method extrapolated to the seed's full
669 x 2801 flightline (the dense methods by their time per feature-map position, because a crop
pays a 255-pixel halo that a whole flightline mostly does not), beside the seed's figures.
Weights do not change the timings; untrained networks are used unless --checkpoint is given.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from mlscale.io.plume_synth import make_flightline
from mlscale.plume.checkpoint import build_classifier, load_checkpoint
from mlscale.plume.dense import prepare_for_inference
from mlscale.plume.saliency import build_method, context_rows, pad_for_tiles, saliency_cnn, standardise

FULL = (2801, 669)  # the seed's flightline: lines x samples
SEED = "seed (cnn, GoogLeNet): 8 h on 32 CPU cores (E5-2667 v4), 1.3 h on one Tesla M60"


def dense_positions(lines: int, samples: int, tile: int, stride: int) -> int:
    """Feature-map positions a dense pass computes for an output of lines x samples."""
    return int(np.ceil((lines + tile - 1) / stride) * stride * np.ceil((samples + tile - 1) / stride) * stride)


def time_cnn(model, slab, tile, batch, pixels, rng) -> float:
    rows, cols = slab.shape[0] - tile + 1, slab.shape[1] - tile + 1
    sample = (rng.integers(0, rows, pixels), rng.integers(0, cols, pixels))
    saliency_cnn(model, slab, tile, batch, torch.device("cpu"), pixels=(sample[0][:batch], sample[1][:batch]))  # warm
    t0 = time.perf_counter()
    saliency_cnn(model, slab, tile, batch, torch.device("cpu"), pixels=sample)
    return pixels / (time.perf_counter() - t0)


def time_dense(method, model, ch4, tile, batch) -> tuple[float, float]:
    slab = pad_for_tiles(ch4, tile, "COVID_QC", context_rows(method, tile))
    run = build_method(method, model, tile, batch, torch.device("cpu"))
    t0 = time.perf_counter()
    out = run(slab)
    elapsed = time.perf_counter() - t0
    return out.size / elapsed, elapsed


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.3g} h" if seconds >= 360 else f"{seconds:.3g} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crop", type=int, default=64, help="output crop is CROP x CROP pixels")
    ap.add_argument("--cnn-pixels", type=int, default=32, help="pixels of the crop the cnn method is timed on")
    ap.add_argument("--batch", type=int, default=8, help="tiles per forward (cnn); tile-equivalents (dense)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--checkpoint", help="GoogLeNet checkpoint (timings do not depend on the weights)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data, _ = make_flightline(rng, args.crop, args.crop, plumes=2, margin=4)
    ch4 = standardise(data[3], "COVID_QC")
    slab = pad_for_tiles(ch4, args.tile, "COVID_QC")
    googlenet = load_checkpoint(args.checkpoint)[0] if args.checkpoint else build_classifier("googlenet").eval()
    tilenet = build_classifier("tilenet").eval()
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.threads} thread(s), torch "
        f"{torch.__version__}; crop {args.crop}x{args.crop}, tile {args.tile}, batch {args.batch}"
    )

    rows = []
    for arch, model, dense_method, stride in (("googlenet", googlenet, "fcn", 32), ("tilenet", tilenet, "exact", 16)):
        cnn_rate = time_cnn(prepare_for_inference(model), slab, args.tile, args.batch, args.cnn_pixels, rng)
        dense_rate, elapsed = time_dense(dense_method, model, ch4, args.tile, args.batch)
        context = 2 * context_rows(dense_method, args.tile)  # extra rows read above and below the output
        per_position = elapsed / dense_positions(args.crop + context, args.crop, args.tile, stride)
        full_dense = per_position * dense_positions(FULL[0] + context, FULL[1], args.tile, stride)
        full_cnn = FULL[0] * FULL[1] / cnn_rate
        rows.append((arch, "cnn", cnn_rate, full_cnn, 1.0))
        rows.append((arch, dense_method, dense_rate, full_dense, full_cnn / full_dense))
        print(
            f"{arch}: cnn {cnn_rate:.3g} px/s; {dense_method} {dense_rate:.4g} px/s on the crop "
            f"({dense_rate / cnn_rate:.0f}x), {per_position * 1e6:.0f} us per position"
        )

    print("\n| network | method | pixels/s (crop) | full 669x2801 flightline (extrapolated) | vs cnn (full) |")
    print("|---|---|---:|---:|---:|")
    for arch, method, rate, full, ratio in rows:
        print(f"| {arch} | {method} | {rate:.4g} | {hours(full)} | {ratio:.0f}x |")
    print(f"\n{SEED}")


if __name__ == "__main__":
    main()
