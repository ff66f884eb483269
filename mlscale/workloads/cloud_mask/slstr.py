"""Sentinel-3 SLSTR L1 products (`*.SEN3` folders) as the seed reads them, with xarray.

A product holds one NetCDF file per channel and grid:

- `S{1..6}_radiance_an.nc`: `S{n}_radiance_an` (rows, columns) on the 500 m "an" grid;
- `S{7..9}_BT_in.nc`: `S{n}_BT_in` on the 1 km "in" grid (half the an grid's rows and columns);
- `S{1..6}_quality_an.nc`: `S{n}_solar_irradiance_an` (detectors), element [0] is used;
- `flags_in.nc`: `bayes_in` (non-zero = cloud) and `confidence_in`, bit flags named by its
  `flag_meanings` / `flag_masks` attributes (`day`, `summary_cloud`, ...);
- `geometry_tn.nc`: `solar_zenith_tn` on the tie-point grid.

Every file carries the global attributes `resolution` ("[ ACROSS ALONG ]" in metres),
`track_offset` and `start_offset`, which place its grid against the others: the solar zenith
angle is interpolated from the tie points onto the an grid with them (scipy's
RectBivariateSpline), exactly as the seed's loader does. Reflectance = pi L / (E0 mu0), with
mu0 = cos(SZA) where SZA < 90 degrees, else 1. Bad input is one `UserError` line naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlscale.errors import UserError

RAD_CHANNELS = tuple(range(1, 7))
BT_CHANNELS = (7, 8, 9)
DTOR = 0.017453292  # degrees to radians, the seed's constant
# confidence_in's bits, as in the products (two "spare" bits share a name)
CONFIDENCE_MEANINGS = (
    "coastline ocean tidal land inland_water unfilled spare spare cosmetic duplicate day twilight sun_glint "
    "snow summary_cloud summary_pointing"
).split()
CONFIDENCE_MASKS = tuple(1 << i for i in range(len(CONFIDENCE_MEANINGS)))
BAYES_MEANINGS = "single_low single_moderate dual_low dual_moderate".split()
BAYES_MASKS = (1, 2, 4, 8)


def rad_file(n: int) -> tuple[str, str]:
    return f"S{n}_radiance_an.nc", f"S{n}_radiance_an"


def bt_file(n: int) -> tuple[str, str]:
    return f"S{n}_BT_in.nc", f"S{n}_BT_in"


def quality_file(n: int) -> tuple[str, str]:
    return f"S{n}_quality_an.nc", f"S{n}_solar_irradiance_an"


FLAGS_FILE = "flags_in.nc"
GEOMETRY_FILE = "geometry_tn.nc"


def product_files() -> list[str]:
    """Every file the reader needs, in the order it reads them."""
    names = [rad_file(n)[0] for n in RAD_CHANNELS] + [quality_file(n)[0] for n in RAD_CHANNELS]
    return names + [bt_file(n)[0] for n in BT_CHANNELS] + [FLAGS_FILE, GEOMETRY_FILE]


def product_name(path: Path) -> str:
    """`S3A_..._004.SEN3` -> `S3A_..._004` (the name of its HDF5 and mask files)."""
    return path.name.removesuffix(".SEN3")


@dataclass
class Scene:
    """One product on the in grid, float64, channels last (the converted HDF5's datasets)."""

    name: str
    bts: np.ndarray  # (H, W, 3) kelvin
    rads: np.ndarray  # (H, W, 6)
    refs: np.ndarray  # (H, W, 6)
    bayes: np.ndarray  # (H, W, 1) 0 or 255
    summary: np.ndarray  # (H, W, 1) 0 or 255
    day: bool  # every pixel has the day bit
    nan_pixels: int  # NaN radiance and BT values set to 0


def open_nc(path: Path):
    """xarray Dataset of one product file, or a one-line error naming it."""
    import xarray as xr

    if not path.is_file():
        raise UserError(f"{path.parent}: missing {path.name} (not a complete SLSTR product)")
    try:
        return xr.open_dataset(path, decode_times=False, engine="netcdf4")
    except Exception as err:  # netCDF4 raises OSError, ValueError, RuntimeError for broken files
        raise UserError(f"{path}: not a readable NetCDF file ({type(err).__name__}: {err})") from None


def variable(ds, path: Path, name: str, shape: tuple[int, ...] | None = None, what: str = "") -> np.ndarray:
    """`ds[name]` as float64, checked against `shape`."""
    _shape(ds, path, name, shape, what)
    try:
        return np.asarray(ds[name].values, dtype=np.float64)
    except Exception as err:
        raise UserError(f"{path}: cannot read {name} ({type(err).__name__}: {err})") from None


def grid_attrs(ds, path: Path) -> tuple[float, float, float, float]:
    """(across-track resolution, along-track resolution, track_offset, start_offset) of a file."""
    try:
        parts = str(ds.attrs["resolution"]).split()
        return float(parts[1]), float(parts[2]), float(ds.attrs["track_offset"]), float(ds.attrs["start_offset"])
    except (KeyError, IndexError, ValueError) as err:
        raise UserError(f"{path}: bad or missing grid attribute resolution/track_offset/start_offset ({err})") from None


def interpolate_tie(values: np.ndarray, tie_grid, an_shape: tuple[int, int], an_grid) -> np.ndarray:
    """Tie-point values onto the an grid (bicubic spline), placed by the grids' attributes as the seed does."""
    from scipy.interpolate import RectBivariateSpline

    res_x, res_y, track, start = tie_grid
    an_res_x, an_res_y, an_track, _ = an_grid
    x = (np.arange(an_shape[1]) - an_track) * an_res_x / res_x + track
    y = np.arange(an_shape[0]) * an_res_y / res_y + start
    return RectBivariateSpline(np.arange(values.shape[0]), np.arange(values.shape[1]), values)(y, x)


def solar_zenith_an(product: Path, an_shape: tuple[int, int], an_grid: tuple[float, ...]) -> np.ndarray:
    """The tie-point solar zenith angle (NaN -> 0) interpolated onto the an grid."""
    path = product / GEOMETRY_FILE
    with open_nc(path) as geo:
        sza = np.nan_to_num(variable(geo, path, "solar_zenith_tn"), nan=0.0)
        tie_grid = grid_attrs(geo, path)
    if sza.ndim != 2 or min(sza.shape) < 4:
        raise UserError(f"{path}: solar_zenith_tn must be a 2-D tie-point grid of at least 4x4, got {sza.shape}")
    return interpolate_tie(sza, tie_grid, an_shape, an_grid)


def flag_bit(ds, path: Path, name: str, meaning: str) -> int:
    attrs = ds[name].attrs
    try:
        table = dict(zip(str(attrs["flag_meanings"]).split(), np.atleast_1d(attrs["flag_masks"]).tolist()))
        return int(table[meaning])
    except KeyError as err:
        raise UserError(f"{path}: {name} has no flag {meaning!r} in flag_meanings/flag_masks ({err})") from None


def read_scene(product: Path) -> Scene:
    """Read one .SEN3 product onto the in grid (radiances and reflectances resized with scikit-image)."""
    from skimage.transform import resize

    product = Path(product)
    if not product.is_dir():
        raise UserError(f"{product}: not a .SEN3 product folder")
    bts, nan_pixels, in_shape = [], 0, None
    for n in BT_CHANNELS:
        path = product / bt_file(n)[0]
        with open_nc(path) as ds:
            bt = variable(ds, path, bt_file(n)[1], in_shape, " (the in grid of S7_BT_in)")
        in_shape = in_shape or bt.shape
        nan_pixels += int(np.isnan(bt).sum())
        bts.append(np.nan_to_num(bt, nan=0.0))
    an_shape = (2 * in_shape[0], 2 * in_shape[1])
    rads, an_grid = [], None
    for n in RAD_CHANNELS:
        path = product / rad_file(n)[0]
        with open_nc(path) as ds:
            rad = variable(ds, path, rad_file(n)[1], an_shape, " (the an grid: twice the in grid)")
            an_grid = an_grid or grid_attrs(ds, path)
        nan_pixels += int(np.isnan(rad).sum())
        rads.append(np.nan_to_num(rad, nan=0.0))
    irradiance = []
    for n in RAD_CHANNELS:
        path = product / quality_file(n)[0]
        with open_nc(path) as ds:
            values = variable(ds, path, quality_file(n)[1]).ravel()
        if values.size == 0 or not values[0] > 0:
            raise UserError(f"{path}: {quality_file(n)[1]}[0] must be a positive irradiance")
        irradiance.append(values[0])
    sza = solar_zenith_an(product, an_shape, an_grid)
    mu0 = np.where(sza < 90, np.cos(DTOR * sza), 1.0)
    rads_an = np.stack(rads, -1)
    refs_an = rads_an / (np.asarray(irradiance) * mu0[..., None]) * np.pi
    path = product / FLAGS_FILE
    with open_nc(path) as ds:
        bayes = variable(ds, path, "bayes_in", in_shape, " (the in grid)")
        confidence = variable(ds, path, "confidence_in", in_shape, " (the in grid)").astype(np.int64)
        day_bit = flag_bit(ds, path, "confidence_in", "day")
        cloud_bit = flag_bit(ds, path, "confidence_in", "summary_cloud")
    return Scene(
        name=product_name(product),
        bts=np.stack(bts, -1),
        rads=resize(rads_an, (*in_shape, 6)),
        refs=resize(refs_an, (*in_shape, 6)),
        bayes=np.where(np.nan_to_num(bayes) > 0, 255.0, 0.0)[..., None],
        summary=np.where(confidence & cloud_bit, 255.0, 0.0)[..., None],
        day=bool(np.all(confidence & day_bit)),
        nan_pixels=nan_pixels,
    )


def check_product(product: Path) -> None:
    """Every file, variable and grid shape of a product, from the headers (no data read)."""
    product = Path(product)
    if not product.is_dir():
        raise UserError(f"{product}: not a .SEN3 product folder")
    path = product / bt_file(7)[0]
    with open_nc(path) as ds:
        in_shape = _shape(ds, path, bt_file(7)[1], None, "")
    an_shape = (2 * in_shape[0], 2 * in_shape[1])
    expected = [(*bt_file(n), in_shape, " (the in grid of S7_BT_in)") for n in BT_CHANNELS]
    expected += [(*rad_file(n), an_shape, " (the an grid: twice the in grid)") for n in RAD_CHANNELS]
    expected += [(*quality_file(n), None, "") for n in RAD_CHANNELS]
    expected += [(FLAGS_FILE, v, in_shape, " (the in grid)") for v in ("bayes_in", "confidence_in")]
    expected += [(GEOMETRY_FILE, "solar_zenith_tn", None, "")]
    for file, name, shape, what in expected:
        path = product / file
        with open_nc(path) as ds:
            _shape(ds, path, name, shape, what)
            if file.endswith(("_an.nc", "_in.nc", "_tn.nc")) and "quality" not in file:
                grid_attrs(ds, path)


def _shape(ds, path: Path, name: str, shape: tuple[int, ...] | None, what: str) -> tuple[int, ...]:
    if name not in ds.variables:
        raise UserError(f"{path}: no variable {name} (has: {', '.join(sorted(map(str, ds.data_vars)))})")
    found = tuple(ds[name].shape)
    if shape is not None and found != shape:
        raise UserError(f"{path}: {name} is {'x'.join(map(str, found))}, expected {'x'.join(map(str, shape))}{what}")
    return found


def find_products(folder: Path) -> list[Path]:
    """The .SEN3 products in `folder`, sorted by name; an error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder of .SEN3 products")
    found = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.endswith(".SEN3"))
    if not found:
        raise UserError(f"{folder}: no .SEN3 products in it")
    return found
