"""The seed's preprocessing: scenes cut into square tiles with computed overlaps, instance masks
cleaned, tiles without an aircraft dropped.

- tile origins: ceil(W / tile) columns; the overlap between neighbours is ceil(total / (n - 1)), the
  last tile ends at the border (1920 x 1080 at 512: columns at 0, 469, 938, 1408 and rows at 0, 284,
  568: 12 tiles); a scene smaller than a tile is padded with zeros;
- in each tile, instances 1 pixel wide or high (no box area, which Mask R-CNN refuses) become
  background and the remaining ids are renumbered 1..n;
- output `images_tiled/X_tile_k.png` (RGB) and `masks_tiled/X_tile_k_mask.png` (8-bit instance ids).

`tile_directory` distributes the scenes over the ranks of a communicator (round robin) and stages
its output, so a bad file anywhere leaves nothing written.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from mlscale.errors import UserError
from mlscale.launch.comm import Communicator
from mlscale.workloads.rareplanes.config import IMAGES, IMAGES_TILED, MASKS_TILED, SPLITS
from mlscale.workloads.rareplanes.raw import Scene, find_scenes, instance_mask


def tile_origins(length: int, tile: int) -> list[int]:
    """Start of each tile along one axis (the seed's overlap rule)."""
    n = math.ceil(length / tile)
    if n <= 1:
        return [0]
    overlap = math.ceil((tile * n - length) / (n - 1))
    return [j * (tile - overlap) for j in range(n - 1)] + [length - tile]


def clean_instances(ids: np.ndarray) -> np.ndarray:
    """Instances spanning a single row or column removed, the rest renumbered 1..n."""
    out = np.zeros_like(ids)
    next_id = 1
    for k in np.unique(ids[ids > 0]):
        rows, cols = np.nonzero(ids == k)
        if rows.max() > rows.min() and cols.max() > cols.min():
            out[ids == k] = next_id
            next_id += 1
    return out


def tiles(image: np.ndarray, ids: np.ndarray, tile: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(k, RGB tile, instance tile) for every tile k (row-major) that holds an aircraft."""
    h, w = ids.shape
    if h < tile or w < tile:  # pad: a small scene still gives one full tile
        image = np.pad(image, ((0, max(tile - h, 0)), (0, max(tile - w, 0)), (0, 0)))
        ids = np.pad(ids, ((0, max(tile - h, 0)), (0, max(tile - w, 0))))
        h, w = ids.shape
    k = 0
    for y in tile_origins(h, tile):
        for x in tile_origins(w, tile):
            mask = clean_instances(ids[y : y + tile, x : x + tile])
            if mask.any():
                yield k, image[y : y + tile, x : x + tile], mask
            k += 1


def _save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, compress_level=1)  # fast: tiling is I/O-bound enough


def tile_scene(scene: Scene, out: Path, tile: int) -> int:
    """Write the tiles of one scene into out/images_tiled and out/masks_tiled; returns their number."""
    image, ids = instance_mask(scene)
    written = 0
    for k, img, mask in tiles(image, ids, tile):
        _save_png(img, out / IMAGES_TILED / f"{scene.stem}_tile_{k}.png")
        _save_png(mask, out / MASKS_TILED / f"{scene.stem}_tile_{k}_mask.png")
        written += 1
    return written


def raw_splits(raw: Path) -> dict[str, Path]:
    """A raw directory is one split (images/, masks/, xmls/, like RarePlanes' example) or holds
    train/ and test/ splits: output name -> raw split directory."""
    if not raw.is_dir():
        raise UserError(f"{raw}: no such directory")
    if (raw / IMAGES).is_dir():
        return {"": raw}
    found = {s: raw / s for s in SPLITS if (raw / s).is_dir()}
    if not found:
        raise UserError(f"{raw}: holds neither {IMAGES}/ (one split) nor train/ or test/ splits")
    return found


def tile_directory(raw: Path, out: Path, tile: int, comm: Communicator) -> dict:
    """Tile every scene under `raw` into `out` over all ranks (collective). Returns the totals."""
    if tile < 8:
        raise UserError(f"--tile-size {tile}: must be at least 8")
    splits = raw_splits(raw)
    scenes = [(name, s) for name, path in splits.items() for s in find_scenes(path)]  # checks every file pair
    staging = out / f".tiling-{comm.bcast(f'{os.getpid()}-{time.time_ns()}' if comm.rank == 0 else None)}"
    if comm.rank == 0:
        for name in splits:
            for sub in (IMAGES_TILED, MASKS_TILED):
                (staging / name / sub).mkdir(parents=True, exist_ok=True)
    comm.barrier()
    t0 = time.perf_counter()
    written, error = 0, None
    for name, scene in scenes[comm.rank :: comm.size]:
        try:
            written += tile_scene(scene, staging / name, tile)
        except UserError as err:
            error = str(err)
            break
    elapsed = comm.allreduce(time.perf_counter() - t0, "max")
    errors = comm.gather(error)
    first = comm.bcast(next((e for e in errors if e), None) if comm.rank == 0 else None)
    total = int(comm.allreduce(float(written), "sum"))
    if comm.rank == 0:
        if first is None:
            for name in splits:
                for sub in (IMAGES_TILED, MASKS_TILED):
                    target = out / name / sub
                    target.mkdir(parents=True, exist_ok=True)
                    for f in (staging / name / sub).iterdir():
                        os.replace(f, target / f.name)
        shutil.rmtree(staging, ignore_errors=True)
    comm.barrier()
    if first:
        raise UserError(first)
    return {"scenes": len(scenes), "tiles": total, "seconds": elapsed, "ranks": comm.size,
            "splits": sorted(n or "." for n in splits)}  # fmt: skip
