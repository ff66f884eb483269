"""Recording stand-ins for launchers and site tools, for executing generated job scripts here.

`install_standins(bin_dir)` writes executables named srun, aprun, mpiexec, mpirun,
module and scontrol. Each appends one JSON line (its name, argv, cwd and
environment) to $STANDIN_LOG. A launcher stand-in then plays the launcher: it
skips its first $STANDIN_SKIP arguments (the launcher's own flags) and runs the
rest once per local rank, with $STANDIN_RANK_VARS (comma-separated) set to the
rank number, the way srun sets SLURM_LOCALID or PALS sets PMI_LOCAL_RANK.
`scontrol show hostnames` prints $STANDIN_HOSTS (one per line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlscale.launch.jobs.render import Options, render_sweep
from mlscale.launch.jobs.sweep import RUNS_DIR, plan_sweep, workload_of
from mlscale.launch.jobs.system import System

LAUNCHERS = ("srun", "aprun", "mpiexec", "mpirun")
TOOLS = ("module", "scontrol")

STANDIN = """#!{python}
import json, os, subprocess, sys
name = os.path.basename(sys.argv[0])
keep = ("OMP_", "KMP_", "MKLDNN_", "MPICH_", "MASTER_", "CUDA_", "NCCL_", "STANDIN_VAR", "MY_")
env = {{k: v for k, v in os.environ.items() if k.startswith(keep)}}
with open(os.environ["STANDIN_LOG"], "a") as fh:
    fh.write(json.dumps({{"name": name, "argv": sys.argv[1:], "cwd": os.getcwd(), "env": env}}) + "\\n")
if name == "scontrol":
    print("\\n".join(os.environ.get("STANDIN_HOSTS", "node001").split(",")))
skip = os.environ.get("STANDIN_SKIP")
if name in {launchers!r} and skip is not None:
    rest = sys.argv[1 + int(skip):]
    for rank in range(int(os.environ.get("STANDIN_RANKS", "1"))):
        rank_env = dict(os.environ)
        for var in filter(None, os.environ.get("STANDIN_RANK_VARS", "").split(",")):
            rank_env[var] = str(rank)
        code = subprocess.call(rest, env=rank_env)
        if code:
            sys.exit(code)
"""

RANK = """#!{python}
# Stand-in for the python of the compute nodes: records what each rank was started with.
import json, os, sys
keep = ("OMP_", "KMP_", "MKLDNN_", "MPICH_", "MASTER_", "CUDA_", "NCCL_", "MY_")
env = {{k: v for k, v in os.environ.items() if k.startswith(keep)}}
with open(os.environ["STANDIN_LOG"], "a") as fh:
    fh.write(json.dumps({{"name": "python", "argv": sys.argv[1:], "cwd": os.getcwd(), "env": env}}) + "\\n")
"""


def _write_exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def install_standins(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in LAUNCHERS + TOOLS:
        _write_exe(bin_dir / name, STANDIN.format(python=sys.executable, launchers=LAUNCHERS))
    return bin_dir


def install_rank_python(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_exe(path, RANK.format(python=sys.executable))


def generate(system: System, run_argv: list[str], sweep_dir: Path, python: str, **plan) -> list:
    """Plan and render a sweep through the real code (scripts not yet written)."""
    plan.setdefault("nodes", [1])
    plan.setdefault("ranks", [])
    plan.setdefault("ranks_per_node", None)
    plan.setdefault("scaling", "weak")
    plan.setdefault("repeats", 1)
    points = plan_sweep(system, run_argv, runs_dir=str(sweep_dir / RUNS_DIR), **plan)
    return render_sweep(system, points, sweep_dir, workload_of(run_argv), Options(python=python))


def execute(script: Path, bin_dir: Path, log: Path, env: dict[str, str], cwd: Path) -> list[dict]:
    """Run a job script with bash, the stand-ins first on PATH; return the recorded calls."""
    log.unlink(missing_ok=True)
    log.touch()
    full_env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "STANDIN_LOG": str(log), "HOME": str(cwd), **env}
    proc = subprocess.run(
        ["bash", str(script)],
        text=True,
        capture_output=True,
        env=full_env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 0, f"script exited {proc.returncode}\n{proc.stderr}\n--- script\n{script.read_text()}"
    return [json.loads(line) for line in log.read_text().splitlines()]
