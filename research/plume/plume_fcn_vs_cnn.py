"""methane-plume: how closely GoogLeNet's `fcn` map follows its `cnn` map with a trained model.

    python research/plume/plume_fcn_vs_cnn.py [--tile 64] [--tiles 2000] [--epochs 3] [--off-centre 0.3]

Trains GoogLeNet (the seed's: 1 channel, 2 classes, aux heads) in-process on synthetic tiles, then compares
on the crop centred on the first plume source of a synthetic flightline (both maps vary there):
- `fcn` as built (the tile-sized uniform average of the per-cell logits), and
- calibrated pooling kernels over the per-cell logit difference (the tile's cells plus a ring of M cells),
  fitted by least squares to the cnn's logit difference on pixels of a *different* synthetic flightline
  (what a once-per-model calibration stored with the checkpoint would do; no cnn work at predict time).
Prints Pearson correlations of probabilities and logits (docs/methane-plume.md, "Known gap"). A research
experiment, not a test or a benchmark: the goal (>= 0.99) is not met; this is the measurement behind the table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from mlscale.workloads.methane_plume.checkpoint import build_tile_classifier, trunk_of
from mlscale.workloads.methane_plume.dense import DenseClassifier, prepare_for_inference
from mlscale.workloads.methane_plume.saliency import pad_for_tiles, standardise
from mlscale.workloads.methane_plume.synth import make_flightline, make_tile
from mlscale.workloads.methane_plume.training import class_weights, plume_loss

PRESET = "COVID_QC"
STRIDE = 32  # GoogLeNet's output stride: the per-cell map's cells are this many pixels apart


def fit(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch_loss: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor],
    clip: float | None = None,
    after_epoch: Callable[[int], None] | None = None,
) -> torch.nn.Module:
    """The plume benchmarks' training loop: SGD momentum with a one-cycle schedule, batches of 32, each turned
    by a random quarter turn and flipped half the time (plumes blow any way); `batch_loss(epoch, xb, yb)`
    is the loss of one batch. Returns the model in eval mode."""
    n, batch = len(x), 32
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02, total_steps=epochs * (n // batch))
    for epoch in range(epochs):
        order = torch.randperm(n)
        for i in range(n // batch):
            idx = order[i * batch : (i + 1) * batch]
            xb = torch.rot90(x[idx], int(torch.randint(4, ())), (2, 3))
            if torch.rand(()) < 0.5:
                xb = xb.flip(3)
            loss = batch_loss(epoch, xb, y[idx])
            opt.zero_grad()
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            sched.step()
        if after_epoch:
            after_epoch(epoch)
    return model.eval()


def train(tile: int, n: int, epochs: int, positives: float, off_centre: float) -> torch.nn.Module:
    rng = np.random.default_rng(0)
    labels = (rng.random(n) < positives).astype(np.int64)
    x = torch.from_numpy(np.stack([standardise(make_tile(rng, tile, bool(y), off_centre), PRESET) for y in labels]))
    weights = class_weights(labels)
    model = build_tile_classifier("googlenet").train()
    y = torch.from_numpy(labels)
    return fit(model, x[:, None], y, epochs, lambda _, xb, yb: plume_loss(model(xb), yb, weights))


class CellLogits(torch.nn.Module):
    """Head that keeps the per-cell logit difference (class 1 - class 0) instead of pooling it."""

    def __init__(self, fc: torch.nn.Linear):
        super().__init__()
        self.weight = (fc.weight[1] - fc.weight[0]).detach()
        self.bias = float((fc.bias[1] - fc.bias[0]).detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,c->nhw", x, self.weight)[:, None] + self.bias


class Maps:
    def __init__(self, model: torch.nn.Module, tile: int):
        self.model, self.tile = prepare_for_inference(model), tile
        trunk, fc = trunk_of(self.model)
        self.dense = DenseClassifier(trunk, fc, tile).eval()
        self.dense.head = CellLogits(fc)

    @torch.no_grad()
    def cnn_logits(self, image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        windows = np.lib.stride_tricks.sliding_window_view(pad_for_tiles(image, self.tile, PRESET), (self.tile,) * 2)
        out = []
        for i in range(0, len(rows), 64):
            logits = self.model(
                torch.from_numpy(np.ascontiguousarray(windows[rows[i : i + 64], cols[i : i + 64]]))[:, None]
            )
            out.append((logits[:, 1] - logits[:, 0]).numpy())
        return np.concatenate(out)

    @torch.no_grad()
    def cells(self, image: np.ndarray) -> np.ndarray:
        """Per-cell logit difference, anchored like the dense map: tile of pixel (r, c) reads cells
        (r + 32 i, c + 32 j), 0 <= i, j < T/32."""
        return self.dense(torch.from_numpy(pad_for_tiles(image, self.tile, PRESET))[None, None])[0, 0].numpy()

    def features(self, cells: np.ndarray, rows: np.ndarray, cols: np.ndarray, margin: int) -> np.ndarray:
        """The cells a pooling kernel with a ring of `margin` cells reads for each pixel."""
        pad, cells_per_tile = STRIDE * margin, self.tile // STRIDE
        padded = np.pad(cells, ((pad, pad + self.tile), (pad, pad + self.tile)))
        offsets = range(-margin, cells_per_tile + margin)
        return np.stack([padded[rows + pad + STRIDE * i, cols + pad + STRIDE * j] for i in offsets for j in offsets], 1)


def scene(seed: int, size: int, plumes: int, tile: int):
    data, placed = make_flightline(np.random.default_rng(seed), size, size, plumes, margin=tile // 2)
    return standardise(data[3], PRESET), placed


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--tiles", type=int, default=2000, help="training tiles")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--positives", type=float, default=0.3, help="share of positive training tiles")
    ap.add_argument("--off-centre", type=float, default=0.3, help="share of negatives with an off-centre plume")
    ap.add_argument("--calibration-pixels", type=int, default=1500)
    ap.add_argument("--half", type=int, default=24, help="the test crop is 2*HALF pixels square")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    maps = Maps(train(args.tile, args.tiles, args.epochs, args.positives, args.off_centre), args.tile)
    print(f"trained in {time.perf_counter() - t0:.0f} s")

    # Calibration pixels: a different flightline, half of them within about a tile of a plume source.
    image, plumes = scene(1, 6 * args.tile, 8, args.tile)
    rng = np.random.default_rng(5)
    n, near = args.calibration_pixels, args.calibration_pixels // 2
    rows, cols = rng.integers(0, image.shape[0], n), rng.integers(0, image.shape[1], n)
    src = [plumes[i] for i in rng.integers(0, len(plumes), near)]
    rows[:near] = np.clip([q.row + rng.normal(0, args.tile / 2) for q in src], 0, image.shape[0] - 1)
    cols[:near] = np.clip([q.col + rng.normal(0, args.tile / 2) for q in src], 0, image.shape[1] - 1)
    target, cal_cells = maps.cnn_logits(image, rows, cols), maps.cells(image)

    test, test_plumes = scene(2, 4 * args.tile, 3, args.tile)
    p = test_plumes[0]
    grid = np.mgrid[int(p.row) - args.half : int(p.row) + args.half, int(p.col) - args.half : int(p.col) + args.half]
    test_rows, test_cols = grid.reshape(2, -1)
    cnn, test_cells = maps.cnn_logits(test, test_rows, test_cols), maps.cells(test)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731 - softmax of two classes from their logit difference
    probability = sigmoid(cnn)
    print(f"test crop {2 * args.half}^2 at ({p.row:.0f}, {p.col:.0f}); cnn probability", end=" ")
    print(f"{probability.mean():.3f} ± {probability.std():.3f}\n| pooling | fit (logits) | probabilities | logits |")
    uniform = maps.features(test_cells, test_rows, test_cols, 0).mean(1)
    print(f"| uniform (fcn) | - | {corr(sigmoid(uniform), sigmoid(cnn)):.2f} | {corr(uniform, cnn):.2f} |")
    for margin in (0, 1, 2):
        a = np.c_[maps.features(cal_cells, rows, cols, margin), np.ones(n)]
        w = np.linalg.lstsq(a, target, rcond=None)[0]
        fcn = np.c_[maps.features(test_cells, test_rows, test_cols, margin), np.ones(len(cnn))] @ w
        side = args.tile // STRIDE + 2 * margin
        print(
            f"| calibrated {side}x{side} | {corr(a @ w, target):.2f} | {corr(sigmoid(fcn), sigmoid(cnn)):.2f} "
            f"| {corr(fcn, cnn):.2f} |"
        )


if __name__ == "__main__":
    main()
