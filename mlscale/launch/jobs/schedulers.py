"""Batch schedulers: SLURM, PBS Pro/Torque, Cobalt, and none (run the script here).

One small class per scheduler, registered by name on subclassing. Its template
(`templates/<name>.sh.j2`) writes the directives; the class knows how to submit
a script, read the job id back, ask which jobs are still queued or running, and
the shell expressions for the job id and the first node (MASTER_ADDR).
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from mlscale.errors import UserError

QUEUED, RUNNING, ENDED = "queued", "running", "ended"


class QueryError(Exception):
    """The scheduler could not be asked (command missing or failing)."""


@dataclass
class Submission:
    job_id: str
    exit_code: int | None = None  # known only when the script ran in the foreground


class Scheduler:
    name: ClassVar[str] = ""
    submit_command: ClassVar[tuple[str, ...]] = ()  # empty: the script runs here, in the foreground
    job_id_var: ClassVar[str] = ""  # the job's id inside the script
    array_index_var: ClassVar[str | None] = None  # None: no job arrays
    nodefile_var: ClassVar[str | None] = None  # host file variable, for launchers that take one
    master_addr: ClassVar[str] = "127.0.0.1"  # shell expression: the first node of the job
    # Shell code run when a point exits 75 (preempted, checkpoint written): requeue the job, where the
    # scheduler lets a job do that itself; None: the script says to resubmit it (--resume auto continues).
    requeue: ClassVar[str | None] = None

    registry: ClassVar[dict[str, type[Scheduler]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            Scheduler.registry[cls.name] = cls

    @property
    def template(self) -> str:
        return f"{self.name}.sh.j2"

    @property
    def supports_arrays(self) -> bool:
        return self.array_index_var is not None

    def submit(self, script: Path, cwd: Path, log: Path) -> Submission:
        """Submit one script from `cwd`. `log` is where a foreground run writes its output
        (batch schedulers take their log paths from the script's directives)."""
        exe = shutil.which(self.submit_command[0])
        if exe is None:
            raise UserError(f"--submit: {self.submit_command[0]} not found on PATH (is this a {self.name} login node?)")
        proc = subprocess.run([exe, *self.submit_command[1:], str(script)], cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise UserError(f"{script}: {self.submit_command[0]} failed: {msg[-1] if msg else proc.returncode}")
        return Submission(self.parse_job_id(proc.stdout))

    def parse_job_id(self, stdout: str) -> str:
        lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
        if not lines:
            raise UserError(f"{self.submit_command[0]} printed no job id")
        return lines[-1]

    def task_id(self, job_id: str, index: int | None) -> str:
        """The id of one array task (or the job itself when index is None)."""
        return job_id

    def states(self, job_ids: list[str]) -> dict[str, str]:
        """Task id -> QUEUED | RUNNING for jobs still in the queue; ended jobs are absent
        (or ENDED when the scheduler still remembers them). Raises QueryError."""
        return {}

    @staticmethod
    def _run(argv: list[str]) -> subprocess.CompletedProcess:
        if shutil.which(argv[0]) is None:
            raise QueryError(f"{argv[0]} not found")
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise QueryError(f"{argv[0]} did not answer in 60 s") from None


def _expand_indices(spec: str) -> list[str]:
    """SLURM/PBS array index lists: '5-7%2' or '1,3,5-6' -> ['5','6','7'] ..."""
    out: list[str] = []
    for part in spec.split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.extend(str(i) for i in range(int(lo), int(hi or lo) + 1))
    return out


class Slurm(Scheduler):
    name = "slurm"
    submit_command = ("sbatch", "--parsable")
    job_id_var = "SLURM_JOB_ID"
    array_index_var = "SLURM_ARRAY_TASK_ID"
    master_addr = '$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'
    requeue = 'scontrol requeue "$SLURM_JOB_ID"'
    _queued = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED"}
    _running = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}

    def parse_job_id(self, stdout):
        # --parsable prints "jobid" or "jobid;cluster".
        return super().parse_job_id(stdout).split(";")[0]

    def task_id(self, job_id, index):
        return job_id if index is None else f"{job_id}_{index}"

    def states(self, job_ids):
        proc = self._run(["squeue", "-h", "-o", "%i|%T", "-u", getpass.getuser()])
        if proc.returncode != 0:
            raise QueryError(f"squeue failed: {proc.stderr.strip()}")
        wanted = {j.split("_")[0] for j in job_ids}
        found: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            task, _, state = line.strip().partition("|")
            job, _, index = task.partition("_")
            if job not in wanted:
                continue
            norm = QUEUED if state in self._queued else RUNNING if state in self._running else ENDED
            if index.startswith("["):  # pending array tasks: 123_[4-7]
                found.update({f"{job}_{i}": norm for i in _expand_indices(index.strip("[]"))})
            else:
                found[task] = norm
        return found


class Pbs(Scheduler):
    """PBS Pro and Torque: `qsub` prints the job id; `qstat -f` shows job_state."""

    name = "pbs"
    submit_command = ("qsub",)
    job_id_var = "PBS_JOBID"
    array_index_var = "PBS_ARRAY_INDEX"
    nodefile_var = "PBS_NODEFILE"
    master_addr = '$(head -n 1 "$PBS_NODEFILE")'
    _queued = {"Q", "H", "W", "T", "S", "U"}
    _running = {"R", "E", "B", "X"}

    def task_id(self, job_id, index):
        return job_id if index is None else job_id.replace("[]", f"[{index}]", 1)

    def states(self, job_ids):
        # Unknown (finished) ids make qstat exit non-zero while it still lists the others.
        proc = self._run(["qstat", "-f", "-t", *job_ids])
        if proc.returncode != 0 and not proc.stdout.strip() and "Unknown Job Id" not in proc.stderr:
            raise QueryError(f"qstat failed: {proc.stderr.strip()}")
        found: dict[str, str] = {}
        job = None
        for line in proc.stdout.splitlines():
            if line.startswith("Job Id:"):
                job = line.split(":", 1)[1].strip()
            elif job and line.strip().startswith("job_state"):
                state = line.split("=", 1)[1].strip()
                found[job] = QUEUED if state in self._queued else RUNNING if state in self._running else ENDED
        return found


class Cobalt(Scheduler):
    """Cobalt (ALCF Theta, Cooley): `#COBALT` directives, `qsub SCRIPT`."""

    name = "cobalt"
    submit_command = ("qsub",)
    job_id_var = "COBALT_JOBID"
    nodefile_var = "COBALT_NODEFILE"
    # Cooley has a node file; on Theta the nodes are the numeric list in COBALT_PARTNAME.
    master_addr = (
        '$(if [ -n "${COBALT_NODEFILE:-}" ]; then head -n 1 "$COBALT_NODEFILE"; '
        'else printf "nid%05d" "$((10#${COBALT_PARTNAME%%[!0-9]*}))"; fi)'
    )

    def states(self, job_ids):
        proc = self._run(["qstat", "-f", *job_ids])
        if proc.returncode != 0 and not proc.stdout.strip():
            raise QueryError(f"qstat failed: {proc.stderr.strip()}")
        found: dict[str, str] = {}
        job = None
        for line in proc.stdout.splitlines():
            key, _, value = (s.strip() for s in line.partition(":"))
            if key == "JobID":
                job = value
            elif key == "State" and job:
                found[job] = RUNNING if value in ("running", "exiting", "starting") else QUEUED
        return found


class NoScheduler(Scheduler):
    """No batch system: `--submit` runs each script here, one after another."""

    name = "none"
    job_id_var = "MLSCALE_JOB_ID"

    def submit(self, script, cwd, log):
        with open(log, "wb") as out:
            proc = subprocess.run(["bash", str(script)], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        return Submission(f"local-{script.stem}", proc.returncode)
