"""Compatibility with the larcv3 library itself (built by `make larcv`; skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest
from support.run import REAL_DATA

from mlscale.io.larcv import LarcvFile, LarcvWriter, densify
from mlscale.workloads.cosmic_tagger.synth import EventGenerator, SynthParams

larcv = pytest.importorskip("larcv", reason="larcv3 is not installed (make larcv builds it into the wheel cache)")

PRODUCERS = ("sbndwire", "sbnd_cosmicseg")


def _real():
    return REAL_DATA / "cosmic_tagging_light.h5"


def _larcv3_events(path, producers=PRODUCERS):
    """Every entry through larcv3's IOManager: {producer: [event][plane] -> (ids, values, meta)}."""
    io = larcv.IOManager(larcv.IOManager.kREAD)
    io.add_in_file(str(path))
    io.initialize()
    out = {p: [] for p in producers}
    for entry in range(io.get_n_entries()):
        io.read_entry(entry)
        for p in producers:
            planes = []
            for tensor in io.get_data("sparse2d", p).as_vector():
                meta = tensor.meta()
                planes.append((np.asarray(tensor.indexes()).astype(np.int64), np.asarray(tensor.values()),
                               (meta.number_of_voxels(0), meta.number_of_voxels(1)), meta.id()))  # fmt: skip
            out[p].append(planes)
    n = io.get_n_entries()
    io.finalize()
    return n, out


def _assert_same(path, theirs_n, theirs):
    with LarcvFile(path) as f:
        assert f.n_entries == theirs_n
        for producer, events in theirs.items():
            ours = f.read(producer)
            assert ours.counts.tolist() == [[len(ids) for ids, *_ in event] for event in events]
            ids = np.concatenate([ids for event in events for ids, *_ in event])
            values = np.concatenate([v for event in events for _, v, *_ in event])
            assert np.array_equal(ours.ids, ids) and np.array_equal(ours.values, values)
            for event in events:
                for plane, (_, _, nv, projection) in enumerate(event):
                    assert nv == (ours.shape[1], ours.shape[0]) and projection == plane


def test_real_file_reads_identically_with_larcv3():
    path = _real()
    n, theirs = _larcv3_events(path)
    _assert_same(path, n, theirs)


def test_larcv3_opens_files_we_write(tmp_path):
    path = tmp_path / "ours.h5"
    charge, labels = EventGenerator(SynthParams(shape=(128, 256)), seed=3).events(4)
    with LarcvWriter(path, list(PRODUCERS)) as writer:
        writer.append({"sbndwire": charge, "sbnd_cosmicseg": labels}, np.arange(4))
    n, theirs = _larcv3_events(path)
    assert n == 4
    _assert_same(path, n, theirs)
    # larcv3's dense() is [x, y]; ours is [plane, y, x].
    io = larcv.IOManager(larcv.IOManager.kREAD)
    io.add_in_file(str(path))
    io.initialize()
    io.read_entry(2)
    dense = np.asarray(io.get_data("sparse2d", "sbndwire").sparse_tensor(1).dense())
    io.finalize()
    assert np.array_equal(dense.T, densify(charge.select([2]))[0, 1])
