"""larcv3 sparse2d: our h5py reader and writer against the real CosmicTagger sample file."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import torch
from support.run import run_mlscale

from mlscale.errors import UserError
from mlscale.io.larcv import DATASETS, LarcvFile, LarcvWriter, densify, densify_labels

REAL = "cosmic_tagging_light.h5"
WIRE, SEG = "sbndwire", "sbnd_cosmicseg"


@pytest.fixture
def real(real_cosmic_file):
    return real_cosmic_file


def test_reader_on_real_file(real):
    with LarcvFile(real) as f:
        assert f.n_entries == 5
        assert {WIRE, SEG} <= set(f.producers())
        wire, seg = f.read(WIRE), f.read(SEG)
        raw = f.h5[f"Data/sparse2d_{WIRE}_group/voxels"][:]
        voxel_extents = f.h5[f"Data/sparse2d_{WIRE}_group/voxel_extents"][:]
    assert wire.shape == (1280, 2048)  # (H, W) = (ny, nx) from image_meta
    assert wire.counts.reshape(-1).tolist() == voxel_extents["N"].tolist()
    assert np.array_equal(wire.ids, raw["id"].astype(np.int64)) and np.array_equal(wire.values, raw["value"])
    assert np.array_equal(seg.ids, wire.ids)
    assert set(np.unique(seg.values)) == {0.0, 1.0, 2.0}
    assert wire.values.min() >= 5.0

    image, labels = densify(wire), densify_labels(seg)
    assert image.shape == (5, 3, 1280, 2048) and labels.shape == image.shape
    # Every voxel lands on its own pixel (ids are unique per plane), none is lost.
    assert int((image > 0).sum()) == len(wire.ids)
    assert np.isclose(image.sum(dtype=np.float64), wire.values.sum(dtype=np.float64), rtol=1e-6)
    # x = id // 1280 runs over the 2048 columns: the real data uses columns beyond 1280.
    assert (image[:, :, :, 1280:] > 0).any()
    first = wire.ids[0]
    assert image[0, 0, first % 1280, first // 1280] == wire.values[0]
    assert np.bincount(labels.ravel(), minlength=3)[1:].tolist() == np.bincount(seg.values.astype(int))[1:].tolist()


def test_downsampling_is_average_and_max_pooling(real):
    with LarcvFile(real) as f:
        wire, seg = f.read(WIRE, [1, 4]), f.read(SEG, [1, 4])
    full, labels = torch.from_numpy(densify(wire)), torch.from_numpy(densify_labels(seg))
    small, small_labels = densify(wire, 2), densify_labels(seg, 2)
    assert small.shape == (2, 3, 640, 1024)
    np.testing.assert_allclose(small, torch.nn.functional.avg_pool2d(full, 2).numpy(), rtol=1e-5, atol=1e-3)
    pooled = torch.nn.functional.max_pool2d(labels.float(), 2).to(torch.uint8).numpy()
    assert np.array_equal(small_labels, pooled)


def test_entries_in_any_order(real):
    with LarcvFile(real) as f:
        picked = f.read(WIRE, [3, 0, 3])
        one = f.read(WIRE, [3])
        zero = f.read(WIRE, [0])
    assert picked.n_events == 3
    assert np.array_equal(picked.select([0]).ids, one.ids) and np.array_equal(picked.select([2]).values, one.values)
    assert np.array_equal(picked.select([1]).ids, zero.ids)


def test_writer_round_trip_matches_larcv3_layout(real, tmp_path):
    out = tmp_path / "copy.h5"
    with LarcvFile(real) as f:
        wire, seg, event_ids = f.read(WIRE), f.read(SEG), f.event_ids()
    with LarcvWriter(out, [WIRE, SEG]) as writer:
        writer.append({WIRE: wire.select([0, 1, 2]), SEG: seg.select([0, 1, 2])}, event_ids[:3])
        writer.append({WIRE: wire.select([3, 4]), SEG: seg.select([3, 4])}, event_ids[3:])
    assert not list(tmp_path.glob(".*tmp*"))
    with h5py.File(real, "r") as a, h5py.File(out, "r") as b:
        pairs = [("Events/event_id", "Events/event_id")]
        for producer in (WIRE, SEG):
            pairs += [(f"Data/sparse2d_{producer}_group/{d}",) * 2 for d in DATASETS]
        for name, _ in pairs:
            da, db = a[name], b[name]
            assert db.dtype == da.dtype, name  # compound layouts incl. padding offsets and itemsize
            assert (db.chunks, db.compression, db.compression_opts, db.maxshape) == (
                da.chunks, da.compression, da.compression_opts, da.maxshape), name  # fmt: skip
            va, vb = da[:], db[:]
            for field in da.dtype.names:  # field by field: the real file carries garbage in its padding
                assert np.array_equal(va[field], vb[field]), (name, field)
    with LarcvFile(out) as g:
        assert np.array_equal(g.read(SEG).values, seg.values)


def _bad_file(kind: str, real, tmp_path):
    if kind == "truncated":
        path = tmp_path / "truncated.h5"
        data = real.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "not-larcv":
        path = tmp_path / "plain.h5"
        with h5py.File(path, "w") as f:
            f["images"] = np.zeros((2, 3))
    elif kind == "id-out-of-range":
        path = tmp_path / "bad_ids.h5"
        shutil.copy(real, path)
        with h5py.File(path, "r+") as f:
            voxels = f[f"Data/sparse2d_{WIRE}_group/voxels"]
            row = voxels[10]
            row["id"] = 1280 * 2048 + 5
            voxels[10] = row
    else:
        path = real
    return path


@pytest.mark.parametrize(
    "kind, flags, message",
    [
        ("missing-producer", ["--image-producer", "nosuch"], "Data/sparse2d_nosuch_group: no such sparse2d producer"),
        ("not-larcv", [], "not a larcv3 file"),
        ("truncated", [], "not a readable HDF5 file"),
        ("id-out-of-range", [], f"Data/sparse2d_{WIRE}_group/voxels: voxel id 2621445 out of range"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(kind, flags, message, real, tmp_path):
    path = _bad_file(kind, real, tmp_path)
    proc = run_mlscale("run", "cosmic-tagger", "--mode", "iotest", "--backend", "single", "--data", path,
                       "--batch-size", "1", "--out", tmp_path / "runs", *flags, check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    # The runner's INFO log line may precede it; the error itself is exactly one line.
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("mlscale: error: "), proc.stderr
    assert str(path) in errors[0] and message in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any(
        p.name.endswith("record.json") for p in (tmp_path / "runs").rglob("*")
    )


def test_reader_errors_name_the_dataset(real, tmp_path):
    path = tmp_path / "mismatch.h5"
    shutil.copy(real, path)
    with h5py.File(path, "r+") as f:
        f[f"Data/sparse2d_{WIRE}_group/voxel_extents"].resize((14,))
    with pytest.raises(UserError, match=f"{path}: Data/sparse2d_{WIRE}_group/voxel_extents: 14 rows"):
        LarcvFile(path).read(WIRE)


def test_chunk_reader_falls_back_and_detects_damage(real, tmp_path):
    """Datasets with filters other than gzip go through h5py; a damaged chunk is a one-line error."""
    with LarcvFile(real) as f:
        wire, seg = f.read(WIRE), f.read(SEG)
    shuffled = tmp_path / "shuffled.h5"
    with LarcvWriter(shuffled, [WIRE, SEG]) as writer:
        writer.append({WIRE: wire, SEG: seg})
    with h5py.File(shuffled, "r+") as f:
        group = f[f"Data/sparse2d_{WIRE}_group"]
        rows = group["voxels"][:]
        del group["voxels"]
        group.create_dataset("voxels", data=rows, chunks=(1000,), maxshape=(None,), compression="gzip", shuffle=True)
    with LarcvFile(shuffled) as f:
        again = f.read(WIRE, [2, 3])
    assert np.array_equal(again.ids, wire.select([2, 3]).ids)

    damaged = tmp_path / "damaged.h5"
    shutil.copy(real, damaged)
    with h5py.File(damaged, "r") as f:
        info = f[f"Data/sparse2d_{WIRE}_group/voxels"].id.get_chunk_info(3)
    with open(damaged, "r+b") as raw:
        raw.seek(info.byte_offset + 10)
        raw.write(b"\xff" * 64)
    with pytest.raises(UserError, match=f"{damaged}: Data/sparse2d_{WIRE}_group/voxels: unreadable"):
        LarcvFile(damaged).read(WIRE, [0])
