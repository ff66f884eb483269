"""UResNet for CosmicTagger: a U-Net of residual blocks over three wire planes.

Each plane (1 x H x W) goes through the same stack of modules (SHARE_WEIGHTS) or
through its own copy. Per level of the U: RES_BLOCKS_PER_LAYER blocks, a
downsampling step (stride-2 2x2 conv, or max-pool + 1x1 conv) that grows the
filters (x2, or + N_INITIAL_FILTERS), the next level, an upsampling step
(transposed conv, or bilinear + 1x1 conv), the skip connection (sum, or concat +
1x1 conv, or none) and RES_BLOCKS_PER_LAYER more blocks. At the deepest level the
three planes are concatenated along channels (optionally squeezed by a 1x1
BOTTLENECK), RES_BLOCKS_DEEPEST_LAYER blocks see all planes together, and the
result is split back. RES_BLOCKS_FINAL blocks and a 1x1 conv give 3 class scores
per pixel and plane.

Planes travel folded into the batch dimension ([B*P, C, H, W], plane fastest), so
shared weights cost one convolution call per layer for all planes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from mlscale.workloads.cosmic_tagger.config import CHOICES


@dataclass
class UResNetConfig:
    """The seed's network knobs (flags of the original in brackets); defaults are the seed's run."""

    n_initial_filters: int = 12  # N_INITIAL_FILTERS
    network_depth: int = 5  # NETWORK_DEPTH
    res_blocks_per_layer: int = 2  # RES_BLOCKS_PER_LAYER
    res_blocks_deepest_layer: int = 4  # RES_BLOCKS_DEEPEST_LAYER
    res_blocks_final: int = 2  # RES_BLOCKS_FINAL
    residual: bool = True  # RESIDUAL
    share_weights: bool = True  # SHARE_WEIGHTS
    connections: str = "sum"  # CONNECTIONS: sum | concat | none
    growth_rate: str = "multiplicative"  # GROWTH_RATE: multiplicative | additive
    batch_norm: bool = True  # BATCH_NORM
    use_bias: bool = True  # USE_BIAS
    bottleneck_size: int = -1  # BOTTLENECK_SIZE: channels at the deepest level; -1 keeps 3 x filters
    downsampling: str = "convolutional"  # convolutional | max_pooling
    upsampling: str = "convolutional"  # convolutional | interpolation
    n_planes: int = 3
    n_classes: int = 3


def validate(cfg: UResNetConfig) -> None:
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, not {getattr(cfg, name)!r}")
    if cfg.network_depth < 0 or cfg.n_initial_filters < 1:
        raise ValueError("network_depth must be >= 0 and n_initial_filters >= 1")


class ConvBlock(nn.Module):
    """conv -> (batch norm) -> (leaky ReLU)."""

    def __init__(self, cin: int, cout: int, cfg: UResNetConfig, kernel: int = 3, stride: int = 1,
                 activate: bool = True, transpose: bool = False):  # fmt: skip
        super().__init__()
        conv = nn.ConvTranspose2d if transpose else nn.Conv2d
        padding = 0 if transpose or stride > 1 else kernel // 2
        self.conv = conv(cin, cout, kernel, stride=stride, padding=padding, bias=cfg.use_bias)
        self.norm = nn.BatchNorm2d(cout) if cfg.batch_norm else nn.Identity()
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        return F.leaky_relu(x) if self.activate else x


class ResidualBlock(nn.Module):
    """Two 3x3 conv blocks (the second without activation), added to the input, then leaky ReLU."""

    def __init__(self, channels: int, cfg: UResNetConfig):
        super().__init__()
        self.first = ConvBlock(channels, channels, cfg)
        self.second = ConvBlock(channels, channels, cfg, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.second(self.first(x)) + x)


def block_series(channels: int, n_blocks: int, cfg: UResNetConfig) -> nn.Sequential:
    make = (lambda: ResidualBlock(channels, cfg)) if cfg.residual else (lambda: ConvBlock(channels, channels, cfg))
    return nn.Sequential(*(make() for _ in range(n_blocks)))


class Planewise(nn.Module):
    """Apply one module to every plane (shared weights) or one copy per plane.

    Input and output are [B*P, C, H, W] with the plane index fastest.
    """

    def __init__(self, factory: Callable[[], nn.Module], cfg: UResNetConfig):
        super().__init__()
        self.n_planes = cfg.n_planes
        self.shared = cfg.share_weights
        self.planes = nn.ModuleList([factory() for _ in range(1 if self.shared else cfg.n_planes)])

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if self.shared:
            return self.planes[0](x, *extra)
        p = self.n_planes
        outs = [m(x[i::p], *(e[i::p] for e in extra)) for i, m in enumerate(self.planes)]
        y = torch.stack(outs, dim=1)
        return y.reshape(-1, *y.shape[2:])


class Downsample(nn.Module):
    def __init__(self, cin: int, cout: int, cfg: UResNetConfig):
        super().__init__()
        if cfg.downsampling == "convolutional":
            self.body = ConvBlock(cin, cout, cfg, kernel=2, stride=2)
        else:
            self.body = nn.Sequential(nn.MaxPool2d(2), ConvBlock(cin, cout, cfg, kernel=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    def __init__(self, cin: int, cout: int, cfg: UResNetConfig):
        super().__init__()
        if cfg.upsampling == "convolutional":
            self.body = ConvBlock(cin, cout, cfg, kernel=2, stride=2, transpose=True)
        else:
            self.body = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), ConvBlock(cin, cout, cfg, kernel=1)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SkipConnection(nn.Module):
    def __init__(self, channels: int, cfg: UResNetConfig):
        super().__init__()
        self.mode = cfg.connections
        self.merge = ConvBlock(2 * channels, channels, cfg, kernel=1) if self.mode == "concat" else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.mode == "sum":
            return x + skip
        if self.mode == "concat":
            return self.merge(torch.cat([x, skip], dim=1))
        return x


class Deepest(nn.Module):
    """Planes concatenated along channels, (bottleneck), residual blocks, split back."""

    def __init__(self, channels: int, cfg: UResNetConfig):
        super().__init__()
        self.n_planes = cfg.n_planes
        joint = channels * cfg.n_planes
        width = joint if cfg.bottleneck_size <= 0 else cfg.bottleneck_size
        self.squeeze = ConvBlock(joint, width, cfg, kernel=1) if width != joint else nn.Identity()
        self.blocks = block_series(width, cfg.res_blocks_deepest_layer, cfg)
        self.expand = ConvBlock(width, joint, cfg, kernel=1) if width != joint else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bp, c, h, w = x.shape
        joint = x.reshape(bp // self.n_planes, self.n_planes * c, h, w)
        joint = self.expand(self.blocks(self.squeeze(joint)))
        return joint.reshape(bp, c, h, w)


class Level(nn.Module):
    """One level of the U: blocks, down, the levels below, up, skip, blocks."""

    def __init__(self, depth: int, channels: int, cfg: UResNetConfig):
        super().__init__()
        grown = 2 * channels if cfg.growth_rate == "multiplicative" else channels + cfg.n_initial_filters
        n = cfg.res_blocks_per_layer
        self.down_blocks = Planewise(lambda: block_series(channels, n, cfg), cfg)
        self.down = Planewise(lambda: Downsample(channels, grown, cfg), cfg)
        self.inner = Level(depth - 1, grown, cfg) if depth > 1 else Deepest(grown, cfg)
        self.up = Planewise(lambda: Upsample(grown, channels, cfg), cfg)
        self.skip = Planewise(lambda: SkipConnection(channels, cfg), cfg)
        self.up_blocks = Planewise(lambda: block_series(channels, n, cfg), cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x  # taken before the down-pass blocks (CONNECT_PRE_RES_BLOCKS_DOWN)
        x = self.inner(self.down(self.down_blocks(x)))
        return self.up_blocks(self.skip(self.up(x), skip))


class UResNet(nn.Module):
    """[B, P, H, W] charge -> [B, n_classes, P, H, W] logits. H and W must divide by 2**depth."""

    def __init__(self, cfg: UResNetConfig | None = None):
        super().__init__()
        cfg = cfg or UResNetConfig()
        validate(cfg)
        self.cfg = cfg
        f = cfg.n_initial_filters
        self.initial = Planewise(lambda: ConvBlock(1, f, cfg, kernel=5), cfg)
        self.core = Level(cfg.network_depth, f, cfg) if cfg.network_depth > 0 else Deepest(f, cfg)
        self.final = Planewise(
            lambda: nn.Sequential(block_series(f, cfg.res_blocks_final, cfg), nn.Conv2d(f, cfg.n_classes, 1)), cfg
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p, h, w = x.shape
        if p != self.cfg.n_planes:
            raise ValueError(f"expected {self.cfg.n_planes} planes, got {p}")
        step = 2**self.cfg.network_depth
        if h % step or w % step:
            raise ValueError(f"image {h}x{w} must divide by 2**network_depth = {step}")
        y = self.final(self.core(self.initial(x.reshape(b * p, 1, h, w))))
        return y.reshape(b, p, self.cfg.n_classes, h, w).transpose(1, 2)
