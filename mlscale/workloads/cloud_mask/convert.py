"""`mlscale cloud-mask convert`: .SEN3 products -> one HDF5 file per product, over the ranks.

`<out>/{day|night}/<product>.hdf`, datasets at the root, float64, unchunked (as the seed writes
them): `bts` (H, W, 3), `rads` (H, W, 6), `refs` (H, W, 6), `bayes` (H, W, 1), `summary` (H, W, 1),
masks as 0/255. Rank r converts products r, r + size, ... Every rank first checks its products'
headers, and the ranks agree before anything is written, so a bad product stops the whole job
with one line and no output. Each file is written under a temporary name and renamed.
"""

from __future__ import annotations

import time
from pathlib import Path

from mlscale.errors import UserError
from mlscale.fileio import atomic_path
from mlscale.launch.comm import Communicator
from mlscale.workloads.cloud_mask.slstr import Scene, check_product, find_products, product_name, read_scene

DATASETS = ("bts", "rads", "refs", "bayes", "summary")


def hdf_path(out: Path, scene: Scene) -> Path:
    return Path(out) / ("day" if scene.day else "night") / f"{scene.name}.hdf"


def write_hdf(out: Path, scene: Scene) -> Path:
    import h5py

    path = hdf_path(out, scene)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        for name in DATASETS:
            h5.create_dataset(name, data=getattr(scene, name).astype("float64"))  # contiguous: no chunks
    return path


def agree(comm: Communicator, error: str | None) -> None:
    """Collective: if any rank found an error, every rank raises the first one (in rank order)."""
    errors = comm.gather(error)
    first = comm.bcast(next((e for e in errors if e), None) if comm.rank == 0 else None)
    if first:
        raise UserError(first)


def convert(sen3_dir: Path, out: Path, comm: Communicator, progress: bool = False) -> tuple[dict, list[dict]]:
    """Convert this rank's share; returns (the stage's global figures, this rank's per-product rows)
    on rank 0, and ({}, rows) on the others."""
    error = None
    try:
        products = find_products(Path(sen3_dir))
        mine = products[comm.rank :: comm.size]
        for product in mine:
            check_product(product)
    except UserError as err:
        error = str(err)
    agree(comm, error)
    if Path(out).resolve() == Path(sen3_dir).resolve():
        raise UserError(f"{out}: the output folder must not be the products folder")
    import scipy.interpolate  # noqa: F401  imported before the clock starts, not inside the first product
    import skimage.transform  # noqa: F401

    comm.barrier()
    t0 = time.perf_counter()
    rows = []
    show = progress and comm.rank == 0
    for i, product in enumerate(mine):
        start = time.perf_counter()
        scene = read_scene(product)
        path = write_hdf(out, scene)
        seconds = time.perf_counter() - start
        rows.append({"product": product_name(product), "day": scene.day, "seconds": seconds,
                     "nan_pixels": scene.nan_pixels, "bytes": path.stat().st_size, "rank": comm.rank})  # fmt: skip
        if show:
            print(f"[{i + 1}/{len(mine)} on rank 0] {path.parent.name}/{path.name} {seconds:.2f}s", flush=True)
    elapsed = time.perf_counter() - t0
    comm.barrier()
    total = comm.allreduce(elapsed, "max")
    gathered = comm.gather(rows)
    if comm.rank != 0:
        return {}, rows
    every = [r for part in gathered for r in part]
    seconds = [r["seconds"] for r in every]
    stage = {
        "products": len(every),
        "day": sum(r["day"] for r in every),
        "night": sum(not r["day"] for r in every),
        "time": total,
        "seconds_per_product_mean": sum(seconds) / len(seconds) if seconds else None,
        "seconds_per_product_max": max(seconds, default=None),
        "products_per_s": len(every) / total if total else None,
        "nan_pixels": sum(r["nan_pixels"] for r in every),
        "bytes_written": sum(r["bytes"] for r in every),
        "input": str(sen3_dir),
        "output": str(out),
        "per_product": every,
    }
    return stage, rows
