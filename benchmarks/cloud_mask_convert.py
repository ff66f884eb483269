"""cloud-mask: converting SLSTR products to HDF5, mlscale's converter at 1 and 2 ranks against a
straightforward per-product xarray implementation of the seed's steps, same products, same machine.

    python benchmarks/cloud_mask_convert.py [--products 4] [--rows 1200] [--columns 1500] [--rounds 2]

- baseline: the seed's loader written plainly (its `ImageLoader`): per channel, open the radiance file
  with xarray, reload the six irradiances and the tie-point geometry, spline the solar zenith angle,
  divide, `xr.merge` the channels, resize with scikit-image, write the HDF5 file;
- mlscale, 1 rank and 2 ranks: `mlscale cloud-mask convert` under mpirun, its stage time from the
  stage record (the conversion only, without the interpreter's start-up).
Each is run `--rounds` times, interleaved, and its median taken. Prints seconds per product and the
ratios (2 ranks vs 1 rank: the goal is >= 1.8x on 2 idle cores; mlscale 1 rank vs the baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def baseline_convert(product: Path, out: Path) -> None:
    """The seed's steps, one product, written the straightforward way."""
    import h5py
    import xarray as xr
    from scipy import interpolate
    from skimage.transform import resize

    def geometry():
        return xr.open_dataset(product / "geometry_tn.nc", decode_times=False)

    def irradiances():
        return {n: xr.open_dataset(product / f"S{n}_quality_an.nc")[f"S{n}_solar_irradiance_an"].data[0]
                for n in range(1, 7)}  # fmt: skip

    refs, rads = [], []
    for n in range(1, 7):
        path, drop = product / f"S{n}_radiance_an.nc", [f"S{n}_exception_an"]
        rad = xr.open_dataset(path, decode_times=False, drop_variables=drop)
        irr, geo = irradiances(), geometry()  # reloaded per channel, as the seed's loader does
        sza = np.nan_to_num(geo.solar_zenith_tn[:].values, nan=0.0)
        x = (np.arange(rad.sizes["columns"]) - rad.track_offset) * float(rad.resolution.split()[1]) / float(
            geo.resolution.split()[1]
        ) + geo.track_offset
        y = np.arange(rad.sizes["rows"]) * float(rad.resolution.split()[2]) / float(geo.resolution.split()[2])
        y = y + geo.start_offset
        sza = interpolate.RectBivariateSpline(np.arange(geo.sizes["rows"]), np.arange(geo.sizes["columns"]), sza)(y, x)
        mu0 = np.where(sza < 90, np.cos(0.017453292 * sza), 1.0)
        rads.append(rad)
        refs.append((rad[f"S{n}_radiance_an"] / (irr[n] * mu0) * np.pi).rename(f"S{n}_reflectance_an"))
    rads_ds, refs_ds = xr.merge(rads), xr.merge(refs)
    bts = xr.merge([xr.open_dataset(product / f"S{n}_BT_in.nc", decode_times=False) for n in (7, 8, 9)])
    flags = xr.open_dataset(product / "flags_in.nc", decode_times=False)
    table = dict(zip(flags.confidence_in.attrs["flag_meanings"].split(), flags.confidence_in.attrs["flag_masks"]))
    day = bool(((flags.confidence_in & table["day"]) > 0).all())
    shape = bts.S7_BT_in.shape
    stack = np.stack([bts[f"S{n}_BT_in"].values for n in (7, 8, 9)], -1)
    rad_arr = np.nan_to_num(np.stack([rads_ds[f"S{n}_radiance_an"].values for n in range(1, 7)], -1))
    ref_arr = np.nan_to_num(np.stack([refs_ds[f"S{n}_reflectance_an"].values for n in range(1, 7)], -1))
    target = out / ("day" if day else "night") / (product.name.removesuffix(".SEN3") + ".hdf")
    target.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(target, "w") as h5:
        h5["bts"] = np.nan_to_num(stack)
        h5["rads"] = resize(rad_arr, (*shape, 6))
        h5["refs"] = resize(ref_arr, (*shape, 6))
        h5["bayes"] = np.where(flags.bayes_in.values > 0, 255.0, 0.0)[..., None]
        h5["summary"] = np.where(flags.confidence_in.values & table["summary_cloud"], 255.0, 0.0)[..., None]


def run_baseline(products: list[Path], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    for product in products:
        baseline_convert(product, out)
    return time.perf_counter() - t0


def run_mlscale(src: Path, out: Path, ranks: int, records: Path) -> tuple[float, float]:
    """`mlscale cloud-mask convert` at `ranks` ranks: its stage time and the mean time of one product on
    a rank, from the record."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(records, ignore_errors=True)
    mpirun = shutil.which("mpirun", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [sys.executable, "-m", "mlscale", "cloud-mask", "convert", str(src), str(out), "--no-progress",
           "--record", str(records)]  # fmt: skip
    launch = [mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", str(ranks),
              "-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    subprocess.run(launch + cmd, check=True, capture_output=True, env=env)
    (record,) = records.glob("*/record.json")
    stage = json.loads(record.read_text())["stage"]
    return stage["time"], stage["seconds_per_product_mean"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=4)
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--columns", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from mlscale.workloads.cloud_mask.config import CloudMaskData
    from mlscale.workloads.cloud_mask.generate import write_data

    with tempfile.TemporaryDirectory(prefix="cloud_bench") as tmp:
        tmp = Path(tmp)
        write_data(CloudMaskData(products=args.products, rows=args.rows, columns=args.columns, night_fraction=0), tmp)
        src = tmp / "products"
        products = sorted(src.glob("*.SEN3"))
        times: dict[str, list[float]] = {"baseline": [], "1 rank": [], "2 ranks": []}
        one_product: dict[str, list[float]] = {"1 rank": [], "2 ranks": []}
        load_before = os.getloadavg()[0]
        for _ in range(args.rounds):
            times["baseline"].append(run_baseline(products, tmp / "base"))
            for name, ranks in (("1 rank", 1), ("2 ranks", 2)):
                stage_time, per_product = run_mlscale(src, tmp / f"out{ranks}", ranks, tmp / f"rec{ranks}")
                times[name].append(stage_time)
                one_product[name].append(per_product)
    med = {k: float(np.median(v)) for k, v in times.items()}
    each = {k: float(np.median(v)) for k, v in one_product.items()}
    print(f"{args.products} products of {args.rows}x{args.columns} (in grid), {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")  # fmt: skip
    for name, seconds in med.items():
        print(f"  {name:9s} {seconds:8.2f} s  ({seconds / args.products:.2f} s per product)")
    print(f"speed-up, mlscale 2 ranks vs 1 rank: {med['1 rank'] / med['2 ranks']:.2f}x (goal >= 1.8x)")
    # Where a shortfall comes from: a product that takes longer on each of 2 ranks than on 1 rank
    # means the ranks compete (for cores or memory bandwidth); equal times but a slower stage would
    # mean imbalance or serial work.
    print(f"one product on a rank: {each['1 rank']:.2f} s at 1 rank, {each['2 ranks']:.2f} s at 2 ranks "
          f"({each['2 ranks'] / each['1 rank']:.2f}x as long)")  # fmt: skip
    print(f"mlscale 1 rank vs the baseline: {med['baseline'] / med['1 rank']:.2f}x")


if __name__ == "__main__":
    main()
