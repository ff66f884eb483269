"""Rank launchers inside a job script: srun, mpiexec (Hydra), aprun (ALPS), PALS mpiexec, mpirun.

One small class per launcher; each registers itself by name on subclassing, so
the rest of the code never lists them. A launcher turns a placement (nodes,
ranks, cores per rank) into the argv that starts the ranks, and says how a rank
finds its local rank (for GPU binding) and which variables it wants exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlscale.launch.jobs.shell import Raw


@dataclass(frozen=True)
class Placement:
    """Where the ranks of one sweep point go."""

    nodes: int
    ranks: int
    ranks_per_node: int
    cpus_per_rank: int  # cores given to each rank (aprun -d, PALS --depth, srun -c)
    threads_per_core: int = 1
    gpus_per_node: int = 0
    cpu_bind: str | None = None

    @property
    def omp_threads(self) -> int:
        return self.cpus_per_rank * self.threads_per_core


class JobLauncher:
    name: ClassVar[str] = ""
    schedulers: ClassVar[tuple[str, ...]] = ()  # schedulers it runs under; empty: any
    # Shell arithmetic giving a rank's local rank on its node, for GPU binding.
    local_rank: ClassVar[str] = "0"
    # Variables every rank needs under this launcher (the system's `env` overrides them).
    env: ClassVar[dict[str, str]] = {}

    registry: ClassVar[dict[str, type[JobLauncher]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            JobLauncher.registry[cls.name] = cls

    def argv(self, p: Placement, nodefile: str | None) -> list[str]:
        """The launcher's part of the command line; `nodefile` names the
        scheduler's host-file variable (PBS_NODEFILE), if it has one."""
        raise NotImplementedError


class Srun(JobLauncher):
    name = "srun"
    schedulers = ("slurm",)
    local_rank = "SLURM_LOCALID"

    def argv(self, p, nodefile):
        # srun does not inherit --cpus-per-task from the batch job (SLURM >= 22.05): pass it.
        cmd = [
            "srun",
            f"--nodes={p.nodes}",
            f"--ntasks={p.ranks}",
            f"--ntasks-per-node={p.ranks_per_node}",
            f"--cpus-per-task={p.cpus_per_rank}",
        ]
        if p.cpu_bind:
            cmd.append(f"--cpu-bind={p.cpu_bind}")
        return cmd


class Mpiexec(JobLauncher):
    """MPICH Hydra / Intel MPI / MVAPICH `mpiexec`, with the scheduler's host file."""

    name = "mpiexec"
    schedulers = ("pbs", "cobalt")
    local_rank = "MPI_LOCALRANKID"

    def argv(self, p, nodefile):
        cmd = ["mpiexec", "-n", str(p.ranks), "-ppn", str(p.ranks_per_node)]
        if nodefile:
            cmd += ["-f", Raw(f'"${nodefile}"')]
        if p.cpu_bind:
            cmd += ["-bind-to", p.cpu_bind]
        return cmd


class Alps(JobLauncher):
    """Cray ALPS `aprun` (Theta, XC40): -n ranks, -N per node, -d cores per rank, -j threads per core."""

    name = "alps"
    schedulers = ("cobalt", "pbs")
    # aprun places ranks in blocks of -N per node and exports no local rank.
    local_rank = "ALPS_APP_PE % {ranks_per_node}"
    # The OpenMP/KMP settings Theta's documentation and the CosmicTagger runs used.
    env = {
        "KMP_AFFINITY": "granularity=fine,verbose,compact",
        "KMP_BLOCKTIME": "0",
        "MKLDNN_VERBOSE": "0",
        "MPICH_MAX_THREAD_SAFETY": "multiple",
    }

    def argv(self, p, nodefile):
        return [
            "aprun",
            "-n",
            str(p.ranks),
            "-N",
            str(p.ranks_per_node),
            "-cc",
            p.cpu_bind or "depth",
            "-j",
            str(p.threads_per_core),
            "-d",
            str(p.cpus_per_rank),
        ]


class Pals(JobLauncher):
    """Cray PALS `mpiexec` (Polaris, Aurora)."""

    name = "pals"
    schedulers = ("pbs",)
    local_rank = "PMI_LOCAL_RANK"

    def argv(self, p, nodefile):
        return [
            "mpiexec",
            "-n",
            str(p.ranks),
            "--ppn",
            str(p.ranks_per_node),
            "--depth",
            str(p.cpus_per_rank),
            "--cpu-bind",
            p.cpu_bind or "depth",
        ]


class Mpirun(JobLauncher):
    """Open MPI `mpirun` (a workstation, or inside any allocation)."""

    name = "mpirun"
    local_rank = "OMPI_COMM_WORLD_LOCAL_RANK"

    def argv(self, p, nodefile):
        cmd = ["mpirun", "-np", str(p.ranks), "--map-by", f"ppr:{p.ranks_per_node}:node"]
        if nodefile:
            cmd += ["--hostfile", Raw(f'"${nodefile}"')]
        return cmd
