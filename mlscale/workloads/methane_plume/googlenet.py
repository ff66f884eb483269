"""The seed's plume tile classifier: torchvision GoogLeNet with a 1-channel input and 2 classes.

Aux heads are kept (they add to the training loss, as in the seed); weights are never downloaded.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import GoogLeNet, googlenet


def googlenet_plume(num_classes: int = 2, aux_logits: bool = True, model_cls: type[GoogLeNet] = GoogLeNet) -> GoogLeNet:
    """`model_cls`: GoogLeNet or a subclass with the same layers (e.g. the in-context trainer's)."""
    kwargs = {"aux_logits": aux_logits, "init_weights": True, "num_classes": num_classes, "transform_input": False}
    model = googlenet(weights=None, **kwargs) if model_cls is GoogLeNet else model_cls(**kwargs)
    # One input channel (the CH4 enhancement) instead of RGB; same initialisation as the rest.
    conv = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.trunc_normal_(conv.weight, mean=0.0, std=0.01, a=-2, b=2)
    model.conv1.conv = conv
    return model


def googlenet_logits(output) -> torch.Tensor:
    """Main-head logits whether the model returned GoogLeNetOutputs (train mode) or a tensor."""
    return output.logits if hasattr(output, "logits") else output
