"""Python's garbage collector and the timed steps.

A full (generation 2) collection walks every object the interpreter tracks. After
`import torch` and a model's set-up that is some 350,000 objects: a 100-200 ms pause
that lands inside one step on one rank, and every other rank waits for it at the
next allreduce. Measured on ResNet-18 (2 ranks, CPU): one such pause per 30-step
epoch, 5% of the epoch's time (docs/benchmarks.md, "Horovod synthetic benchmark").
Horovod's synthetic benchmark never sees it because `timeit` switches collection
off while it times.

Policies (`--gc`):
- `freeze` (default): collect once and `gc.freeze()` the set-up's objects just
  before the first timed step, so later collections skip them (a full collection
  then scans only what the steps made). Automatic collection stays on, so
  memory held in reference cycles is still freed.
- `manual`: as `freeze`, and no automatic collection inside an epoch; one full
  collection between epochs, outside the timed region (Megatron-LM's --manual-gc).
- `python`: the interpreter's default behaviour, untouched.
"""

from __future__ import annotations

import gc

POLICIES = ("freeze", "manual", "python")


class GcPolicy:
    def __init__(self, policy: str):
        if policy not in POLICIES:
            raise ValueError(f"unknown gc policy {policy!r}")
        self.policy = policy
        self._was_enabled = gc.isenabled()

    def before_timed(self) -> None:
        """Call once, after set-up, before the first (warm-up or timed) step."""
        if self.policy == "python":
            return
        gc.collect()
        gc.freeze()
        if self.policy == "manual":
            gc.disable()

    def between_epochs(self) -> None:
        if self.policy == "manual":
            gc.collect()

    def end(self) -> None:
        """Undo: the frozen objects become collectable again (mlscale may run again in this process)."""
        if self.policy == "python":
            return
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()
