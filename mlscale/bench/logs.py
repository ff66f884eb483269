"""Per-rank logging: rank 0 speaks on the console, every rank's lines are kept for run.log."""

from __future__ import annotations

import logging
import math
import sys


class Collect(logging.Handler):
    """Keeps formatted log lines so rank 0 can write every rank's log to run.log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def setup_logging(rank: int, size: int) -> tuple[logging.Logger, Collect]:
    log = logging.getLogger("mlscale")
    log.handlers.clear()
    log.setLevel(logging.INFO)
    log.propagate = False
    fmt = logging.Formatter(f"%(asctime)s [rank {rank}/{size}] %(levelname)s %(message)s")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)  # quiet non-root ranks
    collect = Collect()
    collect.setFormatter(fmt)
    log.addHandler(console)
    log.addHandler(collect)
    return log, collect


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def rate(value: float | None, unit: str, digits: int = 3) -> str:
    """A rate with `digits` significant digits and no exponent: 0.0495 samples/s, 12.3 MB/s, 1235 img/s.

    Fixed decimals would print a slow run's 0.0495 samples/s as "0.0 samples/s"."""
    if value is None:
        return f"n/a {unit}"
    if not math.isfinite(value) or value == 0:
        return f"{value:g} {unit}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f} {unit}"
