"""`mlscale data WORKLOAD --out DIR`: write a synthetic data set in the workload's native format."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlscale.cli import ArgumentParser, raw_command


@raw_command("data", help="write a synthetic data set in a workload's native on-disk format", order=20)
def data(argv: list[str]) -> int:
    from mlscale.bench.config import add_dataclass_arguments
    from mlscale.bench.workload import config_from_args, get_workload, workload_names
    from mlscale.errors import UserError

    with_data = [n for n in workload_names() if get_workload(n).DataConfig is not None]
    if not argv or argv[0] in ("-h", "--help"):
        parser = ArgumentParser(
            prog="mlscale data",
            description="Write a synthetic data set in exactly the "
            "on-disk format the workload reads, learnable enough for its quality targets.",
        )
        parser.add_argument("workload", choices=with_data or ["(none)"])
        parser.add_argument("--out", metavar="DIR", help="directory to write into")
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    cls = get_workload(name)
    if cls.DataConfig is None:
        raise UserError(f"workload {name!r} reads no data files; workloads with data: {', '.join(with_data)}")
    parser = ArgumentParser(
        prog=f"mlscale data {name}",
        description=f"Write a synthetic {name} data set.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="directory to write into")
    add_dataclass_arguments(parser, cls.DataConfig, f"{name} data options")
    args = parser.parse_args(argv[1:])
    from mlscale.bench.preflight import check_output_dir
    from mlscale.fileio import staged_into

    check_output_dir(args.out)
    out = Path(args.out)
    with staged_into(out) as staging:  # a failure half-way leaves nothing in --out
        summary = cls.write_data(config_from_args(cls.DataConfig, args), staging)
    print(summary.replace(str(staging), str(out)))  # the summary names where the files are now
    return 0
