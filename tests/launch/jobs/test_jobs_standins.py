"""Generated PBS, Cobalt/ALPS, PALS, SLURM and mpirun scripts executed by bash with the
scheduler's environment set and recording stand-ins for the launchers: exact launcher argv,
exact rank argv, and each rank's environment (OMP/KMP, GPU binding, MASTER_ADDR/PORT)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.standins import execute, generate, install_rank_python, install_standins

from mlscale.launch.jobs.system import load_system

RUN = ["run", "synthetic", "--batch-size", "4"]


@dataclass
class Case:
    system: str
    nodes: int
    launcher: str
    launcher_argv: list[str]
    rank_vars: str  # variables the launcher sets to the local rank
    local_ranks: int
    scheduler_env: dict[str, str]
    master_addr: str
    master_port: int | None
    omp: str
    gpus: bool
    directives: list[str]
    env: dict[str, str] = field(default_factory=dict)
    setup_calls: list[list[str]] = field(default_factory=list)


def nodefile(tmp: Path, hosts: list[str]) -> str:
    path = tmp / "nodefile"
    path.write_text("".join(h + "\n" for h in hosts))
    return str(path)


def cases(tmp: Path) -> dict[str, Case]:
    pbs_nodes = nodefile(tmp, ["x3001c0s13b0n0", "x3001c0s13b1n0"])
    user_yaml = tmp / "my pbs cluster.yaml"
    user_yaml.write_text(
        "name: mypbs\ndescription: PBS + Hydra mpiexec\nscheduler: pbs\nlauncher: mpiexec\n"
        "cores_per_node: 16\ngpus_per_node: 0\nranks_per_node: 2\npartition: workq\naccount: proj-1\n"
        "setup: [module load mpich/4.1]\n"
        "env: {MY_VAR: 'a b $HOME \"q\"', MY_FLAG: true, OMP_NUM_THREADS: 2, MASTER_PORT: 12345}\n"
    )
    return {
        "theta": Case(
            "theta-like",
            2,
            "aprun",
            ["-n", "2", "-N", "1", "-cc", "depth", "-j", "1", "-d", "64"],
            "ALPS_APP_PE",
            1,
            {"COBALT_JOBID": "777", "COBALT_PARTNAME": "3824-3825"},
            "nid03824",
            20777,
            "64",
            False,
            ["#COBALT -n 2", "#COBALT -t 01:00:00", "#COBALT -q debug-cache-quad"],
            env={
                "KMP_AFFINITY": "granularity=fine,verbose,compact",
                "KMP_BLOCKTIME": "0",
                "MKLDNN_VERBOSE": "0",
                "MPICH_MAX_THREAD_SAFETY": "multiple",
            },
            setup_calls=[["load", "conda"]],
        ),
        "polaris": Case(
            "polaris-like",
            2,
            "mpiexec",
            ["-n", "8", "--ppn", "4", "--depth", "8", "--cpu-bind", "depth"],
            "PMI_LOCAL_RANK,PALS_LOCAL_RANKID",
            4,
            {"PBS_JOBID": "4321.polaris-pbs-01", "PBS_NODEFILE": pbs_nodes},
            "x3001c0s13b0n0",
            24321,
            "8",
            True,
            ["#PBS -l select=2:ncpus=32:mpiprocs=4:ngpus=4:system=polaris", "#PBS -l place=scatter", "#PBS -q debug"],
            setup_calls=[["use", "/soft/modulefiles"], ["load", "conda"]],
        ),
        "cooley": Case(
            "cooley-like",
            1,
            "mpiexec",
            ["-n", "2", "-ppn", "2", "-f", pbs_nodes],
            "MPI_LOCALRANKID",
            2,
            {"COBALT_JOBID": "9", "COBALT_NODEFILE": pbs_nodes},
            "x3001c0s13b0n0",
            20009,
            "6",
            True,
            ["#COBALT -n 1"],
            setup_calls=[["load", "cuda"]],
        ),
        "pbs-hydra": Case(
            str(user_yaml),
            2,
            "mpiexec",
            ["-n", "4", "-ppn", "2", "-f", pbs_nodes],
            "MPI_LOCALRANKID",
            2,
            {"PBS_JOBID": "123456.pbs", "PBS_NODEFILE": pbs_nodes},
            "x3001c0s13b0n0",
            12345,  # the system's MASTER_PORT wins
            "2",  # the system's OMP_NUM_THREADS wins over cores per rank (8)
            False,
            ["#PBS -l select=2:ncpus=16:mpiprocs=2", "#PBS -q workq", "#PBS -A proj-1"],
            env={"MY_VAR": 'a b $HOME "q"', "MY_FLAG": "1"},
            setup_calls=[["load", "mpich/4.1"]],
        ),
        "slurm": Case(
            "generic-slurm-gpu",
            1,
            "srun",
            ["--nodes=1", "--ntasks=4", "--ntasks-per-node=4", "--cpus-per-task=8"],
            "SLURM_LOCALID",
            4,
            # SLURM without device cgroups shows the physical ids of the job's GPUs.
            {
                "SLURM_JOB_ID": "1234",
                "SLURM_JOB_NODELIST": "gpu[01-02]",
                "STANDIN_HOSTS": "gpu01,gpu02",
                "CUDA_VISIBLE_DEVICES": "4,5,6,7",
            },
            "gpu01",
            21234,
            "8",
            True,
            [
                "#SBATCH --nodes=1",
                "#SBATCH --ntasks-per-node=4",
                "#SBATCH --gpus-per-node=4",
                "#SBATCH --partition=gpu",
            ],
            env={"NCCL_DEBUG": "WARN"},
            setup_calls=[["load", "cuda"]],
        ),
        "local": Case(
            "local",
            1,
            "mpirun",
            ["-np", "2", "--map-by", "ppr:2:node", "--bind-to", "none"],
            "OMPI_COMM_WORLD_LOCAL_RANK",
            2,
            {},
            "127.0.0.1",
            None,
            str(max(1, (os.cpu_count() or 1) // 2)),
            False,
            [],
        ),
    }


@pytest.mark.parametrize("name", ["theta", "polaris", "cooley", "pbs-hydra", "slurm", "local"])
def test_script_runs_launcher_and_ranks_as_intended(tmp_path, name):
    case = cases(tmp_path)[name]
    system = load_system(case.system)
    sweep = tmp_path / "sweep dir"
    (sweep / "scripts").mkdir(parents=True)
    python = install_rank_python(tmp_path / "compute python" / "python")
    bin_dir = install_standins(tmp_path / "bin")
    ranks = ["--ranks", "2"] if name == "local" else []
    plan = {"nodes": [] if ranks else [case.nodes], "ranks": [2] if ranks else []}
    (script,) = generate(system, RUN, sweep, str(python), **plan)
    for line in case.directives:
        assert line in script.text.splitlines(), f"{line!r} missing from\n{script.text}"
    path = sweep / script.path
    path.write_text(script.text)
    env = {
        **case.scheduler_env,
        "STANDIN_SKIP": str(len(case.launcher_argv)),
        "STANDIN_RANKS": str(case.local_ranks),
        "STANDIN_RANK_VARS": case.rank_vars,
    }
    calls = execute(path, bin_dir, tmp_path / "calls.jsonl", env, cwd=tmp_path)

    assert [c["argv"] for c in calls if c["name"] == "module"] == case.setup_calls
    (launch,) = [c for c in calls if c["name"] == case.launcher]
    point = script.points[0]
    rank_argv = [
        "-m",
        "mlscale",
        *RUN,
        "--system",
        system.label,
        "--out",
        str(sweep / "runs"),
        "--run-id",
        point.id,
        "--resume",
        "auto",
    ]
    if case.gpus:
        assert launch["argv"][: len(case.launcher_argv)] == case.launcher_argv
        assert launch["argv"][len(case.launcher_argv)] == "bash"  # the GPU-binding wrapper
    else:
        assert launch["argv"] == case.launcher_argv + [str(python)] + rank_argv
    assert launch["cwd"] == str(sweep)

    rank_calls = [c for c in calls if c["name"] == "python"]
    assert len(rank_calls) == case.local_ranks
    for local_rank, call in enumerate(rank_calls):
        assert call["argv"] == rank_argv
        env = call["env"]
        assert env["OMP_NUM_THREADS"] == case.omp
        assert env["MASTER_ADDR"] == case.master_addr
        if case.master_port is None:
            assert 20000 <= int(env["MASTER_PORT"]) < 30000
        else:
            assert env["MASTER_PORT"] == str(case.master_port)
        for key, value in case.env.items():
            assert env[key] == value, key
        if case.gpus:
            visible = case.scheduler_env.get("CUDA_VISIBLE_DEVICES")
            assert env["CUDA_VISIBLE_DEVICES"] == (visible.split(",")[local_rank] if visible else str(local_rank))
        else:
            assert "CUDA_VISIBLE_DEVICES" not in env


def test_slurm_array_runs_only_its_point(tmp_path):
    system = load_system("generic-slurm-gpu")
    sweep = tmp_path / "sweep"
    python = install_rank_python(tmp_path / "py" / "python")
    bin_dir = install_standins(tmp_path / "bin")
    from mlscale.launch.jobs.render import Options, render_sweep
    from mlscale.launch.jobs.sweep import plan_sweep

    points = plan_sweep(system, RUN, [1, 2], [], None, "weak", 3, str(sweep / "runs"))
    scripts = render_sweep(system, points, sweep, "synthetic", Options(python=str(python), array=True))
    assert [s.path for s in scripts] == ["scripts/array-n1.sh", "scripts/array-n2.sh"]
    assert "#SBATCH --array=0-2" in scripts[1].text and "#SBATCH --nodes=2" in scripts[1].text
    path = tmp_path / "array.sh"
    path.write_text(scripts[1].text)
    sweep.mkdir()
    env = {
        "SLURM_JOB_ID": "88",
        "SLURM_ARRAY_TASK_ID": "1",
        "SLURM_JOB_NODELIST": "n[1-2]",
        "STANDIN_SKIP": "4",
        "STANDIN_RANKS": "1",
        "STANDIN_RANK_VARS": "SLURM_LOCALID",
    }
    calls = execute(path, bin_dir, tmp_path / "calls.jsonl", env, cwd=tmp_path)
    (rank,) = [c for c in calls if c["name"] == "python"]
    assert rank["argv"][-4:] == ["--run-id", "n2-r8-rep1", "--resume", "auto"]
    assert [c["argv"][:2] for c in calls if c["name"] == "srun"] == [["--nodes=2", "--ntasks=8"]]

    env["SLURM_ARRAY_TASK_ID"] = "7"
    proc = subprocess.run(
        ["bash", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STANDIN_LOG": str(tmp_path / "x"), **env},
    )
    assert proc.returncode == 2 and "no sweep point for array index 7" in proc.stderr
