"""Run observers: code that watches a run without touching the training loop.

An observer is a `RunObserver` subclass in a module of `mlscale/bench/observers_lib/`
(discovered automatically). The runner creates one instance of each on every rank,
calls its hooks at fixed points, and at the end lets it add to the rank's summary,
to the run record (rank 0) and to the files of the run directory (rank 0).

Hooks must be cheap: they run between epochs, never inside a step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mlscale.registry import Registered, import_submodules

if TYPE_CHECKING:
    from mlscale.bench.workload import Context


class RunObserver(Registered):
    registry: ClassVar[dict[str, type[RunObserver]]] = {}

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def run_start(self, meta: dict[str, Any]) -> None:
        """After set-up, before the first timed step. `meta`: workload, mode, config, sizes."""

    def epoch_start(self, epoch: int) -> None:
        pass

    def epoch_end(self, epoch: int, stats: dict[str, Any]) -> None:
        """`stats`: this epoch's global figures (times, samples, losses, metrics)."""

    def run_end(self, status: str) -> None:
        """Training/inference finished ("ok") or failed ("failed")."""

    def rank_summary(self) -> dict[str, Any]:
        """Added to this rank's line of ranks.jsonl under the observer's name."""
        return {}

    def record_fields(self, record: dict[str, Any], rank_summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """Rank 0 only: fields to add to record.json (e.g. energy per sample)."""
        return {}

    def files(self, record: dict[str, Any]) -> dict[str, str | bytes]:
        """Rank 0 only: extra files (name -> content) for the run directory."""
        return {}


def load_observers(ctx: Context) -> list[RunObserver]:
    import mlscale.bench.observers_lib

    import_submodules(mlscale.bench.observers_lib)
    return [cls(ctx) for _, cls in sorted(RunObserver.registry.items())]
