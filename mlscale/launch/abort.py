"""Ending a whole multi-rank job from one rank, under any launcher.

A rank that fails and simply returns would block in `MPI_Finalize` (or leave its peers waiting in a
collective) until a backend timeout, minutes later. `abort_job` ends the job instead: with MPI
initialised (mpirun, srun with mpi4py) `MPI_Abort` kills every rank; otherwise the process exits at
once and the launcher (torchrun's elastic agent, mpirun) tears the peers down, and the peers'
watchdogs (`mlscale.bench.watchdog`) see the closed connection and abort too. srun is the exception:
without `--kill-on-bad-exit` it waits for every task, and a stopped one never ends. So under srun each
ending rank leaves a timer behind that cancels the step STEP_KILL_DELAY_S later (SIGKILL reaches stopped
tasks too): the ranks that can end do so first, with the job's exit status (srun reports the highest of
its tasks', so a user error stays exit status 2), and the timer only kills a step that a task keeps alive.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from mlscale.launch.env import detect_launcher

# report(error, exit status, write a failed record?): tells rank 0 of this rank's error (the watchdog's)
Reporter = Callable[[str, int, bool], None]
_job: dict[str, Any] = {"rank": 0, "size": 1, "report": None}
PEER_GRACE_S = 10.0  # how long a rank told of another's error leaves that rank to report it and end the job
STEP_KILL_DELAY_S = 5.0  # under srun: how long the ranks have to end by themselves before the step is killed


class PeerFailed(Exception):
    """Raised on the ranks that learn of another rank's error (a set-up check rank 0 made and
    broadcast): they end the job with the same exit status and print nothing; that rank speaks."""

    def __init__(self, code: int):
        super().__init__(f"another rank failed (exit status {code})")
        self.code = code


def joined(rank: int, size: int) -> None:
    """Note this process's place in the job, so that an error ends the job rather than this rank."""
    _job.update(rank=rank, size=size)


def multi_rank() -> bool:
    return _job["size"] > 1


def set_reporter(report: Reporter | None) -> None:
    """How this rank tells rank 0 of its own error before the job ends (None: it cannot)."""
    _job["report"] = report


def report(error: str, code: int, record: bool) -> None:
    """Tell rank 0 of this rank's error, so that it records it and names this rank, if it can be told."""
    if _job["report"] is not None:
        _job["report"](error, code, record)


def _mpi_running():
    """mpi4py's MPI module when MPI is initialised and not finalised; never initialises it."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None:
        return None
    try:
        return mpi if mpi.Is_initialized() and not mpi.Is_finalized() else None
    except Exception:
        return None


def abort_job(code: int) -> NoReturn:
    """Flush what this rank has to say, then end every rank of the job with exit status `code`."""
    for flush in (logging.shutdown, sys.stdout.flush, sys.stderr.flush):
        try:
            flush()
        except Exception:  # a closed stream must not keep the job alive
            pass
    mpi = _mpi_running()
    if mpi is not None:
        mpi.COMM_WORLD.Abort(code)
    _cancel_slurm_step()
    os._exit(code)


def _cancel_slurm_step() -> None:
    """Under srun, kill every task of this job step STEP_KILL_DELAY_S from now. If the step has ended by then
    (every rank ended by itself), scancel finds nothing to kill: step ids are not reused within a job."""
    job, step = os.environ.get("SLURM_JOB_ID"), os.environ.get("SLURM_STEP_ID")
    scancel = shutil.which("scancel")
    if not (multi_rank() and job and step and scancel) or detect_launcher().name != "srun":
        return
    kill = f"sleep {STEP_KILL_DELAY_S:g}; exec {scancel} --quiet --signal=KILL {job}.{step}"
    try:
        subprocess.Popen(["sh", "-c", kill], start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    except OSError:
        pass  # the launcher's own teardown is then all there is
