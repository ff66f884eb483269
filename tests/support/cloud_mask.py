"""cloud-mask test helpers: the tiny data set's size, the tiny U-Net's flags, and the accuracy yardsticks."""

from __future__ import annotations

from pathlib import Path

PRODUCTS = 12
ROWS, COLUMNS = 64, 96
# A U-Net small enough for seconds on a CPU: 32-pixel patches (6 per image), width 16.
TINY = ["--patch-size", "32", "--loss-border", "4", "--infer-border", "4", "--width", "16", "--no-progress"]


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
