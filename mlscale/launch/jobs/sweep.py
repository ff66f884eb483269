"""Sweep planning: which (nodes, ranks, repeat) points to run, and each point's `mlscale run` argv.

Weak scaling keeps the per-rank `--batch-size` the user gave; strong scaling fixes the
global batch (`--global-batch-size`, or `--batch-size` times the smallest point's ranks)
and passes it to every point. Every point gets its own `--out`/`--run-id`, so the
records of a sweep land together under its directory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from mlscale.errors import UserError
from mlscale.launch.jobs.system import System

RUNS_DIR = "runs"


@dataclass
class Point:
    id: str
    nodes: int
    ranks: int
    ranks_per_node: int
    repeat: int
    argv: list[str] = field(default_factory=list)  # after `python -m mlscale`
    global_batch_size: int | None = None

    @property
    def run_id(self) -> str:
        return self.id


def parse_int_list(text: str | None, flag: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4]; a UserError naming the flag otherwise."""
    if text is None:
        return []
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} {text}: expected comma-separated whole numbers, e.g. 1,2,4") from None
    if not values or any(v < 1 for v in values):
        raise UserError(f"{flag} {text}: expected numbers of at least 1")
    return list(dict.fromkeys(values))


def _take(argv: list[str], flag: str) -> tuple[str | None, list[str]]:
    """Remove `flag VALUE` / `flag=VALUE` from argv; return (last value, the rest)."""
    value, rest, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == flag:
            if i + 1 >= len(argv):
                raise UserError(f"-- ... {flag}: expected a value")
            value, i = argv[i + 1], i + 2
            continue
        if arg.startswith(flag + "="):
            value = arg[len(flag) + 1 :]
        else:
            rest.append(arg)
        i += 1
    return value, rest


def _positive_int(value: str, flag: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UserError(f"-- ... {flag} {value}: not a whole number") from None
    if number < 1:
        raise UserError(f"-- ... {flag} {value}: must be at least 1")
    return number


def workload_of(run_argv: list[str]) -> str:
    if not run_argv:
        raise UserError("nothing after --: give the run command, e.g. -- run synthetic --epochs 2")
    if run_argv[0] != "run":
        raise UserError(f"-- {run_argv[0]}: mlscale launch starts `mlscale run`; begin with: -- run WORKLOAD ...")
    if len(run_argv) < 2 or run_argv[1].startswith("-"):
        raise UserError("-- run: name the workload, e.g. -- run synthetic --epochs 2")
    return run_argv[1]


def safe_name(text: str) -> str:
    """A job-name-safe version of text (directives cannot be quoted)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.")[:48] or "job"


def placements(
    system: System, nodes: list[int], ranks: list[int], ranks_per_node: int | None
) -> list[tuple[int, int, int]]:
    """(nodes, ranks, ranks per node) for each point, from --nodes and/or --ranks."""
    if not nodes and not ranks:
        raise UserError("give --nodes and/or --ranks, e.g. --nodes 1,2,4")
    out: list[tuple[int, int, int]] = []
    if nodes and not ranks:
        per_node = ranks_per_node or system.default_ranks_per_node
        out = [(n, n * per_node, per_node) for n in nodes]
    elif ranks and not nodes:
        # Fill nodes up to --ranks-per-node, the system's ranks_per_node, one rank per GPU or per core.
        cap = ranks_per_node or system.ranks_per_node or system.gpus_per_node or system.cores_per_node
        for r in ranks:
            n = math.ceil(r / cap)
            if r % n:
                raise UserError(f"--ranks {r}: does not split evenly over {n} nodes of at most {cap} ranks")
            out.append((n, r, r // n))
    else:
        for n in nodes:
            for r in ranks:
                if r < n or r % n:
                    raise UserError(f"--nodes {n} with --ranks {r}: ranks must be a multiple of the node count")
                if ranks_per_node and r // n != ranks_per_node:
                    raise UserError(f"--nodes {n} --ranks {r} gives {r // n} ranks per node, not --ranks-per-node")
                out.append((n, r, r // n))
    if system.scheduler == "none" and any(n > 1 for n, _, _ in out):
        raise UserError(f"--system {system.name}: has no scheduler, so every point must fit on one node")
    if system.max_nodes and any(n > system.max_nodes for n, _, _ in out):
        raise UserError(f"--nodes: {system.name} has at most {system.max_nodes} nodes")
    return list(dict.fromkeys(out))


def plan_sweep(
    system: System,
    run_argv: list[str],
    nodes: list[int],
    ranks: list[int],
    ranks_per_node: int | None,
    scaling: str,
    repeats: int,
    runs_dir: str,
) -> list[Point]:
    workload_of(run_argv)
    argv = list(run_argv)
    for flag in ("--out", "--run-id"):
        if _take(argv, flag)[0] is not None:
            raise UserError(f"-- ... {flag}: mlscale launch sets {flag} for each point; leave it out")
    if repeats < 1:
        raise UserError(f"--repeats {repeats}: must be at least 1")
    shape = placements(system, nodes, ranks, ranks_per_node)

    global_batch, argv = _take(argv, "--global-batch-size")
    if scaling == "weak":
        if global_batch is not None:
            raise UserError(
                "--scaling weak keeps the per-rank --batch-size; drop --global-batch-size or use --scaling strong"
            )
        global_size = None
    else:
        batch, argv = _take(argv, "--batch-size")
        if global_batch is not None:
            global_size = _positive_int(global_batch, "--global-batch-size")
        elif batch is not None:
            global_size = _positive_int(batch, "--batch-size") * min(r for _, r, _ in shape)
        else:
            raise UserError(
                "--scaling strong needs the global batch: add --global-batch-size N "
                "(or --batch-size N per rank at the smallest point) after -- run WORKLOAD"
            )
        uneven = [r for _, r, _ in shape if global_size % r]
        if uneven:
            raise UserError(
                f"--scaling strong: global batch {global_size} does not divide by {', '.join(map(str, uneven))} ranks"
            )
    if _take(argv, "--system")[0] is None:
        argv += ["--system", system.label]

    points = []
    for n, r, per_node in shape:
        for k in range(repeats):
            point = Point(f"n{n}-r{r}-rep{k}", n, r, per_node, k, global_batch_size=global_size)
            extra = ["--global-batch-size", str(global_size)] if global_size else []
            point.argv = argv + extra + ["--out", runs_dir, "--run-id", point.run_id]
            points.append(point)
    return points
