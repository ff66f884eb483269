"""cloud-mask on the TensorFlow engine under Horovod's TensorFlow binding (`--framework tf --backend horovod`,
the seed's set-up) on a real `mpirun -np 2`: the runner's collectives through horovod.tensorflow,
2 ranks following the 1-rank run for the same global batch, and the per-rank records and phase timings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.cloud_mask import TINY
from support.run import child_env, mpirun_prefix, run_mlscale

from mlscale.results.record import load_ranks, load_record

# Checked in a child process: TensorFlow loaded into the test process makes a later torch import of
# triton crash (segmentation fault) in tests that run after this module is collected.
_probe = subprocess.run([sys.executable, "-c", "import horovod.tensorflow"], capture_output=True, text=True)
if _probe.returncode != 0:  # `make test` builds it first (mk/horovod.mk); a bare pytest may not have it
    why = (_probe.stderr.strip().splitlines() or ["no error text"])[-1]
    pytest.skip(f"horovod.tensorflow is not importable ({why}); build it with `make horovod`", allow_module_level=True)

TF = ["--framework", "tf", *TINY]
YIELD = {"OMPI_MCA_mpi_yield_when_idle": "1"}


def test_tf_horovod_two_ranks_follow_one_rank(cm_hdf, tmp_path):
    """Every training patch in one step (global batch 60 = 2 x 30), 3 epochs from the seeded initial weights:
    the 2-rank Horovod run's losses are the 1-rank run's within 2%, and training moved them."""
    common = ["run", "cloud-mask", "--data", cm_hdf, *TF, "--global-batch-size", 60, "--epochs", 3, "--out", tmp_path]
    run_mlscale(*common, "--backend", "single", "--run-id", "one")
    # Two ranks fill the test machine's cores: Open MPI yields while Horovod's background thread waits
    # (docs/benchmarks.md: its busy-polling halves the speed there).
    run_mlscale(*common, "--backend", "horovod", "--run-id", "two", ranks=2, env=YIELD)
    one, two = load_record(tmp_path / "one"), load_record(tmp_path / "two")
    assert two["backend"] == "horovod" and two["num_ranks"] == 2 and two["global_batch_size"] == 60
    assert two["batch_size"] == 30
    losses = [e["train_loss"] for e in one["epoch_stats"]]
    assert losses[-1] < 0.95 * losses[0], losses  # it trained
    for a, b in zip(one["epoch_stats"], two["epoch_stats"], strict=True):
        for key in ("train_loss", "test_loss"):
            assert abs(a[key] - b[key]) <= 0.02 * a[key], (key, a, b)

    # The same per-rank phase timings as any run: every rank timed its data wait and its steps.
    ranks = load_ranks(tmp_path / "two")
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    for phase in ("data_wait", "forward"):
        assert two["phases"][phase]["count"] == 2 * 3, (phase, two["phases"][phase])  # 1 step x 3 epochs x 2 ranks


def test_tf_collectives_through_horovod_tensorflow(tmp_path):
    """The runner's collectives (allreduce, gather, bcast, scatter, barrier) on horovod.tensorflow, torch not loaded."""
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    cmd = [*mpirun_prefix(2), sys.executable, str(probe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=child_env(YIELD))
    assert proc.returncode == 0, f"exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    found = [json.loads(line.split("RESULT ", 1)[1]) for line in proc.stdout.splitlines() if "RESULT " in line]
    r0, r1 = sorted(found, key=lambda r: r["rank"])
    for r in (r0, r1):
        assert (r["size"], r["sum"], r["max"]) == (2, 3.0, [1.0, 0.0])
        assert r["bcast"] == {"from": 0} and r["tf_loaded"] and not r["torch_loaded"]
    assert [g["rank"] for g in r0["gather"]] == [0, 1] and r1["gather"] is None
    assert (r0["scatter"], r1["scatter"]) == ([0, 1], [2, 3])


PROBE = """
import json
import sys

import numpy as np

from mlscale.launch.comm import create_communicator
from mlscale.launch.env import detect_environment

comm = create_communicator("horovod", detect_environment(), framework="tensorflow")
r = comm.rank
out = {"rank": r, "size": comm.size, "sum": comm.allreduce(float(r + 1), "sum"),
       "max": comm.allreduce(np.array([r, -r], dtype=np.float64), "max").tolist(),
       "gather": comm.gather({"rank": r}), "bcast": comm.bcast({"from": r}),
       "scatter": comm.scatter_array(list(np.arange(4).reshape(2, 2)) if r == 0 else None).tolist(),
       "tf_loaded": "tensorflow" in sys.modules, "torch_loaded": "torch" in sys.modules}
comm.barrier()
comm.close()
print("RESULT " + json.dumps(out), flush=True)
"""
