"""How fast a 2-rank job ends when one rank dies or stops, per launcher and backend, and what its
record says (docs/reliability.md, "Errors, dead and hung ranks").

    python benchmarks/abort_times.py [--timeout 5] [--backends ddp mpi horovod] [--no-torchrun]

For each case a long synthetic run starts in the background; once it trains, rank 1 gets SIGKILL
(dead) or SIGSTOP (hung, with `--collective-timeout TIMEOUT`), and the seconds from the signal to the
launcher's exit are taken. There is no baseline to run beside it: before the watchdog the same jobs did
not end at all (SIGSTOP, the mpi backend) or only after gloo's 10-minute timeout (issue 14).
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.jobs import BackgroundJob  # noqa: E402


def measure(root: Path, launcher: str, backend: str, signum: int, timeout: float) -> list:
    extra = ("--collective-timeout", f"{timeout:g}")
    job = BackgroundJob(root, backend, *extra, launcher=launcher, run_id=f"{launcher}-{backend}-{signum}")
    job.signal_rank(1, signum)
    code, seconds = job.wait(timeout=300)
    try:
        error = job.record()["error"]
    except FileNotFoundError:
        error = "(no record)"
    return [launcher, backend, signal.Signals(signum).name, code, round(seconds, 1), error]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=5.0, help="--collective-timeout of the runs (SIGSTOP cases)")
    parser.add_argument("--backends", nargs="+", default=["ddp", "mpi", "horovod"])
    parser.add_argument("--no-torchrun", action="store_true", help="skip the torchrun (ddp) cases")
    args = parser.parse_args()
    backends = [b for b in args.backends if b != "horovod" or importlib.util.find_spec("horovod")]
    cases = [("mpirun", b) for b in backends] + ([] if args.no_torchrun else [("torchrun", "ddp")])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for launcher, backend in cases:
            for signum in (signal.SIGKILL, signal.SIGSTOP):
                rows.append(measure(Path(tmp) / "runs", launcher, backend, signum, args.timeout))
                print(*rows[-1], sep=" | ", flush=True)
    headers = ["launcher", "backend", "signal to rank 1", "exit", "s to job end", "record's error"]
    print(tabulate(rows, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main()
