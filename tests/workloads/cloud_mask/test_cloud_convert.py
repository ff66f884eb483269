"""`mlscale cloud-mask convert`: HDF5 in the seed's layout, the same files at 1 and 2 ranks
(under a real mpirun), the day rule, a stage record for the report, and bad input as one line."""

from __future__ import annotations

import shutil

import h5py
import netCDF4
import numpy as np
import pytest
from support.cloud_mask import COLUMNS, PRODUCTS, ROWS
from support.run import run_mlscale

from mlscale.errors import UserError
from mlscale.launch.comm import create_communicator
from mlscale.launch.env import detect_environment
from mlscale.results.record import load_records
from mlscale.workloads.cloud_mask.convert import convert
from mlscale.workloads.cloud_mask.slstr import find_products, read_scene


def test_converted_files(cm_data, cm_hdf):
    files = sorted(cm_hdf.rglob("*.hdf"))
    assert len(files) == PRODUCTS and {f.parent.name for f in files} == {"day", "night"}
    with h5py.File(files[0]) as h5:
        assert sorted(h5) == ["bayes", "bts", "rads", "refs", "summary"]
        shapes = {name: h5[name].shape for name in h5}
        assert shapes == {"bts": (ROWS, COLUMNS, 3), "rads": (ROWS, COLUMNS, 6), "refs": (ROWS, COLUMNS, 6),
                          "bayes": (ROWS, COLUMNS, 1), "summary": (ROWS, COLUMNS, 1)}  # fmt: skip
        assert all(h5[n].dtype == np.float64 and h5[n].chunks is None for n in h5)
        assert set(np.unique(h5["bayes"][:])) <= {0.0, 255.0} and set(np.unique(h5["summary"][:])) <= {0.0, 255.0}
        product = cm_data / "products" / (files[0].stem + ".SEN3")
        np.testing.assert_array_equal(h5["refs"][:], read_scene(product).refs)


@pytest.mark.slow
def test_two_ranks_write_the_same_files(cm_data, cm_hdf, tmp_path):
    proc = run_mlscale("cloud-mask", "convert", cm_data / "products", tmp_path / "hdf", "--record", tmp_path / "runs",
                       "--split", "validation", ranks=2)  # fmt: skip
    assert f"converted {PRODUCTS} products" in proc.stdout and "on 2 rank(s)" in proc.stdout
    for one in sorted(cm_hdf.rglob("*.hdf")):
        with h5py.File(one) as a, h5py.File(tmp_path / "hdf" / one.relative_to(cm_hdf)) as b:
            for name in a:
                np.testing.assert_array_equal(a[name][:], b[name][:])
    (record,) = load_records([tmp_path / "runs"])
    stage = record["stage"]
    assert record["mode"] == "convert" and record["num_ranks"] == 2 and stage["products"] == PRODUCTS
    assert {r["rank"] for r in stage["per_product"]} == {0, 1} and stage["nan_pixels"] > 0  # night fill values
    assert stage["day"] + stage["night"] == PRODUCTS and stage["split"] == "validation"
    report = run_mlscale("report", tmp_path / "runs").stdout
    assert "Convert to HDF (Validation)" in report and "**Total**" in report


def test_a_product_is_day_only_when_every_pixel_is(cm_data, tmp_path):
    day = next(p for p in find_products(cm_data / "products") if read_scene(p).day)
    copy = tmp_path / "in" / day.name
    shutil.copytree(day, copy)
    with netCDF4.Dataset(copy / "flags_in.nc", "a") as nc:
        nc["confidence_in"][0, 0] = nc["confidence_in"][0, 0] & ~np.uint16(1024)  # one pixel loses the day bit
    run_mlscale("cloud-mask", "convert", tmp_path / "in", tmp_path / "out", "--no-progress")
    assert [p.parent.name for p in (tmp_path / "out").rglob("*.hdf")] == ["night"]


def _break(product, case):
    if case == "missing file":
        (product / "S5_radiance_an.nc").unlink()
        return "missing S5_radiance_an.nc"
    if case == "missing variable":
        with netCDF4.Dataset(product / "flags_in.nc", "a") as nc:
            nc.renameVariable("bayes_in", "bayes_xx")
        return "flags_in.nc: no variable bayes_in"
    if case == "wrong shape":
        with netCDF4.Dataset(product / "S8_BT_in.nc", "w") as nc:
            nc.createDimension("rows", ROWS)
            nc.createDimension("columns", COLUMNS - 1)
            nc.createVariable("S8_BT_in", "f4", ("rows", "columns"))[:] = 280.0
        return f"S8_BT_in.nc: S8_BT_in is {ROWS}x{COLUMNS - 1}, expected {ROWS}x{COLUMNS}"
    (product / "geometry_tn.nc").write_bytes(b"CDF\x01 not really a netcdf file")
    return "geometry_tn.nc: not a readable NetCDF file"


@pytest.mark.parametrize("case", ["missing file", "missing variable", "wrong shape", "unreadable"])
def test_bad_products_are_one_line(cm_data, tmp_path, case):
    """The first case through the real command (one stderr line, exit 2), the others in-process."""
    products = find_products(cm_data / "products")[:2]
    for p in products:
        shutil.copytree(p, tmp_path / "in" / p.name)
    expected = _break(tmp_path / "in" / products[1].name, case)
    if case == "missing file":
        proc = run_mlscale("cloud-mask", "convert", tmp_path / "in", tmp_path / "out", check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        message = lines[0]
    else:
        with pytest.raises(UserError) as err:
            convert(tmp_path / "in", tmp_path / "out", create_communicator("single", detect_environment({}, False)))
        message = str(err.value)
    assert expected in message and products[1].name in message and "\n" not in message
    assert not (tmp_path / "out").exists()  # nothing written, not even the good product


def test_bad_matchups_are_one_line(cm_data, tmp_path):
    import pandas as pd

    table = pd.read_hdf(cm_data / "sst_matchups.h5").drop(columns=["pcloudo", "x_cems"])
    table.to_hdf(tmp_path / "m.h5", key="matchups")
    proc = run_mlscale("cloud-mask", "sst", tmp_path / "m.h5", tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "m.h5: match-up table lacks column(s) x_cems, pcloudo" in proc.stderr
