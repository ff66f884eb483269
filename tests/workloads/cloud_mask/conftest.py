"""cloud-mask fixtures: one tiny synthetic data set (12 products of 64x96 on the in grid), its
conversion, and one short training run, shared by the tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cloud_mask import COLUMNS, PRODUCTS, ROWS, TINY
from support.run import run_mlscale


@pytest.fixture(scope="package")
def cm_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cloud_data")
    run_mlscale("data", "cloud-mask", "--out", out, "--products", PRODUCTS, "--rows", ROWS, "--columns", COLUMNS,
                "--night-fraction", 0.25, "--buoys", 40)  # fmt: skip
    return out


@pytest.fixture(scope="package")
def cm_hdf(cm_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cloud_hdf") / "hdf"
    run_mlscale("cloud-mask", "convert", cm_data / "products", out, "--no-progress")
    return out


@pytest.fixture(scope="package")
def cm_trained(cm_hdf, tmp_path_factory) -> dict:
    """One 1-rank torch training run of 6 epochs: its run directory and saved weights."""
    root = tmp_path_factory.mktemp("cloud_runs")
    weights = root / "unet.pt"
    run_mlscale("run", "cloud-mask", "--data", cm_hdf, *TINY, "--batch-size", 8, "--epochs", 6, "--backend", "single",
                "--out", root, "--run-id", "train1", "--save-weights", weights)  # fmt: skip
    return {"root": root, "run": root / "train1", "weights": weights}
