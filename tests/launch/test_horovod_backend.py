"""--backend horovod on real 2-rank launches: collectives, broadcasts and gradient averaging under
horovodrun's MPI and Gloo controllers, records under horovodrun, and loss parity with DDP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.run import REPO, child_env, run_mlscale

try:
    import horovod.torch  # noqa: F401
except ImportError as exc:  # `make test` builds it first (mk/horovod.mk); a bare pytest may not have it
    pytest.skip(f"horovod is not importable ({exc}); build it with `make horovod`", allow_module_level=True)

PROBE = REPO / "tests" / "launch" / "scripts" / "horovod_probe.py"
VENV_BIN = Path(sys.executable).parent
# A tiny synthetic run: 3 epochs of 6 steps, 2 ranks x 8 samples.
TINY = (
    "synthetic --model tiny --image-size 32 --num-classes 10 --batch-size 8 --steps-per-epoch 6 --test-steps 2".split()
)
EPOCHS = ["--epochs", "3", "--no-progress"]


def horovodrun(*args: str, gloo: bool, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = shutil.which("horovodrun", path=str(VENV_BIN) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("horovodrun not found next to the test's python")
    # horovodrun's MPI mode runs the venv's mpirun, so the venv's bin must come first on PATH.
    env = child_env({"PATH": str(VENV_BIN) + os.pathsep + os.environ.get("PATH", "")})
    cmd = [exe, "-np", "2", *(["--gloo"] if gloo else []), sys.executable, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def results(stdout: str) -> list[dict]:
    # horovodrun prefixes each line with the rank ("[1]<stdout>:" or "[1,1]<stdout>:").
    found = [json.loads(line.split("RESULT ", 1)[1]) for line in stdout.splitlines() if "RESULT " in line]
    return sorted(found, key=lambda r: r["rank"])


@pytest.mark.parametrize("controller", ["mpi", "gloo"])
def test_collectives_and_training_hooks(controller):
    ranks = results(horovodrun(str(PROBE), gloo=controller == "gloo").stdout)
    assert [r["rank"] for r in ranks] == [0, 1]
    r0, r1 = ranks
    assert r0["launcher"] == ("horovodrun" if controller == "gloo" else "openmpi")
    for r in ranks:
        assert (r["size"], r["env_rank"]) == (2, r["rank"])
        assert r["sum"] == 3.0 and r["mean"] == 1.5
        assert r["max"] == [1.0, 0.0] and r["min"] == [0.0, -1.0]
        assert r["bcast0"] == {"from": 0} and r["bcast1"] == 10
    assert [g["rank"] for g in r0["gather"]] == [0, 1] and r1["gather"] is None
    assert r0["scatter"] == [[0, 1, 2], [0.0, 0.25, 0.5]]
    assert r1["scatter"] == [[10, 11, 12], [1.0, 1.25, 1.5]]
    assert [r["inference_scatter"] for r in ranks] == [[0, 1], [2, 3]]
    assert [r["inference_sum"] for r in ranks] == [2.0, 2.0]

    # Rank 0's weights and batch-norm buffers everywhere.
    assert r0["state"] == r1["state"]
    assert 1.0 in r0["state"] and 2.0 not in r1["state"][-8:]  # running_mean came from rank 0
    # Wrapping a fresh optimizer: rank 0's options, no phantom step (weights, Adam step count).
    assert [r["lr"] for r in ranks] == [0.1, 0.1]
    assert not r0["moved_by_wrap"] and not r1["moved_by_wrap"]
    assert r0["state_entries_after_wrap"] == r1["state_entries_after_wrap"] == 0
    assert r0["adam_steps"] == r1["adam_steps"] == [1.0] * 4
    # Gradients are the mean of the ranks' local gradients; the step keeps the ranks identical.
    assert r0["local_grad"] != r1["local_grad"]
    expected = (np.array(r0["local_grad"]) + np.array(r1["local_grad"])) / 2
    np.testing.assert_allclose(r0["grad"], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(r1["grad"], expected, rtol=1e-5, atol=1e-7)
    assert r0["params_after_step"] == r1["params_after_step"]
    # An optimizer resumed with rank-specific state gets rank 0's state.
    assert r0["momentum"] == r1["momentum"] and set(r0["momentum"]) == {1.0}


def epoch_losses(out: Path) -> np.ndarray:
    (run_dir,) = [p for p in out.iterdir() if (p / "record.json").is_file()]
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "ok" and record["num_ranks"] == 2
    return np.array([[e["train_loss"], e["test_loss"], e["train_metrics"]["accuracy"]] for e in record["epoch_stats"]])


def test_same_loss_trajectory_as_ddp(tmp_path):
    """Same seed, same global batch (2 x 8): DDP (gloo) and Horovod (MPI) train the same model."""
    losses = {}
    for backend in ("ddp", "horovod"):
        run_mlscale("run", *TINY, *EPOCHS, "--backend", backend, "--out", str(tmp_path / backend), ranks=2)
        losses[backend] = epoch_losses(tmp_path / backend)
    ddp, hvd = losses["ddp"], losses["horovod"]
    assert ddp.shape == (3, 3)
    assert not np.allclose(ddp[0, 0], ddp[-1, 0], rtol=1e-3), "training did not change the loss"
    np.testing.assert_allclose(hvd, ddp, rtol=1e-4, atol=1e-6)


def test_cosmic_tagger_same_losses_as_ddp_with_inference(tmp_path):
    """The other torch workload: UResNet on sparse larcv events, read by rank 0 and scattered (also inside
    the inference pass, which runs under torch.inference_mode)."""
    data = tmp_path / "data"
    run_mlscale("data", "cosmic-tagger", "--out", data, "--events", 8, "--test-events", 4, "--height", 32,
                "--width", 64, "--cosmics", 2)  # fmt: skip
    net = "--n-initial-filters 4 --network-depth 2 --res-blocks-per-layer 1 --res-blocks-deepest-layer 1"
    args = ["cosmic-tagger", "--data", data, *net.split(), "--res-blocks-final", "1", "--batch-size", "2"]
    args += ["--epochs", "2", "--io-strategy", "scatter", "--infer", "--no-progress"]
    losses = {}
    for backend in ("ddp", "horovod"):
        run_mlscale("run", *args, "--backend", backend, "--out", tmp_path / backend, ranks=2)
        (run_dir,) = [p for p in (tmp_path / backend).iterdir() if (p / "record.json").is_file()]
        record = json.loads((run_dir / "record.json").read_text())
        assert record["status"] == "ok" and record["inference"]["samples"] == 4
        losses[backend] = [[e["train_loss"], e["test_loss"]] for e in record["epoch_stats"]]
    np.testing.assert_allclose(losses["horovod"], losses["ddp"], rtol=1e-4, atol=1e-6)


def test_horovodrun_gloo_writes_a_record_the_report_reads(tmp_path):
    out = tmp_path / "runs"
    args = [*TINY, "--epochs", "1", "--no-progress", "--backend", "horovod", "--out", str(out)]
    horovodrun("-m", "mlscale", "run", *args, gloo=True)
    (run_dir,) = [p for p in out.iterdir() if (p / "record.json").is_file()]
    record = json.loads((run_dir / "record.json").read_text())
    summary = (record["status"], record["launcher"], record["backend"], record["num_ranks"])
    assert summary == ("ok", "horovodrun", "horovod", 2)
    assert record["epoch_stats"][0]["train_samples"] == 2 * 8 * 6
    report = run_mlscale("report", str(out), "--format", "csv").stdout
    assert record["run_id"] in report or "synthetic" in report
    rows = [line for line in report.splitlines() if line.startswith("synthetic") or ",synthetic," in line]
    assert rows, report
