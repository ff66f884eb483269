"""Per-rank and global batch sizes, computed once by one rule.

Weak scaling (`--batch-size B`): every rank takes B samples per step, the global batch
is B x ranks. Strong scaling (`--global-batch-size G`): the global batch is G and every
rank takes G / ranks, so G must divide by the ranks. The runner, the loaders and the
sweep all call `batch_sizes`; the user's `RunConfig` is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlscale.errors import UserError


@dataclass(frozen=True)
class BatchSizes:
    per_rank: int  # samples one rank takes per step
    global_size: int  # samples per step over all ranks
    ranks: int
    strong: bool  # True when the user fixed the global batch


def divides_evenly(global_batch: int, ranks: int) -> bool:
    """The rule itself: a global batch splits over the ranks when each gets the same whole number."""
    return global_batch >= ranks and global_batch % ranks == 0


def batch_sizes(batch_size: int, global_batch_size: int | None, ranks: int) -> BatchSizes:
    """The rule; a one-line error naming the flag when the numbers do not fit."""
    if ranks < 1:
        raise ValueError(f"ranks must be at least 1, got {ranks}")
    if global_batch_size is None:
        if batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {batch_size}")
        return BatchSizes(batch_size, batch_size * ranks, ranks, strong=False)
    if global_batch_size < 1:
        raise UserError(f"--global-batch-size must be at least 1, got {global_batch_size}")
    if not divides_evenly(global_batch_size, ranks):
        raise UserError(f"--global-batch-size {global_batch_size} does not divide by {ranks} ranks")
    return BatchSizes(global_batch_size // ranks, global_batch_size, ranks, strong=True)
