"""RarePlanes preprocessing of one scene: mlscale's tiling against the seed's procedure.

Both turn the real example scene (1920x1080, 15 aircraft among 17 mask colours) into instance
masks and cut image and mask into 512 x 512 tiles with the same overlaps, in memory (no PNG
writing, which both would pay alike). The seed's procedure (its preprocessing_tiling_instance.py,
re-implemented here) tests every pixel of the mask against the aircraft colours with PIL
getpixel/putpixel and crops tiles with PIL; ours (mlscale.workloads.rareplanes) looks colours up
in a sorted table with numpy. Prints seconds per scene and the ratio; best of --repeat rounds.

    python benchmarks/rareplanes_tiling.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mlscale.workloads.rareplanes.raw import find_scenes, instance_mask, plane_colours
from mlscale.workloads.rareplanes.tiling import tile_origins, tiles

REAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "real" / "rareplanes_example"
TILE = 512


def seed(scene) -> int:
    colours = plane_colours(scene.xml)
    image, mask = Image.open(scene.image), Image.open(scene.mask)
    out = Image.new("L", mask.size)
    for x in range(mask.size[0]):  # the seed's per-pixel loop
        for y in range(mask.size[1]):
            px = mask.getpixel((x, y))
            if px in colours:
                out.putpixel((x, y), colours.index(px) + 1)
    kept = 0
    for y in tile_origins(mask.size[1], TILE):
        for x in tile_origins(mask.size[0], TILE):
            box = (x, y, x + TILE, y + TILE)
            tile = np.asarray(out.crop(box))
            image.crop(box).load()
            kept += bool(tile.any())
    return kept


def ours(scene) -> int:
    image, ids = instance_mask(scene)
    return sum(1 for _ in tiles(image, ids, TILE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scene = find_scenes(REAL)[0]
    best = {"seed": float("inf"), "mlscale": float("inf")}
    counts = {}
    for _ in range(args.repeat):
        for name, fn in (("seed", seed), ("mlscale", ours)):
            t0 = time.perf_counter()
            counts[name] = fn(scene)
            best[name] = min(best[name], time.perf_counter() - t0)
    for name in best:
        print(f"{name:8s} {best[name]:8.3f} s per scene, {counts[name]} tiles kept")
    print(f"ratio (seed / mlscale): {best['seed'] / best['mlscale']:.1f}x")


if __name__ == "__main__":
    main()
