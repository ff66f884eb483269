"""`mlscale workloads`: the index of workloads, read from the registry (nothing lists them by hand)."""

from __future__ import annotations

import argparse

from mlscale.cli import command


def _configure(parser: argparse.ArgumentParser):
    parser.add_argument("--format", choices=("markdown", "csv"), default="markdown", help="default: markdown")
    return workloads


def workload_index():
    """One row per registered workload: what it is, what it runs on, what it can do."""
    import pandas as pd

    from mlscale.bench.workload import get_workload, workload_names
    from mlscale.workloads import import_all

    clis = {m.__name__.split(".")[2] for m in import_all("cli")}
    rows = []
    for name in workload_names():
        cls = get_workload(name)
        package = cls.__module__.split(".")[2]
        rows.append(
            {
                "workload": name,
                "engine": cls.engine,
                "modes": ", ".join(cls.modes),
                "mlscale data": "yes" if cls.DataConfig is not None else "-",
                "seed CLI": "yes" if package in clis else "-",
                "package": f"mlscale/workloads/{package}/",
                "description": cls.description,
            }
        )
    return pd.DataFrame(rows)


def workloads(args: argparse.Namespace) -> int:
    from mlscale.results.tables import to_csv, to_markdown

    df = workload_index()
    print(to_markdown(df) if args.format == "markdown" else to_csv(df), end="")
    return 0


command("workloads", help="list the workloads: engine, modes, data generator, package", order=8)(_configure)
