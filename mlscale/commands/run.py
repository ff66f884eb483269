"""`mlscale run WORKLOAD`: run one benchmark on every rank of this launch."""

from __future__ import annotations

import argparse

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
    parser = ArgumentParser(
        prog=f"mlscale run {name}",
        description=cls.description,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_arguments(parser, RunConfig, "run options (all workloads)")
    add_dataclass_arguments(parser, cls.Config, f"{name} options")
    return parser


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
    from mlscale.bench.runner import run_benchmark
    from mlscale.bench.workload import config_from_args, get_workload

    cls = get_workload(name)
    run_benchmark(cls, config_from_args(cls.Config, args), config_from_args(RunConfig, args))
    return 0
