"""The RankNet of the seed: a CNN body, global average pooling, and an MLP to one score per photo.

`resnet18` is the original's (torchvision ResNet-18 without its avgpool and fc, then
AdaptiveAvgPool2d(1) and 512 -> 256 -> ReLU -> 64 -> ReLU -> 1); its weights start random here
(nothing is downloaded). `tiny` is a four-layer CNN with the same head, for tests. A pair is
scored in one forward pass over both photos; the loss is RankNet's,
BCE(sigmoid(s1 - s2), (label + 1) / 2).
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn


def _tiny_body() -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    channels = [3, 16, 32, 64, 64]
    for cin, cout in zip(channels, channels[1:]):
        conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        layers += [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers), channels[-1]


def _resnet18_body() -> tuple[nn.Module, int]:
    resnet = torchvision.models.resnet18(weights=None)
    return nn.Sequential(*list(resnet.children())[:-2]), 512  # truncate=2: without avgpool and fc


class RankNet(nn.Module):
    def __init__(self, backbone: str = "resnet18", hidden: tuple[int, int] = (256, 64)):
        super().__init__()
        self.backbone, features = _tiny_body() if backbone == "tiny" else _resnet18_body()
        self.pool = nn.AdaptiveAvgPool2d(1)
        first, second = hidden
        self.head = nn.Sequential(
            nn.Linear(features, first), nn.ReLU(), nn.Linear(first, second), nn.ReLU(), nn.Linear(second, 1)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One score per photo."""
        return self.head(self.pool(self.backbone(images)).flatten(1)).squeeze(1)


def score_pair(model: nn.Module, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """(2, B) scores of the left and right photos, in one pass (one allreduce per step under DDP)."""
    return model(torch.cat([left, right])).view(2, -1)


def ranknet_loss(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(scores[0] - scores[1], target.to(scores.dtype))


def pair_accuracy(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Share of pairs with a higher side (label +-1) whose scores order them the same way."""
    decided = target != 0.5
    right = (scores[0] > scores[1]) == (target > 0.5)
    return (right & decided).sum() / decided.sum().clamp(min=1)
