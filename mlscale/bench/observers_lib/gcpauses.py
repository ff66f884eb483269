"""Garbage-collection pauses on each rank: how many collections ran while the run was
timed, how long they took in all and the longest one. A rank whose steps are slow
for no reason in the phase timings often shows it here (see mlscale/bench/gcpolicy.py).
Recorded in ranks.jsonl under "gc"; costs one callback per collection."""

from __future__ import annotations

import gc
import time
from typing import Any

from mlscale.bench.observers import RunObserver


class GcPauses(RunObserver):
    name = "gc"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._start))

    def run_start(self, meta: dict[str, Any]) -> None:
        gc.callbacks.append(self._callback)

    def run_end(self, status: str) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def rank_summary(self) -> dict[str, Any]:
        seconds = [s for _, s in self.pauses]
        return {
            "collections": len(self.pauses),
            "full_collections": sum(1 for g, _ in self.pauses if g == 2),
            "pause_total_s": sum(seconds),
            "pause_max_s": max(seconds, default=0.0),
        }
