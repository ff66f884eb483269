"""Launcher detection against environments recorded from real launchers.

Each fixture in tests/launch/fixtures/launcher_env/ is the launcher-related environment of one rank,
written by scripts/record-launcher-env.py under the real launcher on this project's machine:
Open MPI 5 `mpirun -np 2`, `python -m torch.distributed.run --nproc-per-node 2` (torchrun),
MPICH 5 Hydra `mpiexec -n 2`, and Horovod 0.28.1's `horovodrun --gloo -np 2` and `horovodrun -np 2`
(MPI mode).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from mlscale.launch.env import detect_environment

FIXTURES = Path(__file__).parent / "fixtures" / "launcher_env"

# fixture stem -> (launcher, rank, size, local_rank, local_size)
EXPECTED = {
    "openmpi_rank0": ("openmpi", 0, 2, 0, 2),
    "openmpi_rank1": ("openmpi", 1, 2, 1, 2),
    "torchrun_rank0": ("torchrun", 0, 2, 0, 2),
    "torchrun_rank1": ("torchrun", 1, 2, 1, 2),
    "mpich_rank0": ("mpich", 0, 2, 0, 2),
    "mpich_rank1": ("mpich", 1, 2, 1, 2),
    "horovodrun_rank0": ("horovodrun", 0, 2, 0, 2),
    "horovodrun_rank1": ("horovodrun", 1, 2, 1, 2),
    # horovodrun in MPI mode runs mpirun and sets no HOROVOD_* variables: it is Open MPI underneath.
    "horovodrun_mpi_rank0": ("openmpi", 0, 2, 0, 2),
    "horovodrun_mpi_rank1": ("openmpi", 1, 2, 1, 2),
}


def load(stem: str) -> dict[str, str]:
    return json.loads((FIXTURES / f"{stem}.json").read_text())


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_fixture_holds_only_launcher_variables(stem):
    keys = set(load(stem))
    assert keys and not keys & {"PATH", "HOME", "USER", "PWD", "PYTHONPATH", "LD_LIBRARY_PATH"}


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_detects_recorded_launcher(stem):
    launcher, rank, size, local_rank, local_size = EXPECTED[stem]
    env = detect_environment(load(stem), use_mpi=False)
    found = (env.launcher, env.rank, env.size, env.local_rank, env.local_size)
    assert found == (launcher, rank, size, local_rank, local_size)
    assert env.num_nodes == 1


def test_torchrun_rendezvous_comes_from_its_variables():
    recorded = load("torchrun_rank1")
    env = detect_environment(recorded, use_mpi=False)
    assert (env.master_addr, env.master_port) == (recorded["MASTER_ADDR"], int(recorded["MASTER_PORT"]))


def test_ranks_of_one_launch_agree_on_size_and_differ_in_rank():
    for name in ("openmpi", "torchrun", "mpich", "horovodrun", "horovodrun_mpi"):
        envs = [detect_environment(load(f"{name}_rank{r}"), use_mpi=False) for r in (0, 1)]
        assert [e.rank for e in envs] == [0, 1]
        assert {e.size for e in envs} == {2}


def test_local_horovodrun_reports_the_real_hostname():
    recorded = load("horovodrun_rank0")
    assert recorded["HOROVOD_HOSTNAME"] == "localhost"
    assert detect_environment(recorded, use_mpi=False).hostname == socket.gethostname()
