"""methane-plume trained for its dense form: tiles with a ring of context (`mlscale data methane-plume
--context`), the in-context consistency loss and its training path (`--dense-consistency`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from support.run import run_mlscale

from mlscale.workloads.methane_plume.saliency import standardise
from mlscale.workloads.methane_plume.training import TileDataset

TILE, CONTEXT = 64, 32  # small tiles keep GoogLeNet fast; the context is one output cell (stride 32)


@pytest.fixture(scope="module")
def context_tiles(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plume-context")
    run_mlscale(
        "data", "methane-plume", "--out", out, "--flightlines", 0, "--train-tiles", 64, "--test-tiles", 32,
        "--tile-size", TILE, "--context", CONTEXT, "--positive-fraction", 0.4,
    )  # fmt: skip
    return out / "tiles.h5"


def test_context_tiles_keep_the_tile_at_the_centre(context_tiles):
    with h5py.File(context_tiles) as h5:
        assert h5["train/ch4"].shape == (64, TILE + 2 * CONTEXT, TILE + 2 * CONTEXT)
        assert (h5.attrs["tile_size"], h5.attrs["context"]) == (TILE, CONTEXT)
        crop = h5["train/ch4"][5]
    plain = TileDataset(context_tiles, "train", "COVID_QC")
    ringed = TileDataset(context_tiles, "train", "COVID_QC", with_context=True)
    assert plain[5][0].shape == (1, TILE, TILE) and ringed[5][0].shape == (1, TILE + 2 * CONTEXT, TILE + 2 * CONTEXT)
    centre = standardise(crop[CONTEXT:-CONTEXT, CONTEXT:-CONTEXT], "COVID_QC")
    np.testing.assert_array_equal(plain[5][0][0].numpy(), centre)
    np.testing.assert_array_equal(ringed[5][0][0, CONTEXT:-CONTEXT, CONTEXT:-CONTEXT].numpy(), centre)
    # the ring is real scene (noisy background), not constant padding
    ring = crop[:CONTEXT]
    assert (ring != -9999).mean() > 0.5 and ring[ring != -9999].std() > 50


def test_context_must_be_a_multiple_of_the_stride(tmp_path):
    proc = run_mlscale("data", "methane-plume", "--out", tmp_path, "--context", 30, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--context 30" in proc.stderr, proc.stderr
    assert not any(tmp_path.iterdir())
    shutil.rmtree(tmp_path, ignore_errors=True)
