"""`mlscale run WORKLOAD`: run one benchmark on every rank of this launch."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from mlscale.cli import ArgumentParser, raw_command

EPILOG = """examples:
  mlscale run synthetic --model tiny --epochs 2 --out runs/
  mpirun -np 4 mlscale run synthetic --system mycluster --epochs 2 --out runs/
  srun -n 8 mlscale run cosmic-tagger --global-batch-size 16 --infer --out runs/
then: mlscale report runs/"""


def workload_parser(name: str | None) -> ArgumentParser:
    from mlscale.bench.config import RunConfig, add_dataclass_arguments
    from mlscale.bench.workload import get_workload, workload_names

    names = workload_names()
    if name is None:
        parser = ArgumentParser(
            prog="mlscale run",
            description="Run a benchmark on every rank of this launch and write a run directory "
            "(record.json, ranks.jsonl, run.log) under --out. Start it under mpirun, srun, aprun, "
            "torchrun or horovodrun, or alone.",
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument(
            "workload", choices=names, help="workload to run; `mlscale run WORKLOAD --help` lists its own options"
        )
        add_dataclass_arguments(parser, RunConfig, "run options (all workloads)")
        return parser
    cls = get_workload(name)
    return run_parser(name, cls.Config, cls.description)


def run_parser(name: str, config: type | None, description: str | None = None, add_help: bool = True) -> ArgumentParser:
    """The parser of `mlscale run NAME`: the run options of every workload, then the workload's
    own (`config`, its options dataclass; None: the run options only)."""
    from mlscale.bench.config import RunConfig, add_dataclass_arguments

    parser = ArgumentParser(
        prog=f"mlscale run {name}",
        description=description,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=add_help,
    )
    add_dataclass_arguments(parser, RunConfig, "run options (all workloads)")
    if config is not None:
        add_dataclass_arguments(parser, config, f"{name} options")
    return parser


def workload_config(name: str) -> type | None:
    """The options dataclass (`Config`) of workload `name`, found without importing the workload,
    and so torch: `mlscale launch` builds the run's parser with it on a login node.

    A workload package's workload.py declares `name = "..."` and `Config = X` in its class, with X
    imported from the package's config.py, which imports no framework (mlscale/workloads/__init__.py).
    workload.py is read as text; only config.py is imported. None when the workload is not found so.
    """
    import importlib
    import importlib.util
    from pathlib import Path

    from mlscale.workloads import packages

    for package in packages():
        spec = importlib.util.find_spec(f"mlscale.workloads.{package}.workload")
        if spec is None or not spec.origin:
            continue
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
            assigned = _class_assignments(cls)
            if getattr(assigned.get("name"), "value", None) != name:
                continue
            imported = {  # local name -> (module, name in it)
                alias.asname or alias.name: (
                    importlib.util.resolve_name("." * node.level + (node.module or ""), spec.parent),
                    alias.name,
                )
                for node in tree.body
                if isinstance(node, ast.ImportFrom)
                for alias in node.names
            }
            module, attr = imported.get(getattr(assigned.get("Config"), "id", None), (None, ""))
            if module != f"mlscale.workloads.{package}.config":
                return None
            return getattr(importlib.import_module(module), attr, None)
    return None


def _class_assignments(cls: ast.ClassDef) -> dict[str, ast.expr]:
    """`NAME = value` (or `NAME: T = value`) statements of a class body, by name."""
    found: dict[str, ast.expr] = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign):
            found.update({t.id: stmt.value for t in stmt.targets if isinstance(t, ast.Name)})
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            found[stmt.target.id] = stmt.value
    return found


@raw_command("run", help="run a workload: train, infer or read data, timed per rank", order=10)
def run(argv: list[str]) -> int:
    from mlscale.errors import UserError

    if not argv or argv[0] in ("-h", "--help"):
        workload_parser(None).print_help()
        return 0 if argv else 2
    if argv[0].startswith("-"):
        raise UserError("mlscale run: the workload comes first: mlscale run WORKLOAD [options]")
    name, rest = argv[0], argv[1:]
    parser = workload_parser(name)
    args = parser.parse_args(rest)

    from mlscale.bench.config import RunConfig
    from mlscale.bench.preempt import EX_PREEMPTED, Preempted
    from mlscale.bench.workload import config_from_args, get_workload

    cls = get_workload(name)
    try:
        run_job(cls, config_from_args(cls.Config, args), config_from_args(RunConfig, args))
    except Preempted:  # checkpoint and record written: the job script may requeue (docs/reliability.md)
        return EX_PREEMPTED
    return 0


def run_job(cls, config, run_config) -> Path | None:
    """`run_benchmark` as a job, for `mlscale run` and for the workloads' own commands (`mlscale plume`):
    the set-up checks on every rank before any work (`_preflight`), and an error on one rank ends the whole
    job (`_end_job`) instead of leaving its peers in a collective. `Preempted` passes to the caller."""
    from mlscale.bench.preempt import Preempted
    from mlscale.bench.runner import run_benchmark

    _preflight(run_config, cls.name)
    try:
        return run_benchmark(cls, config, run_config)
    except Preempted:
        raise
    except Exception as exc:
        _end_job(exc)
        raise


def _end_job(exc: Exception) -> None:
    """In a job of several ranks, an error on one ends them all (`abort_job`): its peers would
    otherwise wait in a collective, or this rank in MPI_Finalize, until a timeout minutes later."""
    import time
    import traceback

    from mlscale.errors import UserError
    from mlscale.launch import abort

    if not abort.multi_rank():
        return  # one process: the error ends it (mlscale.cli prints a user error in one line)
    if isinstance(exc, abort.PeerFailed):
        time.sleep(abort.PEER_GRACE_S)  # the rank that found the error speaks, then ends the job
        abort.abort_job(exc.code)
    if isinstance(exc, UserError):
        print(f"mlscale: error: {exc}", file=sys.stderr)
        abort.report(str(exc), exc.exit_code, record=False)  # a user error leaves no record, as with one rank
        abort.abort_job(exc.exit_code)
    if not getattr(exc, "logged", False):
        traceback.print_exc()
    abort.report(f"{type(exc).__name__}: {exc}", 1, record=True)
    abort.abort_job(1)


def _preflight(run_config, workload: str) -> None:
    """The checks of `mlscale.bench.preflight` (and of --resume, `mlscale.bench.resume`), on every rank
    before any starts work or joins a collective, so a typo ends them all alike; only the first rank
    says why (one line, not one per rank), the others end with the same status."""
    from mlscale.bench.preflight import check_run
    from mlscale.bench.resume import resolve
    from mlscale.errors import UserError
    from mlscale.launch.env import detect_launcher

    try:
        check_run(run_config)
        resolve(run_config, workload)
    except UserError as err:
        if detect_launcher().rank not in (None, 0):
            raise SystemExit(err.exit_code) from None
        raise
