"""An error on one rank, a dead rank or a silent one ends the whole job, under a real `mpirun -np 2`,
with each backend.

Before, the failing rank returned and blocked in MPI_Finalize while its peer waited in a collective: the
job hung for minutes (until gloo's timeout, or for ever under the mpi backend); a killed or stopped rank
went unnamed or unnoticed. Now the failing rank ends the job (`mlscale.launch.abort`) and the heartbeat
(`mlscale.bench.watchdog`) lets rank 0 record which rank died, fell silent or failed. Rank-local errors are
injected with MLSCALE_TEST_FAIL_AT (`mlscale.bench.faults`); ranks are killed and stopped with real
signals. "Promptly" is asserted as under a minute, start-up included, on a loaded machine: a hang lasts
at least the collective timeout (300 s by default).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from support.jobs import BackgroundJob, rank_process
from support.run import TINY_SYNTHETIC, child_env, mlscale_cmd
from support.slurm import SlurmCluster, slurm_cluster  # noqa: F401 (fixture)

BACKENDS = ("ddp", "mpi")
# Horovod is built from source (`make horovod`); where it is missing its cases skip with the reason.
HOROVOD = pytest.param(
    "horovod",
    marks=pytest.mark.skipif(importlib.util.find_spec("horovod") is None, reason="horovod is not installed"),
)
PROMPT_S = 60


def _job(
    root, *extra, backend: str, fail_at: str | None = None, run_id: str = "r"
) -> tuple[subprocess.CompletedProcess, float]:
    env = {"MLSCALE_TEST_FAIL_AT": fail_at} if fail_at else {}
    argv = mlscale_cmd("run", "synthetic", *TINY_SYNTHETIC, "--backend", backend, "--out", root, "--run-id", run_id,
                       *extra, ranks=2)  # fmt: skip
    if fail_at:
        argv[argv.index("-x") : argv.index("-x")] = ["-x", "MLSCALE_TEST_FAIL_AT"]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=child_env(env))
    return proc, time.monotonic() - t0


def _leftovers(root) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("backend", BACKENDS)
def test_setup_errors_found_on_rank_0_end_every_rank(tmp_path, backend):
    (tmp_path / "taken").mkdir()
    proc, took = _job(tmp_path, backend=backend, run_id="taken")
    assert proc.returncode == 2 and took < PROMPT_S, (took, proc.stderr[-3000:])
    line = f"mlscale: error: {tmp_path / 'taken'}: run directory already exists; choose another --run-id"
    assert proc.stderr.count(line) == 1 and "Traceback" not in proc.stderr
    assert list((tmp_path / "taken").iterdir()) == [] and _leftovers(tmp_path) == []

    proc, took = _job(tmp_path, "--save-weights", tmp_path / "missing" / "w.pt", backend=backend)
    assert proc.returncode == 2 and took < PROMPT_S, (took, proc.stderr[-3000:])
    assert proc.stderr.count("--save-weights directory") == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_error_on_rank_1_alone_ends_the_job(tmp_path, backend):
    proc, took = _job(tmp_path, backend=backend, fail_at="1:setup")
    assert proc.returncode == 2 and took < PROMPT_S, (took, proc.stderr[-3000:])
    assert proc.stderr.count("set-up error injected on rank 1") == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("rank", [0, 1])
@pytest.mark.parametrize("backend", BACKENDS)
def test_user_error_mid_training_on_one_rank_leaves_one_line_and_nothing_written(tmp_path, backend, rank):
    """Bad data found by one rank's loader: that rank says it, rank 0 removes its staging, no record (as
    with one rank), exit status 2; the other rank's watchdog, told the job is ending, says nothing."""
    proc, took = _job(tmp_path, backend=backend, fail_at=f"{rank}:epoch2/user")
    assert proc.returncode == 2 and took < PROMPT_S, (took, proc.stderr[-3000:])
    assert proc.stderr.count("mlscale: error:") == 1, proc.stderr[-3000:]
    assert f"user error injected on rank {rank}" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", [*BACKENDS, HOROVOD])
def test_exception_mid_training_ends_the_job(tmp_path, backend):
    proc, took = _job(tmp_path, backend=backend, fail_at="1:epoch2")
    assert proc.returncode != 0 and took < PROMPT_S, (took, proc.stderr[-3000:])
    record = json.loads((tmp_path / "r" / "record.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith("rank 1 on host ")
    assert "error injected on rank 1" in record["error"] and f"mlscale: error: {record['error']}" in proc.stderr
    assert _leftovers(tmp_path) == []

    # On rank 0 the failure is recorded before the job ends.
    proc, took = _job(tmp_path, backend=backend, fail_at="0:epoch2", run_id="r0")
    assert proc.returncode != 0 and took < PROMPT_S, (took, proc.stderr[-3000:])
    record = json.loads((tmp_path / "r0" / "record.json").read_text())
    assert record["status"] == "failed" and "error injected on rank 0" in record["error"]


@pytest.mark.parametrize(
    ("launcher", "backend"),
    [("mpirun", "ddp"), ("mpirun", "mpi"), pytest.param("mpirun", *HOROVOD.values, marks=HOROVOD.marks),
     ("torchrun", "ddp")],
)  # fmt: skip
def test_a_killed_rank_ends_the_job_and_is_named(tmp_path, launcher, backend):
    job = BackgroundJob(tmp_path / "runs", backend, launcher=launcher)
    job.signal_rank(1, signal.SIGKILL)
    code, took = job.wait()
    assert code != 0 and took < 30, (code, took, job.output()[-3000:])
    record = job.record()
    assert record["status"] == "failed" and record["error"].startswith("rank 1 on host ")
    assert "died" in record["error"] and f"mlscale: error: {record['error']}" in job.output()


@pytest.mark.parametrize("backend", [*BACKENDS, HOROVOD])
def test_a_stopped_rank_is_found_within_the_collective_timeout(tmp_path, backend):
    job = BackgroundJob(tmp_path / "runs", backend, "--collective-timeout", "5")
    job.signal_rank(1, signal.SIGSTOP)
    code, took = job.wait()
    assert code != 0 and took < 30, (code, took, job.output()[-3000:])
    record = job.record()
    assert record["status"] == "failed" and record["error"].startswith("rank 1 on host ")
    assert "did not respond for" in record["error"] and f"mlscale: error: {record['error']}" in job.output()


def test_under_torchrun_a_failing_rank_is_recorded_and_ends_the_job(tmp_path):
    """No MPI here: the failing rank exits, torchrun's agent ends its peer, and rank 0's watchdog has
    recorded the failure first."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not found next to the test's python")
    argv = [torchrun, "--nproc-per-node", "2", "-m", "mlscale", "run", "synthetic", *TINY_SYNTHETIC,
            "--out", str(tmp_path), "--run-id", "r"]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env=child_env({"MLSCALE_TEST_FAIL_AT": "1:epoch2"}))  # fmt: skip
    took = time.monotonic() - t0
    assert proc.returncode != 0 and took < PROMPT_S, (took, proc.stderr[-3000:])
    record = json.loads((tmp_path / "r" / "record.json").read_text())
    assert record["status"] == "failed" and record["launcher"] == "torchrun"
    assert record["error"].startswith("rank 1 on host ") and "error injected on rank 1" in record["error"]


SRUN_JOB = """#!/bin/bash
#SBATCH --ntasks=2
#SBATCH --output={out}/job.out
export MLSCALE_TEST_FAIL_AT={fail_at}
srun -n 2 {python} -m mlscale run synthetic {run}
code=$?
echo "srun exited $code"
exit $code
"""


@pytest.mark.parametrize(("fail_at", "code"), [("1:epoch2", 1), ("1:epoch2/user", 2)], ids=["exception", "user"])
def test_under_srun_a_failing_rank_is_recorded_and_ends_the_job(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path,
    fail_at,
    code,
):
    """The project's one-node SLURM: srun leaves the other task running when one exits (no
    --kill-on-bad-exit), so it is rank 0's watchdog, told of the error, that records it and ends the step;
    every rank ends with the error's exit status, so srun's is that too (a user error: 2), not a kill's."""
    runs = tmp_path / "runs"
    run = " ".join([*TINY_SYNTHETIC, "--out", str(runs), "--run-id", "r"])
    script = tmp_path / "job.sh"
    script.write_text(SRUN_JOB.format(out=tmp_path, python=sys.executable, run=run, fail_at=fail_at))
    t0 = time.monotonic()
    proc = slurm_cluster.run("sbatch", "--wait", str(script), cwd=tmp_path, timeout=300, check=False,
                             env=child_env())  # fmt: skip
    took = time.monotonic() - t0
    output = (tmp_path / "job.out").read_text(errors="replace")
    assert proc.returncode != 0 and f"srun exited {code}\n" in output and took < 120, (took, output[-3000:])
    if code == 2:  # a user error: one line, nothing written (as with one rank)
        assert output.count("mlscale: error:") == 1 and "Traceback" not in output, output[-3000:]
        assert not (runs / "r").exists() and sorted(p.name for p in runs.iterdir()) == []
        return
    record = json.loads((runs / "r" / "record.json").read_text())
    assert record["status"] == "failed" and record["launcher"] == "srun"
    assert record["error"].startswith("rank 1 on host ") and "error injected on rank 1" in record["error"]


SRUN_LONG_JOB = """#!/bin/bash
#SBATCH --ntasks=2
#SBATCH --output={out}/job.out
srun -n 2 {python} -m mlscale run synthetic {run}
echo "srun exited $?"
"""


def _srun_rank(rank: int, runs: Path, output: Path, timeout: float = 240):
    """Rank `rank`'s process of the srun step writing under `runs`, once rank 0 has logged an epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "epoch 1:" in (output.read_text(errors="replace") if output.exists() else ""):
            found = rank_process(psutil.process_iter(), "srun", rank, marker=str(runs))
            if found is not None:
                return found
        time.sleep(0.5)
    raise AssertionError(f"rank {rank} not found training within {timeout} s")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
def test_under_srun_a_killed_or_stopped_rank_ends_the_step_and_is_named(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path,
    signum,
):
    """srun waits for every task (no --kill-on-bad-exit), and a stopped task never ends by itself: rank 0's
    watchdog records the rank and cancels the step."""
    runs = tmp_path / "runs"
    run = " ".join([*TINY_SYNTHETIC, "--epochs", "1000", "--steps-per-epoch", "50", "--collective-timeout", "5",
                    "--out", str(runs), "--run-id", "r"])  # fmt: skip
    script = tmp_path / "job.sh"
    script.write_text(SRUN_LONG_JOB.format(out=tmp_path, python=sys.executable, run=run))
    job_id = slurm_cluster.run("sbatch", "--parsable", str(script), cwd=tmp_path, env=child_env()).stdout.strip()
    try:
        rank1 = _srun_rank(1, runs, tmp_path / "job.out")
        signalled = time.monotonic()
        rank1.send_signal(signum)
        slurm_cluster.wait_idle([job_id], timeout=120)
        took = time.monotonic() - signalled
    finally:
        slurm_cluster.run("scancel", "--signal=KILL", job_id, check=False)
    output = (tmp_path / "job.out").read_text(errors="replace")
    assert took < 30 and "srun exited 0" not in output, (took, output[-3000:])
    record = json.loads((runs / "r" / "record.json").read_text())
    assert record["status"] == "failed" and record["launcher"] == "srun"
    word = "died" if signum == signal.SIGKILL else "did not respond for"
    assert record["error"].startswith("rank 1 on host ") and word in record["error"], record["error"]
