"""Hostile values (spaces, quotes, $, ;, newlines, backticks, globs) in the sweep path, the python
path, the run flags and environment values: the generated script, run by bash with recording
stand-ins, must start exactly the intended argv with exactly the intended environment."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.run import run_mlscale
from support.standins import execute, generate, install_rank_python, install_standins

from mlscale.errors import UserError
from mlscale.launch.jobs import shell
from mlscale.launch.jobs.system import load_system

NASTY = list(" '\"$;`\\\n\t*?~!&|<>(){}[]#%=-,.^") + ["$(touch pwned)", "`touch pwned`", "${HOME}", "'\"'\"'", "\r"]
SHIPPED = ("local", "generic-slurm-gpu", "theta-like")
# Flags that `mlscale launch` itself owns or rewrites.
OWNED = ("--out", "--run-id", "--resume", "--system", "--global-batch-size")


def hostile_text(min_size: int = 1):
    pieces = st.sampled_from(NASTY) | st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), min_size=1, max_size=3
    )
    return st.lists(pieces, min_size=min_size, max_size=6).map("".join)


def component():
    # A file-name component: no '/', not '.' or '..', short enough for the file system.
    return hostile_text().filter(lambda s: s not in (".", "..") and len(s.encode()) < 60)


def flag():
    return hostile_text(0).filter(lambda s: not any(s == f or s.startswith(f + "=") for f in OWNED))


SCHEDULER_ENV = {
    "local": {},
    "generic-slurm-gpu": {"SLURM_JOB_ID": "5", "SLURM_JOB_NODELIST": "n1", "STANDIN_HOSTS": "n1"},
    "theta-like": {"COBALT_JOBID": "5", "COBALT_PARTNAME": "12"},
}
LAUNCHER_ARGS = {  # launcher flags for one node, one rank
    "local": ["-np", "1", "--map-by", "ppr:1:node", "--bind-to", "none"],
    "generic-slurm-gpu": ["--nodes=1", "--ntasks=1", "--ntasks-per-node=1", "--cpus-per-task=32"],
    "theta-like": ["-n", "1", "-N", "1", "-cc", "depth", "-j", "1", "-d", "64"],
}
GPU_WRAPPER = 4  # bash -c '...' mlscale-gpu-bind


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory):
    return install_standins(tmp_path_factory.mktemp("standins"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    system_name=st.sampled_from(SHIPPED),
    sweep_name=component(),
    python_dir=component(),
    workload=hostile_text().filter(lambda s: not s.startswith("-")),
    flags=st.lists(flag(), max_size=5),
    env_value=hostile_text(0),
)
# Found by this test once: a newline in the workload ended the script's title comment.
@example(system_name="local", sweep_name=" ", python_dir=" ", workload='\n"', flags=[], env_value="")
@example(system_name="local", sweep_name=" ", python_dir=" ", workload="\n'", flags=[], env_value="")
def test_hostile_values_reach_the_ranks_verbatim(
    bin_dir, system_name, sweep_name, python_dir, workload, flags, env_value
):
    system = dataclasses.replace(load_system(system_name), ranks_per_node=1, env={"MY_HOSTILE": env_value})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sweep = tmp / sweep_name
        sweep.mkdir()
        python = install_rank_python(tmp / python_dir / "python")
        run_argv = ["run", workload, *flags]
        (script,) = generate(system, run_argv, sweep, str(python))
        path = sweep / "job.sh"
        path.write_text(script.text)
        env = {**SCHEDULER_ENV[system_name], "STANDIN_SKIP": str(len(LAUNCHER_ARGS[system_name]))}
        calls = execute(path, bin_dir, tmp / "calls.jsonl", env, cwd=tmp)

        rank_argv = [
            "-m",
            "mlscale",
            *run_argv,
            "--system",
            system.label,
            "--out",
            str(sweep / "runs"),
            "--run-id",
            "n1-r1-rep0",
            "--resume",
            "auto",
        ]
        (launch,) = [c for c in calls if c["name"] not in ("python", "module", "scontrol")]
        wrapper = launch["argv"][len(LAUNCHER_ARGS[system_name]) :][:GPU_WRAPPER] if system.gpus_per_node else []
        assert launch["argv"] == LAUNCHER_ARGS[system_name] + wrapper + [str(python), *rank_argv]
        assert launch["cwd"] == str(sweep)
        (rank,) = [c for c in calls if c["name"] == "python"]
        assert rank["argv"] == rank_argv
        assert rank["env"]["MY_HOSTILE"] == env_value
        assert not list(tmp.rglob("pwned")) and not list(Path.cwd().glob("pwned"))


@pytest.mark.parametrize("value", ["a b", "x;rm -rf /", "$(id)", "q'uote", "new\nline", "`id`", ""])
def test_directive_values_refuse_shell_syntax(value):
    with pytest.raises(UserError, match="job directive"):
        shell.directive_value(value, "--account")


def test_hostile_paths_and_flags_through_the_command(tmp_path, bin_dir):
    """The real `mlscale launch` CLI: the written script starts the hostile argv verbatim."""
    sweep = tmp_path / "we'ird $dir; `x`\nname"
    python = install_rank_python(tmp_path / "py $(x)" / "python")
    flags = ["--tag", "a 'b' \"c\" $HOME; `id`\n", "--lr=1e-3"]
    run_mlscale(
        "launch",
        "--system",
        "local",
        "--ranks",
        "1",
        "--out",
        str(sweep),
        "--python",
        str(python),
        "--",
        "run",
        "synthetic",
        *flags,
    )
    manifest = json.loads((sweep / "sweep.json").read_text())
    (point,) = manifest["points"]
    script = sweep / point["script"]
    calls = execute(script, bin_dir, tmp_path / "calls.jsonl", {"STANDIN_SKIP": "6"}, cwd=tmp_path)
    (rank,) = [c for c in calls if c["name"] == "python"]
    assert rank["argv"] == [
        "-m",
        "mlscale",
        "run",
        "synthetic",
        *flags,
        "--system",
        "local",
        "--out",
        str(sweep / "runs"),
        "--run-id",
        "n1-r1-rep0",
        "--resume",
        "auto",
    ]
    assert os.access(script, os.X_OK)
    shutil.rmtree(sweep)
