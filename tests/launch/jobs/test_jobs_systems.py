"""System descriptions: the shipped YAML files validate, and broken ones give one-line errors
naming the file and the key."""

from __future__ import annotations

import pytest
from support.run import run_mlscale

from mlscale.errors import UserError
from mlscale.launch.jobs.launchers import JobLauncher
from mlscale.launch.jobs.schedulers import Scheduler
from mlscale.launch.jobs.system import load_system, shipped_systems

SHIPPED = ["cooley-like", "generic-slurm-gpu", "local", "pearl-like", "polaris-like", "scarf-like", "theta-like"]
GOOD = "name: mine\ndescription: d\nscheduler: slurm\nlauncher: srun\ncores_per_node: 8\ngpus_per_node: 2\n"


def test_shipped_systems_load_with_registered_scheduler_and_launcher():
    assert shipped_systems() == SHIPPED
    for name in SHIPPED:
        system = load_system(name)
        assert system.scheduler in Scheduler.registry and system.launcher in JobLauncher.registry
        assert system.cores_per_node >= 1
    assert (load_system("pearl-like").gpus_per_node, load_system("pearl-like").label) == (16, "PEARL")
    assert load_system("cooley-like").gpus_per_node == 2
    theta = load_system("theta-like")
    assert (theta.scheduler, theta.launcher, theta.cores_per_node, theta.default_ranks_per_node) == (
        "cobalt",
        "alps",
        64,
        1,
    )


def test_registries_hold_every_scheduler_and_launcher():
    assert set(Scheduler.registry) == {"slurm", "pbs", "cobalt", "none"}
    assert set(JobLauncher.registry) == {"srun", "mpiexec", "alps", "pals", "mpirun"}


def test_user_yaml_by_path(tmp_path):
    path = tmp_path / "my cluster.yaml"
    path.write_text(GOOD + "env: {A: 1, B: true}\nsetup: [module load x]\n")
    system = load_system(str(path))
    assert (system.name, system.label, system.source) == ("mine", "mine", str(path))
    assert system.env == {"A": "1", "B": "1"} and system.setup == ("module load x",)


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD + "gpus: 4\n", "unknown key 'gpus' (allowed: "),
        (GOOD.replace("scheduler: slurm\n", ""), "missing required key 'scheduler'"),
        (GOOD.replace("scheduler: slurm", "scheduler: sge"), "key 'scheduler': 'sge' is not one of"),
        (GOOD.replace("gpus_per_node: 2", "gpus_per_node: -1"), "key 'gpus_per_node': -1 is less than"),
        (GOOD.replace("cores_per_node: 8", "cores_per_node: many"), "key 'cores_per_node'"),
        (GOOD + "partition: 'gpu; rm -rf /'\n", "key 'partition': 'gpu; rm -rf /' has characters not allowed"),
        (GOOD + "env: {1BAD: x}\n", "key 'env.1BAD': not a valid variable name"),
        (GOOD + "setup: ['ok', 3]\n", "key 'setup.1': 3 is not of type 'string'"),
        (GOOD + 'directives: ["--x\\n#SBATCH --y"]\n', "key 'directives.0'"),
        (GOOD + "time: soon\n", "key 'time': 'soon' has characters not allowed"),
        (GOOD.replace("launcher: srun", "launcher: pals"), "key 'launcher': pals runs under scheduler pbs"),
        ("- a\n- b\n", "must be a YAML mapping, not list"),
        ("name: [unclosed\n", "not valid YAML at line 2"),
    ],
)
def test_bad_descriptions_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_system(str(path))
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)


def test_unknown_system_lists_the_shipped_ones():
    with pytest.raises(UserError, match="no such system .*theta-like"):
        load_system("thetta")
    with pytest.raises(UserError, match="no such system description file"):
        load_system("/nonexistent/x.yaml")


def test_cli_prints_one_line_and_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD + "nodes: 4\n")
    proc = run_mlscale("launch", "--system", path, "--nodes", "1", "--dry-run", "--", "run", "synthetic", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"mlscale: error: {path}: unknown key 'nodes' (allowed: " + proc.stderr.split("(allowed: ", 1)[1].strip()
    ]
    assert "Traceback" not in proc.stderr and not list(tmp_path.glob("sweeps"))
