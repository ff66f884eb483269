"""Writing synthetic `.SEN3` products in the SLSTR layout that `slstr.read_scene` (and the seed) reads.

Files, variables, grids, attributes and encodings follow the products: radiances and brightness
temperatures packed as int16 with scale_factor/add_offset and _FillValue (xarray decodes them to
floats, fill to NaN), zlib-compressed NetCDF4 with dimensions (rows, columns), grid attributes
`resolution` "[ ACROSS ALONG ]", `track_offset`, `start_offset` on every file, flag variables with
`flag_masks` / `flag_meanings`. A product is written into a hidden folder and renamed into place.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from mlscale.workloads.cloud_mask import slstr
from mlscale.workloads.cloud_mask.synth import SOLAR_IRRADIANCE, SceneFields, bayes_values

COUNTS_PER_REFLECTANCE = 25000  # int16 packing of radiances: reflectance up to ~1.3
BT_SCALE, BT_OFFSET, FILL = 0.01, 283.73, -32768
TN_START, TN_MARGIN = 2, 16
DAY_SZA, TWILIGHT_SZA = 85.0, 95.0


@dataclass(frozen=True)
class Grids:
    """The an (500 m), in (1 km) and tn (tie-point) grids of a product with an in grid of rows x columns."""

    rows: int
    columns: int

    @property
    def an_shape(self) -> tuple[int, int]:
        return 2 * self.rows, 2 * self.columns

    @property
    def an_track(self) -> int:
        return round(2 * self.columns * 998 / 3000)  # nadir sits left of centre, as in the products

    def attrs(self, grid: str) -> dict:
        if grid == "an":
            return {"resolution": "[ 500 500 ]", "track_offset": self.an_track, "start_offset": 2 * TN_START}
        if grid == "in":
            return {"resolution": "[ 1000 1000 ]", "track_offset": self.an_track // 2, "start_offset": TN_START}
        return {"resolution": "[ 16000 1000 ]", "track_offset": self.tn_track, "start_offset": TN_START}

    @property
    def tn_track(self) -> int:
        return math.ceil(self.an_track / 32) + TN_MARGIN

    @property
    def tn_shape(self) -> tuple[int, int]:
        right = math.ceil((2 * self.columns - self.an_track) / 32)
        return self.rows + 2 * TN_START, self.tn_track + right + TN_MARGIN

    def grid_tuple(self, grid: str) -> tuple[float, float, float, float]:
        a = self.attrs(grid)
        _, across, along, _ = a["resolution"].split()
        return float(across), float(along), float(a["track_offset"]), float(a["start_offset"])


def product_folder_name(index: int, start: datetime) -> str:
    stop, made = start + timedelta(minutes=3), start + timedelta(hours=26)
    fmt = "%Y%m%dT%H%M%S"
    return (
        f"S3A_SL_1_RBT____{start:{fmt}}_{stop:{fmt}}_{made:{fmt}}_0179_{50 + index // 14:03d}_"
        f"{index % 385:03d}_{(index * 180) % 3600:04d}_MLS_O_NT_004.SEN3"
    )


def start_time(index: int) -> datetime:
    return datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=101 * index)


def _write(path: Path, variables: dict, attrs: dict, encoding: dict) -> None:
    import xarray as xr

    ds = xr.Dataset(variables, attrs={"title": "synthetic SLSTR L1 product (mlscale)", **attrs})
    enc = {name: {"zlib": True, "complevel": 1, **encoding.get(name, {})} for name in variables}
    ds.to_netcdf(path, engine="netcdf4", format="NETCDF4", encoding=enc)


def confidence_flags(grids: Grids, fields: SceneFields, sza_in: np.ndarray) -> np.ndarray:
    bit = dict(zip(slstr.CONFIDENCE_MEANINGS, slstr.CONFIDENCE_MASKS))
    flags = np.where(fields.land, bit["land"], bit["ocean"]).astype(np.uint16)
    edge = fields.land & ~np.roll(fields.land, 1, 0) | fields.land & ~np.roll(fields.land, 1, 1)
    flags |= np.where(edge, bit["coastline"], 0).astype(np.uint16)
    flags |= np.where(sza_in < DAY_SZA, bit["day"], 0).astype(np.uint16)
    flags |= np.where((sza_in >= DAY_SZA) & (sza_in < TWILIGHT_SZA), bit["twilight"], 0).astype(np.uint16)
    flags |= np.where(fields.opacity > 0.2, bit["summary_cloud"], 0).astype(np.uint16)  # the product's own test
    return flags


def write_product(folder: Path, fields: SceneFields, angles: dict, grids: Grids, rng: np.random.Generator) -> Path:
    """Write one product folder (atomically: a hidden folder renamed at the end)."""
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_files(tmp, fields, angles, grids, rng)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_files(tmp: Path, fields: SceneFields, angles: dict, grids: Grids, rng: np.random.Generator) -> None:
    dims = ("rows", "columns")
    an_attrs, in_attrs = grids.attrs("an"), grids.attrs("in")
    sza_tn = np.nan_to_num(angles["solar_zenith_tn"], nan=0.0)
    sza_an = slstr.interpolate_tie(sza_tn, grids.grid_tuple("tn"), grids.an_shape, grids.grid_tuple("an"))
    mu0 = np.where(sza_an < 90, np.cos(slstr.DTOR * sza_an), 1.0)
    night = not np.all(sza_an < DAY_SZA)
    for i, n in enumerate(slstr.RAD_CHANNELS):
        e0 = SOLAR_IRRADIANCE[i]
        radiance = np.clip(fields.reflectance[..., i], 0, 1.3) * e0 * mu0 / np.pi
        if night:
            radiance[:] = np.nan  # no sunlight: the products carry fill values
        elif n >= 5:
            radiance[rng.random(radiance.shape) < 5e-5] = np.nan  # a few cosmetic gaps
        file, var = slstr.rad_file(n)
        scale = e0 / np.pi / COUNTS_PER_REFLECTANCE
        rad = (dims, radiance.astype(np.float32), {"units": "mW.m-2.sr-1.nm-1", "long_name": f"TOA radiance S{n}"})
        exception = (dims, np.zeros(grids.an_shape, np.uint8), {"long_name": "exception flags"})
        packed = {"dtype": "int16", "scale_factor": scale, "add_offset": 0.0, "_FillValue": FILL}
        _write(tmp / file, {var: rad, f"S{n}_exception_an": exception}, an_attrs, {var: packed})
        irradiance = (np.float32(e0) * np.array([1.0, 1.002, 0.998, 1.001], np.float32),)
        file, var = slstr.quality_file(n)
        _write(tmp / file, {var: (("detectors",), *irradiance, {"units": "mW.m-2.nm-1"})}, an_attrs, {})
    for i, n in enumerate(slstr.BT_CHANNELS):
        file, var = slstr.bt_file(n)
        bt = (dims, fields.bt[..., i].astype(np.float32), {"units": "K", "long_name": f"Brightness temperature S{n}"})
        exception = (dims, np.zeros((grids.rows, grids.columns), np.uint8), {"long_name": "exception flags"})
        packed = {"dtype": "int16", "scale_factor": BT_SCALE, "add_offset": BT_OFFSET, "_FillValue": FILL}
        _write(tmp / file, {var: bt, f"S{n}_exception_in": exception}, in_attrs, {var: packed})
    sza_in = slstr.interpolate_tie(sza_tn, grids.grid_tuple("tn"), (grids.rows, grids.columns), grids.grid_tuple("in"))
    masks = np.array(slstr.CONFIDENCE_MASKS, np.uint16)
    confidence = {"flag_masks": masks, "flag_meanings": " ".join(slstr.CONFIDENCE_MEANINGS)}
    bayes = {"flag_masks": np.array(slstr.BAYES_MASKS, np.uint8), "flag_meanings": " ".join(slstr.BAYES_MEANINGS)}
    flags = {
        "bayes_in": (dims, bayes_values(fields), {"long_name": "Bayesian cloud mask", **bayes}),
        "confidence_in": (dims, confidence_flags(grids, fields, sza_in), {"long_name": "confidence", **confidence}),
        "cloud_in": (dims, np.where(fields.opacity > 0.2, 1, 0).astype(np.uint16), {"long_name": "cloud tests"}),
    }
    _write(tmp / slstr.FLAGS_FILE, flags, in_attrs, {})
    geometry = {name: (dims, values, {"units": "degrees"}) for name, values in angles.items()}
    _write(tmp / slstr.GEOMETRY_FILE, geometry, grids.attrs("tn"), {})
