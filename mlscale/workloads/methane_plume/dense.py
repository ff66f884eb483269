"""Dense evaluation of a tile classifier: the classifier's output for every tile origin in one pass.

The seed's CNN pipeline classifies one T x T tile per pixel. A convolutional trunk computes the
same features for overlapping tiles over and over; converting it to a fully convolutional net
(FCN) computes each feature once. The FCN's output has the trunk's stride (32 for GoogLeNet), so
Long et al. shift the input over all 32 x 32 offsets and stitch the outputs together.

This module does that shift-and-stitch hierarchically, at every strided layer instead of only at
the input: each stride-s layer is evaluated at stride 1 (reading the same window it would have
read for every possible offset), and its s x s phases are moved into the batch dimension
(`space_to_batch`). Later layers then run unchanged on each phase, at their original resolution;
a final `batch_to_space` per strided layer interleaves the phases back into a dense map. This is
the "filter rarefaction" / à-trous equivalence (dilated convolutions, computed as ordinary ones
on subsampled phases), and it shares all the work that 1024 separate shifted passes would repeat.

The classifier head becomes the tile-sized pooling of the FCN: the fc layer as a 1x1 convolution
(applied first: fc and averaging commute), then an F x F average over the final feature positions
a tile covers (F = 8 for a 256 tile in GoogLeNet), then the softmax.

For a trunk without padding (`ValidTileNet`) every dense output equals the tile CNN's output for
that tile exactly (up to float rounding): that is the `exact` method. For GoogLeNet, whose
convolutions zero-pad at tile borders and whose pools use ceil mode, the dense map approximates
the per-tile CNN (the `fcn` method): inside the flightline the FCN sees real neighbouring pixels
where the tile CNN saw zero padding.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def space_to_batch(x: torch.Tensor, s: int) -> torch.Tensor:
    """(N, C, H, W) with H, W divisible by s -> (s*s*N, C, H/s, W/s); batch index (p*s + q)*N + n holds
    the pixels at rows = p (mod s), cols = q (mod s). Works in NHWC order and returns a channels_last
    tensor (one copy, and the convolutions that follow want channels_last)."""
    n, c, h, w = x.shape
    x = x.permute(0, 2, 3, 1).reshape(n, h // s, s, w // s, s, c).permute(2, 4, 0, 1, 3, 5)
    return x.reshape(s * s * n, h // s, w // s, c).permute(0, 3, 1, 2)


def batch_to_space(x: torch.Tensor, s: int) -> torch.Tensor:
    """Inverse of `space_to_batch`."""
    b, c, h, w = x.shape
    n = b // (s * s)
    x = x.permute(0, 2, 3, 1).reshape(s, s, n, h, w, c).permute(2, 3, 0, 4, 1, 5)
    return x.reshape(n, h * s, w * s, c).permute(0, 3, 1, 2)


def prepare_for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy for fast inference with the same outputs: BatchNorm folded into the preceding
    convolution, channels_last (max pooling is several times faster in it on CPU). Used by every
    method alike, so that the comparison between methods is fair."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        children = list(parent.named_children())
        for (name, child), (next_name, nxt) in zip(children, children[1:]):
            if isinstance(child, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
                setattr(parent, name, fuse_conv_bn_eval(child, nxt))
                setattr(parent, next_name, nn.Identity())
    return model.to(memory_format=torch.channels_last)


def _pad_to_multiple(x: torch.Tensor, s: int, value: float = 0.0) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % s, 0, -h % s), value=value) if (h % s or w % s) else x


def _chunks(parts: list[torch.Tensor], size: int) -> list[torch.Tensor]:
    """`torch.cat(parts).split(size)` without concatenating all of them: a chunk within one part is a
    view of it; only a chunk that spans parts is copied."""
    chunks, pending, have = [], [], 0
    for part in parts:
        while len(part):
            take = part[: size - have]
            part = part[len(take) :]
            pending.append(take)
            have += len(take)
            if have == size:
                chunks.append(pending[0] if len(pending) == 1 else torch.cat(pending))
                pending, have = [], 0
    if pending:
        chunks.append(pending[0] if len(pending) == 1 else torch.cat(pending))
    return chunks


def _pair(v) -> int:
    v = v if isinstance(v, (tuple, list)) else (v, v)
    if v[0] != v[1]:
        raise ValueError(f"only square kernels/strides are supported, got {v}")
    return int(v[0])


class Strided(nn.Module):
    """A stride-s layer made dense: output j reads the window that starts at j - padding (as the
    strided layer's output j/s would), for every j; then the s x s phases go to the batch."""

    def __init__(self, layer: nn.Module, core: nn.Module):
        super().__init__()
        self.kernel, self.stride, self.padding = _pair(core.kernel_size), _pair(core.stride), _pair(core.padding)
        self.is_max = isinstance(core, nn.MaxPool2d)
        self.pad_value = float("-inf") if self.is_max else 0.0
        self.layer = copy.deepcopy(layer)
        inner = self.layer if layer is core else next(m for m in self.layer.modules() if type(m) is type(core))
        inner.stride, inner.padding = (1, 1), (0, 0)
        if hasattr(inner, "ceil_mode"):
            inner.ceil_mode = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.phases(x))

    def phases(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The s x s phases of the dense output, each (N, C, H/s, W/s): phase p*s + q holds output rows
        p::s, cols q::s (`forward` is their concatenation, the `space_to_batch` order)."""
        s, k, p = self.stride, self.kernel, self.padding
        if self.is_max and self._pools_by_phase(x):
            return [self._pool_phase(x, a, b) for a in range(s) for b in range(s)]
        x = F.pad(x, (p, k - 1 - p, p, k - 1 - p), value=self.pad_value)
        y = F.max_pool2d(x, k, stride=1) if self.is_max else self.layer(x)
        return list(space_to_batch(_pad_to_multiple(y, s), s).split(x.shape[0]))

    def _phase_padding(self, a: int) -> tuple[int, int]:
        """max_pool2d's own (-inf) padding that makes its stride-s window i + shift start where the dense
        output row s*i + a reads (row s*i + a - padding), and the shift (>= 0)."""
        s, p = self.stride, self.padding
        pad = p - a if a <= p else (p - a) % s
        return pad, (a - p + pad) // s

    def _pools_by_phase(self, x: torch.Tensor) -> bool:
        """Each phase can be pooled straight from x at stride s (no -inf padded copy of x, no stride-1 map
        and no phase copy of it): the padding each phase needs is within what max_pool2d allows, and its
        ceil-mode output reaches the last window the phase needs."""
        s, k = self.stride, self.kernel
        for size in x.shape[-2:]:
            if size % s:
                return False
            for a in range(s):
                pad, shift = self._phase_padding(a)
                out = (size + 2 * pad - k + s - 1) // s + 1  # max_pool2d's ceil-mode output size
                out -= (out - 1) * s >= size + pad
                if pad > k // 2 or out < shift + size // s:
                    return False
        return True

    def _pool_phase(self, x: torch.Tensor, a: int, b: int) -> torch.Tensor:
        s, k = self.stride, self.kernel
        (pa, sa), (pb, sb) = self._phase_padding(a), self._phase_padding(b)
        # ceil_mode keeps the last windows, which run past x's end (they read -inf there, as the dense
        # output's last rows do): every needed window starts inside x.
        y = F.max_pool2d(x, k, s, padding=(pa, pb), ceil_mode=True)
        y = y[..., sa : sa + x.shape[-2] // s, sb : sb + x.shape[-1] // s]
        # A phase cut out of the pooled map is a strided view: give the layers after it the channels_last
        # layout they are prepared for (the copy is the size of the phase, as space_to_batch's was).
        return y.contiguous(memory_format=torch.channels_last)


class TilePoolHead(nn.Module):
    """The classifier head as an FCN: fc as a 1x1 conv, an F x F average (one tile's final positions),
    softmax; returns the probability of class 1 at every position (top-left anchored)."""

    def __init__(self, fc: nn.Linear, pool: int):
        super().__init__()
        self.pool = pool
        self.conv = nn.Conv2d(fc.in_features, fc.out_features, 1)
        with torch.no_grad():
            self.conv.weight.copy_(fc.weight[:, :, None, None])
            self.conv.bias.copy_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.conv(x)
        logits = F.avg_pool2d(F.pad(logits, (0, self.pool - 1, 0, self.pool - 1)), self.pool, stride=1)
        return torch.softmax(logits, dim=1)[:, 1:2]


def _strided_core(module: nn.Module) -> nn.Module | None:
    """The conv/pool that gives `module` a stride > 1 (itself, or the conv inside a conv-bn-relu block)."""
    candidates = (
        [module]
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
        else [m for m in module.children() if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]
    )
    for m in candidates:
        if _pair(m.stride) > 1:
            return m
    return None


class DenseClassifier(nn.Module):
    """A tile classifier's trunk (a list of layers) plus its fc, evaluated densely.

    `forward(x)` takes (N, 1, H, W) and returns (N, 1, H', W') plume probabilities, where output
    (r, c) is the tile classifier's answer for the tile whose top-left corner is (r, c); rows and
    columns beyond H - T, W - T are padding and must be cropped by the caller.
    `max_positions` bounds the input positions one forward covers at every level (phases are processed
    in chunks): a chunk of stride-s phases of h x w holds at most max_positions / (s*s*h*w) of them, the
    work a batch of max_positions / T^2 tiles does at that level. It does not change the result. Keeping
    deep levels' chunks that small matters on a CPU: their activations then stay in cache, as a tile
    batch's do (one chunk of every phase at once ran at half the speed per position).
    """

    def __init__(self, trunk: list[nn.Module], fc: nn.Linear, tile_size: int, max_positions: int = 1 << 18):
        super().__init__()
        with torch.no_grad():
            was_training = [m.training for m in trunk]
            for m in trunk:
                m.eval()
            probe = nn.Sequential(*trunk)(torch.zeros(1, 1, tile_size, tile_size, device=fc.weight.device))
            for m, mode in zip(trunk, was_training):
                m.train(mode)
        if probe.shape[-1] != probe.shape[-2]:
            raise ValueError(f"tile {tile_size} gives a non-square final map {tuple(probe.shape[-2:])}")
        stages: list[nn.Module] = []
        self.strides: list[int] = []
        for layer in trunk:
            core = _strided_core(layer)
            if core is None:
                stages.append(layer)
                self.strides.append(1)
            else:
                stages.append(Strided(layer, core))
                self.strides.append(_pair(core.stride))
        self.stages = nn.ModuleList(stages)
        self.head = TilePoolHead(fc, int(probe.shape[-1]))
        self.tile_size = tile_size
        self.max_positions = max_positions
        self.total_stride = 1
        for s in self.strides:
            self.total_stride *= s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return self._run(_pad_to_multiple(x, self.total_stride), 0, 1)[..., :h, :w]

    def _run(self, x: torch.Tensor, i: int, stride: int) -> torch.Tensor:
        """Stages i.. on x (N, C, H, W), whose positions are `stride` input pixels apart; returns the dense
        (N, 1, H, W) map of x's own images."""
        while i < len(self.stages) and self.strides[i] == 1:
            x = self.stages[i](x)
            i += 1
        if i == len(self.stages):
            return self.head(x)
        phases = self.stages[i].phases(x)
        stride *= self.strides[i]
        # Each call returns dense maps in its input's batch order, so chunks concatenate back in order
        # and the phases of this level are interleaved here, not after all levels.
        per_chunk = max(1, self.max_positions // (stride * stride * phases[0].shape[-2] * phases[0].shape[-1]))
        out = torch.cat([self._run(chunk, i + 1, stride) for chunk in _chunks(phases, per_chunk)])
        return batch_to_space(out, self.strides[i])


def is_padding_free(trunk: list[nn.Module]) -> bool:
    """True when no conv/pool in the trunk pads or uses ceil mode: dense evaluation is then exact."""
    for layer in trunk:
        for m in layer.modules():
            if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
                if _pair(m.padding) != 0 or getattr(m, "ceil_mode", False):
                    return False
    return True
