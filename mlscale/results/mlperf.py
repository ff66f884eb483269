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
