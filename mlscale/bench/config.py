"""Run configuration and the dataclass -> argparse bridge.

`RunConfig` holds the flags every workload shares (`mlscale run W --epochs 2`);
a workload's own `Config` dataclass adds its flags next to them.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlscale.bench.gcpolicy import POLICIES as GC_POLICIES


def opt(
    default: Any,
    help: str,
    choices: tuple | None = None,
    metavar: str | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
):
    """A dataclass field that documents its command-line flag.

    `at_least` / `at_most` bound a number: a value outside is refused by the parser with one
    line naming the flag, before any work starts (a `--global-batch-size 0` would otherwise run
    and record zero samples as a success)."""
    meta: dict[str, Any] = {"help": help}
    if choices:
        meta["choices"] = choices
    if metavar:
        meta["metavar"] = metavar
    if at_least is not None:
        meta["at_least"] = at_least
    if at_most is not None:
        meta["at_most"] = at_most
    return field(default=default, metadata=meta)


@dataclass
class RunConfig:
    """Flags common to every workload (the run contract in design.md)."""

    mode: str = opt(
        "train",
        "train: epochs of train+test steps; inference: one timed inference pass; iotest: read and distribute data only",
        choices=("train", "inference", "iotest"),
    )
    epochs: int = opt(2, "training epochs (the tables report the first and second)", at_least=0)
    batch_size: int = opt(32, "samples per rank per step (weak scaling)", at_least=1)
    global_batch_size: int | None = opt(
        None,
        "samples per step over all ranks (strong scaling); must divide by the number of ranks; overrides --batch-size",
        at_least=1,
    )
    lr: float | None = opt(None, "learning rate (default: the workload's)", at_least=0)
    infer: bool = opt(False, "after training, time an inference pass (fills the inference table)")
    max_steps: int | None = opt(None, "cap on steps per epoch (and per inference pass)", at_least=1)
    warmup_steps: int = opt(0, "untimed training steps before the first epoch", at_least=0)
    backend: str = opt(
        "ddp", "communication backend: ddp (torch.distributed), mpi (mpi4py), single, or another registered one"
    )
    device: str = opt("auto", "auto (a GPU per local rank if any), cpu, or cuda")
    amp: bool = opt(False, "automatic mixed precision (fp16 + GradScaler on CUDA, bf16 on CPU)")
    channels_last: bool = opt(False, "channels_last memory format for model and inputs")
    compile: bool = opt(False, "torch.compile the model")
    cuda_graphs: bool = opt(False, "capture the whole training step in a CUDA graph (CUDA only)")
    seed: int = opt(1234, "random seed (identical on every rank)")
    system: str = opt("local", "system name written in the tables (e.g. PEARL, SCARF, theta)")
    tag: str = opt("", "free-form tag stored in the record, for filtering")
    out: str = opt("runs", "results root: the run directory is created inside it", metavar="DIR")
    run_id: str | None = opt(None, "name of the run directory (default: generated, unique)")
    collective_timeout: float = opt(
        300.0,
        "seconds a rank may go without a heartbeat before the job is ended as hung, its record naming the rank "
        "(a dead rank is found within seconds); heartbeats go every second, so at least 2",
        metavar="SECONDS",
        at_least=2,
    )
    progress: bool = opt(True, "tqdm progress bars on rank 0")
    weights: str = opt("", "model weights to start from (a state_dict, e.g. from --save-weights)", metavar="PATH")
    resume: str = opt(
        "",
        "continue a preempted run from its checkpoint: its run directory, or auto (the run directory "
        "--out/--run-id when it holds a preempted run; otherwise start afresh)",
        metavar="RUN_DIR|auto",
    )
    save_weights: str = opt("", "after training, rank 0 writes the model's state_dict here", metavar="PATH")
    gc: str = opt(
        "freeze",
        "Python garbage collection in timed steps: freeze (freeze set-up objects so full collections skip them), "
        "manual (also no automatic collection inside an epoch; collect between epochs), python (default behaviour)",
        choices=GC_POLICIES,
    )


def bounded(tp: type, at_least: float | None = None, at_most: float | None = None) -> Callable[[str], Any]:
    """An argparse `type` converting to `tp` and refusing NaN, infinities and values out of range;
    argparse turns its ArgumentTypeError into one line naming the flag."""

    def convert(text: str) -> Any:
        value = tp(text)  # a ValueError reads "invalid int value: 'x'", argparse's usual words
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if at_least is not None and value < at_least:
            raise argparse.ArgumentTypeError(f"must be at least {at_least:g}, got {text}")
        if at_most is not None and value > at_most:
            raise argparse.ArgumentTypeError(f"must be at most {at_most:g}, got {text}")
        return value

    convert.__name__ = tp.__name__  # argparse names the type in its messages
    return convert


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(tp: Any) -> Any:
    """`int | None` -> int; `bool` stays bool."""
    if isinstance(tp, str):
        tp = eval(tp, vars(typing))  # dataclass annotations are strings under `from __future__`
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def add_dataclass_arguments(parser: argparse.ArgumentParser | Any, cls: type, title: str | None = None) -> None:
    """Add one flag per dataclass field; defaults and help come from the field."""
    group = parser.add_argument_group(title) if title else parser
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = _base_type(hints.get(f.name, f.type))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f.metadata.get("help", "")
        kwargs: dict[str, Any] = {"dest": f.name, "default": default}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) in (list, tuple):
            kwargs["type"] = typing.get_args(tp)[0]
            kwargs["nargs"] = "+"
        elif tp in (int, float):
            kwargs["type"] = bounded(tp, f.metadata.get("at_least"), f.metadata.get("at_most"))
        else:
            kwargs["type"] = tp
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if "metavar" in f.metadata:
            kwargs["metavar"] = f.metadata["metavar"]
        if default not in (None, "", False) and tp is not bool:
            help_text += f" (default: {default})"
        group.add_argument(_flag(f.name), help=help_text, **kwargs)
