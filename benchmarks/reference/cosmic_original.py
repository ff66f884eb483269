"""The original CosmicTagger's torch UResNet and loss, in its own form, as the yardstick for cosmic-tagger.

Written here after github.com/coreyjadams/CosmicTagger src/networks/torch/uresnet2D.py and LossCalculator.py
(nothing is fetched at run time): the three planes travel as a tuple, every shared module is applied to each
plane in turn (so batch norm normalises each plane on its own), the deepest block concatenates the planes
along channels, squeezes them through a 1x1 bottleneck and splits them back; leaky ReLU out of place,
`out += residual` in the residual block; the focal loss sums over planes the weighted cross entropy divided by
the plane's total weight. Only the knobs our benchmark configurations use are built: residual blocks,
sum connections, multiplicative growth, strided-convolution down- and transposed-convolution upsampling.
One liberty: without a bottleneck size (<= 0) the deepest block skips the 1x1 convolutions (the original
always has them), as our UResNet does.

`copy_weights(ours, theirs)` loads our UResNet's parameters and batch-norm buffers into this model: both
register their tensors in the same order with the same shapes.
"""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, inplanes, outplanes, kernel=3, stride=1, padding=1, activation=nn.functional.leaky_relu,
                 bias=True, batch_norm=True):  # fmt: skip
        super().__init__()
        self.conv = nn.Conv2d(inplanes, outplanes, kernel, stride=stride, padding=padding, bias=bias)
        self.norm = nn.BatchNorm2d(outplanes) if batch_norm else None
        self.activation = activation

    def forward(self, x):
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        return self.activation(out)


class ResidualBlock(nn.Module):
    def __init__(self, planes, kernel=3, padding=1, **kw):
        super().__init__()
        self.convolution_1 = Block(planes, planes, kernel, padding=padding, **kw)
        self.convolution_2 = Block(planes, planes, kernel, padding=padding, activation=nn.Identity(), **kw)

    def forward(self, x):
        out = self.convolution_2(self.convolution_1(x))
        out += x
        return nn.functional.leaky_relu(out)


class BlockSeries(nn.Module):
    def __init__(self, planes, n_blocks, **kw):
        super().__init__()
        self.blocks = nn.ModuleList([ResidualBlock(planes, **kw) for _ in range(n_blocks)])

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class ConvolutionUpsample(nn.Module):
    def __init__(self, inplanes, outplanes, bias=True, batch_norm=True):
        super().__init__()
        self.conv = nn.ConvTranspose2d(inplanes, outplanes, 2, stride=2, padding=0, bias=bias)
        self.norm = nn.BatchNorm2d(outplanes) if batch_norm else None

    def forward(self, x):
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        return nn.functional.leaky_relu(out)


class DeepestBlock(nn.Module):
    def __init__(self, inplanes, n_blocks, bottleneck, **kw):
        super().__init__()
        width = bottleneck if bottleneck > 0 else 3 * inplanes
        self.bottleneck = Block(3 * inplanes, width, 1, padding=0, **kw) if bottleneck > 0 else nn.Identity()
        self.blocks = BlockSeries(width, n_blocks, **kw)
        self.unbottleneck = Block(width, 3 * inplanes, 1, padding=0, **kw) if bottleneck > 0 else nn.Identity()

    def forward(self, x):
        x = torch.cat(x, dim=1)
        x = self.unbottleneck(self.blocks(self.bottleneck(x)))
        return torch.chunk(x, chunks=3, dim=1)


class UNetCore(nn.Module):
    def __init__(self, depth, inplanes, cfg, **kw):
        super().__init__()
        self.depth = depth
        if depth == 0:
            self.main_module = DeepestBlock(inplanes, cfg.res_blocks_deepest_layer, cfg.bottleneck_size, **kw)
            return
        self.down_blocks = BlockSeries(inplanes, cfg.res_blocks_per_layer, **kw)
        n_next = 2 * inplanes
        self.downsample = Block(inplanes, n_next, 2, stride=2, padding=0, **kw)
        self.main_module = UNetCore(depth - 1, n_next, cfg, **kw)
        self.upsample = ConvolutionUpsample(n_next, inplanes, **kw)
        self.up_blocks = BlockSeries(inplanes, cfg.res_blocks_per_layer, **kw)

    def forward(self, x):
        if self.depth != 0:
            residual = x
            x = tuple(self.down_blocks(_x) for _x in x)
            x = tuple(self.downsample(_x) for _x in x)
        x = self.main_module(x)
        if self.depth != 0:
            x = tuple(self.upsample(_x) for _x in x)
            x = tuple(_x + _r for _x, _r in zip(x, residual))  # SumConnection
            x = tuple(self.up_blocks(_x) for _x in x)
        return x


class UResNet(nn.Module):
    """Built from our UResNetConfig; forward gives a tuple of three [B, 3, H, W] logits, as the original."""

    def __init__(self, cfg):
        super().__init__()
        wanted = {"residual": True, "share_weights": True, "connections": "sum", "growth_rate": "multiplicative",
                  "downsampling": "convolutional", "upsampling": "convolutional", "n_planes": 3}  # fmt: skip
        for name, value in wanted.items():
            if getattr(cfg, name) != value:
                raise ValueError(f"the reference model only builds {name}={value!r}")
        kw = {"bias": cfg.use_bias, "batch_norm": cfg.batch_norm}
        f = cfg.n_initial_filters
        self.initial_convolution = Block(1, f, 5, padding=2, **kw)
        self.net_core = UNetCore(cfg.network_depth, f, cfg, **kw)
        self.final_layer = BlockSeries(f, cfg.res_blocks_final, **kw)
        self.bottleneck = nn.Conv2d(f, 3, 1, bias=cfg.use_bias)

    def forward(self, input_tensor):
        x = torch.chunk(input_tensor, chunks=3, dim=1)
        x = tuple(self.initial_convolution(_x) for _x in x)
        x = self.net_core(x)
        x = tuple(self.final_layer(_x) for _x in x)
        return tuple(self.bottleneck(_x) for _x in x)


def focal_loss(labels, logits):
    """The original LossCalculator with balance_type focal: labels and logits are per-plane sequences."""
    criterion = nn.CrossEntropyLoss(reduction="none")
    loss = None
    for i in (0, 1, 2):
        plane_loss = criterion(input=logits[i].float(), target=labels[i])
        with torch.no_grad():
            softmax = nn.functional.softmax(logits[i].float(), dim=1)
            onehot = nn.functional.one_hot(labels[i], num_classes=3).permute([0, 3, 1, 2])
            weights = torch.mean(onehot * (1 - softmax) ** 2, dim=1)
        plane_loss = torch.sum(weights * plane_loss) / torch.sum(weights)
        loss = plane_loss if loss is None else loss + plane_loss
    return loss


def split_labels(labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """[B, 3, H, W] labels -> three [B, H, W] long tensors, as the original's trainer passes them."""
    return tuple(t.squeeze(1).long() for t in torch.chunk(labels, chunks=3, dim=1))


def copy_weights(ours: nn.Module, theirs: UResNet) -> None:
    """Load our UResNet's parameters and buffers into the reference (same order, same shapes)."""
    src, dst = list(ours.state_dict().values()), theirs.state_dict()
    if len(src) != len(dst):
        raise ValueError(f"{len(src)} tensors in ours, {len(dst)} in the reference")
    for (name, target), value in zip(dst.items(), src):
        if target.shape != value.shape:
            raise ValueError(f"{name}: shape {tuple(target.shape)} in the reference, {tuple(value.shape)} in ours")
        target.copy_(value)
