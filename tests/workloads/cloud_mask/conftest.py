"""cloud-mask fixtures: one tiny synthetic data set (12 products of 64x96 on the in grid), its
conversion, and one short training run, shared by the tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.run import run_mlscale

PRODUCTS = 12
ROWS, COLUMNS = 64, 96
# A U-Net small enough for seconds on a CPU: 32-pixel patches (6 per image), width 16.
TINY = ["--patch-size", "32", "--loss-border", "4", "--infer-border", "4", "--width", "16", "--no-progress"]


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


def majority_baseline(hdf: Path, border: int = 4) -> float:
    """Test accuracy of always answering the test split's majority class (on the scored pixels)."""
    import h5py
    import numpy as np

    from mlscale.workloads.cloud_mask.pipeline import list_files, split_files

    cloudy = []
    for path in split_files(list_files(str(hdf)), 0.2, 42)["test"]:
        with h5py.File(path) as h5:
            labels = h5["bayes"][:, :, 0] > 0  # 64x96 images: the 32-pixel patches cover all of them
        patches = labels.reshape(2, 32, 3, 32).transpose(0, 2, 1, 3)[:, :, border:-border, border:-border]
        cloudy.append(patches.mean())
    cloudy_fraction = float(np.mean(cloudy))
    return max(cloudy_fraction, 1 - cloudy_fraction)


def mask_agreement(run_dir: Path, hdf: Path) -> float:
    """Mean pixel agreement of a run's stitched masks with the Bayesian labels; checks their format."""
    import h5py
    import numpy as np

    masks = sorted(run_dir.glob("*.h5"))
    assert len(masks) == PRODUCTS
    agreement = []
    for mask in masks:
        with h5py.File(mask) as h5:
            m = h5["mask"][:]
        assert m.shape == (1, ROWS, COLUMNS, 1) and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
        with h5py.File(next(hdf.rglob(mask.stem + ".hdf"))) as h5:
            agreement.append(((m[0] >= 0.5) == (h5["bayes"][:] > 0)).mean())
    return float(np.mean(agreement))
