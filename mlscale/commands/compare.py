"""`mlscale compare`: check runs against reference values; non-zero exit on regression."""

from __future__ import annotations

import argparse

from mlscale.cli import command

REGRESSION_EXIT = 1


@command(
    "compare",
    help="check runs against reference values (ReFrame style); exit 1 on regression",
    description="Check runs against a YAML file of references, workload: system: ranks: metric: "
    "[value, lower, upper] with relative bounds ('*' matches any system or rank count). Exit status 1 "
    "when any metric is outside its bounds, 0 otherwise.\n\n"
    "Examples:\n"
    "  mlscale compare runs/ --write-reference refs.yaml --tolerance 0.1   # record today's numbers\n"
    "  mlscale compare runs/ --reference refs.yaml --junit compare.xml     # check tomorrow's",
    order=75,
)
def configure(parser: argparse.ArgumentParser):
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories, or folders holding them")
    parser.add_argument("--reference", metavar="YAML", help="reference file to check against")
    parser.add_argument("--junit", metavar="XML", help="also write the results as JUnit XML")
    parser.add_argument(
        "--strict", action="store_true", help="a run with no reference for its workload/system/ranks is a failure"
    )
    parser.add_argument(
        "--write-reference", metavar="YAML", help="write a reference file from these runs instead of checking"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.1, help="with --write-reference: allowed relative slowdown (default 0.1)"
    )
    return run


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd
    import yaml

    from mlscale.errors import UserError
    from mlscale.results import compare
    from mlscale.results.record import atomic_write_text, load_records

    records = load_records(args.runs)
    if args.write_reference:
        refs = compare.reference_from_records(records, args.tolerance)
        atomic_write_text(args.write_reference, yaml.safe_dump(refs, sort_keys=False))
        print(f"wrote references for {len(records)} run(s) to {args.write_reference}")
        return 0
    if not args.reference:
        raise UserError("compare: give --reference YAML (or --write-reference YAML)")
    refs = compare.load_references(args.reference)
    checks, unreferenced = [], []
    for record in records:
        found = compare.check_record(record, refs)
        if not found:
            unreferenced.append(record.get("run_id") or record["run_dir"])
        checks.extend(found)
    if checks:
        table = pd.DataFrame(
            {
                "run": c.run,
                "metric": c.metric,
                "measured": c.measured,
                "reference": c.reference,
                "low": c.low_bound,
                "high": c.high_bound,
                "result": "ok" if c.passed else "FAIL",
            }
            for c in checks
        )
        print(table.to_markdown(index=False, floatfmt=".5g"))
    for run_name in unreferenced:
        print(
            f"{run_name}: no reference for its workload/system/ranks" + (" (failure: --strict)" if args.strict else "")
        )
    if args.junit:
        Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.junit, compare.junit_xml(checks, unreferenced).decode())
    failed = [c for c in checks if not c.passed]
    for c in failed:
        print(f"REGRESSION {c.run}: {c.message}")
    if failed or (args.strict and unreferenced):
        return REGRESSION_EXIT
    print(f"all {len(checks)} check(s) passed")
    return 0
