"""`mlscale report RUN_DIR...`: the training, inference, seed and scaling tables from run records.

The report is built once (mlscale.results.report) and printed, written as CSV files and
report.md (`--out`), and as report.md + report.html with the plots (`--html`). Reads
records only (no torch): it runs on a login node.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlscale.cli import command


def _configure(parser: argparse.ArgumentParser):
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_DIR",
        help="run directories, or directories to search for them (e.g. a sweep's --out)",
    )
    parser.add_argument(
        "--format", choices=("markdown", "csv"), default="markdown", help="how tables print (default: markdown)"
    )
    parser.add_argument(
        "--scale-by",
        choices=("auto", "nodes", "ranks", "gpus"),
        default="auto",
        help="unit of the scaling list (auto: nodes when runs span several node counts, else ranks)",
    )
    parser.add_argument("--workload", help="only runs of this workload")
    parser.add_argument("--system", help="only runs on this system")
    parser.add_argument(
        "--ranks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="include the per-rank timing table (mean step phase times per rank)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="also write training.csv, inference.csv, scaling.csv, one CSV per seed table and report.md into DIR",
    )
    html = parser.add_argument_group("scaling report (plots, stragglers, projection)")
    html.add_argument("--html", metavar="DIR", help="also build report.md + report.html with PNG plots in DIR")
    html.add_argument("--network-gbps", type=float, default=100.0, help="projection: network bandwidth (Gbit/s)")
    html.add_argument("--latency-us", type=float, default=5.0, help="projection: network latency per message (µs)")
    html.add_argument("--gpus-per-node", type=int, default=4, help="projection: ranks per node")
    return report


def report(args: argparse.Namespace) -> int:
    from mlscale.bench.preflight import check_output_dir
    from mlscale.launch.jobs.manifest import sweep_status_report, without_empty_sweeps
    from mlscale.results.record import load_readable_records
    from mlscale.results.report import build
    from mlscale.results.sections import Section, Verbatim

    for flag, folder in (("--out", args.out), ("--html", args.html)):
        if folder:
            check_output_dir(folder, flag)
    paths = without_empty_sweeps(args.runs)
    records, skipped = load_readable_records(paths) if paths else ([], [])
    for reason in skipped:  # the report goes on with the rest
        print(f"mlscale: skipped {reason}", file=sys.stderr)
    if args.workload:
        records = [r for r in records if r.get("workload") == args.workload]
    if args.system:
        records = [r for r in records if r.get("system") == args.system]
    rep = build(records, scale_by=args.scale_by, ranks=args.ranks)
    printed = sweep_status_report(args.runs, args.format)  # with its own "## Sweep status: DIR" headings
    if printed:  # report.md and report.html want it in Markdown (asking the queue again only then)
        files = args.format == "csv" and (args.out or args.html)
        markdown = sweep_status_report(args.runs) if files else printed
        rep.sections.append(Section("Sweep status", [Verbatim(markdown, csv=printed)], heading=False))
    print(rep.text(args.format), end="")

    if args.out:
        rep.write(args.out)
    if args.html:
        from mlscale.results.projection import Network
        from mlscale.results.report_html import build_report

        network = Network(args.network_gbps, args.latency_us, args.gpus_per_node)
        print(f"wrote {build_report(records, Path(args.html), network=network, report=rep)}")
    return 0


command("report", help="print training, inference and scaling tables from run directories", order=30)(_configure)
