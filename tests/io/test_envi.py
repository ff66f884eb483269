"""ENVI reading and writing for methane-plume, against the real AVIRIS-NG header and GDAL itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from mlscale.errors import UserError
from mlscale.io.envi import inspect_envi, read_envi, write_envi

REAL_HDR = "ang20200924t211102_ch4mf_v2y1_img.hdr"
LINES, SAMPLES, BANDS = 2801, 669, 4


def _real_flightline(
    shared_data: Path, tmp_path: Path, interleave: str = "bip", dtype: str = "<f8", lines: int = LINES
) -> tuple[Path, np.ndarray]:
    """The real header beside a synthetic .img of the size it describes (the real pixels are not
    available); `interleave`/`dtype`/`lines` rewrite the corresponding header fields."""
    header = (shared_data / REAL_HDR).read_text()
    header = header.replace("interleave = bip", f"interleave = {interleave}")
    header = header.replace("data type = 5", f"data type = {4 if dtype == '<f4' else 5}")
    header = header.replace(f"lines = {LINES}", f"lines = {lines}")
    rng = np.random.default_rng(0)
    cube = rng.normal(100, 50, (BANDS, lines, SAMPLES)).astype(dtype)  # (band, line, sample)
    cube[:, :3] = -9999
    cube[:, 10, :7] = -9999
    order = {"bip": (1, 2, 0), "bil": (1, 0, 2), "bsq": (0, 1, 2)}[interleave]
    img = tmp_path / "ang20200924t211102_ch4mf_v2y1_img"
    np.ascontiguousarray(cube.transpose(order)).tofile(img)
    (tmp_path / REAL_HDR).write_text(header)
    return img, cube


def test_real_header_reads_through_gdal(shared_data, tmp_path):
    img, cube = _real_flightline(shared_data, tmp_path)
    image = read_envi(img, bands=[4], expect_bands=4)
    assert image.data.shape == (1, LINES, SAMPLES)
    assert image.data.dtype == np.float64
    np.testing.assert_array_equal(image.data[0], cube[3])
    assert image.nodata == -9999  # "data ignore value" from the header
    assert image.band_names == ["CH4 Absorption (ppm x m)"]  # band names with commas in the list
    assert image.georef["crs"] is not None  # map info (UTM 11 North) understood
    assert image.valid[:3].sum() == 0 and image.valid[10, :7].sum() == 0 and image.valid[10, 7]
    assert inspect_envi(img, expect_bands=4) == (4, LINES, SAMPLES)


@pytest.mark.parametrize("interleave", ["bip", "bil", "bsq"])
@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_interleaves_and_dtypes(shared_data, tmp_path, interleave, dtype):
    img, cube = _real_flightline(shared_data, tmp_path, interleave, dtype, lines=40)
    image = read_envi(img, bands=[2, 4])
    assert image.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(image.data, cube[[1, 3]])


def test_saliency_round_trip_readable_by_gdal(shared_data, tmp_path):
    img, cube = _real_flightline(shared_data, tmp_path, lines=50)
    source = read_envi(img, bands=[4])
    saliency = np.linspace(0, 1, 50 * SAMPLES, dtype=np.float32).reshape(50, SAMPLES)
    saliency[~source.valid] = -9999
    out = write_envi(
        tmp_path / "out" / "ang20200924t211102_ch4mf_v2y1_img_saliency.img",
        saliency,
        band_names=["plume saliency"],
        georef=source.georef,
    )
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "ang20200924t211102_ch4mf_v2y1_img_saliency.hdr",
        "ang20200924t211102_ch4mf_v2y1_img_saliency.img",
    ]
    with rasterio.open(out) as ds:  # GDAL itself, not our reader
        assert ds.driver == "ENVI" and ds.count == 1 and ds.dtypes == ("float32",)
        assert ds.nodata == -9999
        assert ds.crs == source.georef["crs"] and ds.transform == source.georef["transform"]
        np.testing.assert_array_equal(ds.read(1), saliency)
    header = out.with_suffix(".hdr").read_text()
    assert "data ignore value = -9999" in header and "data type = 4" in header
    assert str(tmp_path) not in header  # no temporary names leak into the description


def test_write_failure_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_envi(tmp_path / "x.img", np.zeros((2, 2, 2, 2)))
    with pytest.raises(Exception):  # noqa: B017 - whatever rasterio raises, nothing may be left behind
        write_envi(tmp_path / "y.img", np.zeros((3, 3)), dtype="no-such-type")
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_name_the_file(shared_data, tmp_path):
    img, _ = _real_flightline(shared_data, tmp_path, lines=20)
    with pytest.raises(UserError, match="has 4 bands, expected 3"):
        read_envi(img, expect_bands=3)
    with pytest.raises(UserError, match="band 5 requested"):
        read_envi(img, bands=[5])
    short = tmp_path / "short"
    short.mkdir()
    shutil.copy(tmp_path / REAL_HDR, short / REAL_HDR)  # header says 20 lines, file holds 10
    (short / img.name).write_bytes(img.read_bytes()[: len(img.read_bytes()) // 2])
    with pytest.raises(UserError, match=r"data file has \d+ bytes, its header describes"):
        read_envi(short / img.name)
