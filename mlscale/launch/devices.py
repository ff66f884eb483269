"""Which device a rank uses: `--device auto|cpu|cuda` and the local rank.

Framework-neutral: an engine counts the GPUs it can see and turns the answer
into its own device object (`torch.device("cuda", 1)`, "/GPU:1", ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlscale.errors import UserError

CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DeviceChoice:
    type: str  # "cpu" or "cuda"
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def pick_device(choice: str, local_rank: int, gpus: int) -> DeviceChoice:
    """One GPU per local rank (ranks beyond the GPU count share them round-robin);
    the CPU when asked, or when `auto` finds no GPU."""
    if choice not in CHOICES:
        raise UserError(f"--device {choice!r}: choose auto, cpu or cuda")
    if choice == "cpu":
        return DeviceChoice("cpu")
    if gpus > 0:
        return DeviceChoice("cuda", local_rank % gpus)
    if choice == "cuda":
        raise UserError("--device cuda: no CUDA device is visible to this process")
    return DeviceChoice("cpu")
