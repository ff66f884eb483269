"""SST match-ups: the table of buoys under the products, and the seed's SST comparison.

The table (pandas HDF) has the seed's columns. Each row is a drifting buoy's sea surface
temperature (`isst`, deg C) matched to a pixel (`y_cems`, `x_cems` on the in grid) of the product
`cems_path`, with the satellite's retrievals `sat_sst_0..3` (deg C), the Bayesian cloud
probabilities of the nadir and oblique views (`pcloudn`, `pcloudo`) and `bayes_in` at the pixel.
Under cloud the satellite's SST is too cold, which is what a cloud mask must catch.

The comparison keeps the seed's filters (|dlat| < 0.005, |dlon| < 0.01, isst > 0, both satellite
zenith angles <= 55, quality_level 5, algorithm type 4 = D2, whose retrieval is `sat_sst_2`), then
for the pixels clear by Bayes (pcloudn < .9 and pcloudo < .9) and clear by the U-Net (mask < .5)
gives the median and robust standard deviation (1.4826 MAD) of satellite - buoy SST.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlscale.errors import UserError

COLUMNS = [
    "isst", "slat", "slon", "latitude_an", "longitude_an", "satzan", "satzao", "quality_level",
    "sst_algorithm_type", "sat_sst_0", "sat_sst_1", "sat_sst_2", "sat_sst_3", "cems_path", "x_cems", "y_cems",
    "pcloudn", "pcloudo", "bayes_in",
]  # fmt: skip
HDF_KEY = "matchups"
D2 = 4  # sst_algorithm_type of the dual-view, two-channel retrieval (sat_sst_2)


def make_matchups(rng: np.random.Generator, product: str, fields, bayes: np.ndarray, n: int) -> pd.DataFrame:
    """`n` buoys over the sea of one product, half under clear and half under cloudy sky where it can."""
    sea = ~fields.land
    rows, cols = fields.cloud.shape
    picks = []
    for want_cloud in (False, True):
        ys, xs = np.nonzero(sea & (fields.cloud == want_cloud))
        take = min(len(ys), n // 2 if want_cloud else n - n // 2)
        idx = rng.choice(len(ys), take, replace=False) if take else np.array([], int)
        picks += list(zip(ys[idx], xs[idx]))
    if not picks:
        return pd.DataFrame(columns=COLUMNS)
    y, x = np.array(picks).T
    k = len(y)
    opacity = fields.opacity[y, x]
    isst = fields.sst[y, x] - 273.15 + rng.normal(0, 0.05, k)
    isst[rng.random(k) < 0.03] = -1.0  # a few polar buoys, filtered out
    cold = 12 * opacity * rng.uniform(0.6, 1.0, k)  # a cloudy pixel's retrieval is too cold
    sat = isst + rng.normal(-0.17, 0.3, k) - cold
    lat0, lon0 = rng.uniform(-50, 50), rng.uniform(-180, 170)
    lat_an, lon_an = lat0 + 0.009 * y, lon0 + 0.012 * x
    pcloud = np.clip(np.where(fields.cloud[y, x], rng.uniform(0.9, 1.0, k), opacity * 2 + rng.uniform(0, 0.3, k)), 0, 1)
    flip = rng.random(k) < 0.05  # the Bayesian mask misses some
    pcloud[flip] = 1 - pcloud[flip]
    return pd.DataFrame({
        "isst": isst, "slat": lat_an + rng.uniform(-0.007, 0.007, k), "slon": lon_an + rng.uniform(-0.013, 0.013, k),
        "latitude_an": lat_an, "longitude_an": lon_an, "satzan": rng.uniform(0, 60, k),
        "satzao": rng.uniform(45, 57, k), "quality_level": rng.choice([5, 5, 5, 5, 5, 3], k),
        "sst_algorithm_type": rng.choice([4, 4, 4, 4, 4, 2], k), "sat_sst_0": sat + 0.1, "sat_sst_1": sat - 0.05,
        "sat_sst_2": sat, "sat_sst_3": sat + 0.2, "cems_path": f"{product}.SEN3", "x_cems": x, "y_cems": y,
        "pcloudn": pcloud, "pcloudo": np.clip(pcloud + rng.normal(0, 0.03, k), 0, 1), "bayes_in": bayes[y, x],
    })[COLUMNS]  # fmt: skip


def write_matchups(path: Path, table: pd.DataFrame) -> None:
    from mlscale.fileio import atomic_path

    with atomic_path(path) as tmp:
        table.reset_index(drop=True).to_hdf(tmp, key=HDF_KEY, format="table")


def read_matchups(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such match-up table")
    try:
        table = pd.read_hdf(path)
    except Exception as err:  # PyTables raises many kinds for a file that is not its own
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""  # PyTables adds HDF5's back trace
        raise UserError(f"{path}: not a pandas HDF match-up table ({type(err).__name__}: {first})") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: match-up table lacks column(s) {', '.join(missing)}")
    return table


def robust_stats(diff: np.ndarray) -> dict:
    """Median and robust standard deviation (1.4826 x median absolute deviation)."""
    if len(diff) == 0:
        return {"count": 0, "median": None, "rsd": None}
    median = float(np.median(diff))
    return {"count": int(len(diff)), "median": median, "rsd": float(1.4826 * np.median(np.abs(diff - median)))}


def select(table: pd.DataFrame) -> pd.DataFrame:
    """The seed's quality filters."""
    keep = (
        ((table.slat - table.latitude_an).abs() < 0.005)
        & ((table.slon - table.longitude_an).abs() < 0.01)
        & (table.isst > 0)
        & (table.satzan <= 55)
        & (table.satzao <= 55)
        & (table.quality_level == 5)
        & (table.sst_algorithm_type == D2)
    )
    return table[keep]


def mask_values(rows: pd.DataFrame, mask_dir: Path) -> np.ndarray:
    """The U-Net's cloud probability at each match-up's pixel, from `<product>.h5` in `mask_dir`."""
    import h5py

    values = np.full(len(rows), np.nan)
    for product, group in rows.groupby(rows.cems_path.map(lambda p: Path(str(p)).name.removesuffix(".SEN3"))):
        path = Path(mask_dir) / f"{product}.h5"
        if not path.is_file():
            raise UserError(f"{path}: no mask for product {product} of the match-up table")
        try:
            with h5py.File(path, "r") as h5:
                mask = h5["mask"][0, :, :, 0]
        except (OSError, KeyError) as err:
            raise UserError(f"{path}: not a mask file with a 'mask' dataset ({err})") from None
        y, x = group.y_cems.to_numpy(int), group.x_cems.to_numpy(int)
        if y.max() >= mask.shape[0] or x.max() >= mask.shape[1]:
            raise UserError(f"{path}: mask is {mask.shape[0]}x{mask.shape[1]}, a match-up lies outside it")
        values[rows.index.get_indexer(group.index)] = mask[y, x]
    return values


def compare(table: pd.DataFrame, mask_dir: Path) -> dict:
    """The SST comparison: counts, median and RSD of sat_sst_2 - isst under each clear-sky mask."""
    rows = select(table)
    diff = (rows.sat_sst_2 - rows.isst).to_numpy()
    bayes_clear = ((rows.pcloudn < 0.9) & (rows.pcloudo < 0.9)).to_numpy()
    unet_clear = mask_values(rows, mask_dir) < 0.5 if len(rows) else np.zeros(0, bool)
    return {
        "matchups": int(len(table)),
        "selected": int(len(rows)),
        "bayes": robust_stats(diff[bayes_clear]),
        "unet": robust_stats(diff[unet_clear]),
        "agreement": float(np.mean(bayes_clear == unet_clear)) if len(rows) else None,
    }
