"""The garbage-collection policy around timed steps (mlscale/bench/gcpolicy.py) and the
per-rank GC pause record (observers_lib/gcpauses.py)."""

from __future__ import annotations

import gc
import json

import pytest
from support.run import TINY_SYNTHETIC, run_mlscale

from mlscale.bench.gcpolicy import GcPolicy


@pytest.fixture
def restore_gc():
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable() if enabled else gc.disable()


def test_freeze_moves_set_up_objects_out_of_collections_and_end_undoes_it(restore_gc):
    gc.unfreeze()
    policy = GcPolicy("freeze")
    policy.before_timed()
    assert gc.get_freeze_count() > 1000  # this test process: pytest, mlscale, numpy...
    assert gc.isenabled()  # cycles made during the run are still collected
    policy.end()
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_manual_switches_automatic_collection_off_until_the_end(restore_gc):
    policy = GcPolicy("manual")
    policy.before_timed()
    assert not gc.isenabled()
    policy.between_epochs()
    assert not gc.isenabled()
    policy.end()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_python_policy_touches_nothing(restore_gc):
    gc.unfreeze()
    policy = GcPolicy("python")
    policy.before_timed()
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def _gc_record(run_dir) -> list[dict]:
    return [json.loads(line)["observers"]["gc"] for line in (run_dir / "ranks.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("policy, epochs", [("manual", 2), ("manual", 3)])
def test_manual_runs_only_the_collections_between_epochs(tmp_path, policy, epochs):
    args = [a if a != "2" or TINY_SYNTHETIC[i - 1] != "--epochs" else str(epochs) for i, a in enumerate(TINY_SYNTHETIC)]
    run_mlscale("run", "synthetic", *args, "--gc", policy, "--run-id", "r", "--out", str(tmp_path), ranks=2)
    for rank in _gc_record(tmp_path / "r"):
        # one full collection after each epoch, none inside: automatic collection was off
        assert rank["collections"] == epochs and rank["full_collections"] == epochs, rank
        assert rank["pause_max_s"] >= 0 and rank["pause_total_s"] >= rank["pause_max_s"]


def test_unknown_policy_is_a_one_line_error(tmp_path):
    proc = run_mlscale("run", "synthetic", *TINY_SYNTHETIC, "--gc", "never", "--out", str(tmp_path), check=False)
    assert proc.returncode == 2
    assert "--gc" in proc.stderr and "Traceback" not in proc.stderr
