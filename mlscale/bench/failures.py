"""A failed run's last acts: rank 0 writes the failed record once, whichever of its threads (the run's,
or the watchdog's that noticed a dead, silent or failing peer) finds the failure first, the failure is
said in one line, and the whole job ends (`mlscale.launch.abort`)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from mlscale.bench.rundir import remove_tree
from mlscale.launch.abort import abort_job

# How long rank 0's failing run thread leaves the watchdog to name a peer whose death made a collective
# fail (gloo's "Connection closed by peer" names no rank); the closed heartbeat arrives at the same time.
DIAGNOSE_S = 3.0


class JobFailure:
    def __init__(self, rank: int, write_record: Callable[[str], None], staging: Path):
        self.rank = rank
        self._write_record = write_record
        self._staging = staging
        self._lock = threading.Lock()
        self._done = False

    def record(self, error: str, say: bool) -> None:
        """Rank 0 writes the failed record (once); `say` prints the error in one line on any rank."""
        with self._lock:
            if self._done:
                return
            self._done = True
            if self.rank == 0:
                self._write_record(error)
            if say:
                print(f"mlscale: error: {error}", file=sys.stderr, flush=True)

    def end_job(self, message: str, code: int, record: bool) -> NoReturn:
        """The watchdog's verdict (`Watchdog.start`'s on_failure): record it when asked, end every rank."""
        if record:
            self.record(message, say=True)
        elif self.rank == 0:  # a user error on another rank, which said it: no record, as with one rank
            remove_tree(self._staging)
        # (not rank 0 and no record: rank 0 announced that it ends the job and says why; end quietly)
        abort_job(code)
