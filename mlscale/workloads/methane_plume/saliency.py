"""Per-pixel plume saliency over a flightline: preprocessing and the three inference methods.

- ``cnn``: the seed's method: pad the CH4 band by T/2 (top/left) and T/2 - 1 (bottom/right) and
  classify the T x T tile centred on every pixel; H x W forward passes.
- ``fcn``: the same classifier evaluated densely (`mlscale.workloads.methane_plume.dense`): fc as a 1x1 conv,
  tile-sized pooling, shift-and-stitch over the output stride, computed once per strided layer.
- ``exact``: dense evaluation of a padding-free tile network; equals ``cnn`` to float rounding.

All three work on a *slab*: the padded rows that a block of output rows needs (block rows + T - 1),
so that ranks can each take a block of rows; for ``fcn`` also up to `context_rows` rows of the real
flightline above (`top`) and below (`bottom`) them, fewer where the flightline ends.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mlscale.errors import UserError
from mlscale.io.envi import NODATA
from mlscale.workloads.methane_plume.config import CLAMP, METHODS, PRESETS


def standardise(ch4: np.ndarray, preset: str) -> np.ndarray:
    """Clamp to [0, 4000] ppm·m (nodata -9999 becomes 0) and standardise with the preset's mean/std."""
    if preset not in PRESETS:
        raise UserError(f"unknown normalisation preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    mean, std = PRESETS[preset]
    return ((np.clip(ch4, *CLAMP) - mean) / std).astype(np.float32)


def context_rows(method: str, tile: int) -> int:
    """Rows of context a method reads above and below the tiles of its output rows. The tile CNN and the
    padding-free dense net read nothing beyond a tile; GoogLeNet's FCN sees beyond it (its receptive field
    is larger than a tile), so a block of rows computed alone would differ at its edges from the same rows
    computed with the whole flightline: give it up to a tile of real context on each side and crop. Where
    the block meets the flightline's own first or last row there is nothing real to read (the tiles'
    padding is all there is), so none is taken there: `context_window`."""
    return tile if method == "fcn" else 0


def context_window(r0: int, r1: int, top: int, slab_rows: int, tile: int, context: int) -> tuple[int, int, int]:
    """Slab rows [start, stop) that output rows [r0, r1) read: their tiles plus up to `context` rows on each
    side, as far as the slab holds them (row r's tile starts at slab row top + r); and the offset of row
    r0's tile from `start`. The same rule for ranks' blocks and strips, so that the map does not depend
    on how the rows are split."""
    start = max(0, top + r0 - context)
    stop = min(slab_rows, top + r1 + tile - 1 + context)
    return start, stop, top + r0 - start


def pad_for_tiles(x: np.ndarray, tile: int, preset: str) -> np.ndarray:
    """Pad a standardised (H, W) image so that tile (r, c) = padded[r : r+T, c : c+T] is centred on
    pixel (r, c); the padding is 0 ppm·m, like nodata."""
    fill = float(standardise(np.zeros(1), preset)[0])
    return np.pad(x, ((tile // 2, tile // 2 - 1), (tile // 2, tile // 2 - 1)), constant_values=fill)


def row_blocks(lines: int, parts: int) -> list[tuple[int, int]]:
    """Split output rows into `parts` contiguous blocks (rank i gets block i)."""
    edges = np.linspace(0, lines, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


@torch.no_grad()
def saliency_cnn(
    model: torch.nn.Module,
    slab: np.ndarray,
    tile: int,
    batch: int,
    device: torch.device,
    pixels: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """One tile per output pixel. `slab`: (R + T - 1, W + T - 1) padded rows; returns (R, W), or the
    values at `pixels` (rows, cols) only when given (tests and benchmarks time a sample of pixels)."""
    rows_out, cols_out = slab.shape[0] - tile + 1, slab.shape[1] - tile + 1
    windows = np.lib.stride_tricks.sliding_window_view(slab, (tile, tile))
    if pixels is None:
        rr, cc = np.divmod(np.arange(rows_out * cols_out), cols_out)
    else:
        rr, cc = (np.asarray(p) for p in pixels)
    out = np.empty(len(rr), dtype=np.float32)
    for start in range(0, len(rr), batch):
        sl = slice(start, start + batch)
        tiles = torch.from_numpy(np.ascontiguousarray(windows[rr[sl], cc[sl]]))[:, None].to(device)
        logits = model(tiles)
        out[sl] = torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy()
        if progress:
            progress(len(tiles))
    return out.reshape(rows_out, cols_out) if pixels is None else out


@torch.no_grad()
def saliency_dense(
    dense: torch.nn.Module,
    slab: np.ndarray,
    tile: int,
    device: torch.device,
    strip_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
    context: int = 0,
    top: int = 0,
    bottom: int = 0,
) -> np.ndarray:
    """Dense evaluation of the slab, in strips of output rows; each strip reads its T - 1 halo rows and up
    to `context` more rows above and below (`context_window`), and keeps only its own rows. The slab holds
    `top` and `bottom` rows of context beyond the output rows' tiles."""
    rows_out, cols_out = slab.shape[0] - tile + 1 - top - bottom, slab.shape[1] - tile + 1
    strip_rows = strip_rows or max(1, rows_out)
    out = np.empty((max(0, rows_out), cols_out), dtype=np.float32)
    for r0 in range(0, rows_out, strip_rows):
        r1 = min(rows_out, r0 + strip_rows)
        start, stop, skip = context_window(r0, r1, top, slab.shape[0], tile, context)
        x = torch.from_numpy(np.ascontiguousarray(slab[start:stop]))[None, None]
        out[r0:r1] = dense(x.to(device))[0, 0, skip : skip + r1 - r0, :cols_out].float().cpu().numpy()
        if progress:
            progress((r1 - r0) * cols_out)
    return out


def default_strip_rows(cols: int, tile: int, batch: int) -> int:
    """Output rows per dense strip: a slab of about 16 x batch tiles' worth of pixels, at least 64 rows."""
    budget = 16 * batch * tile * tile
    return max(64, budget // (cols + tile - 1) - tile + 1)


def dense_chunk_positions(tile: int, batch: int, device: torch.device) -> int:
    """Input positions per chunk of phases in a dense pass (`DenseClassifier`'s `max_positions`): a batch of
    `batch` tiles' worth per CPU thread, so that every operation has a tile batch's worth of work for each
    thread. With one batch's worth at 2 threads, the deep levels' operations (a few hundred positions) were
    too small to split well: the crop ran 8% slower (measured A/B; docs/methane-plume.md). One thread, or a GPU:
    one batch's worth, as before."""
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    return batch * tile * tile * threads


def finish_map(saliency: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Saliency in [0, 1] where the input was valid, nodata (-9999) where it was not."""
    out = np.clip(saliency, 0.0, 1.0).astype(np.float32)
    out[~valid] = NODATA
    return out


def build_method(
    method: str, model: torch.nn.Module, tile: int, batch: int, device: torch.device
) -> Callable[..., np.ndarray]:
    """`f(slab, progress=None, top=0, bottom=0) -> (R, W)` saliency for the chosen method; `model` in eval
    mode on `device`. The slab holds the R output rows' tiles plus `top` and `bottom` rows of context (at
    most `context_rows(method, tile)`; only ``fcn`` reads them)."""
    from mlscale.workloads.methane_plume.checkpoint import trunk_of
    from mlscale.workloads.methane_plume.dense import DenseClassifier, is_padding_free, prepare_for_inference

    if method not in METHODS:
        raise UserError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    model = prepare_for_inference(model).to(device)
    if method == "cnn":
        return lambda slab, progress=None, top=0, bottom=0: saliency_cnn(
            model, slab[top : len(slab) - bottom], tile, batch, device, progress=progress
        )
    trunk, fc = trunk_of(model)
    if method == "exact" and not is_padding_free(trunk):
        raise UserError(
            f"--method exact needs a padding-free model (arch tilenet); {type(model).__name__} "
            "pads its convolutions: use --method fcn"
        )
    dense = DenseClassifier(trunk, fc, tile, max_positions=dense_chunk_positions(tile, batch, device)).to(device).eval()

    def run(slab: np.ndarray, progress=None, top: int = 0, bottom: int = 0) -> np.ndarray:
        strip = default_strip_rows(slab.shape[1] - tile + 1, tile, batch)
        return saliency_dense(dense, slab, tile, device, strip, progress, context_rows(method, tile), top, bottom)

    return run
