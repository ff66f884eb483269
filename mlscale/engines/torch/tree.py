"""Torch leaves of batches of any nesting (see `mlscale.bench.tree`)."""

from __future__ import annotations

from typing import Any

import torch

from mlscale.bench.tree import leaves, map_leaves, zip_leaves


def to_device(batch: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Every tensor (anything with `.to`) moved to `device`; other leaves as they are."""
    return map_leaves(lambda x: x.to(device, non_blocking=non_blocking) if hasattr(x, "to") else x, batch)


def to_channels_last(batch: Any) -> Any:
    """Every 4-D tensor in channels_last memory format."""

    def convert(x):
        if isinstance(x, torch.Tensor) and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    return map_leaves(convert, batch)


def clone(batch: Any) -> Any:
    """Tensors copied (the static inputs of a CUDA graph); other leaves shared."""
    return map_leaves(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, batch)


def copy_into(static: Any, batch: Any) -> None:
    """Copy each tensor of `batch` into the tensor at the same place in `static`."""

    def copy(s, b):
        if isinstance(s, torch.Tensor):
            s.copy_(b, non_blocking=True)

    zip_leaves(copy, static, batch)


def nbytes(batch: Any) -> int:
    """Bytes held by the batch's tensors."""
    return sum(x.numel() * x.element_size() for x in leaves(batch) if isinstance(x, torch.Tensor))
