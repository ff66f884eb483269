"""The Workload protocol and its registry.

A workload is one package `mlscale/workloads/<name>/` whose `workload.py` holds one
subclass of `Workload` with a `name` (see `mlscale.workloads`). It glues together its
data, its model, its loss and metrics. The runner (`mlscale.bench.runner`) owns the
loop, the timing, distribution, checkpoints and records; an engine
(`mlscale.bench.engine`, e.g. the torch engine) runs the steps. A workload never times
itself and talks to other ranks only to shard its data and in its evaluation hooks.

Configuration: `Config` and `DataConfig` are small dataclasses. Each field
becomes a command-line flag of `mlscale run NAME` / `mlscale data NAME`
(`image_size` -> `--image-size`); `field(metadata={"help": ..., "choices": ...})`
documents it.

Hooks the runner calls, in order:
- on every rank: `build_data(split)`, `build_model()`, `build_optimizer(...)`;
- in training, before each epoch: `epoch_start(epoch)` (1-based);
- per step: `to_device`, `forward`, `loss`, and in training `metrics` (batch means);
- per evaluation pass (the test pass of each epoch, the inference pass), on every rank:
  `eval_start(split)`, `eval_batch(split, output, batch)` for each batch, then
  `eval_end(split)`, which is *collective*: every rank calls it at the same point, so it
  may gather or reduce (a confusion matrix, COCO AP, Kendall's tau, a best-F1 threshold);
- `checkpoint_meta()` when `--save-weights` writes, `check_checkpoint(meta, path)` when
  `--weights` reads; `train_state()` / `load_train_state(state)` for a preempted run's checkpoint
  and its resumption (a schedule or other training state the workload keeps itself).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlscale.bench.batching import BatchSizes, batch_sizes
from mlscale.errors import UserError
from mlscale.registry import Registered

if TYPE_CHECKING:  # frameworks are imported by engines, not at registry time
    import logging

    from mlscale.bench.config import RunConfig
    from mlscale.launch.comm import Communicator
    from mlscale.launch.env import RankEnv

SPLITS = ("train", "test", "inference")


@dataclass
class NoConfig:
    """A workload without options of its own."""


@dataclass
class Context:
    """What the runner hands a workload: where it runs, who its peers are, its batch sizes."""

    env: RankEnv
    comm: Communicator
    device: Any  # the engine's device object (a torch.device for the torch engine)
    run: RunConfig
    log: logging.Logger
    batch: BatchSizes | None = None  # per-rank and global batch; computed from `run` when not given
    outputs: Path | None = None  # rank 0 may write files here; they land in the run directory

    def __post_init__(self) -> None:
        if self.batch is None:
            self.batch = batch_sizes(self.run.batch_size, self.run.global_batch_size, self.comm.size)

    @classmethod
    def single_process(cls, run: RunConfig, log_name: str = "mlscale", engine: str = "torch") -> Context:
        """A one-process context (no launcher, backend `single`, device from `run.device`),
        for tools that build a workload outside a launched run: `mlscale info --workload`, benchmarks."""
        import logging

        from mlscale.bench.engine import get_engine
        from mlscale.launch.comm import create_communicator
        from mlscale.launch.env import detect_environment

        env = detect_environment({}, use_mpi=False)
        device = get_engine(engine).select_device(run.device, env)
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
    engine: ClassVar[str] = "torch"  # which engine runs its steps (mlscale.engines.<engine>)
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

    @classmethod
    def engine_for(cls, config: Any) -> str:
        """The engine for this configuration: `engine` unless the workload offers a choice
        (e.g. a `--framework` flag)."""
        return cls.engine

    # -- data ----------------------------------------------------------------
    def build_data(self, split: str) -> Iterable:
        """This rank's batches for `split` ("train", "test" or "inference").

        Returns any iterable with a `len()` (a torch DataLoader is typical) of batches of
        any nesting (tuples, lists, dicts of tensors). Take `self.ctx.batch.per_rank`
        samples per batch and shard across `self.ctx.size` ranks here.
        """
        raise NotImplementedError

    def to_device(self, batch, device, non_blocking: bool = True):
        """Move a batch to the device; the default moves every tensor of any nesting."""
        from mlscale.engines.torch.tree import to_device

        return to_device(batch, device, non_blocking)

    def batch_size_of(self, batch) -> int:
        """Samples in a batch, for throughput; the default is the length of its first leaf."""
        from mlscale.bench.tree import first_leaf

        return len(first_leaf(batch))

    # -- model ---------------------------------------------------------------
    def build_model(self):
        raise NotImplementedError

    def build_optimizer(self, params, lr: float):
        import torch

        return torch.optim.SGD(params, lr=lr, momentum=0.9)

    def input_of(self, batch):
        """The tensor(s) the model takes."""
        return batch[0]

    def forward(self, model, batch):
        return model(self.input_of(batch))

    def loss(self, output, batch):
        raise NotImplementedError

    def metrics(self, output, batch) -> dict:
        """Batch-mean metrics as 0-d tensors, for training and test steps. Never call
        `.item()` here: the runner accumulates on the device and reads values once per
        epoch. Metrics that are not batch means belong in `eval_end`."""
        return {}

    def epoch_start(self, epoch: int) -> None:
        """Before training epoch `epoch` (1, 2, ...) on every rank: for a loss or schedule that changes
        with the epoch (e.g. a term that starts after warm-up epochs)."""

    # -- evaluation passes ------------------------------------------------------
    def eval_start(self, split: str) -> None:
        """Before an evaluation pass over `split` ("test" each epoch, or "inference")."""

    def eval_batch(self, split: str, output, batch) -> None:
        """After each evaluated batch: keep what `eval_end` needs (predictions, counts)."""

    def eval_end(self, split: str) -> dict:
        """After the pass; collective (every rank calls it at the same point, so it may
        gather). Returns epoch-level metrics: for "test" they join the epoch's test
        metrics, for "inference" the record's inference section. Return the same values
        on every rank (rank 0's are recorded). Rank 0 may write files into
        `self.ctx.outputs`; they land in the run directory."""
        return {}

    def io_stats(self) -> dict[str, float]:
        """Counters of this rank's reading since the run began (e.g. bytes read from
        disk); summed over ranks into the iotest record."""
        return {}

    def info(self) -> dict:
        """Facts for the record and `mlscale info` (model name etc.); local, no collectives."""
        return {}

    # -- checkpoints ---------------------------------------------------------
    def checkpoint_meta(self) -> dict:
        """Facts saved beside the weights by `--save-weights` (e.g. a decision threshold);
        with none, the file is a plain state_dict."""
        return {}

    def train_state(self) -> Any:
        """Training state the workload keeps itself (a schedule, the best weights so far), for the
        checkpoint of a preempted run: tensors and plain values only. None: it keeps none."""
        return None

    def load_train_state(self, state: Any) -> None:
        """Restore `train_state()`'s value when a run resumes (after the model and optimizer are built)."""

    def check_checkpoint(self, meta: dict, path: str) -> None:
        """Before `--weights PATH` is loaded: refuse, with a UserError, metadata that does not
        fit this run (e.g. another architecture)."""

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


def config_from_args(config_cls: type, args: Any) -> Any:
    """Build a config dataclass from parsed arguments with the same field names."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls) if hasattr(args, f.name)}
    return config_cls(**values)
