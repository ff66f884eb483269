"""Distributed loading under a real `mpirun -np 2`: strategies scatter, indices and shard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.run import child_env, mpirun_prefix, run_mlscale

from mlscale.io.larcv import LarcvFile, densify, densify_labels

PROBE = Path(__file__).with_name("cosmic_loader_probe.py")
N_EVENTS, GLOBAL_BATCH = 12, 4


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cosmic")
    run_mlscale("data", "cosmic-tagger", "--out", out, "--events", N_EVENTS, "--test-events", 1,
                "--height", 64, "--width", 128)  # fmt: skip
    return out / "cosmic_tagging_train.h5"


@pytest.fixture(scope="module")
def probe(data_file, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("probe") / "batches.json"
    cmd = mpirun_prefix(2) + [sys.executable, str(PROBE), str(data_file), str(out), str(GLOBAL_BATCH)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=child_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _digest(array) -> str:
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_all_strategies_give_identical_batches(probe):
    ordered = {s: probe[f"{s}/ordered"] for s in ("scatter", "indices", "shard")}
    assert ordered["scatter"] == ordered["indices"] == ordered["shard"]
    steps = N_EVENTS // GLOBAL_BATCH
    for rank, batches in enumerate(ordered["scatter"]):
        assert len(batches) == 2 * steps  # two epochs
        for i, batch in enumerate(batches):
            step = i % steps
            local = GLOBAL_BATCH // 2
            start = step * GLOBAL_BATCH + rank * local
            assert batch["entries"] == list(range(start, start + local))
            assert batch["voxels"] > 0


def test_batches_equal_a_single_process_read(probe, data_file):
    """What a rank densifies after the scatter is what one process reading the file gets."""
    with LarcvFile(data_file) as f:
        for rank, batches in enumerate(probe["scatter/ordered"]):
            for batch in batches:
                entries = batch["entries"]
                charge = densify(f.read("sbndwire", entries), 2)
                labels = densify_labels(f.read("sbnd_cosmicseg", entries), 2)
                assert batch["charge"] == _digest(charge), (rank, entries)
                assert batch["labels"] == _digest(labels), (rank, entries)


def test_shuffled_epochs(probe):
    scatter, indices, shard = (probe[f"{s}/shuffle"] for s in ("scatter", "indices", "shard"))
    assert scatter == indices  # both follow the root's permutation
    steps = N_EVENTS // GLOBAL_BATCH
    for batches in (scatter, shard):
        for epoch in range(2):
            seen = sorted(e for rank in batches for b in rank if b["epoch"] == epoch for e in b["entries"])
            assert seen == list(range(N_EVENTS))  # every entry once per epoch
    epoch0 = [b["entries"] for b in scatter[0][:steps]]
    epoch1 = [b["entries"] for b in scatter[0][steps:]]
    assert epoch0 != epoch1 and epoch0 != [list(range(s * GLOBAL_BATCH, s * GLOBAL_BATCH + 2)) for s in range(steps)]
    # A shard never leaves its rank.
    for rank, batches in enumerate(shard):
        mine = {e for b in batches for e in b["entries"]}
        assert mine == {e for e in range(N_EVENTS) if (e % GLOBAL_BATCH) // 2 == rank}


def test_global_batch_must_divide_by_ranks(probe):
    assert probe["odd_batch_error"] and "global batch 5 does not divide by the 2 ranks" in probe["odd_batch_error"]
