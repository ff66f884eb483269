"""The MLPerf HPC compliance ruleset shipped for mlscale's workloads, and how to run the checker on a log.

Never imports torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RULESET = Path(__file__).with_name("mlperf_rules") / "hpc_3.0.0" / "mlscale_common.yaml"


def compliance_command(log: str | os.PathLike, checker_log: str | os.PathLike) -> list[str]:
    """The official checker's command line for one `mllog.txt` under the shipped ruleset."""
    return [
        sys.executable,
        "-m",
        "mlperf_logging.compliance_checker",
        "--usage",
        "hpc",
        "--ruleset",
        "3.0.0",
        "--config",
        str(RULESET),
        "--log_output",
        str(checker_log),
        str(log),
    ]


def check_log(log: str | os.PathLike, checker_log: str | os.PathLike) -> subprocess.CompletedProcess:
    """Run the official MLPerf compliance checker; returncode 0 means the log passed."""
    return subprocess.run(compliance_command(log, checker_log), capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m mlscale.results.mlperf PATH...`: check every mllog.txt in or below PATHs; exit 1 if any fails."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m mlscale.results.mlperf", description=main.__doc__)
    parser.add_argument("paths", nargs="+", help="mllog.txt files, run directories, or folders holding them")
    args = parser.parse_args(argv)
    logs = []
    for p in map(Path, args.paths):
        logs += [p] if p.is_file() else sorted(p.rglob("mllog.txt"))
    if not logs:
        print("no mllog.txt found", file=sys.stderr)
        return 2
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for log in logs:
            proc = check_log(log, Path(tmp) / "checker.log")
            print(f"{'PASS' if proc.returncode == 0 else 'FAIL'} {log}")
            if proc.returncode:
                failed += 1
                print(proc.stdout + proc.stderr, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
