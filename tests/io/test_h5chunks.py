"""The direct chunk reader (mlscale/io/h5chunks.py): byte for byte what h5py reads, on every path."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import zlib

import h5py
import numpy as np
import pytest
from support.run import child_env

import mlscale.io.h5chunks as h5chunks
from mlscale.errors import UserError
from mlscale.io.h5chunks import ChunkedSlices
from mlscale.io.larcv import LarcvFile, LarcvWriter

REAL = "cosmic_tagging_light.h5"
WIRE, SEG = "sbndwire", "sbnd_cosmicseg"
VOXELS = f"Data/sparse2d_{WIRE}_group/voxels"
# Slices that start, end and sit inside chunks (1000 rows each), cross many, and cover everything.
SLICES = [(0, 1), (999, 1001), (1000, 2000), (5, 123_457), (40_000, 40_999), (200_000, 276_764), (0, 276_764)]


@pytest.fixture
def real(real_cosmic_file):
    return real_cosmic_file


@pytest.fixture(params=["serial", "parallel"])
def tasks(request, monkeypatch):
    """Serial: one task per slice. Parallel: 4 tasks of at least 2 chunks each, on the thread pool."""
    if request.param == "parallel":
        monkeypatch.setattr(h5chunks, "WORKERS", 4)
        monkeypatch.setattr(h5chunks, "CHUNKS_PER_TASK", 2)
        monkeypatch.setattr(h5chunks, "idle_cores", lambda: 4)  # whatever the machine's load
    else:
        monkeypatch.setattr(h5chunks, "WORKERS", 1)
    return request.param


def wire_rows(path) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5[VOXELS][:]


def _check_slices(path, name: str, slices) -> ChunkedSlices:
    with h5py.File(path, "r") as h5, open(path, "rb") as raw:
        ds = h5[name]
        reader = ChunkedSlices(ds, raw.fileno())
        reference = ds[:]
        for lo, hi in slices:
            got = reader.read(lo, hi)
            assert got.dtype == reference.dtype and got.tobytes() == reference[lo:hi].tobytes(), (lo, hi)
        assert reader.direct, "the direct path must have been taken, not h5py's"
    return reader


@pytest.mark.parametrize("inflater", sorted(h5chunks.INFLATERS))
def test_slices_match_h5py(real, tasks, inflater, monkeypatch):
    threads = set()

    def inflate(raw, size):
        threads.add(threading.current_thread().name.split("_")[0])
        return h5chunks.INFLATERS[inflater](raw, size)

    monkeypatch.setitem(h5chunks.INFLATERS, "recording", inflate)
    monkeypatch.setattr(h5chunks, "INFLATER", "recording")
    # Consecutive slices share a chunk: the kept one must be the right one, also after a jump back.
    consecutive = [(0, 1500), (1500, 3200), (3200, 3201), (3201, 9000), (100, 2100)]
    _check_slices(real, VOXELS, SLICES + consecutive)
    assert threads == ({"MainThread", "h5inflate"} if tasks == "parallel" else {"MainThread"})


def test_chunks_out_of_file_order(real, tasks, tmp_path):
    """Appends interleaved between producers leave each dataset's chunks in several separate runs."""
    with LarcvFile(real) as f:
        wire, seg = f.read(WIRE), f.read(SEG)
    path = tmp_path / "interleaved.h5"
    with LarcvWriter(path, [WIRE, SEG]) as writer:
        for event in range(wire.n_events):
            writer.append({WIRE: wire.select([event]), SEG: seg.select([event])})
    with h5py.File(path, "r") as h5:
        spans = []
        h5[VOXELS].id.chunk_iter(lambda info: spans.append((info.byte_offset, info.size)))
    gaps = sum(b[0] != a[0] + a[1] for a, b in zip(spans, spans[1:]))
    assert gaps >= 4, "the file should hold the voxel chunks in separate runs"
    _check_slices(path, VOXELS, SLICES)
    # Chunks written last to first lie backwards in the file.
    backwards = tmp_path / "backwards.h5"
    rows = wire_rows(real)
    with h5py.File(backwards, "w") as h5:
        ds = h5.create_dataset(VOXELS, shape=rows.shape, dtype=rows.dtype, chunks=(1000,), compression="gzip")
        for start in reversed(range(0, len(rows), 1000)):
            block = np.zeros(1000, rows.dtype)
            block[: len(rows) - start] = rows[start : start + 1000]
            ds.id.write_direct_chunk((start,), zlib.compress(block.tobytes(), 1))
    _check_slices(backwards, VOXELS, SLICES)
    with LarcvFile(path) as f:
        again = [f.read(WIRE, [event]) for event in range(wire.n_events)]
    assert np.array_equal(np.concatenate([e.ids for e in again]), wire.ids)
    assert np.array_equal(np.concatenate([e.values for e in again]), wire.values)


def test_damaged_chunk_in_a_pool_task_is_a_one_line_error(real, tmp_path, monkeypatch):
    monkeypatch.setattr(h5chunks, "WORKERS", 4)
    monkeypatch.setattr(h5chunks, "CHUNKS_PER_TASK", 2)
    monkeypatch.setattr(h5chunks, "idle_cores", lambda: 4)
    damaged = tmp_path / "damaged.h5"
    shutil.copy(real, damaged)
    with h5py.File(damaged, "r") as f:
        info = f[VOXELS].id.get_chunk_info(20)  # inside event 0's slice, in the second of its tasks
    with open(damaged, "r+b") as raw:
        raw.seek(info.byte_offset + info.size // 2)
        raw.write(b"\x00" * 32)
    with LarcvFile(damaged) as f, pytest.raises(UserError) as err:
        f.read(WIRE, [0])
    message = str(err.value)
    assert message.startswith(f"{damaged}: {VOXELS}: unreadable (chunk 20 does not inflate")
    assert "\n" not in message


def test_chunk_past_the_end_of_the_file(real):
    """A chunk whose bytes would run past the end of the file (a file cut short) names the chunk."""
    with h5py.File(real, "r") as f, open(real, "rb") as raw:
        reader = ChunkedSlices(f[VOXELS], raw.fileno())
        reader.read(0, 1)  # builds the chunk table
        reader._offsets[3] = real.stat().st_size - 10
        with pytest.raises(OSError, match="chunk 3: file truncated"):
            reader.read(3000, 3001)


@pytest.mark.parametrize("threads", ["1", "3"])
def test_threads_fixed_by_the_environment_ignore_the_load(threads):
    """MLSCALE_H5_THREADS=N: exactly N inflating threads, whatever the machine's load average."""
    code = "from mlscale.io import h5chunks; print(h5chunks.WORKERS, h5chunks.idle_cores())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=child_env({"MLSCALE_H5_THREADS": threads})).stdout.split()  # fmt: skip
    assert out == [threads, threads]
