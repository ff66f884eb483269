"""ENVI IMG + .hdr rasters (AVIRIS-NG flightlines, saliency maps) through rasterio/GDAL.

GDAL's ENVI driver does the parsing: interleave (BIP/BIL/BSQ), data type,
byte order, map info and the ``data ignore value`` (which it reports as the
nodata value). This module adds what the workload needs on top: band
selection, one-line errors that name the file, and an atomic writer that
leaves either a complete ``.img``/``.hdr`` pair or nothing.

Arrays are ``(bands, lines, samples)``, i.e. (band, row, column).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlscale.errors import UserError
from mlscale.fileio import atomic_path

NODATA = -9999.0
_DTYPES = ("float32", "float64")


@dataclass
class EnviImage:
    data: np.ndarray  # (bands, lines, samples), in the file's dtype; nodata pixels keep the nodata value
    nodata: float | None
    band_names: list[str]
    georef: dict[str, Any] = field(default_factory=dict)  # crs and transform, for writing derived maps
    shape: tuple[int, int, int] = (0, 0, 0)  # the file's (bands, lines, samples)

    @property
    def valid(self) -> np.ndarray:
        """(lines, samples) mask of pixels that are not nodata in any selected band."""
        if self.nodata is None:
            return np.ones(self.data.shape[1:], dtype=bool)
        return ~np.any(self.data == self.nodata, axis=0)


def header_path(path: str | os.PathLike) -> Path:
    """The .hdr beside an ENVI data file, the way GDAL finds it (``x.img`` -> ``x.hdr``, ``x`` -> ``x.hdr``,
    or ``x.img.hdr``)."""
    path = Path(path)
    for candidate in (path.with_suffix(".hdr"), path.with_name(path.name + ".hdr")):
        if candidate.is_file():
            return candidate
    raise UserError(f"{path}: no ENVI header ({path.with_suffix('.hdr').name} or {path.name}.hdr) beside it")


def _env():
    import rasterio

    # No .aux.xml side files: the output directory should hold exactly the .img/.hdr pair.
    return rasterio.Env(GDAL_PAM_ENABLED="NO", CPL_LOG_ERRORS="OFF")


def _check_header(path: Path, hdr: Path) -> None:
    """Catch what GDAL would accept silently or report obscurely: not an ENVI header, a data file
    of another size than the header describes, an unknown interleave."""
    try:
        text = hdr.read_text(errors="replace")
    except OSError as err:
        raise UserError(f"{hdr}: cannot read ENVI header ({err.strerror})") from None
    if not text.lstrip().startswith("ENVI"):
        raise UserError(f"{hdr}: not an ENVI header (it must start with 'ENVI')")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    try:
        samples, lines, bands = (int(fields[k]) for k in ("samples", "lines", "bands"))
        dtype = int(fields["data type"])
        offset = int(fields.get("header offset", "0"))
    except KeyError as err:
        raise UserError(f"{hdr}: bad ENVI header (no {err.args[0]!r} field)") from None
    except ValueError:
        raise UserError(f"{hdr}: bad ENVI header (samples/lines/bands/data type must be integers)") from None
    sizes = {1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 12: 2, 13: 4, 14: 8, 15: 8}
    if dtype not in sizes or min(samples, lines, bands) < 1:
        raise UserError(f"{hdr}: bad ENVI header (data type {dtype}, {samples}x{lines}x{bands})")
    need = offset + samples * lines * bands * sizes[dtype]
    have = path.stat().st_size
    if have != need:  # larger: a header narrower than its data would be read as a smaller, skewed image
        raise UserError(
            f"{path}: data file has {have} bytes, its header describes {need} ({samples} samples x "
            f"{lines} lines x {bands} bands)"
        )
    interleave = fields.get("interleave", "bsq").lower()
    if interleave not in ("bsq", "bil", "bip"):
        raise UserError(f"{hdr}: bad ENVI header (interleave {interleave!r}; bsq, bil or bip)")


def inspect_envi(path: str | os.PathLike, expect_bands: int | None = None) -> tuple[int, int, int]:
    """Check that `path` is a readable ENVI raster (header, size, band count) without reading its
    pixels; returns (bands, lines, samples)."""
    image = read_envi(path, bands=[], expect_bands=expect_bands)
    return image.shape


def read_envi(
    path: str | os.PathLike, bands: Sequence[int] | None = None, expect_bands: int | None = None
) -> EnviImage:
    """Read an ENVI raster. `bands` are 1-based band numbers (GDAL's convention); None reads all, an
    empty list only checks the file. `expect_bands`: the band count the caller's format requires
    (4 for an AVIRIS-NG CH4 product)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    path = Path(path)
    if path.suffix == ".hdr":  # the user named the header: the data file is beside it
        path = path.with_suffix("") if path.with_suffix("").is_file() else path.with_suffix(".img")
    if not path.is_file():
        raise UserError(f"{path}: no such ENVI data file")
    hdr = header_path(path)
    _check_header(path, hdr)
    try:
        with _env(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path)
        with ds:
            if ds.driver != "ENVI":
                raise UserError(f"{path}: not read as ENVI (GDAL chose {ds.driver}); check {hdr.name}")
            if expect_bands is not None and ds.count != expect_bands:
                raise UserError(f"{path}: has {ds.count} bands, expected {expect_bands}")
            selected = list(bands) if bands is not None else list(range(1, ds.count + 1))
            bad = [b for b in selected if not 1 <= b <= ds.count]
            if bad:
                raise UserError(f"{path}: band {bad[0]} requested but the file has {ds.count} bands")
            dtypes = {ds.dtypes[b - 1] for b in selected}
            if not dtypes <= set(_DTYPES):
                raise UserError(f"{path}: data type {sorted(dtypes)[0]} not supported (float32 or float64)")
            shape = (ds.count, ds.height, ds.width)
            data = ds.read(selected) if selected else np.zeros((0, ds.height, ds.width), dtype=ds.dtypes[0])
            names = [ds.descriptions[b - 1] or f"band {b}" for b in selected]
            georef = {"crs": ds.crs, "transform": ds.transform}
            nodata = ds.nodata
    except RasterioIOError as err:
        raise UserError(f"{path}: GDAL cannot read it as ENVI ({str(err).splitlines()[0]})") from None
    return EnviImage(data=data, nodata=nodata, band_names=names, georef=georef, shape=shape)


def envi_header_name(path: Path) -> Path:
    """Where GDAL's ENVI driver puts the header of a data file it creates (``x.img`` -> ``x.hdr``,
    ``x_img`` -> ``x_img.hdr``)."""
    return path.with_suffix(".hdr")


def write_envi(
    path: str | os.PathLike,
    data: np.ndarray,
    nodata: float | None = NODATA,
    band_names: Sequence[str] | None = None,
    georef: dict[str, Any] | None = None,
    dtype: str = "float32",
    interleave: str = "bsq",
    description: str = "",
) -> Path:
    """Write `data` ((lines, samples) or (bands, lines, samples)) as an ENVI data file + ``.hdr``.

    `path` is the data file: ``x.img`` (header ``x.hdr``) or an AVIRIS-NG style name without extension
    (header ``name.hdr``). Both files are written under temporary names beside the targets and renamed
    into place at the end (`mlscale.fileio.atomic_path`), so a failure leaves nothing half-written.
    Returns the data file's path.
    """
    import rasterio

    path = Path(path)
    array = np.asarray(data)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"ENVI data must be 2-D or 3-D, got shape {array.shape}")
    if interleave not in ("bsq", "bil", "bip"):
        raise ValueError(f"interleave must be bsq, bil or bip, not {interleave!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    georef = georef or {}
    profile = dict(
        driver="ENVI",
        width=array.shape[2],
        height=array.shape[1],
        count=array.shape[0],
        dtype=dtype,
        nodata=nodata,
        interleave=interleave.upper(),
    )
    for key in ("crs", "transform"):
        if georef.get(key) is not None:
            profile[key] = georef[key]
    # The header is renamed into place before the data file; the data's temporary name ends in .img,
    # so GDAL's header for it is envi_header_name(tmp) whatever `path` is called.
    with atomic_path(path, suffix=".img") as tmp, atomic_path(envi_header_name(path)) as hdr:
        gdal_hdr = envi_header_name(tmp)
        try:
            with _env(), warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                with rasterio.open(tmp, "w", **profile) as ds:
                    ds.write(array.astype(dtype, copy=False))
                    for i, name in enumerate(band_names or [], start=1):
                        ds.set_band_description(i, name)
            _set_description(gdal_hdr, description or path.name)
            os.replace(gdal_hdr, hdr)
        finally:
            gdal_hdr.unlink(missing_ok=True)
    return path


def _set_description(hdr: Path, description: str) -> None:
    """GDAL writes the (temporary) file name as the header's description; put ours there."""
    text = hdr.read_text()
    text = re.sub(r"description = \{[^}]*\}", lambda _: "description = {\n  " + description + "}", text, count=1)
    hdr.write_text(text)
