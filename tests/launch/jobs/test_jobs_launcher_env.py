"""Launcher detection on the variables a real SLURM 22.05 set (recorded by test_jobs_slurm.py
with MLSCALE_RECORD_FIXTURES=1): a batch script is one process alone, `srun -n 2` steps are ranks."""

from __future__ import annotations

import json

import pytest
from support.run import REPO

from mlscale.launch.env import detect_environment

FIXTURES = REPO / "tests" / "launch" / "fixtures" / "launcher_env"


def load(name: str) -> dict[str, str]:
    env = json.loads((FIXTURES / f"{name}.json").read_text())
    assert env and all(k.startswith(("SLURM_", "PMI", "PMIX_", "OMPI_")) for k in env)
    return env


def test_sbatch_batch_step_is_a_single_process():
    env = load("slurm_batch")
    assert env["SLURM_PROCID"] == "0" and "SLURM_STEP_NUM_TASKS" not in env  # the trap: PROCID without a step
    found = detect_environment(env, use_mpi=False)
    assert (found.launcher, found.rank, found.size, found.local_rank, found.local_size) == ("single", 0, 1, 0, 1)
    assert found.job_id == env["SLURM_JOB_ID"]


@pytest.mark.parametrize("rank", [0, 1])
def test_srun_steps_are_ranks(rank):
    env = load(f"slurm_srun_rank{rank}")
    found = detect_environment(env, use_mpi=False)
    assert (found.launcher, found.rank, found.size, found.local_rank, found.local_size, found.num_nodes) == (
        "srun",
        rank,
        2,
        rank,
        2,
        1,
    )
    assert found.hosts == [env["SLURM_STEP_NODELIST"]] and found.master_addr == env["SLURM_STEP_NODELIST"]
    # Both ranks must agree on the rendezvous port.
    other = detect_environment(load(f"slurm_srun_rank{1 - rank}"), use_mpi=False)
    assert found.master_port == other.master_port
