"""Time limits and preemption: every rank stops at the same training step on SIGTERM or SIGUSR1.

A scheduler warns a job before it kills it: SLURM sends the signal named by `--signal` ahead of the
time limit (SIGUSR1 in mlscale's job scripts) and SIGTERM on preemption; PBS sends SIGTERM, then
SIGKILL after its kill_delay. The handler only sets a flag. At training step boundaries (every step
with one rank; with several, about every CHECK_SECONDS of steps) the ranks take the maximum of their
flags (one tiny allreduce), so all of them stop after the same step and none is left waiting inside
a collective. The runner then writes a checkpoint and a record with
status "preempted" and exits with EX_PREEMPTED, which the job scripts requeue on.

`TrainControl` is what the train loop asks "stop now?" and, on a resumed run, where to continue.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlscale.bench.stats import Accumulator
from mlscale.errors import UserError
from mlscale.launch.comm import Communicator

EX_PREEMPTED = 75  # EX_TEMPFAIL of sysexits.h: "try again later"
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
# Tests: "RANK:STEP[:SIGNAL]" makes rank RANK signal itself once STEP training steps are done.
TEST_SIGNAL_ENV = "MLSCALE_TEST_SIGNAL_AT"
# The ranks compare their flags about this often (seconds of steps), at least every MAX_CHECK_EVERY steps:
# a stop comes at most this much later, and the allreduce costs a share of the steps of about
# (its latency) / CHECK_SECONDS (benchmarks/preempt_latency.py).
CHECK_SECONDS = 0.25
MAX_CHECK_EVERY = 1000


class Preempted(Exception):
    """Raised by the runner after a preempted run has written its checkpoint and record."""

    def __init__(self, path):
        super().__init__(f"preempted; checkpoint and record in {path}")
        self.path = path


class StopFlag:
    """Set by SIGTERM/SIGUSR1 while `installed()`; nothing else happens in the handler."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.received_at: float | None = None  # time.monotonic() of the first signal

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum, self.received_at = signum, time.monotonic()

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum else None

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """Catch the signals for the duration; the previous handlers come back after."""
        if threading.current_thread() is not threading.main_thread():  # signal.signal would raise
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def parse_test_signal(value: str | None, rank: int) -> tuple[int, int] | None:
    """(step, signal number) when MLSCALE_TEST_SIGNAL_AT names this rank, else None."""
    if not value:
        return None
    parts = value.split(":")
    try:
        target, step = int(parts[0]), int(parts[1])
        signum = signal.Signals[parts[2] if len(parts) > 2 else "SIGUSR1"]
    except (ValueError, IndexError, KeyError):
        raise UserError(f"{TEST_SIGNAL_ENV}={value!r}: expected RANK:STEP[:SIGNAL], e.g. 1:5:SIGTERM") from None
    return (step, int(signum)) if target == rank else None


@dataclass
class ResumePoint:
    """Where a resumed run continues: the epoch (1-based), the steps of it already done, and
    this rank's saved state (RNG, the loader's position, the epoch's partial sums)."""

    epoch: int
    step: int
    global_step: int
    rank_state: dict[str, Any]


@dataclass
class TrainControl:
    """Asked by the train loop at every step boundary; carries a resumed run's position."""

    comm: Communicator
    flag: StopFlag
    resume: ResumePoint | None = None
    test_signal: tuple[int, int] | None = None
    global_step: int = 0  # training steps done over all segments (warm-up excluded)
    epoch: int = 0
    epoch_step: int = 0  # steps done of the current epoch (over all segments)
    stopped: bool = False
    stopped_at: float | None = None  # time.monotonic() when the ranks agreed to stop
    epoch_start_state: Any = None  # the engine's RNG and loader state when this epoch's pass began
    restored_samples: int = 0  # samples of the current epoch done in earlier segments
    engine: Any = None  # set by start_epoch: restores RNG and loader states
    check_every: int = 1  # steps between two comparisons of the ranks' flags (stop_now)
    every_step: bool = False  # compare at every step (the same on every rank: the tests' exact stops)
    _countdown: int = 0
    _last_check: float | None = None

    @property
    def first_epoch(self) -> int:
        return self.resume.epoch if self.resume else 1

    def resuming(self, epoch: int) -> bool:
        return self.resume is not None and epoch == self.resume.epoch

    def start_epoch(self, epoch: int, engine, data) -> None:
        """Before the epoch's train pass: remember (or, resuming, restore) the RNG and loader state it
        begins with, so that a resumed pass draws the same batches."""
        self.epoch, self.epoch_step, self.engine = epoch, 0, engine
        if not engine.supports_checkpoints:
            return
        if self.resuming(epoch):
            self.epoch_start_state = self.resume.rank_state["epoch_start"]
            engine.set_rng_state(self.epoch_start_state["rng"])
            engine.set_data_state(data, self.epoch_start_state["data"])
        else:
            self.epoch_start_state = {"rng": engine.rng_state(), "data": engine.data_state(data)}

    def fast_forward(self, it: Iterator) -> int:
        """Resuming: draw the batches done before the stop (the loader reaches the same position
        whatever it is), then restore the RNG states of the moment of the stop. Returns the steps skipped."""
        if not self.resuming(self.epoch) or self.epoch_step:
            return 0
        for _ in range(self.resume.step):
            next(it)
        self.engine.set_rng_state(self.resume.rank_state["rng"])
        self.epoch_step = self.resume.step
        return self.resume.step

    def accumulator(self) -> Accumulator:
        """The epoch's sums: empty, or those of the steps done before the stop (so its losses are exact)."""
        acc = Accumulator()
        if self.resuming(self.epoch):
            saved = self.resume.rank_state["sums"]
            acc.sums, acc.samples = dict(saved["sums"]), saved["samples"]
            self.restored_samples = saved["samples"]
        else:
            self.restored_samples = 0
        return acc

    def stop_now(self) -> bool:
        """Collective: True on every rank when any rank got a signal; call it at every step boundary.

        With several ranks, the flags are compared (one allreduce) only every `check_every` steps, so
        that the collective costs a small share of the steps: the same allreduce gives every rank the
        slowest rank's seconds per step since the last comparison, from which each computes the same
        next interval, about CHECK_SECONDS long. One rank looks at its flag at every step."""
        if self.comm.size == 1:
            agreed = self.flag.signum is not None
        else:
            self._countdown -= 1
            if self._countdown > 0:
                return False
            now = time.monotonic()
            per_step = (now - self._last_check) / self.check_every if self._last_check is not None else 0.0
            local = np.array([1.0 if self.flag.signum is not None else 0.0, per_step])
            flag, slowest = self.comm.allreduce(local, "max")
            agreed = flag > 0
            if slowest > 0 and not self.every_step:
                self.check_every = max(1, min(MAX_CHECK_EVERY, int(CHECK_SECONDS / slowest)))
            self._countdown, self._last_check = self.check_every, now
        if agreed and not self.stopped:
            self.stopped, self.stopped_at = True, time.monotonic()
        return bool(agreed)

    def step_done(self) -> None:
        self.global_step += 1
        self.epoch_step += 1
        if self.test_signal and self.global_step == self.test_signal[0]:
            os.kill(os.getpid(), self.test_signal[1])


def sums_state(acc: Accumulator) -> dict:
    """An accumulator as plain numbers. The sums are float32 (0-d tensors); a Python float holds one
    exactly and `float + float32 tensor` stays float32, so the resumed sums are bit for bit the same."""
    return {"sums": {k: float(v) for k, v in acc.sums.items()}, "samples": acc.samples}
