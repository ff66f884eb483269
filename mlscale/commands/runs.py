"""`mlscale runs`: list the runs under a results root, filtered, from its SQLite index."""

from __future__ import annotations

import argparse
import shlex
import sys

from mlscale.bench.config import bounded
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
    parser.add_argument(
        "--clean-staging",
        action="store_true",
        help="remove the hidden staging and temporary folders left by runs that were killed half-way "
        "(listed after the table), when older than --older-than",
    )
    parser.add_argument(
        "--older-than",
        type=bounded(float, at_least=0),
        default=24.0,
        metavar="HOURS",
        help="--clean-staging: only leftovers untouched for this many hours (default: 24; a live run's "
        "staging folder changes as it writes)",
    )
    return run


def run(args: argparse.Namespace) -> int:
    from mlscale.results import leftovers, store

    if args.since is not None:
        store.parse_since(args.since)  # a bad --since fails before the index is touched
    if args.clean_staging:
        for gone in leftovers.clean(args.root, args.older_than):
            print(f"removed {gone.path} ({gone.size / 1e6:.1f} MB, untouched for {gone.age_h:.1f} h)", file=sys.stderr)
    skipped: list[str] = []
    store.reindex(args.root, skipped)
    for reason in skipped:  # the list goes on with the rest
        print(f"mlscale: skipped {reason}", file=sys.stderr)
    table = store.query(
        args.root, workload=args.workload, system=args.system, ranks=args.ranks, since=args.since, tag=args.tag
    )
    if args.csv:
        print(table.to_csv(index=False), end="")
    elif table.empty:
        print("no runs match")
    else:
        print(table.to_markdown(index=False, floatfmt=".4g"))
    left = leftovers.find(args.root)
    for leftover in left:  # on stderr: `--csv` output stays a clean table
        print(f"unfinished: {leftover.path} ({leftover.size / 1e6:.1f} MB, untouched for {leftover.age_h:.1f} h)",
              file=sys.stderr)  # fmt: skip
    if left:
        hint = f"mlscale runs {shlex.quote(str(args.root))} --clean-staging"
        print(f"{len(left)} hidden staging or temporary folder(s) left by runs that did not finish; "
              f"remove those older than a day with: {hint}", file=sys.stderr)  # fmt: skip
    return 0
