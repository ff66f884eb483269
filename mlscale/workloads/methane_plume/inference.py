"""Inference over a flightline: rows split across ranks, each rank's block as strips of rows.

Rank 0 reads the flightline; every rank gets its block of rows plus the T-1 halo rows its tiles
need, and for fcn up to a tile of context rows on each side where its block meets another
rank's. A strip of output rows is one batch (`SlabBatch`); a sample is one output pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlscale.errors import UserError
from mlscale.workloads.methane_plume.config import MethanePlumeConfig


@dataclass
class Block:
    """This rank's share of the flightline, as scattered from rank 0."""

    slab: np.ndarray  # padded rows of the block, with halo and context rows
    rows: tuple[int, int]  # output rows [a, b) of the flightline
    top: int  # context rows above the block's first tile
    bottom: int  # and below its last
    most_rows: int  # rows of the largest block: every rank takes the same number of steps


def scatter_flightline(config: MethanePlumeConfig, comm) -> tuple[Block, object | None]:
    """Rank 0 reads and pads the CH4 band and scatters blocks; returns this rank's block and,
    on rank 0, the flightline (for its valid mask and georeference)."""
    from mlscale.io.envi import read_envi
    from mlscale.workloads.methane_plume.saliency import context_rows, pad_for_tiles, row_blocks, standardise
    from mlscale.workloads.methane_plume.synth import CH4_BAND

    tile = config.tile_size
    context = context_rows(config.method, tile)
    if not config.flightline:
        raise UserError("methane-plume: --flightline IMG is needed for inference")
    image = meta = slabs = None
    if comm.rank == 0:
        image = read_envi(config.flightline, bands=[CH4_BAND], expect_bands=4)
        padded = pad_for_tiles(standardise(image.data[0], config.preset), tile, config.preset)
        lines = image.data.shape[1]  # context may come from rows beyond --rows: they are real
        if config.rows:  # the first rows only, but their tiles still see the real rows below them
            image.data = image.data[:, : config.rows]
        meta = [(a, b, min(context, a), min(context, lines - b)) for a, b in row_blocks(image.data.shape[1], comm.size)]
        spans = [(a - top, b + tile - 1 + bottom) for a, b, top, bottom in meta]
        most = max(hi - lo for lo, hi in spans)
        slabs = [np.pad(padded[lo:hi], ((0, most - (hi - lo)), (0, 0)), mode="edge") for lo, hi in spans]
    blocks = comm.bcast(meta)
    slab = comm.scatter_array(slabs)
    a, b, top, bottom = blocks[comm.rank]
    most_rows = max(hi - lo for lo, hi, _, _ in blocks)
    return Block(slab[: top + b - a + tile - 1 + bottom], (a, b), top, bottom, most_rows), image


def write_saliency(out_dir: Path, saliency: np.ndarray, image, config: MethanePlumeConfig) -> dict:
    """Rank 0: the finished map as `<stem>_saliency.img/.hdr` in `out_dir`; facts for the record."""
    from mlscale.io.envi import write_envi
    from mlscale.workloads.methane_plume.saliency import finish_map

    valid = image.valid & np.isfinite(saliency)
    saliency = finish_map(np.nan_to_num(saliency), valid)
    stem = Path(config.flightline).name.removesuffix(".img")
    name = f"{stem}_saliency.img"
    write_envi(
        Path(out_dir) / name,
        saliency,
        band_names=["plume saliency"],
        georef=image.georef,
        description=f"plume saliency ({config.method}) of {stem}",
    )
    lines, samples = saliency.shape
    return {
        "flightline": str(config.flightline),
        "saliency": name,
        "flightline_lines": lines,
        "flightline_samples": samples,
        "max_saliency": float(saliency[saliency != -9999].max(initial=0)),
    }


@dataclass
class SlabBatch:
    slab: np.ndarray  # padded rows for output rows [row0, row0 + rows): their tiles, and context rows
    row0: int
    rows: int
    cols: int
    top: int = 0  # rows of context above the first row's tile
    bottom: int = 0  # and below the last row's tile

    @property
    def pixels(self) -> int:
        return self.rows * self.cols


class SlabBatches:
    """This rank's inference batches: strips of output rows with their halo. For cnn a strip is as
    many rows as make about `batch` x 64 tiles; for dense methods the method strips internally. The slab
    holds `top` and `bottom` rows of context beyond the block's tiles; a strip takes what it can use."""

    def __init__(self, slab: np.ndarray, config: MethanePlumeConfig, batch: int, most_rows: int, top: int, bottom: int):
        from mlscale.workloads.methane_plume.saliency import context_rows, default_strip_rows

        tile = config.tile_size
        self.slab, self.tile, self.top = slab, tile, top
        self.context = context_rows(config.method, tile)
        self.rows, self.cols = slab.shape[0] - tile + 1 - top - bottom, slab.shape[1] - tile + 1
        if config.method == "cnn":
            strip = max(1, (64 * batch) // max(1, self.cols))
        else:
            strip = default_strip_rows(self.cols, tile, batch)
        self.count = -(-most_rows // strip)
        self.strip = max(1, -(-self.rows // self.count))

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        from mlscale.workloads.methane_plume.saliency import context_window

        for i in range(self.count):
            r0 = min(self.rows, i * self.strip)
            r1 = min(self.rows, r0 + self.strip)  # a short block may end with an empty strip
            start, stop, skip = context_window(r0, r1, self.top, len(self.slab), self.tile, self.context)
            bottom = stop - start - skip - (r1 - r0) - self.tile + 1
            yield SlabBatch(self.slab[start:stop], r0, r1 - r0, self.cols, skip, bottom)
