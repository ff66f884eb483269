"""A padding-free tile classifier for methane plumes.

Every convolution and pooling is "valid" (no padding, floor mode), so a tile's output depends only
on the tile's own pixels and the network is exactly translation-equivariant on its stride grid.
That is what lets `mlscale.workloads.methane_plume.dense` evaluate it densely over a whole flightline and reproduce
the per-pixel tile CNN exactly (the `exact` inference method). A 256x256 tile ends in a 10x10
feature map (total stride 16) that is averaged, then classified.
"""

from __future__ import annotations

from torch import nn


def _block(cin: int, cout: int, kernel: int, pool: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2, 2))
    return layers


class ValidTileNet(nn.Module):
    def __init__(self, num_classes: int = 2, width: int = 8, in_channels: int = 1):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_block(in_channels, w, 5, True),
            *_block(w, 2 * w, 5, True),
            *_block(2 * w, 4 * w, 5, True),
            *_block(4 * w, 8 * w, 5, True),
            *_block(8 * w, 8 * w, 3, False),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(8 * w, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.fc(self.dropout(self.pool(self.features(x)).flatten(1)))
