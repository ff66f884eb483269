"""PyTorch half of cloud-mask: the seed's U-Net, its loss and accuracy, tensors from the pipeline.

The U-Net: 9 input channels; per stage two 3x3 `same` convolutions with ReLU (He-normal
initialisation, zero biases, no batch norm); encoder `w, 2w, 4w` with 2x2 max-pooling, bottleneck
`8w`, decoder 2x nearest upsampling + the skip concatenated + two convolutions at `4w, 2w, w`,
then a 1x1 convolution. With w = 32 it has 1,948,609 parameters, as the seed's. It returns
logits: the seed's final sigmoid is applied for predictions, and the weighted cross-entropy
takes the logits (numerically stable).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _block(c_in: int, c_out: int) -> nn.Sequential:
    layers = []
    for a, b in ((c_in, c_out), (c_out, c_out)):
        conv = nn.Conv2d(a, b, 3, padding="same")
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")  # Keras' he_normal
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    def __init__(self, channels: int = 9, width: int = 32):
        super().__init__()
        w = width
        self.down = nn.ModuleList([_block(channels, w), _block(w, 2 * w), _block(2 * w, 4 * w)])
        self.bottom = _block(4 * w, 8 * w)
        self.up = nn.ModuleList([_block(12 * w, 4 * w), _block(6 * w, 2 * w), _block(3 * w, w)])
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = block(torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip], 1))
        return self.head(x)


def inner(t: torch.Tensor, border: int) -> torch.Tensor:
    """A (N, 1, P, P) map cropped by `border` pixels per side."""
    return t[..., border : t.shape[-2] - border, border : t.shape[-1] - border] if border else t


def loss(logits: torch.Tensor, labels: torch.Tensor, border: int, pos_weight: float) -> torch.Tensor:
    """The seed's weighted cross-entropy with logits on the cropped patch."""
    weight = torch.tensor(pos_weight, device=logits.device, dtype=logits.dtype)
    return F.binary_cross_entropy_with_logits(inner(logits, border), inner(labels, border), pos_weight=weight)


def accuracy(logits: torch.Tensor, labels: torch.Tensor, border: int) -> torch.Tensor:
    """Binary accuracy at probability 0.5 (logit 0) on the cropped patch."""
    return ((inner(logits, border) > 0).float() == inner(labels, border)).float().mean()


def to_tensor(array: np.ndarray, nhwc: bool = False) -> torch.Tensor:
    """A tensor of the pipeline's batch; an NHWC array becomes an (N, C, H, W) view in channels_last
    memory format (no copy)."""
    t = torch.from_numpy(array)
    return t.permute(0, 3, 1, 2) if nhwc else t


@torch.no_grad()
def predict(model: nn.Module, patches: torch.Tensor, batch: int) -> np.ndarray:
    """(n, P, P) cloud probabilities for (n, 9, P, P) patches, `batch` at a time."""
    out = [torch.sigmoid(model(patches[i : i + batch]))[:, 0] for i in range(0, len(patches), batch)]
    return torch.cat(out).float().cpu().numpy()


def build_model(channels: int, width: int, seed: int, channels_last: bool = False) -> UNet:
    torch.manual_seed(seed)  # the same initial weights on every rank and in every run
    model = UNet(channels, width)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def adam(params, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)  # the seed's Adam, not scaled by the ranks


def move(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    return t.to(device, non_blocking=True)
