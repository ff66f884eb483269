"""Sweep planning: which (nodes, ranks, repeat) points to run, and each point's `mlscale run` argv.

Weak scaling keeps the per-rank `--batch-size` the user gave; strong scaling fixes the
global batch (`--global-batch-size`, or `--batch-size` times the smallest point's ranks)
and passes it to every point. Every point gets its own `--out`/`--run-id`, so the
records of a sweep land together under its directory.

The run's argv is read with the run's own parser (`mlscale run WORKLOAD`'s), so abbreviations
(`--global-batch 64`) and `--flag=value` mean here what they mean to the run, and a flag the run
would refuse is refused here. The values of flags the sweep does not read are left to the run.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field

from mlscale.bench.batching import batch_sizes
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


# The run flags the sweep reads (by dest) and how it writes them.
OWNED = {
    "out": "--out",
    "run_id": "--run-id",
    "resume": "--resume",
    "system": "--system",
    "batch_size": "--batch-size",
    "global_batch_size": "--global-batch-size",
    "help": "--help",
}


@dataclass(frozen=True)
class Given:
    """One flag the sweep reads, where the run argv sets it: argv[start:stop] is the option and its value."""

    dest: str
    written: str  # the option as the user wrote it, without any =VALUE (e.g. --global-batch)
    start: int
    stop: int

    @property
    def spelled(self) -> str:
        """The option as written, with its full name when abbreviated."""
        full = OWNED[self.dest]
        return full if self.written == full else f"{self.written} ({full})"


def parse_run_flags(workload: str, flags: list[str]) -> tuple[argparse.Namespace, dict[str, list[Given]]]:
    """Parse the flags after `run WORKLOAD` as `mlscale run WORKLOAD` would, without importing it.

    Returns the parsed values and where each flag of OWNED is set. A flag the run would not accept
    (unknown, ambiguous, missing its value) is the run's one-line error. A workload that is not found
    (e.g. a plug-in installed only where the ranks run) gets the run options only; its other flags
    pass unchecked."""
    from mlscale.commands.run import run_parser, workload_config

    config = workload_config(workload)
    parser = run_parser(workload, config, add_help=False)
    # The run's -h/--help, kept so abbreviations resolve as in the run; a sweep of it is refused.
    parser.add_argument("-h", "--help", action="store_true")
    for action in parser._actions:
        if action.dest not in OWNED:  # checking these values is the run's business
            action.type, action.choices = None, None
    if config is not None:
        values = parser.parse_args(flags)
    else:
        values, _ = parser.parse_known_args(flags)
    given: dict[str, list[Given]] = {}
    for found in _owned_options(parser, flags):
        given.setdefault(found.dest, []).append(found)
    return values, given


def _owned_options(parser: argparse.ArgumentParser, argv: list[str]) -> list[Given]:
    """Where argv (accepted by `parser`) sets the flags of OWNED, as argparse reads it: a bare `--`
    ends the options; the flags of OWNED are long options taking one value (or none: --help)."""
    actions = {option: action for action in parser._actions for option in action.option_strings}
    found, i = [], 0
    while i < len(argv) and argv[i] != "--":
        action, written, has_value = _option(argv[i], actions, parser.allow_abbrev)
        if action is not None and action.dest in OWNED:
            stop = i + 1 if has_value or action.nargs == 0 else i + 2
            found.append(Given(action.dest, written, i, stop))
            i = stop
        else:
            i += 1
    return found


def _option(arg: str, actions: dict[str, argparse.Action], allow_abbrev: bool):
    """(action, option as written, whether arg holds its =VALUE) for a long option, argparse's way:
    the exact name, NAME=VALUE, or a prefix of exactly one option's name; (None, arg, False) else."""
    if arg in actions:
        return actions[arg], arg, False
    name, eq, _ = arg.partition("=")
    if not arg.startswith("--"):
        return None, arg, False
    if eq and name in actions:
        return actions[name], name, True
    matches = {id(a): a for option, a in actions.items() if option.startswith(name)} if allow_abbrev else {}
    if len(matches) == 1:
        return next(iter(matches.values())), name, bool(eq)
    return None, arg, False


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
    workload = workload_of(run_argv)
    flags = run_argv[2:]
    values, given = parse_run_flags(workload, flags)
    if "help" in given:
        raise UserError(
            f"-- ... {given['help'][-1].written}: `mlscale run {workload} --help` only prints its options; leave it out"
        )
    for dest in ("out", "run_id", "resume"):
        if dest in given:
            raise UserError(
                f"-- ... {given[dest][-1].written}: mlscale launch sets {OWNED[dest]} for each point; leave it out"
            )
    if repeats < 1:
        raise UserError(f"--repeats {repeats}: must be at least 1")
    shape = placements(system, nodes, ranks, ranks_per_node)
    point_ranks = sorted({r for _, r, _ in shape})

    if scaling == "weak":
        if "global_batch_size" in given:
            raise UserError(
                f"--scaling weak keeps the per-rank --batch-size; drop {given['global_batch_size'][-1].spelled} "
                "or use --scaling strong"
            )
        batch_sizes(values.batch_size, None, point_ranks[0])  # a --batch-size the run would refuse
        global_size = None
        replaced = {"system"}
    else:
        global_size = _strong_global_batch(values, given, point_ranks)
        replaced = {"system", "batch_size", "global_batch_size"}
    # The flags the sweep sets replace the user's, however spelled; the rest stay as written.
    dropped = {i for dest in replaced for g in given.get(dest, []) for i in range(g.start, g.stop)}
    argv = run_argv[:2] + [arg for i, arg in enumerate(flags) if i not in dropped]
    argv += ["--system", values.system if "system" in given else system.label]

    points = []
    for n, r, per_node in shape:
        for k in range(repeats):
            point = Point(f"n{n}-r{r}-rep{k}", n, r, per_node, k, global_batch_size=global_size)
            extra = ["--global-batch-size", str(global_size)] if global_size else []
            # --resume auto: a requeued job continues from the checkpoint its preempted run left.
            point.argv = argv + extra + ["--out", runs_dir, "--run-id", point.run_id, "--resume", "auto"]
            points.append(point)
    return points


def _strong_global_batch(values: argparse.Namespace, given: dict[str, list[Given]], ranks: list[int]) -> int:
    """The global batch of a strong-scaling sweep, which every point's ranks must divide."""
    if "global_batch_size" in given:
        size = batch_sizes(values.batch_size, values.global_batch_size, 1).global_size
        source = ""
    elif "batch_size" in given:
        size = batch_sizes(values.batch_size, None, ranks[0]).global_size
        source = f" (--batch-size {values.batch_size} times {ranks[0]} ranks, the smallest point)"
    else:
        raise UserError(
            "--scaling strong needs the global batch: add --global-batch-size N "
            "(or --batch-size N per rank at the smallest point) after -- run WORKLOAD"
        )
    uneven = []
    for r in ranks:
        try:
            batch_sizes(values.batch_size, size, r)
        except UserError:
            uneven.append(r)
    if uneven:
        raise UserError(
            f"--scaling strong: global batch {size}{source} does not divide by {', '.join(map(str, uneven))} ranks"
        )
    return size
