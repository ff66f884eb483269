"""Rank environment detection: who am I, how many of us are there, where do we meet.

One small class per launcher, each with a `detect(environ)`; they register
themselves by subclassing `Launcher`, and `detect_environment()` tries them in
order of `priority` (lowest first). Order matters because launchers nest: an
`mpirun` inside an sbatch script inherits `SLURM_PROCID=0` on every rank, and
Open MPI's daemons are themselves started by `srun`, so the MPI launchers are
tried before SLURM.

Values a launcher does not export (Cray ALPS gives no world size, PMIx gives no
local rank) are filled in from MPI when the process was started by an MPI
launcher, and left unknown otherwise.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import hostlist

from mlscale.registry import Registered

DEFAULT_PORT = 29500


@dataclass(frozen=True)
class RankEnv:
    """What one process knows about its place in the job."""

    launcher: str
    rank: int
    size: int
    local_rank: int
    local_size: int
    num_nodes: int
    hostname: str
    master_addr: str | None = None
    master_port: int | None = None
    job_id: str | None = None
    hosts: list[str] = field(default_factory=list)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def as_dict(self) -> dict:
        return asdict(self)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = environ.get(name)
        if value not in (None, ""):
            return value
    return None


class Launcher(Registered):
    """Base class: reads rank, size and locality from a launcher's variables.

    A subclass names the variables its launcher sets (first present wins) and
    overrides a property only where the launcher needs real logic.
    """

    name: ClassVar[str] = ""
    priority: ClassVar[int] = 50
    mpi_launched: ClassVar[bool] = True  # may we ask MPI for what the env lacks?
    rank_vars: ClassVar[tuple[str, ...]] = ()
    size_vars: ClassVar[tuple[str, ...]] = ()
    local_rank_vars: ClassVar[tuple[str, ...]] = ()
    local_size_vars: ClassVar[tuple[str, ...]] = ()
    nodes_vars: ClassVar[tuple[str, ...]] = ()
    job_id_vars: ClassVar[tuple[str, ...]] = ("SLURM_JOB_ID", "PBS_JOBID", "COBALT_JOBID", "LSB_JOBID")

    registry: ClassVar[dict[str, type[Launcher]]] = {}

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = dict(os.environ if environ is None else environ)

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> bool:
        """True when this launcher started the process."""
        return all(environ.get(v) not in (None, "") for v in cls.rank_vars[:1])

    def _int(self, names: tuple[str, ...]) -> int | None:
        value = _first(self.environ, names)
        return int(value) if value is not None else None

    @property
    def rank(self) -> int | None:
        return self._int(self.rank_vars)

    @property
    def size(self) -> int | None:
        return self._int(self.size_vars)

    @property
    def local_rank(self) -> int | None:
        return self._int(self.local_rank_vars)

    @property
    def local_size(self) -> int | None:
        return self._int(self.local_size_vars)

    @property
    def hosts(self) -> list[str]:
        """Hosts of the job, in order, when the scheduler tells us."""
        nodelist = _first(self.environ, ("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"))
        if nodelist:
            return hostlist.expand_hostlist(nodelist)
        nodefile = self.environ.get("PBS_NODEFILE") or self.environ.get("COBALT_NODEFILE")
        if nodefile and os.path.isfile(nodefile):
            with open(nodefile) as fh:
                return list(dict.fromkeys(line.strip() for line in fh if line.strip()))
        return []

    @property
    def num_nodes(self) -> int | None:
        nodes = self._int(self.nodes_vars)
        if nodes is not None:
            return nodes
        if self.size is not None and self.local_size:
            return math.ceil(self.size / self.local_size)
        return None

    @property
    def hostname(self) -> str:
        return socket.gethostname()

    @property
    def job_id(self) -> str | None:
        return _first(self.environ, self.job_id_vars)

    @property
    def master_addr(self) -> str | None:
        if self.environ.get("MASTER_ADDR"):
            return self.environ["MASTER_ADDR"]
        hosts = self.hosts
        return hosts[0] if hosts else None

    @property
    def master_port(self) -> int | None:
        if self.environ.get("MASTER_PORT"):
            return int(self.environ["MASTER_PORT"])
        job = self.job_id
        digits = "".join(ch for ch in job or "" if ch.isdigit())
        # A port derived from the job id lets concurrent jobs on shared nodes differ.
        return 20000 + int(digits[-4:]) if digits else None


class TorchRun(Launcher):
    name = "torchrun"
    priority = 10
    mpi_launched = False
    rank_vars = ("RANK",)
    size_vars = ("WORLD_SIZE",)
    local_rank_vars = ("LOCAL_RANK",)
    local_size_vars = ("LOCAL_WORLD_SIZE",)

    @classmethod
    def detect(cls, environ):
        return all(environ.get(v) not in (None, "") for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


class HorovodRun(Launcher):
    """horovodrun in Gloo mode (in MPI mode it runs mpirun, detected as such)."""

    name = "horovodrun"
    priority = 15
    mpi_launched = False
    rank_vars = ("HOROVOD_RANK",)
    size_vars = ("HOROVOD_SIZE",)
    local_rank_vars = ("HOROVOD_LOCAL_RANK",)
    local_size_vars = ("HOROVOD_LOCAL_SIZE",)
    nodes_vars = ("HOROVOD_CROSS_SIZE",)

    @property
    def hostname(self) -> str:
        # horovodrun sets HOROVOD_HOSTNAME to the name given in -H, "localhost" for a local run.
        named = self.environ.get("HOROVOD_HOSTNAME")
        return named if named and named not in ("localhost", "127.0.0.1") else socket.gethostname()


class OpenMPI(Launcher):
    name = "openmpi"
    priority = 20
    rank_vars = ("OMPI_COMM_WORLD_RANK",)
    size_vars = ("OMPI_COMM_WORLD_SIZE",)
    local_rank_vars = ("OMPI_COMM_WORLD_LOCAL_RANK",)
    local_size_vars = ("OMPI_COMM_WORLD_LOCAL_SIZE",)


class CrayPALS(Launcher):
    """Cray PALS `mpiexec` (Polaris, Aurora); it also sets PMI_*, so it comes before MPICH."""

    name = "pals"
    priority = 25
    rank_vars = ("PALS_RANKID",)
    size_vars = ("PMI_SIZE", "PALS_SIZE")
    local_rank_vars = ("PALS_LOCAL_RANKID", "PMI_LOCAL_RANK")
    local_size_vars = ("PALS_LOCAL_SIZE", "PMI_LOCAL_SIZE")


class CrayALPS(Launcher):
    """Cray ALPS `aprun` (Theta): rank from ALPS_APP_PE; the rest from PMI or MPI."""

    name = "alps"
    priority = 26
    rank_vars = ("ALPS_APP_PE",)
    size_vars = ("PMI_SIZE",)
    local_rank_vars = ("PMI_LOCAL_RANK",)
    local_size_vars = ("PMI_LOCAL_SIZE",)


class MPICH(Launcher):
    """MPICH's Hydra `mpiexec` and Intel MPI, which share its variables."""

    name = "mpich"
    priority = 30
    rank_vars = ("PMI_RANK",)
    size_vars = ("PMI_SIZE",)
    # `srun --mpi=pmi2` also sets PMI_RANK/PMI_SIZE but no local rank: SLURM's own then.
    local_rank_vars = ("MPI_LOCALRANKID", "PMI_LOCAL_RANK", "SLURM_LOCALID")
    local_size_vars = ("MPI_LOCALNRANKS", "PMI_LOCAL_SIZE")


class SlurmStep(Launcher):
    """`srun` job steps. A plain sbatch script sets SLURM_PROCID=0 too, but no
    SLURM_STEP_NUM_TASKS: that process is one rank alone, not a launch."""

    name = "srun"
    priority = 40
    rank_vars = ("SLURM_PROCID",)
    size_vars = ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")
    local_rank_vars = ("SLURM_LOCALID",)
    nodes_vars = ("SLURM_STEP_NUM_NODES", "SLURM_NNODES")

    @classmethod
    def detect(cls, environ):
        return bool(environ.get("SLURM_PROCID")) and bool(environ.get("SLURM_STEP_NUM_TASKS"))

    @property
    def local_size(self) -> int | None:
        # SLURM_STEP_TASKS_PER_NODE looks like "2(x3),1": expand and pick our node.
        spec = _first(self.environ, ("SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"))
        node = self._int(("SLURM_NODEID",))
        if not spec or node is None:
            return None
        counts: list[int] = []
        for part in spec.split(","):
            count, _, repeat = part.partition("(x")
            counts.extend([int(count)] * (int(repeat.rstrip(")")) if repeat else 1))
        return counts[node] if node < len(counts) else None

    @property
    def master_port(self) -> int | None:
        port = super().master_port
        step = self._int(("SLURM_STEP_ID", "SLURM_STEPID"))
        # Several steps of one job may run at once: keep their ports apart.
        return (
            port + (step % 100) * 7
            if port is not None and step is not None and "MASTER_PORT" not in self.environ
            else port
        )


class PMIx(Launcher):
    """Any PMIx launcher (prterun, srun --mpi=pmix) not recognised above."""

    name = "pmix"
    priority = 50
    rank_vars = ("PMIX_RANK",)
    size_vars = ("PMIX_SIZE", "SLURM_STEP_NUM_TASKS")
    local_rank_vars = ("PMIX_LOCAL_RANK", "SLURM_LOCALID")
    local_size_vars = ("PMIX_LOCAL_SIZE",)


class SingleProcess(Launcher):
    """Started alone: a laptop, a login node, or a plain sbatch script."""

    name = "single"
    priority = 1000
    mpi_launched = False

    @classmethod
    def detect(cls, environ):
        return True

    rank = 0  # type: ignore[assignment]
    size = 1  # type: ignore[assignment]
    local_rank = 0  # type: ignore[assignment]
    local_size = 1  # type: ignore[assignment]

    @property
    def num_nodes(self) -> int:
        return 1


def detect_launcher(environ: Mapping[str, str] | None = None) -> Launcher:
    """The first registered launcher, in priority order, whose `detect` matches."""
    environ = dict(os.environ if environ is None else environ)
    forced = environ.get("MLSCALE_LAUNCHER")
    if forced:
        if forced not in Launcher.registry:
            from mlscale.errors import UserError

            raise UserError(f"MLSCALE_LAUNCHER={forced!r} is not one of {', '.join(sorted(Launcher.registry))}")
        return Launcher.registry[forced](environ)
    for cls in sorted(Launcher.registry.values(), key=lambda c: c.priority):
        if cls.detect(environ):
            return cls(environ)
    raise AssertionError("SingleProcess always matches")


def detect_environment(environ: Mapping[str, str] | None = None, use_mpi: bool = True) -> RankEnv:
    """Detect this process's rank environment.

    With `use_mpi`, values the launcher's variables leave out (and, with no
    MASTER_ADDR, the rendezvous) are completed over MPI. Without it they are
    estimated from what is known.
    """
    launcher = detect_launcher(environ)
    rank, size = launcher.rank, launcher.size
    local_rank, local_size = launcher.local_rank, launcher.local_size
    num_nodes, hosts = launcher.num_nodes, launcher.hosts
    master_addr, master_port = launcher.master_addr, launcher.master_port

    incomplete = None in (rank, size, local_rank, local_size, num_nodes, master_addr, master_port)
    if use_mpi and launcher.mpi_launched and incomplete:
        from mlscale.launch.mpi_probe import probe

        found = probe()
        rank = found.rank if rank is None else rank
        size = found.size if size is None else size
        local_rank = found.local_rank if local_rank is None else local_rank
        local_size = found.local_size if local_size is None else local_size
        num_nodes = found.num_nodes if num_nodes is None else num_nodes
        master_addr = master_addr or found.master_addr
        master_port = master_port or found.master_port

    rank = 0 if rank is None else rank
    size = 1 if size is None else size
    local_rank = rank if local_rank is None else local_rank
    local_size = size if local_size is None else local_size
    num_nodes = num_nodes or max(1, len(hosts) if hosts else math.ceil(size / max(local_size, 1)))
    if master_addr is None and num_nodes == 1:
        master_addr = "127.0.0.1"
    if master_port is None and size == 1:
        # A lone process meets only itself: a free port keeps concurrent laptop runs from colliding on 29500.
        master_port = _free_port()
    return RankEnv(
        launcher=launcher.name,
        rank=rank,
        size=size,
        local_rank=local_rank,
        local_size=local_size,
        num_nodes=num_nodes,
        hostname=launcher.hostname,
        master_addr=master_addr,
        master_port=master_port or DEFAULT_PORT,
        job_id=launcher.job_id,
        hosts=hosts,
    )
