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

Planes travel as a tuple of tensors. With PLANE_NORM per-plane (the default, the
original's semantics) the tuple holds one [B, C, H, W] tensor per plane and every
shared module runs on each plane in turn, so batch norm takes its statistics per
plane. With pooled, the planes travel stacked in one [P*B, C, H, W] tensor (plane
slowest): one call per layer for all planes, batch-norm statistics pooled over the
planes. On CPU per-plane also spares memory traffic: a stacked activation is three
times larger and lands above glibc's mmap threshold, so every one is served by
fresh, page-faulting memory (benchmarks/cosmic_vs_original.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from mlscale.workloads.cosmic_tagger.config import CHOICES

Planes = tuple[torch.Tensor, ...]


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
    plane_norm: str = "per-plane"  # per-plane: each plane on its own (the original) | pooled: planes stacked
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
        # In place: neither batch norm's nor the convolution's backward needs its output; one buffer less.
        return F.leaky_relu(x, inplace=True) if self.activate else x


class ResidualBlock(nn.Module):
    """Two 3x3 conv blocks (the second without activation), added to the input, then leaky ReLU."""

    def __init__(self, channels: int, cfg: UResNetConfig):
        super().__init__()
        self.first = ConvBlock(channels, channels, cfg)
        self.second = ConvBlock(channels, channels, cfg, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.second(self.first(x))
        y += x  # the second block's fresh output; its backward does not need it
        return F.leaky_relu(y, inplace=True)


def block_series(channels: int, n_blocks: int, cfg: UResNetConfig) -> nn.Sequential:
    make = (lambda: ResidualBlock(channels, cfg)) if cfg.residual else (lambda: ConvBlock(channels, channels, cfg))
    return nn.Sequential(*(make() for _ in range(n_blocks)))


def stacked(cfg: UResNetConfig) -> bool:
    """Planes stacked in one tensor: only pooled statistics with shared weights (copies are per plane anyway)."""
    return cfg.share_weights and cfg.plane_norm == "pooled"


class Planewise(nn.Module):
    """Apply one module to every plane tensor (shared weights) or one copy per plane."""

    def __init__(self, factory: Callable[[], nn.Module], cfg: UResNetConfig):
        super().__init__()
        self.shared = cfg.share_weights
        self.planes = nn.ModuleList([factory() for _ in range(1 if self.shared else cfg.n_planes)])

    def forward(self, xs: Planes, *extra: Planes) -> Planes:
        modules = [self.planes[0]] * len(xs) if self.shared else self.planes
        return tuple(m(x, *(e[i] for e in extra)) for i, (m, x) in enumerate(zip(modules, xs)))


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

    def forward(self, xs: Planes) -> Planes:
        p = self.n_planes
        if len(xs) == p:
            joint = torch.cat(xs, dim=1)
        else:  # stacked [P*B, C, H, W] -> [B, P*C, H, W]
            pb, c, h, w = xs[0].shape
            joint = xs[0].reshape(p, pb // p, c, h, w).transpose(0, 1).reshape(pb // p, p * c, h, w)
        joint = self.expand(self.blocks(self.squeeze(joint)))
        if len(xs) == p:
            return torch.chunk(joint, p, dim=1)
        return (joint.reshape(pb // p, p, c, h, w).transpose(0, 1).reshape(pb, c, h, w),)


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

    def forward(self, xs: Planes) -> Planes:
        skip = xs  # taken before the down-pass blocks (CONNECT_PRE_RES_BLOCKS_DOWN)
        xs = self.inner(self.down(self.down_blocks(xs)))
        return self.up_blocks(self.skip(self.up(xs), skip))


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
        if stacked(self.cfg):
            planes: Planes = (x.transpose(0, 1).reshape(p * b, 1, h, w),)
        else:
            planes = tuple(x[:, i : i + 1] for i in range(p))
        ys = self.final(self.core(self.initial(planes)))
        if len(ys) == p:
            return torch.stack(ys, dim=2)
        return ys[0].reshape(p, b, self.cfg.n_classes, h, w).permute(1, 2, 0, 3, 4)
