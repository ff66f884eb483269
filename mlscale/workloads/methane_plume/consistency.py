"""Training GoogLeNet for its dense form (`--dense-consistency LAMBDA`), so that the `fcn` saliency map
follows the per-pixel `cnn` map.

The tile CNN sees zero padding at the tile border; `fcn` sees the real neighbours there. Each training
tile therefore comes with a ring of real scene (`mlscale data methane-plume --context 64`). The tile goes
through the network with the seed's loss; a share of the batch also goes through the trunk *in context*
(the tile's own final cells averaged, then fc: what `fcn` computes for that tile), and
LAMBDA x MSE(tile logits, in-context logits) plus the in-context cross-entropy are added. BatchNorm runs
on its running statistics in that path, as `fcn` does at predict time (with batch statistics the two
paths' statistics mix). The in-context loss starts after `--dense-warmup` epochs (from the first step it
diverged, research/plume/plume_dense_consistency.py), and gradients are clipped (`--dense-clip`).

`InContextGoogLeNet` is a GoogLeNet (same state_dict, so checkpoints are plain GoogLeNet checkpoints that
`plume predict` reads) whose training forward returns both outputs, so that DDP and Horovod see one
forward with every parameter in it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import GoogLeNet

from mlscale.workloads.methane_plume.training import plume_loss

STRIDE = 32  # GoogLeNet's output stride: the context ring must be whole output cells


class DenseOutput(NamedTuple):
    """A training step's outputs: the tile's (GoogLeNetOutputs) and the in-context logits of the first
    `len(in_context)` tiles of the batch."""

    tile: object
    in_context: torch.Tensor


class InContextGoogLeNet(GoogLeNet):
    """GoogLeNet that takes (N, 1, T + 2C, T + 2C) crops in training and returns a `DenseOutput` once
    `active`; anything else (T x T tiles, eval mode, warm-up) is plain GoogLeNet on the centre tile."""

    tile: int = 256
    share: float = 0.25  # of each batch that also goes in context
    active: bool = False  # set by the workload after the warm-up epochs

    def forward(self, x: torch.Tensor):
        margin = (x.shape[-1] - self.tile) // 2
        centre = x[..., margin : margin + self.tile, margin : margin + self.tile] if margin else x
        out = super().forward(centre)
        if not (self.training and self.active and margin):
            return out
        n = max(1, round(self.share * len(x)))
        return DenseOutput(out, self.in_context_logits(x[:n], margin))

    def in_context_logits(self, x: torch.Tensor, margin: int) -> torch.Tensor:
        """The trunk on the crop, with BatchNorm on its running statistics; the tile's own cells averaged."""
        from mlscale.workloads.methane_plume.checkpoint import trunk_of

        trunk, fc = trunk_of(self)
        norms = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d) and m.training]
        for m in norms:
            m.eval()
        try:
            for layer in trunk:
                x = layer(x)
        finally:
            for m in norms:
                m.train()
        k, cells = margin // STRIDE, self.tile // STRIDE
        return fc(x[:, :, k : k + cells, k : k + cells].mean((2, 3)))


def tile_output(output):
    """The tile's output of a step, whether or not it also went in context."""
    return output.tile if isinstance(output, DenseOutput) else output


def logit_mismatch(output: DenseOutput) -> torch.Tensor:
    logits = tile_output(output).logits
    return F.mse_loss(output.in_context, logits[: len(output.in_context)])


def dense_loss(output, labels: torch.Tensor, weights: torch.Tensor, lam: float) -> torch.Tensor:
    """The seed's loss of the tile, plus (in context) lam x logit MSE and the in-context cross-entropy."""
    loss = plume_loss(tile_output(output), labels, weights)
    if isinstance(output, DenseOutput):
        n = len(output.in_context)
        in_context_ce = F.cross_entropy(output.in_context, labels[:n], weight=weights.to(labels.device))
        loss = loss + lam * logit_mismatch(output) + in_context_ce
    return loss


MOMENTUM_RANGE = (0.85, 0.95)  # OneCycleLR's momentum: lowest at the peak learning rate, highest at the ends
PEAK_AT = 0.3  # OneCycleLR's pct_start: the share of training before the peak


def _cycle(progress: float, low: float, high: float, rising: bool) -> float:
    """torch's OneCycleLR shape at `progress` (0..1, clamped): cosine from one end of (low, high) to the other
    over the first PEAK_AT, then back."""
    p = min(max(progress, 0.0), 1.0)
    t = p / PEAK_AT if p < PEAK_AT else (p - PEAK_AT) / (1 - PEAK_AT)
    a, b = (low, high) if (p < PEAK_AT) == rising else (high, low)
    return b + (a - b) * (1 + math.cos(math.pi * t)) / 2


def one_cycle(progress: float) -> float:
    """Fraction of the peak learning rate at `progress` (0..1) through training: torch's OneCycleLR shape
    (cosine up from 1/25 over 30%, down to 1/10^4 of the start), clamped past the end."""
    start, end = 1 / 25, 1 / 25 / 1e4
    return _cycle(progress, start if progress < PEAK_AT else end, 1.0, rising=True)


def one_cycle_momentum(progress: float) -> float:
    """SGD momentum at `progress`, as OneCycleLR cycles it against the learning rate (0.95 at the ends, 0.85 at
    the peak): a lower momentum where the learning rate peaks keeps the effective step (lr / (1 - momentum))
    two thirds of what a constant 0.9 gives there, which is where the in-context loss starts."""
    return _cycle(progress, *MOMENTUM_RANGE, rising=False)


class ScheduledSGD(torch.optim.SGD):
    """SGD with momentum whose step clips the gradient norm first (`max_grad_norm` of each param group)
    and then follows the one-cycle schedule over `total_steps` (when given): the learning rate up to `lr` and
    down, the momentum (unless 0) cycled against it, as torch's OneCycleLR does. Kept in the param groups
    so that Horovod's DistributedOptimizer, which re-creates the optimizer from its groups, keeps them."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0,
                 max_grad_norm: float | None = None, total_steps: int | None = None):  # fmt: skip
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        for group in self.param_groups:
            group.setdefault("max_grad_norm", max_grad_norm)
            group.setdefault("total_steps", total_steps)
            group.setdefault("peak_lr", group["lr"])
            group.setdefault("steps_done", 0)
            group.setdefault("cycle_momentum", bool(group["total_steps"] and group["momentum"]))
            self._follow_schedule(group)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            if group["max_grad_norm"]:
                torch.nn.utils.clip_grad_norm_(group["params"], group["max_grad_norm"])
        loss = super().step(closure)
        for group in self.param_groups:
            group["steps_done"] += 1
            self._follow_schedule(group)
        return loss

    @staticmethod
    def _follow_schedule(group: dict) -> None:
        if group["total_steps"]:
            progress = group["steps_done"] / group["total_steps"]
            group["lr"] = group["peak_lr"] * one_cycle(progress)
            if group["cycle_momentum"]:
                group["momentum"] = one_cycle_momentum(progress)
