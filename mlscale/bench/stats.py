"""Cross-rank statistics: sums of losses and metrics, throughput, per-phase step times.

Framework-neutral: values are anything that multiplies by a number and converts with
`float()` (0-d tensors of any framework, numpy scalars). Every function that takes a
communicator is collective: all ranks call it in the same order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlscale.bench.timing import phase_stats
from mlscale.errors import UserError
from mlscale.launch.comm import Communicator


class Accumulator:
    """Sample-weighted sums, kept where the values live (e.g. on the GPU): read once per
    epoch, so a step never waits for the device."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.samples = 0

    def add(self, values: dict[str, Any], n: int) -> None:
        for key, value in values.items():
            contribution = value * n
            self.sums[key] = self.sums[key] + contribution if key in self.sums else contribution
        self.samples += n

    def reduce(self, comm: Communicator) -> dict[str, float | None]:
        """Sample-weighted means over all ranks' steps."""
        keys = sorted(self.sums)
        local = np.array([float(self.sums[k]) for k in keys] + [self.samples], dtype=np.float64)
        total = comm.allreduce(local, "sum")
        n = total[-1]
        return {k: (float(total[i] / n) if n else None) for i, k in enumerate(keys)}


def common_steps(comm: Communicator, data, cap: int | None, what: str) -> int:
    """Every rank must take the same number of steps or collectives hang: use the minimum."""
    try:
        local = len(data)
    except TypeError:
        raise UserError(f"the {what} data of this workload has no length") from None
    steps = int(comm.allreduce(float(local), "min"))
    if cap is not None:
        steps = min(steps, cap)
    if steps < 1:
        raise UserError(
            f"no {what} batches on at least one rank: the data set is smaller than "
            f"ranks x batch size ({comm.size} x {comm.size and local})"
        )
    return steps


def global_rate(comm: Communicator, elapsed: float, samples: int) -> dict:
    """Measured throughput: global samples over the slowest rank's time."""
    slowest = comm.allreduce(elapsed, "max")
    total = comm.allreduce(float(samples), "sum")
    return {"total_time": slowest, "samples": int(total), "imgs_per_s": total / slowest if slowest else None}


def epoch_stats(comm: Communicator, mine: dict, train: dict, test: dict, accuracy_metric: str) -> dict:
    """One epoch's global figures: slowest rank's times, summed samples, mean losses and metrics."""
    times = comm.allreduce(np.array([mine["wall_time"], mine["train_time"], mine["test_time"]]), "max")
    samples = comm.allreduce(np.array([mine["train_samples"], mine["test_samples"]], dtype=np.float64), "sum")
    return {
        "epoch": mine["epoch"],
        "wall_time": float(times[0]),
        "train_time": float(times[1]),
        "test_time": float(times[2]),
        "train_samples": int(samples[0]),
        "test_samples": int(samples[1]),
        "train_imgs_per_s": float(samples[0] / times[1]) if times[1] else None,
        "test_imgs_per_s": float(samples[1] / times[2]) if times[2] else None,
        "train_loss": train.pop("loss", None),
        "test_loss": test.pop("loss", None),
        "train_accuracy": train.get(accuracy_metric),
        "test_accuracy": test.get(accuracy_metric),
        "train_metrics": train,
        "test_metrics": test,
    }


def concat_steps(per_epoch: list[dict[str, np.ndarray]]) -> dict[str, list[float]]:
    """Each phase's step times over all epochs, in order."""
    phases = list(dict.fromkeys(p for epoch in per_epoch for p in epoch))
    return {p: np.concatenate([e[p] for e in per_epoch if p in e]).tolist() for p in phases}


def merged_phase_stats(per_epoch: list[dict[str, np.ndarray]]) -> dict[str, dict]:
    return {p: phase_stats(np.asarray(v)) for p, v in concat_steps(per_epoch).items()}


def phases_across_ranks(summaries: list[dict], key: str = "train") -> dict[str, dict]:
    """Per-phase statistics over every step of every rank, and which rank is slowest."""
    out: dict[str, dict] = {}
    phases = list(dict.fromkeys(p for s in summaries for p in s["steps"][key]))
    for phase in phases:
        per_rank = [np.asarray(s["steps"][key].get(phase, []), dtype=np.float64) for s in summaries]
        every = np.concatenate(per_rank) if per_rank else np.zeros(0)
        if every.size == 0:
            continue
        means = np.array([r.mean() if r.size else np.nan for r in per_rank])
        stats = phase_stats(every)
        stats.update(
            {
                "rank_mean_min": float(np.nanmin(means)),
                "rank_mean_max": float(np.nanmax(means)),
                "slowest_rank": int(summaries[int(np.nanargmax(means))]["rank"]),
            }
        )
        out[phase] = stats
    return out
