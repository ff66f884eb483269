"""Synthetic SLSTR products in the real layout: files, variables, grids, attributes, packing and
flag encodings, read back with xarray and netCDF4; the product reader recovers what was written."""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr
from support.cloud_mask import COLUMNS, PRODUCTS, ROWS
from support.run import run_mlscale

from mlscale.workloads.cloud_mask import slstr
from mlscale.workloads.cloud_mask.matchups import COLUMNS as MATCHUP_COLUMNS
from mlscale.workloads.cloud_mask.sen3 import Grids, write_product
from mlscale.workloads.cloud_mask.synth import make_scene, tie_point_angles, to_in_grid


def test_products_have_the_real_layout(cm_data):
    products = slstr.find_products(cm_data / "products")
    assert len(products) == PRODUCTS and all(p.name.startswith("S3A_SL_1_RBT____") for p in products)
    first = products[0]
    assert sorted(p.name for p in first.iterdir()) == sorted(slstr.product_files())
    with netCDF4.Dataset(first / "S3_radiance_an.nc") as nc:  # packed as the products are
        var = nc["S3_radiance_an"]
        assert var.dimensions == ("rows", "columns") and var.shape == (2 * ROWS, 2 * COLUMNS)
        assert var.dtype == np.int16 and var._FillValue == -32768 and var.scale_factor > 0
        assert nc.resolution == "[ 500 500 ]" and "S3_exception_an" in nc.variables
    with xr.open_dataset(first / "S8_BT_in.nc") as ds:
        assert ds["S8_BT_in"].shape == (ROWS, COLUMNS) and ds["S8_BT_in"].dtype.kind == "f"  # decoded from int16
        assert 200 < float(ds["S8_BT_in"].mean()) < 320 and ds.attrs["resolution"] == "[ 1000 1000 ]"
    with xr.open_dataset(first / "S1_quality_an.nc") as ds:
        assert ds["S1_solar_irradiance_an"].values[0] > 1000
    with xr.open_dataset(first / "flags_in.nc") as ds:
        conf = ds["confidence_in"]
        bits = dict(zip(conf.attrs["flag_meanings"].split(), conf.attrs["flag_masks"].tolist()))
        assert bits["day"] == 1024 and bits["summary_cloud"] == 16384 and conf.dtype == np.uint16
        assert set(np.unique(ds["bayes_in"].values)) <= {0, 1, 2}
    with xr.open_dataset(first / "geometry_tn.nc") as ds:
        sza = ds["solar_zenith_tn"].values
        assert np.isnan(sza[:, :2]).all() and not np.isnan(sza[:, 2:-2]).any()
        assert {"track_offset", "start_offset"} <= set(ds.attrs)


def test_day_and_night_products(cm_data):
    days = []
    for product in slstr.find_products(cm_data / "products"):
        with xr.open_dataset(product / "flags_in.nc") as flags, xr.open_dataset(product / "S1_radiance_an.nc") as rad:
            day = bool(np.all(flags["confidence_in"].values & 1024))
            assert day != bool(np.isnan(rad["S1_radiance_an"].values).all())  # no sunlight: fill values
            days.append(day)
    assert 0 < sum(days) < len(days)


def test_reader_recovers_the_scene(tmp_path):
    rng = np.random.default_rng(5)
    grids = Grids(40, 48)
    fields = make_scene(rng, grids.rows, grids.columns, day=True)
    write_product(tmp_path / "p.SEN3", fields, tie_point_angles(rng, grids.tn_shape, True), grids, rng)
    scene = slstr.read_scene(tmp_path / "p.SEN3")
    assert scene.day and scene.refs.shape == (40, 48, 6) and scene.bts.shape == (40, 48, 3)
    truth = to_in_grid(fields.reflectance)
    inner = np.s_[2:-2, 2:-2]  # resize's anti-aliasing blurs the outermost pixels
    assert np.abs(scene.refs[inner] - truth[inner]).mean() < 0.01  # pi L / (E0 mu0) gives the reflectance back
    assert np.abs(scene.bts - fields.bt).max() < 0.01  # int16 packing at 0.01 K
    assert ((scene.bayes[..., 0] > 0) == fields.cloud).all() and set(np.unique(scene.bayes)) <= {0.0, 255.0}
    assert 0.1 < fields.cloud.mean() < 0.9  # clouds and clear sky in the same scene


def test_clouds_are_bright_and_cold(cm_data):
    product = next(p for p in slstr.find_products(cm_data / "products") if slstr.read_scene(p).day)
    scene = slstr.read_scene(product)
    cloud = scene.bayes[..., 0] > 0
    assert scene.refs[..., 0][cloud].mean() > scene.refs[..., 0][~cloud].mean() + 0.2
    assert scene.bts[..., 1][cloud].mean() < scene.bts[..., 1][~cloud].mean() - 5


def test_matchup_table(cm_data):
    table = pd.read_hdf(cm_data / "sst_matchups.h5")
    assert list(table.columns) == MATCHUP_COLUMNS and len(table) > PRODUCTS * 20
    assert table.bayes_in.gt(0).any() and table.bayes_in.eq(0).any()  # buoys under clear and cloudy sky
    assert table.x_cems.between(0, COLUMNS - 1).all() and table.y_cems.between(0, ROWS - 1).all()
    names = {p.name for p in slstr.find_products(cm_data / "products")}
    assert set(table.cems_path) <= names


def test_bad_data_flags_are_one_line(tmp_path):
    proc = run_mlscale("data", "cloud-mask", "--out", tmp_path, "--rows", 4, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--rows" in proc.stderr
    assert not any(tmp_path.iterdir())
