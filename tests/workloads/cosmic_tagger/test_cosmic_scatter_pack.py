"""Strategy scatter's packed buffers, in one process (the single backend): one slot per voxel for charge and label."""

from __future__ import annotations

import numpy as np
import pytest

from mlscale.errors import UserError
from mlscale.io.larcv import LarcvFile, LarcvWriter, SparseEvents, densify, densify_labels
from mlscale.launch.comm import create_communicator
from mlscale.launch.env import detect_environment
from mlscale.workloads.cosmic_tagger.loader import CosmicLoader
from mlscale.workloads.cosmic_tagger.synth import EventGenerator, SynthParams

WIRE, SEG = "sbndwire", "sbnd_cosmicseg"
SHAPE = (64, 128)


@pytest.fixture
def comm():
    return create_communicator("single", detect_environment({}, use_mpi=False))


@pytest.fixture
def events() -> tuple[SparseEvents, SparseEvents]:
    return EventGenerator(SynthParams(shape=SHAPE), seed=3).events(4)


def _write(path, charge: SparseEvents, labels: SparseEvents):
    with LarcvWriter(path, [WIRE, SEG]) as writer:
        writer.append({WIRE: charge, SEG: labels})
    return path


def _batches(path, comm, strategy: str) -> list:
    loader = CosmicLoader(path, comm, 2, strategy, shuffle=False, as_torch=False)
    try:
        return list(loader)
    finally:
        loader.close()


def test_scatter_batches_equal_the_file(comm, events, tmp_path):
    path = _write(tmp_path / "ok.h5", *events)
    batches = _batches(path, comm, "scatter")
    assert len(batches) == 2
    with LarcvFile(path) as f:
        for step, (x, y, entries) in enumerate(batches):
            assert entries.tolist() == [2 * step, 2 * step + 1]
            assert np.array_equal(x, densify(f.read(WIRE, entries)))
            assert np.array_equal(y, densify_labels(f.read(SEG, entries)))


def test_labels_off_the_charge_voxels(comm, events, tmp_path):
    """Equal counts per plane, but one label voxel moved to a pixel without charge."""
    charge, labels = events
    ids = labels.ids.copy()
    plane0 = set(ids[: labels.counts[0, 0]].tolist())
    ids[0] = next(i for i in range(SHAPE[0] * SHAPE[1]) if i not in plane0)
    moved = SparseEvents(labels.counts, ids, labels.values, labels.shape)
    path = _write(tmp_path / "moved.h5", charge, moved)
    with pytest.raises(UserError, match=f"{path}: Data/sparse2d_{SEG}_group/voxels: label voxels are not the"):
        _batches(path, comm, "scatter")
    # Strategies that densify each producer on its own voxels take the file as it is.
    x, y, entries = _batches(path, comm, "indices")[0]
    assert np.array_equal(y, densify_labels(moved.select(entries)))
