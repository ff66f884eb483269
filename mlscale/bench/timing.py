"""Per-rank, per-step phase timing.

The training loop calls `timer.step_start()` before asking for a batch and
`timer.mark(phase)` at the end of each phase. Phase durations are differences
between consecutive stamps. On CPU a stamp is `time.perf_counter()`. On CUDA a
stamp is a CUDA event recorded on the current stream (data wait, which is host
time by nature, stays on the host clock); events are read only in
`epoch_end()`, after one synchronisation, so the hooks add no synchronisation
to a step.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

PHASES = ("data_wait", "h2d", "forward", "backward", "optimizer")
# Inference and test steps have no backward/optimizer phases.
EVAL_PHASES = ("data_wait", "h2d", "forward")


class StepTimer:
    """Host-clock timer: one float per mark."""

    enabled = True

    def __init__(self, phases: tuple[str, ...] = PHASES):
        self.phases = phases
        self._steps: list[list[Any]] = []
        self._current: list[Any] = []

    # Stamps a complete step holds: its start and one per phase.
    extra_stamps = 1

    def step_start(self) -> None:
        self._current = [time.perf_counter()]
        self._steps.append(self._current)

    def mark(self, phase: str) -> None:
        self._current.append(time.perf_counter())

    def _durations(self, steps: list[list[Any]]) -> np.ndarray:
        stamps = np.array(steps, dtype=np.float64).reshape(-1, len(self.phases) + 1)
        return np.diff(stamps, axis=1)  # one vectorised pass, not a Python loop per step

    def epoch_end(self) -> dict[str, np.ndarray]:
        """Per-phase arrays of step durations (seconds) for the steps since the last call;
        steps left incomplete (a loop that broke off mid-step) are dropped."""
        steps, self._steps = self._steps, []
        complete = [s for s in steps if len(s) == len(self.phases) + self.extra_stamps]
        table = self._durations(complete).reshape(-1, len(self.phases))
        return {phase: table[:, i] for i, phase in enumerate(self.phases)}


class CudaStepTimer(StepTimer):
    """Device-clock timer: phases after data_wait are timed with CUDA events.

    A step holds [t0, t_data (host clock), ev_data, ev_h2d, ev_fwd, ...]: data_wait
    is host time; the device phases run from the event recorded when the batch arrived.
    """

    extra_stamps = 2

    def __init__(self, phases: tuple[str, ...] = PHASES):
        super().__init__(phases)
        import torch

        self._torch = torch
        self._pool: list[Any] = []
        self._used = 0

    def _event(self) -> Any:
        # Reuse events between epochs; creating them is not free.
        if self._used == len(self._pool):
            self._pool.append(self._torch.cuda.Event(enable_timing=True))
        event = self._pool[self._used]
        self._used += 1
        event.record()
        return event

    def mark(self, phase: str) -> None:
        if phase == "data_wait":
            self._current.append(time.perf_counter())
            self._current.append(self._event())  # device-side start of h2d
        else:
            self._current.append(self._event())

    def _durations(self, steps: list[list[Any]]) -> np.ndarray:
        self._torch.cuda.synchronize()  # the one synchronisation: events are read only now
        rows = []
        for step in steps:
            events = step[2:]
            rows.append([step[1] - step[0], *(a.elapsed_time(b) / 1e3 for a, b in zip(events, events[1:]))])
        self._used = 0
        return np.array(rows, dtype=np.float64)


class NullTimer(StepTimer):
    """No hooks at all: the baseline of benchmarks/hook_overhead.py."""

    enabled = False

    def step_start(self) -> None:
        pass

    def mark(self, phase: str) -> None:
        pass

    def epoch_end(self) -> dict[str, np.ndarray]:
        return {phase: np.zeros(0) for phase in self.phases}


def make_timer(device_type: str, phases: tuple[str, ...] = PHASES) -> StepTimer:
    return CudaStepTimer(phases) if device_type == "cuda" else StepTimer(phases)


def phase_stats(samples: np.ndarray) -> dict[str, float | int]:
    """Summary of one phase's per-step durations on one rank."""
    if samples.size == 0:
        return {"count": 0, "total": 0.0, "mean": None, "median": None, "p95": None, "min": None, "max": None}
    return {
        "count": int(samples.size),
        "total": float(samples.sum()),
        "mean": float(samples.mean()),
        "median": float(np.median(samples)),
        "p95": float(np.percentile(samples, 95)),
        "min": float(samples.min()),
        "max": float(samples.max()),
    }
