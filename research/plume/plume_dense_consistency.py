"""methane-plume: can GoogLeNet be *trained* so that its `fcn` map follows its `cnn` map? (research, not a test)

    python research/plume/plume_dense_consistency.py [--tile 64] [--context 64] [--consistency 4] [--epochs 6]
        [--crop HALF] [--step N] [--no-reach] [--save PATH | --load PATH] [--padding-mode reflect] [--seed N]

The tile CNN sees zero padding at the tile border; the FCN sees the real neighbours there. This script
1. trains GoogLeNet (the seed's: 1 channel, 2 classes, aux heads) on synthetic tiles cut with `--context`
   pixels of real scene around them, labelled 1 when a plume source lies anywhere in the tile. Besides
   the class-weighted cross-entropy of the tile (the seed's loss), with `--consistency L > 0` a share of
   each batch also goes through the trunk *with* its context, the tile's final cells are averaged and
   classified (what the FCN computes at that position), and L x MSE(tile logits, in-context logits) plus
   the in-context cross-entropy are added. BatchNorm runs on its running statistics in that path, as the
   FCN does at predict time (with batch statistics the two paths' statistics mix: the tile CNN then
   answered ~0.5 on background). The in-context loss starts after `--warm` epochs (from the first step
   it diverged);
2. measures how far the padding reaches: the in-context answer with M pixels of context against the
   FCN map, for M = 0 (the tile CNN), 32, 64, 128;
3. prints the Pearson correlation of `cnn` and `fcn` on crops around plume sources of two synthetic
   flightlines (every `--step`-th pixel of the crop +-`--crop` (default: a tile) around a source: both
   maps vary there); `fcn` is computed on a sub-slab holding the crop's tiles and a tile of real context
   on every side, so that 256 px tiles stay affordable (`--crop 192 --step 12 --no-reach`).
Results: docs/methane-plume.md, "Known gap".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlscale.workloads.methane_plume.checkpoint import build_tile_classifier, trunk_of
from mlscale.workloads.methane_plume.dense import prepare_for_inference
from mlscale.workloads.methane_plume.saliency import (
    build_method,
    context_window,
    pad_for_tiles,
    saliency_cnn,
    standardise,
)
from mlscale.workloads.methane_plume.synth import ch4_background, make_flightline, random_plume, render_plume
from mlscale.workloads.methane_plume.training import class_weights, plume_loss

# The same training loop as plume_fcn_vs_cnn.py, which sits beside this file (found however this one is run).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from plume_fcn_vs_cnn import fit  # noqa: E402

PRESET = "COVID_QC"
STRIDE = 32  # GoogLeNet's output stride
CPU = torch.device("cpu")


def sample(rng: np.random.Generator, tile: int, context: int, positives: float, outside: float):
    """A (T + 2C)^2 standardised crop and the label of its central T x T tile: 1 if a plume source lies in
    it; a share `outside` of the crops hold a plume whose source is in the context ring only."""
    size = tile + 2 * context
    crop = ch4_background(rng, (size, size))

    def source(inside: bool) -> tuple[float, float]:
        while True:
            r, c = rng.uniform(0, size, 2)
            if (context <= r < context + tile and context <= c < context + tile) == inside:
                return r, c

    u, label = rng.random(), 0
    if u < positives + outside and (u < positives or context > 0):
        label = int(u < positives)
        crop += render_plume((size, size), random_plume(rng, *source(bool(label))), rng)
    return standardise(crop, PRESET), label


def in_context_logits(body: torch.nn.Module, fc: torch.nn.Module, x: torch.Tensor, margin: int, tile: int):
    """What `fcn` computes for a tile: the trunk run on the tile with `margin` px of real scene around it,
    the tile's own final cells averaged, then classified."""
    k = margin // STRIDE
    return fc(body(x)[:, :, k : k + tile // STRIDE, k : k + tile // STRIDE].mean((2, 3)))


def set_padding_mode(model: torch.nn.Module, mode: str) -> None:
    """`reflect`: the convolutions pad by mirroring the tile instead of with zeros (research: does the tile
    CNN then see at its border something closer to the real neighbours that the FCN sees?)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.padding != (0, 0):
            m.padding_mode = mode


def train(args) -> torch.nn.Module:
    t, c = args.tile, args.context
    rng = np.random.default_rng(args.seed)
    crops, labels = zip(*[sample(rng, t, c, 0.4, 0.3) for _ in range(args.tiles)])
    x, y = torch.from_numpy(np.stack(crops))[:, None], torch.tensor(labels)
    weights = class_weights(y.numpy())
    torch.manual_seed(args.seed)
    model = build_tile_classifier("googlenet").train()
    set_padding_mode(model, args.padding_mode)
    trunk, fc = trunk_of(model)
    body = torch.nn.Sequential(*trunk)
    norms = [m for m in body.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    total = dict.fromkeys(("loss", "mismatch", "batches"), 0.0)  # this epoch's

    def batch_loss(epoch: int, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        out = model(xb[:, :, c : c + t, c : c + t])
        loss = plume_loss(out, yb, weights)
        if args.consistency > 0 and epoch >= args.warm:
            n = args.in_context
            for m in norms:
                m.eval()
            in_context = in_context_logits(body, fc, xb[:n], c, t)
            for m in norms:
                m.train()
            mismatch = F.mse_loss(in_context, out.logits[:n])
            loss = loss + args.consistency * mismatch + F.cross_entropy(in_context, yb[:n], weight=weights)
            total["mismatch"] += float(mismatch.detach())
        total["loss"] += float(loss.detach())
        total["batches"] += 1
        return loss

    def after_epoch(epoch: int) -> None:
        loss, mismatch = total["loss"] / total["batches"], total["mismatch"] / total["batches"]
        print(f"epoch {epoch}: loss {loss:.3f}, logit mismatch (MSE) {mismatch:.3f}", flush=True)
        total.update(dict.fromkeys(total, 0.0))

    return fit(model, x, y, args.epochs, batch_loss, clip=5.0, after_epoch=after_epoch)


@torch.no_grad()
def padding_reach(model: torch.nn.Module, tile: int) -> None:
    """Mean |in-context answer with M pixels of real context - fcn map| at 24 random interior pixels."""
    data, _ = make_flightline(np.random.default_rng(2), 12 * tile, 12 * tile, 8, margin=tile)
    slab = pad_for_tiles(standardise(data[3], PRESET), tile, PRESET)
    fcn = build_method("fcn", model, tile, 8, CPU)(slab)
    trunk, fc = trunk_of(model)
    body = torch.nn.Sequential(*trunk)
    rng = np.random.default_rng(0)
    points = rng.integers(5 * tile, 7 * tile, (24, 2))
    for margin in (0, 32, 64, 128):
        probs = []
        for r, c in points:
            x = slab[r - margin : r + tile + margin, c - margin : c + tile + margin]
            logits = in_context_logits(body, fc, torch.from_numpy(np.ascontiguousarray(x))[None, None], margin, tile)
            probs.append(torch.softmax(logits, 1)[0, 1].item())
        print(f"context {margin:3d} px: mean |p - fcn| = {np.abs(np.array(probs) - fcn[tuple(points.T)]).mean():.4f}")


def fcn_window(fcn, slab: np.ndarray, tile: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """`fcn` map at output pixels rows x cols of `slab`, computed on a sub-slab holding their tiles and up to
    a tile of real context on every side (`context_window`: the rows' context is what `mlscale plume predict`
    reads; the columns get the same), so that a crop of a large flightline costs its own size."""
    (r0, r1), (c0, c1) = rows, cols
    start, stop, top = context_window(r0, r1, 0, slab.shape[0], tile, tile)
    left, right, skip = context_window(c0, c1, 0, slab.shape[1], tile, tile)
    block = fcn(slab[start:stop, left:right], top=top, bottom=stop - (r1 + tile - 1))
    return block[:, skip : skip + c1 - c0]


@torch.no_grad()
def correlations(model: torch.nn.Module, tile: int, crop: int, step: int) -> list[float]:
    tiles = prepare_for_inference(model)
    fcn = build_method("fcn", model, tile, 8, CPU)
    found = []
    for seed in (2, 3):
        data, plumes = make_flightline(np.random.default_rng(seed), 6 * tile, 6 * tile, 4, margin=tile)
        image = standardise(data[3], PRESET)
        slab = pad_for_tiles(image, tile, PRESET)
        for p in plumes[:2]:
            r, c = int(p.row), int(p.col)
            (r0, r1), (c0, c1) = [(max(0, v - crop), min(n, v + crop)) for v, n in zip((r, c), image.shape)]
            dense = fcn_window(fcn, slab, tile, (r0, r1), (c0, c1))[::step, ::step].ravel()
            rows, cols = np.mgrid[r0:r1:step, c0:c1:step].reshape(2, -1)
            cnn = saliency_cnn(tiles, slab, tile, 64, CPU, pixels=(rows, cols))
            found.append(float(np.corrcoef(cnn, dense)[0, 1]))
            print(
                f"flightline {seed}, crop +-{crop} around ({r}, {c}), pixel step {step}: "
                f"cnn {cnn.mean():.2f} ± {cnn.std():.2f}, fcn {dense.mean():.2f} ± {dense.std():.2f}, "
                f"correlation {found[-1]:.3f}",
                flush=True,
            )
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--context", type=int, default=64, help="real pixels around each training tile (multiple of 32)")
    ap.add_argument("--consistency", type=float, default=4.0, help="weight of the tile/in-context logit MSE (0: off)")
    ap.add_argument("--in-context", type=int, default=8, help="crops per batch of 32 that also go in context")
    ap.add_argument("--tiles", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--warm", type=int, default=1, help="epochs of the tile loss alone first")
    ap.add_argument("--crop", type=int, help="half-width of the compared crop around a plume source (default: tile)")
    ap.add_argument("--step", type=int, default=2, help="compare every STEP-th pixel of the crop")
    ap.add_argument("--no-reach", action="store_true", help="skip the padding-reach measurement (costly at 256 px)")
    ap.add_argument("--save", help="write the trained model's state_dict here")
    ap.add_argument("--load", help="skip training: compare the model in this state_dict")
    ap.add_argument("--padding-mode", default="zeros", choices=("zeros", "reflect"), help="the convolutions' padding")
    ap.add_argument("--seed", type=int, default=0, help="seeds the training crops, the weights and the batches")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.load:
        model = build_tile_classifier("googlenet")
        set_padding_mode(model, args.padding_mode)
        model.load_state_dict(torch.load(args.load))
        model.eval()
    else:
        t0 = time.perf_counter()
        model = train(args)
        print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
        if args.save:
            torch.save(model.state_dict(), args.save)
    if not args.no_reach:
        padding_reach(model, args.tile)
    found = correlations(model, args.tile, args.crop or args.tile, args.step)
    print(f"fcn vs cnn correlation: min {min(found):.3f}, median {np.median(found):.3f} (goal >= 0.99)")


if __name__ == "__main__":
    main()
