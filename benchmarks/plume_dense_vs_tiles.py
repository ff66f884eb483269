"""methane-plume: the seed's per-pixel tile CNN against dense evaluation, same crop, same machine.

    python benchmarks/plume_dense_vs_tiles.py [--crop 64] [--cnn-pixels 32] [--batch 8] [--threads 2] [--rounds 3]

Times, on one crop of a synthetic flightline:
- cnn (GoogLeNet): one 256x256 tile per pixel (timed on a random sample of the crop's pixels);
- fcn (GoogLeNet): dense FCN with tile-sized pooling and shift-and-stitch (`mlscale.workloads.methane_plume.dense`);
- cnn (tilenet) and exact (tilenet): the same pair for the padding-free network, where the dense
  map equals the tile CNN.
The four are timed in turn, `--rounds` times (interleaved, so that a change in the machine's load hits
all of them alike), and each one's median is used. Prints pixels/s, the dense/tile ratios, and each
method extrapolated to the seed's full 669 x 2801 flightline (the dense methods by their time per
feature-map position, because a crop pays a 255-pixel halo that a whole flightline mostly does not; fcn
also pays 2 x 256 context rows at each boundary between `--ranks` blocks), beside the seed's figures.
Weights do not change the timings; untrained networks are used unless --checkpoint is given.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from mlscale.workloads.methane_plume.checkpoint import build_tile_classifier, load_checkpoint
from mlscale.workloads.methane_plume.dense import prepare_for_inference
from mlscale.workloads.methane_plume.saliency import (
    build_method,
    context_rows,
    pad_for_tiles,
    saliency_cnn,
    standardise,
)
from mlscale.workloads.methane_plume.synth import make_flightline

FULL = (2801, 669)  # the seed's flightline: lines x samples
SEED = "seed (cnn, GoogLeNet): 8 h on 32 CPU cores (E5-2667 v4), 1.3 h on one Tesla M60"


def dense_positions(lines: int, samples: int, tile: int, stride: int) -> int:
    """Feature-map positions a dense pass computes for an output of lines x samples."""
    return int(np.ceil((lines + tile - 1) / stride) * stride * np.ceil((samples + tile - 1) / stride) * stride)


def cnn_timer(model, slab, tile, batch, pixels, rng) -> Callable[[], float]:
    """Seconds per pixel of the tile CNN, on a random sample of the crop's pixels."""
    rows, cols = slab.shape[0] - tile + 1, slab.shape[1] - tile + 1
    sample = (rng.integers(0, rows, pixels), rng.integers(0, cols, pixels))
    saliency_cnn(model, slab, tile, batch, torch.device("cpu"), pixels=(sample[0][:batch], sample[1][:batch]))  # warm

    def once() -> float:
        t0 = time.perf_counter()
        saliency_cnn(model, slab, tile, batch, torch.device("cpu"), pixels=sample)
        return (time.perf_counter() - t0) / pixels

    return once


def dense_timer(method, model, slab, tile, batch, amp: bool = False, maps: dict | None = None) -> Callable[[], float]:
    """Seconds for the dense map of the whole crop; `amp`: under bfloat16 autocast, as `plume predict --amp`
    runs it on a CPU. The last map is kept in `maps[amp]`."""
    run = build_method(method, model, tile, batch, torch.device("cpu"))

    def once() -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            found = run(slab)
        elapsed = time.perf_counter() - t0
        if maps is not None:
            maps[amp] = found
        return elapsed

    return once


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
    ap.add_argument("--rounds", type=int, default=3, help="times each method is timed, interleaved (median kept)")
    ap.add_argument("--ranks", type=int, default=1, help="row blocks the full flightline is split into (fcn context)")
    ap.add_argument("--amp", action="store_true", help="also time fcn under bfloat16 autocast (`plume predict --amp`)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data, _ = make_flightline(rng, args.crop, args.crop, plumes=2, margin=4)
    ch4 = standardise(data[3], "COVID_QC")
    slab = pad_for_tiles(ch4, args.tile, "COVID_QC")
    googlenet = load_checkpoint(args.checkpoint)[0] if args.checkpoint else build_tile_classifier("googlenet").eval()
    tilenet = build_tile_classifier("tilenet").eval()
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.threads} thread(s), torch "
        f"{torch.__version__}; crop {args.crop}x{args.crop}, tile {args.tile}, batch {args.batch}, "
        f"{args.rounds} rounds; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )

    timers = {}
    for arch, model, dense_method in (("googlenet", googlenet, "fcn"), ("tilenet", tilenet, "exact")):
        timers[arch, "cnn"] = cnn_timer(prepare_for_inference(model), slab, args.tile, args.batch, args.cnn_pixels, rng)
        timers[arch, dense_method] = dense_timer(dense_method, model, slab, args.tile, args.batch)
    fcn_maps: dict[bool, np.ndarray] = {}
    if args.amp:
        for amp in (False, True):
            timers["googlenet", f"fcn amp={amp}"] = dense_timer(
                "fcn", googlenet, slab, args.tile, args.batch, amp, fcn_maps
            )
    times = {key: [] for key in timers}
    for _ in range(args.rounds):
        for key, once in timers.items():
            times[key].append(once())
    median = {key: float(np.median(t)) for key, t in times.items()}

    rows = []
    for arch, dense_method, stride in (("googlenet", "fcn", 32), ("tilenet", "exact", 16)):
        cnn_rate = 1 / median[arch, "cnn"]
        elapsed = median[arch, dense_method]
        dense_rate = args.crop * args.crop / elapsed
        per_position = elapsed / dense_positions(args.crop, args.crop, args.tile, stride)
        context = 2 * context_rows(dense_method, args.tile) * (args.ranks - 1)  # rows read twice at boundaries
        full_dense = per_position * dense_positions(FULL[0] + context, FULL[1], args.tile, stride)
        full_cnn = FULL[0] * FULL[1] / cnn_rate
        rows.append((arch, "cnn", cnn_rate, full_cnn, 1.0))
        rows.append((arch, dense_method, dense_rate, full_dense, full_cnn / full_dense))
        spread = {
            m: f"{min(times[arch, m]) / elapsed_of:.2f}-{max(times[arch, m]) / elapsed_of:.2f}"
            for m, elapsed_of in (("cnn", median[arch, "cnn"]), (dense_method, elapsed))
        }
        print(
            f"{arch}: cnn {cnn_rate:.3g} px/s; {dense_method} {dense_rate:.4g} px/s on the crop "
            f"({dense_rate / cnn_rate:.0f}x), {per_position * 1e6:.1f} us per position; "
            f"rounds min-max / median: {spread}"
        )

    if args.amp:
        fp32, bf16 = median["googlenet", "fcn amp=False"], median["googlenet", "fcn amp=True"]
        print(
            f"googlenet fcn under bfloat16 autocast: {fp32 / bf16:.2f}x the float32 speed (median {bf16:.3g} s vs "
            f"{fp32:.3g} s per crop); max |difference| of the maps {np.abs(fcn_maps[True] - fcn_maps[False]).max():.3g}"
        )

    print("\n| network | method | pixels/s (crop) | full 669x2801 flightline (extrapolated) | vs cnn (full) |")
    print("|---|---|---:|---:|---:|")
    for arch, method, rate, full, ratio in rows:
        print(f"| {arch} | {method} | {rate:.4g} | {hours(full)} | {ratio:.0f}x |")
    print(f"\n{SEED}")


if __name__ == "__main__":
    main()
