"""Job scripts from sweep points, through the jinja2 templates in `templates/`.

Directive values (#SBATCH ...) are checked to be plain tokens; everything in the
script body that came from the user (paths, the run command, environment values)
is shell-quoted by the `q` filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2

from mlscale.errors import UserError
from mlscale.launch.jobs import shell
from mlscale.launch.jobs.launchers import JobLauncher, Placement
from mlscale.launch.jobs.schedulers import Scheduler
from mlscale.launch.jobs.sweep import Point, safe_name
from mlscale.launch.jobs.system import System

TIME = re.compile(r"^([0-9]+-)?[0-9]+(:[0-5][0-9]){0,2}$")


@dataclass
class JobSpec:
    """What the scheduler directives ask for."""

    name: str
    nodes: int
    ranks_per_node: int
    cpus_per_rank: int
    cores_per_node: int
    gpus_per_node: int
    time: str
    log: str
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    select_extra: str | None = None
    array: str | None = None
    directives: tuple[str, ...] = ()
    signal_seconds: int = 0  # SLURM: SIGUSR1 this long before the time limit (0: none)


@dataclass
class Run:
    """One launcher line of a script (one sweep point)."""

    index: int
    point: Point
    omp_threads: int
    command: str
    comment: str


@dataclass
class Script:
    path: str  # relative to the sweep directory
    text: str
    points: list[Point] = field(default_factory=list)
    array: bool = False


@dataclass(frozen=True)
class Options:
    """Per-sweep choices from the command line (None: the system's default)."""

    python: str
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None
    array: bool = False
    signal_seconds: int = 180


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mlscale.launch.jobs", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["q"] = shell.quote
    env.filters["comment"] = shell.comment
    return env


def placement(system: System, point: Point) -> Placement:
    return Placement(
        nodes=point.nodes,
        ranks=point.ranks,
        ranks_per_node=point.ranks_per_node,
        cpus_per_rank=max(1, system.cores_per_node // point.ranks_per_node),
        threads_per_core=system.threads_per_core,
        # A rank per GPU at most: a 1-rank point on a 16-GPU node asks for one GPU, not sixteen.
        gpus_per_node=min(system.gpus_per_node, point.ranks_per_node),
        cpu_bind=system.cpu_bind,
    )


def gpu_bind(local_rank: str, gpus: int) -> str:
    """Shell code giving each rank one GPU: entry (local rank mod count) of the GPUs the
    scheduler made visible (CUDA_VISIBLE_DEVICES, which may name physical ids such as 4,5),
    or of 0..gpus-1 when it set none. The rank then sees one device and uses cuda:0."""
    return (
        f'if [ -n "${{CUDA_VISIBLE_DEVICES:-}}" ]; then IFS=, read -ra gpus <<< "$CUDA_VISIBLE_DEVICES"; '
        f"else gpus=({' '.join(map(str, range(gpus)))}); fi; "
        f'export CUDA_VISIBLE_DEVICES=${{gpus[({local_rank}) % ${{#gpus[@]}}]}}; exec "$@"'
    )


def rank_command(system: System, launcher: JobLauncher, scheduler: Scheduler, point: Point, python: str) -> list:
    """The launcher line's argv: launcher, its flags, GPU binding, then python -m mlscale ..."""
    p = placement(system, point)
    argv: list = [*launcher.argv(p, scheduler.nodefile_var), *system.launcher_args]
    if p.gpus_per_node and system.gpu_bind == "local_rank":
        argv += [
            "bash",
            "-c",
            gpu_bind(launcher.local_rank.format(ranks_per_node=p.ranks_per_node), p.gpus_per_node),
            "mlscale-gpu-bind",
        ]
    return argv + [python, "-m", "mlscale", *point.argv]


def _checked(value: str | None, flag: str, allowed: tuple[str, ...] = ()) -> str | None:
    if value is None:
        return None
    shell.directive_value(value, flag)
    if allowed and value not in allowed:
        raise UserError(f"{flag} {value}: not one of this system's {', '.join(allowed)}")
    return value


def job_spec(system: System, points: list[Point], name: str, log: str, opts: Options, array: str | None) -> JobSpec:
    time = opts.time or system.time
    if not TIME.match(time):
        raise UserError(f"--time {time}: expected [D-]HH:MM:SS, HH:MM or minutes")
    per_node = max(p.ranks_per_node for p in points)
    cpus = max(1, system.cores_per_node // per_node)
    return JobSpec(
        name=shell.directive_value(name, "job name"),
        nodes=points[0].nodes,
        ranks_per_node=per_node,
        cpus_per_rank=cpus,
        cores_per_node=system.cores_per_node,
        gpus_per_node=max(placement(system, p).gpus_per_node for p in points),
        time=time,
        log=log,
        partition=_checked(
            opts.partition or system.partition, "--partition", system.partitions if opts.partition else ()
        ),
        account=_checked(opts.account or system.account, "--account"),
        qos=_checked(opts.qos or system.qos, "--qos"),
        select_extra=system.select_extra,
        array=array,
        directives=system.directives,
        signal_seconds=opts.signal_seconds,
    )


def render_script(
    system: System, points: list[Point], sweep_dir: Path, workload: str, stem: str, opts: Options, array: bool
) -> Script:
    scheduler = Scheduler.registry[system.scheduler]()
    launcher = JobLauncher.registry[system.launcher]()
    runs = []
    for index, point in enumerate(points):
        p = placement(system, point)
        comment = (
            f"{point.id}: {point.nodes} node(s) x {point.ranks_per_node} rank(s) per node = "
            f"{point.ranks} rank(s), {p.cpus_per_rank} core(s) per rank"
        )
        command = shell.join(rank_command(system, launcher, scheduler, point, opts.python))
        # The system may pin OMP_NUM_THREADS (hyperthreads, or fewer threads than cores).
        omp = system.env.get("OMP_NUM_THREADS", p.omp_threads)
        runs.append(Run(index, point, omp, command, shell.comment(comment)))
    spec = job_spec(
        system, points, safe_name(f"{workload}-{stem}"), f"logs/{stem}", opts, f"0-{len(points) - 1}" if array else None
    )
    exports = [*launcher.env.items(), *system.env.items()]
    # The system's values override the launcher's defaults; OMP_NUM_THREADS is set per run.
    exports = [(k, v) for k, v in dict(exports).items() if k != "OMP_NUM_THREADS"]
    what = "job array" if array else "sweep point"
    text = (
        _templates()
        .get_template(scheduler.template)
        .render(
            title=shell.comment(f"mlscale {what} {stem} of {workload} on {system.label}"),
            system=system,
            scheduler=scheduler,
            job=spec,
            setup=system.setup,
            exports=exports,
            sweep_dir=str(sweep_dir),
            script_path=str(sweep_dir / "scripts" / f"{stem}.sh"),
            array=array,
            runs=runs,
        )
    )
    return Script(f"scripts/{stem}.sh", text, list(points), array)


def render_sweep(system: System, points: list[Point], sweep_dir: Path, workload: str, opts: Options) -> list[Script]:
    """One script per point, or with `opts.array` one job array per node count."""
    if not opts.array:
        return [render_script(system, [p], sweep_dir, workload, p.id, opts, False) for p in points]
    scheduler = Scheduler.registry[system.scheduler]()
    if not scheduler.supports_arrays:
        raise UserError(f"--array: scheduler {system.scheduler} of {system.name} has no job arrays")
    groups: dict[int, list[Point]] = {}
    for p in points:
        groups.setdefault(p.nodes, []).append(p)
    return [
        render_script(
            system, group, sweep_dir, workload, f"array-n{n}" if len(group) > 1 else group[0].id, opts, len(group) > 1
        )
        for n, group in groups.items()
    ]
