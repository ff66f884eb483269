"""`mlscale runs`: list the runs under a results root, filtered, from its SQLite index."""

from __future__ import annotations

import argparse

from mlscale.cli import command


@command(
    "runs",
    help="list and filter the runs in a results directory",
    description="List the runs under a results root (default: runs/). Run directories not yet in "
    "ROOT/index.sqlite are indexed first, so the list is always complete.\n\n"
    "Example: mlscale runs runs/ --workload synthetic --ranks 1 2 4 --since 2026-11-01",
    order=60,
)
def configure(parser: argparse.ArgumentParser):
    parser.add_argument("root", nargs="?", default="runs", metavar="ROOT", help="results root (default: runs)")
    parser.add_argument("--workload", help="only this workload")
    parser.add_argument("--system", help="only this system (e.g. PEARL)")
    parser.add_argument("--ranks", type=int, nargs="+", metavar="N", help="only runs with these rank counts")
    parser.add_argument("--since", metavar="DATE", help="only runs started at or after this ISO date/time (UTC)")
    parser.add_argument("--tag", help="only runs with this tag")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    return run


def run(args: argparse.Namespace) -> int:
    from mlscale.results import store

    store.reindex(args.root)
    table = store.query(
        args.root, workload=args.workload, system=args.system, ranks=args.ranks, since=args.since, tag=args.tag
    )
    if args.csv:
        print(table.to_csv(index=False), end="")
    elif table.empty:
        print("no runs match")
    else:
        print(table.to_markdown(index=False, floatfmt=".4g"))
    return 0
