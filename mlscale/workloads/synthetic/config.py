"""synthetic's options (`mlscale run synthetic`). No framework import."""

from __future__ import annotations

from dataclasses import dataclass

from mlscale.bench.config import opt

TORCHVISION_MODELS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
NETWORKS = (*TORCHVISION_MODELS, "tiny")


@dataclass
class SyntheticConfig:
    model: str = opt(
        "resnet50",
        "network: torchvision ResNets (no weights downloaded) or 'tiny' for quick checks",
        choices=NETWORKS,
    )
    image_size: int = opt(224, "height and width of the random images", at_least=1)
    num_classes: int = opt(1000, "classes of the random labels", at_least=1)
    steps_per_epoch: int = opt(100, "training batches per epoch per rank", at_least=1)
    test_steps: int = opt(10, "test (and inference) batches per epoch per rank", at_least=1)
