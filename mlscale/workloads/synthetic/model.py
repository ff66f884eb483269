"""Image classifiers for the synthetic workload: torchvision ResNets (never with
downloaded weights) and a tiny CNN that keeps CI fast."""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

from mlscale.workloads.synthetic.config import TORCHVISION_MODELS


class TinyCNN(nn.Module):
    """Two strided conv blocks and a linear head: milliseconds per step on a CPU."""

    def __init__(self, num_classes: int = 1000, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def build_network(name: str, num_classes: int) -> nn.Module:
    if name == "tiny":
        return TinyCNN(num_classes)
    if name not in TORCHVISION_MODELS:
        raise ValueError(f"unknown classifier {name!r}")
    return models.get_model(name, weights=None, num_classes=num_classes)
