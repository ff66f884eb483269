"""Speed-up switches: AMP, channels_last, torch.compile, CUDA graphs.

Each is applied where the device supports it and refused with a one-line
error where it does not, before any training starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from mlscale.bench.config import RunConfig
from mlscale.engines.torch import tree
from mlscale.errors import UserError


def check_supported(run: RunConfig, device: torch.device) -> None:
    if run.cuda_graphs and device.type != "cuda":
        raise UserError(f"--cuda-graphs needs a CUDA device; this run is on {device.type}")
    if run.cuda_graphs and run.backend not in ("ddp", "single"):
        raise UserError(
            f"--cuda-graphs works with --backend ddp or single, not {run.backend} "
            "(its gradient exchange runs on the host and cannot be captured)"
        )
    if run.cuda_graphs and run.compile:
        raise UserError(
            "--cuda-graphs and --compile cannot be combined; use --compile alone "
            "(torch.compile's mode='reduce-overhead' uses CUDA graphs itself)"
        )
    if run.amp and device.type == "cpu" and not torch.backends.mkldnn.is_available():
        raise UserError("--amp on CPU needs bfloat16 support (oneDNN), which this torch build lacks")


class Precision:
    """Autocast context and loss scaling for the chosen device."""

    def __init__(self, enabled: bool, device: torch.device):
        self.enabled = enabled
        self.device_type = device.type
        # fp16 on GPUs (loss scaling needed); bf16 on CPUs (no scaling needed).
        self.dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda") if enabled and device.type == "cuda" else None

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()


def prepare_model(model: torch.nn.Module, run: RunConfig) -> torch.nn.Module:
    if run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def maybe_compile(model: torch.nn.Module, run: RunConfig) -> torch.nn.Module:
    return torch.compile(model) if run.compile else model


class GraphedStep:
    """The whole training step (forward, loss, backward, optimizer) captured in
    one CUDA graph after warm-up on a side stream; replayed with the batch
    copied into static input tensors."""

    def __init__(self, step_fn: Callable[[object], torch.Tensor], example_batch, warmup: int = 3):
        self.step_fn = step_fn
        self.static_batch = tree.clone(example_batch)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                step_fn(self.static_batch)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_loss = step_fn(self.static_batch)

    def load(self, batch) -> None:
        tree.copy_into(self.static_batch, batch)

    def replay(self) -> torch.Tensor:
        self.graph.replay()
        return self.static_loss
