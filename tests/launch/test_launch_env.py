"""Launcher detection: each launcher's variables, their nesting, and a real mpirun."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from support.run import child_env, mpirun_prefix

from mlscale.errors import UserError
from mlscale.launch.env import detect_environment, detect_launcher

# Variables as each launcher sets them for the second rank of a 4-rank, 2-node job.
CASES = {
    "openmpi": {"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
                "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "PMIX_RANK": "1", "PRTE_LAUNCHED": "1"},
    "mpich": {"PMI_RANK": "1", "PMI_SIZE": "4", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2",
              "PMI_FD": "5"},
    "pals": {"PALS_RANKID": "1", "PALS_LOCAL_RANKID": "1", "PALS_NODEID": "0", "PMI_RANK": "1",
             "PMI_SIZE": "4", "PMI_LOCAL_RANK": "1", "PMI_LOCAL_SIZE": "2", "PBS_JOBID": "123.polaris"},
    "alps": {"ALPS_APP_PE": "1", "ALPS_APP_ID": "99", "PMI_SIZE": "4", "PMI_LOCAL_RANK": "1",
             "PMI_LOCAL_SIZE": "2", "COBALT_JOBID": "4242"},
    "srun": {"SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_NODEID": "0", "SLURM_STEP_NUM_TASKS": "4",
             "SLURM_STEP_NUM_NODES": "2", "SLURM_STEP_TASKS_PER_NODE": "2(x2)", "SLURM_STEP_NODELIST": "nid[0010-0011]",
             "SLURM_JOB_ID": "5150", "SLURM_STEP_ID": "0"},
    "pmix": {"PMIX_RANK": "1", "PMIX_SIZE": "4", "PMIX_LOCAL_RANK": "1", "PMIX_LOCAL_SIZE": "2"},
    "torchrun": {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                 "MASTER_ADDR": "node7", "MASTER_PORT": "29400", "TORCHELASTIC_RUN_ID": "none"},
    "horovodrun": {"HOROVOD_RANK": "1", "HOROVOD_SIZE": "4", "HOROVOD_LOCAL_RANK": "1", "HOROVOD_LOCAL_SIZE": "2",
                   "HOROVOD_CROSS_SIZE": "2", "HOROVOD_HOSTNAME": "node7"},
}  # fmt: skip


@pytest.mark.parametrize("launcher", sorted(CASES))
def test_each_launcher_gives_rank_size_and_locality(launcher):
    env = detect_environment(CASES[launcher], use_mpi=False)
    assert env.launcher == launcher
    assert (env.rank, env.size, env.local_rank, env.local_size, env.num_nodes) == (1, 4, 1, 2, 2)


def test_no_launcher_is_a_single_process():
    env = detect_environment({}, use_mpi=False)
    assert (env.launcher, env.rank, env.size, env.num_nodes) == ("single", 0, 1, 1)
    assert env.master_addr == "127.0.0.1"
    # a free port of its own, so two laptop runs at once do not meet on one rendezvous port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", env.master_port))


def test_plain_sbatch_script_is_not_a_multi_rank_launch():
    batch = {
        "SLURM_JOB_ID": "77",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NTASKS": "4",
        "SLURM_NNODES": "2",
        "SLURM_JOB_NODELIST": "cn[01-02]",
    }
    assert detect_launcher(batch).name == "single"


def test_mpirun_inside_sbatch_is_open_mpi_not_slurm():
    # prted daemons are srun steps: every rank inherits the daemon's SLURM_PROCID.
    env = {
        **CASES["openmpi"],
        "SLURM_JOB_ID": "77",
        "SLURM_PROCID": "0",
        "SLURM_STEP_NUM_TASKS": "2",
        "SLURM_JOB_NODELIST": "cn[01-02]",
    }
    found = detect_environment(env, use_mpi=False)
    assert (found.launcher, found.rank, found.size) == ("openmpi", 1, 4)
    assert found.master_addr == "cn01"  # first node of the allocation
    assert found.master_port == 20077  # derived from the job id


def test_master_addr_and_port_from_environment_win():
    env = {**CASES["srun"], "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "31000"}
    found = detect_environment(env, use_mpi=False)
    assert (found.master_addr, found.master_port) == ("10.0.0.5", 31000)


def test_slurm_rendezvous_is_the_first_node_and_a_job_derived_port():
    found = detect_environment(CASES["srun"], use_mpi=False)
    assert found.hosts == ["nid0010", "nid0011"]
    assert found.master_addr == "nid0010"
    assert found.master_port == 20000 + 5150
    assert found.job_id == "5150"


def test_slurm_uneven_tasks_per_node():
    env = {
        **CASES["srun"],
        "SLURM_PROCID": "4",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "2",
        "SLURM_STEP_NUM_TASKS": "5",
        "SLURM_STEP_NUM_NODES": "3",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2),1",
    }
    found = detect_environment(env, use_mpi=False)
    assert (found.rank, found.size, found.local_rank, found.local_size, found.num_nodes) == (4, 5, 0, 1, 3)


def test_pbs_nodefile_gives_hosts_and_rendezvous(tmp_path):
    nodefile = tmp_path / "nodes"
    nodefile.write_text("x3001\nx3001\nx3002\nx3002\n")
    found = detect_environment({**CASES["pals"], "PBS_NODEFILE": str(nodefile)}, use_mpi=False)
    assert found.hosts == ["x3001", "x3002"]
    assert found.master_addr == "x3001"


def test_forced_launcher_must_exist():
    with pytest.raises(UserError, match="MLSCALE_LAUNCHER"):
        detect_launcher({"MLSCALE_LAUNCHER": "nonsense"})


def test_real_mpirun_two_ranks():
    """Under a real Open MPI mpirun, both ranks see the same job and agree on a rendezvous."""
    code = (
        "import json\n"
        "from mlscale.launch.env import detect_environment\n"
        "print(json.dumps(detect_environment().as_dict()))"
    )
    out = subprocess.run(
        mpirun_prefix(2) + [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
        check=True,
    ).stdout
    envs = sorted((json.loads(line) for line in out.splitlines() if line.startswith("{")), key=lambda e: e["rank"])
    assert [e["rank"] for e in envs] == [0, 1]
    assert all(e["launcher"] == "openmpi" and e["size"] == 2 and e["local_size"] == 2 for e in envs)
    assert [e["local_rank"] for e in envs] == [0, 1]
    # No MASTER_ADDR was given: rank 0 chose one over MPI and every rank got the same.
    assert envs[0]["master_addr"] == envs[1]["master_addr"] == "127.0.0.1"
    assert envs[0]["master_port"] == envs[1]["master_port"] > 1024


def test_info_under_mpirun_lists_every_rank():
    from support.run import run_mlscale

    proc = run_mlscale("info", "--json", ranks=2)
    facts = json.loads(proc.stdout)
    assert [r["rank"] for r in facts["ranks"]] == [0, 1]
    assert {r["launcher"] for r in facts["ranks"]} == {"openmpi"}
    assert facts["versions"]["mpi_library"].startswith("Open MPI")
    assert facts["versions"]["torch"].startswith("2.14")


def test_info_prints_a_workload_parameter_count():
    from support.run import run_mlscale

    proc = run_mlscale("info", "--json", "--workload", "synthetic")
    assert json.loads(proc.stdout)["workload"]["parameters"] == 25_557_032  # torchvision ResNet-50


def test_srun_pmi2_takes_the_local_rank_from_slurm():
    # What srun --mpi=pmi2 exports (recorded on a real SLURM): PMI rank/size, no PMI local rank.
    env = {
        "PMI_FD": "7",
        "PMI_JOBID": "12.0",
        "PMI_RANK": "3",
        "PMI_SIZE": "4",
        "SLURM_PROCID": "3",
        "SLURM_LOCALID": "1",
        "SLURM_NODEID": "1",
        "SLURM_STEP_NUM_TASKS": "4",
        "SLURM_STEP_NUM_NODES": "2",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
        "SLURM_STEP_NODELIST": "cn[1-2]",
        "SLURM_JOB_ID": "12",
    }
    found = detect_environment(env, use_mpi=False)
    assert (found.rank, found.size, found.local_rank) == (3, 4, 1)
