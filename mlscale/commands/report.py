"""`mlscale report RUN_DIR...`: the training, inference and scaling tables from run records.

Reads records only (no torch): it runs on a login node.
"""

from __future__ import annotations

import argparse
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
        "--out", metavar="DIR", help="also write training.csv, inference.csv, scaling.csv and report.md into DIR"
    )
    html = parser.add_argument_group("scaling report (plots, stragglers, projection)")
    html.add_argument("--html", metavar="DIR", help="also build report.md + report.html with PNG plots in DIR")
    html.add_argument("--network-gbps", type=float, default=100.0, help="projection: network bandwidth (Gbit/s)")
    html.add_argument("--latency-us", type=float, default=5.0, help="projection: network latency per message (µs)")
    html.add_argument("--gpus-per-node", type=int, default=4, help="projection: ranks per node")
    return report


def _section(title: str, df, fmt: str) -> str:
    from mlscale.results.tables import to_csv, to_markdown

    body = to_markdown(df) if fmt == "markdown" else to_csv(df)
    return f"## {title}\n\n{body}\n"


def report(args: argparse.Namespace) -> int:
    from mlscale.launch.jobs.manifest import sweep_status_report, without_empty_sweeps
    from mlscale.results.record import atomic_write_text, load_ranks, load_records
    from mlscale.results.tables import inference_table, rank_table, scaling_list, scaling_table, to_csv, training_table
    from mlscale.workloads.methane_plume.tables import plume_runtime_table

    paths = without_empty_sweeps(args.runs)
    records = load_records(paths) if paths else []
    if args.workload:
        records = [r for r in records if r.get("workload") == args.workload]
    if args.system:
        records = [r for r in records if r.get("system") == args.system]
    failed = [r for r in records if r.get("status") != "ok"]
    ok = [r for r in records if r.get("status") == "ok"]
    training, inference = training_table(ok), inference_table(ok)
    scaling = scaling_table(ok, args.scale_by)

    text = _section("Training", training, args.format)
    captions = sorted(
        {
            f"{r['workload']}: {r['accuracy_caption']}"
            for r in ok
            if r.get("accuracy_caption") and r.get("mode") == "train"
        }
    )
    if captions:
        text += "train_accuracy / test_accuracy: " + "; ".join(captions) + "\n\n"
    text += _section("Inference", inference, args.format)
    plume = plume_runtime_table(ok)  # the seed's methane-plume runtime table, when there are such runs
    if not plume.empty:
        text += _section("methane-plume runtime (seed 000 form)", plume, args.format)
    text += "## Scaling\n\n" + (scaling_list(scaling) + "\n" if not scaling.empty else "(no runs)\n\n")
    if args.format == "csv" and not scaling.empty:
        text += to_csv(scaling) + "\n"
    if args.ranks:
        ranks = rank_table(ok, {r["run_id"]: load_ranks(r["run_dir"]) for r in ok})
        text += _section("Per-rank timings (mean per training step)", ranks, args.format)
    if failed:
        text += "## Failed runs\n\n" + "".join(f"- {r['run_id']}: {r.get('error')}\n" for r in failed) + "\n"
    text += sweep_status_report(args.runs, args.format)
    print(text, end="")

    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        tables = (("training", training), ("inference", inference), ("scaling", scaling), ("plume_runtime", plume))
        for name, df in tables:
            atomic_write_text(out / f"{name}.csv", to_csv(df))
        atomic_write_text(out / "report.md", text)
    if args.html:
        from mlscale.results.projection import Network
        from mlscale.results.report_html import build_report

        network = Network(args.network_gbps, args.latency_us, args.gpus_per_node)
        print(f"wrote {build_report(records, Path(args.html), network=network)}")
    return 0


command("report", help="print training, inference and scaling tables from run directories", order=30)(_configure)
