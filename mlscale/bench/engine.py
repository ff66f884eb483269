"""Engines: the framework-specific half of a run, behind a small interface.

The runner core (`runner`, `modes`, `stats`, `records`) imports no framework; it asks
the workload's engine (`Workload.engine`, e.g. "torch") to pick the device, build and
wrap the model and optimizer, run timed steps, and save weights. An engine is a
subclass of `Engine` with a `name`, in `mlscale/engines/<name>/engine.py`, imported
only when a workload asks for it.

The step methods call the timer's hooks (`timer.step_start()`, then
`timer.mark(phase)` at the end of each phase of `timing.PHASES`) and return an
`stats.Accumulator` of sample-weighted losses and batch-mean metrics.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlscale.errors import UserError
from mlscale.registry import Registered

if TYPE_CHECKING:
    from mlscale.bench.config import RunConfig
    from mlscale.bench.preempt import TrainControl
    from mlscale.bench.stats import Accumulator
    from mlscale.bench.workload import Context, Workload
    from mlscale.launch.env import RankEnv


class Engine(Registered):
    registry: ClassVar[dict[str, type[Engine]]] = {}

    def __init__(self, workload: Workload, ctx: Context):
        self.workload = workload
        self.ctx = ctx

    # -- before the workload exists ----------------------------------------------
    @classmethod
    def select_device(cls, choice: str, env: RankEnv) -> Any:
        """The device this rank uses for `--device choice` (see `mlscale.launch.devices`)."""
        raise NotImplementedError

    @classmethod
    def check_supported(cls, run: RunConfig, device: Any) -> None:
        """Refuse, with a UserError, switches this engine or device cannot honour."""

    @classmethod
    def prepare(cls, run: RunConfig, device: Any) -> None:
        """Per-process set-up before the workload is built: bind the device, seed the framework."""

    @classmethod
    def model_facts(cls, model: Any) -> dict:
        """Facts about a built model for `mlscale info --workload` (parameters, trainable_parameters)."""
        return {}

    # -- the run ---------------------------------------------------------------
    def setup(self, lr: float) -> dict:
        """Build the model (from `--weights` if given), apply the speed-up switches, wrap it for
        the backend, build the optimizer. Returns facts for the record (e.g. parameters)."""
        raise NotImplementedError

    def make_timer(self, phases: tuple[str, ...]):
        """A step timer for this device (`mlscale.bench.timing`)."""
        from mlscale.bench.timing import make_timer

        return make_timer(str(getattr(self.ctx.device, "type", self.ctx.device)), phases)

    def train_steps(
        self, data: Iterable, steps: int, timer, desc: str = "train", control: TrainControl | None = None
    ) -> Accumulator:
        """Timed training steps. With a `control` (`mlscale.bench.preempt`): ask `control.stop_now()`
        before each step and stop when it says so, call `control.step_done()` after each, start the
        sums from `control.accumulator()` and, after `iter(data)`, skip with `control.fast_forward(it)`."""
        raise NotImplementedError

    def eval_steps(self, data: Iterable, steps: int, timer, desc: str, split: str) -> Accumulator:
        """Forward passes; each output goes to `workload.eval_batch(split, ...)`. On "inference"
        no loss or metrics are computed."""
        raise NotImplementedError

    def io_steps(self, data: Iterable, steps: int, timer) -> tuple[int, int]:
        """Read (and move to the device) batches only: the iotest mode. Returns samples, bytes."""
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for the device, so that a host clock read after it covers the work queued."""

    def save_weights(self, path: str) -> None:
        """Rank 0, after training: the model's weights and `workload.checkpoint_meta()`, atomically."""
        raise NotImplementedError

    # -- training checkpoints (time limits, preemption, --resume) ---------------------
    supports_checkpoints: ClassVar[bool] = False

    def rng_state(self) -> Any:
        """Every random number generator this rank draws from (Python, numpy, framework, device)."""
        raise NotImplementedError

    def set_rng_state(self, state: Any) -> None:
        raise NotImplementedError

    def data_state(self, data: Iterable) -> Any:
        """A loader's state between passes (its sampler's epoch, its generators)."""
        raise NotImplementedError

    def set_data_state(self, data: Iterable, state: Any) -> None:
        raise NotImplementedError

    def save_checkpoint(self, directory: Path, rank_states: list) -> None:
        """Rank 0: model, optimizer, loss scaler and every rank's `rank_states` entry, each file atomically."""
        raise NotImplementedError

    def load_checkpoint(self, directory: Path) -> list:
        """Every rank: load model, optimizer and loss scaler (after `setup`); return every rank's state."""
        raise NotImplementedError


def get_engine(name: str) -> type[Engine]:
    """The engine class called `name`, importing `mlscale.engines.<name>.engine` on first use."""
    if name not in Engine.registry:
        module = f"mlscale.engines.{name}.engine"
        if importlib.util.find_spec(f"mlscale.engines.{name}") is None:
            raise UserError(f"unknown engine {name!r} (no package mlscale/engines/{name}/)")
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise UserError(f"the {name} engine cannot start: {err}") from None
    if name not in Engine.registry:
        raise UserError(f"{module} defines no Engine named {name!r}")
    return Engine.registry[name]
