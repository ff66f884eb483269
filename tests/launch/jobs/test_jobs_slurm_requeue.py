"""Against the real one-node SLURM (slurm_cluster fixture): a generated job gets SIGUSR1 as at its time limit
(`scancel --signal=USR1 --batch`, the signal `#SBATCH --signal=B:USR1@S` sends), its two srun ranks stop at
one step and checkpoint, the script requeues the job, and the requeued job continues with --resume auto to
one joined record whose losses equal an uninterrupted run's."""

from __future__ import annotations

import json
import time
from pathlib import Path

from support.run import run_mlscale
from support.slurm import SlurmCluster, host_resolves, slurm_cluster  # noqa: F401 (fixture)

RUN = ["run", "example", "--points", "2048", "--batch-size", "16", "--epochs", "12", "--no-progress"]


def _poll(what: str, check, timeout: float, cluster: SlurmCluster, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"{what}: not after {timeout} s{cluster.logs()}")


def _log_text(sweep: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted((sweep / "logs").glob("*.out")))


def test_time_limit_signal_checkpoints_requeues_and_resumes(slurm_cluster: SlurmCluster, tmp_path):  # noqa: F811
    env = slurm_cluster.env
    system = tmp_path / "onenode.yaml"
    system.write_text(
        "name: onenode\nlabel: onenode-slurm\ndescription: the test's one-node SLURM\nscheduler: slurm\n"
        "launcher: srun\ncores_per_node: 2\ngpus_per_node: 0\ntime: '00:10:00'\n"
        "env: {OMP_NUM_THREADS: 1" + ("}\n" if host_resolves() else ", MASTER_ADDR: 127.0.0.1}\n")
    )
    sweep = tmp_path / "sweep"
    run_mlscale("launch", "--system", system, "--ranks", "2", "--signal-seconds", "120", "--submit",
                "--out", sweep, "--", *RUN, env=env)  # fmt: skip
    script = (sweep / "scripts" / "n1-r2-rep0.sh").read_text()
    assert "#SBATCH --signal=B:USR1@120" in script and "#SBATCH --requeue" in script
    (job_id,) = [s["job_id"] for s in json.loads((sweep / "sweep.json").read_text())["scripts"]]

    # Once training is under way, the batch shell alone gets SIGUSR1, as at the time limit.
    _poll("training under way", lambda: "epoch 2:" in _log_text(sweep), 300, slurm_cluster)
    slurm_cluster.run("scancel", "--signal=USR1", "--batch", job_id)
    run_dir = sweep / "runs" / "n1-r2-rep0"

    def preempted():
        path = run_dir / "record.json"
        return path.is_file() and json.loads(path.read_text())["status"] == "preempted"

    _poll("a preempted record", preempted, 120, slurm_cluster, every=0.2)

    # SLURM holds a requeued job back until its old job credential has expired (`cred_expire`, 120 s by default,
    # 30 s in the test cluster's slurm.conf). Starting it sooner (`scontrol update StartTime=now`) fails: slurmd
    # kills the job as "Job credential revoked".
    def finished():
        return json.loads((run_dir / "record.json").read_text())["status"] != "preempted"

    _poll("the requeued run's record", finished, 600, slurm_cluster)
    slurm_cluster.wait_idle([job_id], timeout=120)

    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "ok", _log_text(sweep)
    assert [s["status"] for s in record["segments"]] == ["preempted", "ok"]
    assert {s["job_id"] for s in record["segments"]} == {job_id}
    assert record["segments"][0]["preemption"]["signal"] == "SIGUSR1"
    assert [e["epoch"] for e in record["epoch_stats"]] == list(range(1, 13))
    assert not (run_dir / "checkpoint").exists()
    sacct = slurm_cluster.run("scontrol", "show", "job", job_id, check=False).stdout
    assert "Restarts=1" in sacct or not sacct.strip(), sacct

    # The same run uninterrupted, under mpirun: the losses are the same, bit for bit.
    run_mlscale(*RUN, "--out", tmp_path / "whole", "--run-id", "whole", ranks=2)
    whole = json.loads((tmp_path / "whole" / "whole" / "record.json").read_text())
    assert [(e["train_loss"], e["test_loss"]) for e in record["epoch_stats"]] == [
        (e["train_loss"], e["test_loss"]) for e in whole["epoch_stats"]
    ]
