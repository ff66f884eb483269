"""The Workload protocol and its registry.

A workload is one module in `mlscale/bench/workloads/` holding one subclass of
`Workload` with a `name`. It glues together its data (`mlscale.io`), its model
(`mlscale.models`), its loss and metrics. The runner (`mlscale.bench.runner`)
owns the loop, the timing, distribution and records; a workload never times
itself and never talks to other ranks except to shard its data.

Configuration: `Config` and `DataConfig` are small dataclasses. Each field
becomes a command-line flag of `mlscale run NAME` / `mlscale data NAME`
(`image_size` -> `--image-size`); `field(metadata={"help": ..., "choices": ...})`
documents it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlscale.errors import UserError
from mlscale.registry import Registered

if TYPE_CHECKING:  # torch is imported by the runner, not at registry time
    import logging

    import torch

    from mlscale.bench.config import RunConfig
    from mlscale.launch.comm import Communicator
    from mlscale.launch.env import RankEnv


@dataclass
class NoConfig:
    """A workload without options of its own."""


@dataclass
class Context:
    """What the runner hands a workload: where it runs and who its peers are."""

    env: RankEnv
    comm: Communicator
    device: torch.device
    run: RunConfig
    log: logging.Logger

    @classmethod
    def single_process(cls, run: RunConfig, log_name: str = "mlscale") -> Context:
        """A one-process context (no launcher, backend `single`, device from `run.device`),
        for tools that build a workload outside a launched run: `mlscale info --workload`, benchmarks."""
        import logging

        from mlscale.bench.runner import select_device
        from mlscale.launch.comm import create_communicator
        from mlscale.launch.env import detect_environment

        env = detect_environment({}, use_mpi=False)
        device = select_device(run.device, env)
        return cls(env, create_communicator("single", env), device, run, logging.getLogger(log_name))

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size


class Workload(Registered):
    """One science workload. Subclasses override what differs from the defaults."""

    description: ClassVar[str] = ""
    Config: ClassVar[type] = NoConfig
    DataConfig: ClassVar[type | None] = None  # None: `mlscale data NAME` has nothing to write
    # Which metric fills the train_accuracy / test_accuracy columns, and how the
    # report's caption describes it.
    accuracy_metric: ClassVar[str] = "accuracy"
    accuracy_caption: ClassVar[str] = "accuracy: fraction of correct predictions"
    default_lr: ClassVar[float] = 0.01
    modes: ClassVar[tuple[str, ...]] = ("train", "inference", "iotest")

    registry: ClassVar[dict[str, type[Workload]]] = {}

    def __init__(self, config: Any, ctx: Context):
        self.config = config
        self.ctx = ctx

    # -- data ----------------------------------------------------------------
    def build_data(self, split: str) -> Iterable:
        """This rank's batches for `split` ("train", "test" or "inference").

        Returns any iterable with a `len()` (a torch DataLoader is typical). Each
        batch must be accepted by `to_device`, `forward`, `loss` and `metrics`.
        Shard across `self.ctx.size` ranks here.
        """
        raise NotImplementedError

    def to_device(self, batch, device, non_blocking: bool = True):
        """Move a batch to the device; the default handles tuples/lists of tensors."""
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.to_device(b, device, non_blocking) for b in batch)
        if hasattr(batch, "to"):
            return batch.to(device, non_blocking=non_blocking)
        return batch

    def batch_size_of(self, batch) -> int:
        """Samples in a batch, for throughput; the default is len(batch[0])."""
        return len(batch[0])

    # -- model ---------------------------------------------------------------
    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def build_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        import torch

        return torch.optim.SGD(params, lr=lr, momentum=0.9)

    def input_of(self, batch):
        """The tensor(s) the model takes; channels_last is applied to this."""
        return batch[0]

    def forward(self, model, batch):
        return model(self.input_of(batch))

    def loss(self, output, batch) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, output, batch) -> dict[str, torch.Tensor]:
        """Batch-mean metrics as 0-d tensors. Never call `.item()` here: the
        runner accumulates on the device and reads values once per epoch."""
        return {}

    def on_inference_batch(self, output, batch) -> None:
        """Called for each inference batch (e.g. to keep predictions)."""

    def finish_inference(self, out_dir: Path) -> dict:
        """Called on every rank after the inference pass; may write outputs
        into the run directory (rank 0) and return facts for the record."""
        return {}

    def io_stats(self) -> dict[str, float]:
        """Counters of this rank's reading since the run began (e.g. bytes read from
        disk); summed over ranks into the iotest record."""
        return {}

    def info(self) -> dict:
        """Facts for the record and `mlscale info` (parameter count etc.)."""
        return {}

    # -- synthetic data ------------------------------------------------------
    @classmethod
    def write_data(cls, config: Any, out: Path) -> str:
        """Write a synthetic data set in this workload's native format; return a summary line."""
        raise UserError(f"workload {cls.name!r} has no data to write")


def workload_names() -> list[str]:
    from mlscale.workloads import import_all

    import_all("workload")
    return sorted(Workload.registry)


def get_workload(name: str) -> type[Workload]:
    names = workload_names()
    if name not in Workload.registry:
        raise UserError(f"unknown workload {name!r}; choose one of: {', '.join(names)}")
    return Workload.registry[name]


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def config_from_args(config_cls: type, args: Any) -> Any:
    """Build a config dataclass from parsed arguments with the same field names."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls) if hasattr(args, f.name)}
    return config_cls(**values)
