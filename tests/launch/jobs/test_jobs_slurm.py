"""Against a real one-node SLURM (started by the slurm_cluster fixture): the variables SLURM
really sets in a batch script and in `srun -n 2` steps, and a generated 1- and 2-rank sweep
of the synthetic workload submitted with sbatch, from queued to records, tables and status."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from support.run import REPO, SWEEP_RUN, run_mlscale
from support.slurm import LAUNCHER_PREFIXES, SlurmCluster, host_resolves, slurm_cluster  # noqa: F401 (fixture)

from mlscale.launch.env import detect_environment
from mlscale.launch.jobs.manifest import sweep_status

FIXTURES = REPO / "tests" / "launch" / "fixtures" / "launcher_env"
TINY_RUN = SWEEP_RUN

DUMP = """import json, os, sys
keep = {{k: v for k, v in os.environ.items() if k.startswith({prefixes!r})}}
with open(sys.argv[1], "w") as fh:
    json.dump(keep, fh, indent=1, sort_keys=True)
"""
ENV_JOB = """#!/bin/bash
#SBATCH --ntasks=2
#SBATCH --output=env-job.out
{python} dump.py batch.json
srun -n 2 bash -c '{python} dump.py srun_rank$SLURM_PROCID.json'
"""


def test_real_slurm_variables_are_classified(slurm_cluster: SlurmCluster, tmp_path):  # noqa: F811
    import sys

    (tmp_path / "dump.py").write_text(DUMP.format(prefixes=LAUNCHER_PREFIXES))
    script = tmp_path / "env.sh"
    script.write_text(ENV_JOB.format(python=sys.executable))
    proc = slurm_cluster.run("sbatch", "--wait", str(script), cwd=tmp_path, timeout=120, check=False)
    assert proc.returncode == 0, (tmp_path / "env-job.out").read_text() + slurm_cluster.logs()
    batch = json.loads((tmp_path / "batch.json").read_text())
    ranks = [json.loads((tmp_path / f"srun_rank{i}.json").read_text()) for i in range(2)]
    if os.environ.get("MLSCALE_RECORD_FIXTURES"):  # refresh the saved fixtures from this SLURM
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for name, env in (("slurm_batch", batch), ("slurm_srun_rank0", ranks[0]), ("slurm_srun_rank1", ranks[1])):
            (FIXTURES / f"{name}.json").write_text(json.dumps(env, indent=1, sort_keys=True) + "\n")

    single = detect_environment(batch, use_mpi=False)
    assert (single.launcher, single.rank, single.size) == ("single", 0, 1)
    for i, env in enumerate(ranks):
        found = detect_environment(env, use_mpi=False)
        assert (found.launcher, found.rank, found.size, found.local_rank, found.local_size, found.num_nodes) == (
            "srun",
            i,
            2,
            i,
            2,
            1,
        )
        assert found.job_id == batch["SLURM_JOB_ID"]


def _status(sweep: Path) -> dict[str, str]:
    return {s.point: s.state for s in sweep_status(sweep)}


def test_sweep_runs_on_real_slurm(slurm_cluster: SlurmCluster, tmp_path, monkeypatch):  # noqa: F811
    env = slurm_cluster.env
    monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])  # for sweep_status's squeue, in this process
    system = tmp_path / "onenode.yaml"
    # --hold: the jobs wait in the queue until released, so "queued" can be seen for certain.
    system.write_text(
        "name: onenode\nlabel: onenode-slurm\ndescription: the test's one-node SLURM\nscheduler: slurm\n"
        "launcher: srun\ncores_per_node: 2\ngpus_per_node: 0\ntime: '00:05:00'\ndirectives: [--hold]\n"
        # One thread per rank: two spinning OpenMP threads on a busy 2-core machine crawl.
        "env: {OMP_NUM_THREADS: 1" + ("}\n" if host_resolves() else ", MASTER_ADDR: 127.0.0.1}\n")
    )

    def launch(out: Path, *args: str) -> list[str]:
        run_mlscale("launch", "--system", system, "--submit", "--out", out, *args, env=env)
        job_ids = [s["job_id"] for s in json.loads((out / "sweep.json").read_text())["scripts"]]
        assert job_ids and all(j.isdigit() for j in job_ids), job_ids
        return job_ids

    # One job per point; the same points as one job array; a point that dies before writing a record.
    sweep, array, bad = tmp_path / "sweep", tmp_path / "array", tmp_path / "bad"
    job_ids = launch(sweep, "--nodes", "1", "--ranks", "1,2", "--", *TINY_RUN)
    job_ids += launch(array, "--ranks", "1,2", "--array", "--", *TINY_RUN)
    job_ids += launch(bad, "--ranks", "1", "--", "run", "synthetic", "--model", "no-such-net")
    assert len(job_ids) == 4
    for where in (sweep, array):
        assert _status(where) == {"n1-r1-rep0": "queued", "n1-r2-rep0": "queued"}

    slurm_cluster.run("scontrol", "release", ",".join(job_ids))
    t0 = time.monotonic()
    slurm_cluster.wait_idle(job_ids)
    print(f"sweeps ran in {time.monotonic() - t0:.1f} s")

    for where in (sweep, array):
        assert _status(where) == {"n1-r1-rep0": "ok", "n1-r2-rep0": "ok"}, list((where / "logs").iterdir())
        for ranks in (1, 2):
            run_dir = where / "runs" / f"n1-r{ranks}-rep0"
            record = json.loads((run_dir / "record.json").read_text())
            assert (record["status"], record["num_ranks"], record["num_nodes"]) == ("ok", ranks, 1)
            assert (record["launcher"], record["system"], record["batch_size"]) == ("srun", "onenode-slurm", 4)
            assert len(record["epoch_stats"]) == 2
            assert len((run_dir / "ranks.jsonl").read_text().splitlines()) == ranks
    array_job = job_ids[2]
    assert sorted(p.name for p in (array / "logs").iterdir()) == [f"array-n1.{array_job}_{i}.out" for i in (0, 1)]

    (bad_status,) = sweep_status(bad)
    assert bad_status.state == "failed" and "no-such-net" in bad_status.detail, bad_status

    report = run_mlscale("report", sweep, "--scale-by", "ranks", "--no-ranks", env=env).stdout
    assert "synthetic on onenode-slurm (train throughput, scaling by ranks):" in report
    assert " Img/s (1 rank)" in report and "% scaling efficiency from 1 rank)" in report
    assert "Sweep points: 2 ok" in report
    rows = [ln for ln in report.splitlines() if ln.startswith("| n1-r")]
    assert len(rows) == 4, report  # two training-table rows and two status rows
