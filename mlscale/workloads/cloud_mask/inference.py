"""Inference as the seed does it, framework-neutral: from a raw product, overlapping patches at
stride P - 2B with SAME padding (tf.image.extract_patches' rule: the padding is split, the smaller
half on top/left), each prediction cropped by B pixels per side, stitched, and centre-cropped back
to the image; one `<product>.h5` per product with a `mask` dataset (1, H, W, 1) of cloud
probabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlscale.errors import UserError
from mlscale.workloads.cloud_mask.pipeline import normalise
from mlscale.workloads.cloud_mask.slstr import find_products, read_scene


@dataclass
class Tiling:
    height: int
    width: int
    patch: int
    border: int

    @property
    def stride(self) -> int:
        return self.patch - 2 * self.border

    @property
    def counts(self) -> tuple[int, int]:
        return -(-self.height // self.stride), -(-self.width // self.stride)

    def pads(self, size: int, count: int) -> tuple[int, int]:
        total = max((count - 1) * self.stride + self.patch - size, 0)
        return total // 2, total - total // 2


def check_tiling(patch: int, border: int) -> None:
    if patch % 8 or patch < 16:
        raise UserError(f"--patch-size must be a multiple of 8 and at least 16, got {patch}")
    if not 0 <= border < patch // 4:
        raise UserError(f"--infer-border must be within [0, patch/4), got {border} for --patch-size {patch}")


def extract(image: np.ndarray, tiling: Tiling) -> np.ndarray:
    """(n, P, P, C) patches of an (H, W, C) image, row by row."""
    n_h, n_w = tiling.counts
    (top, bottom), (left, right) = tiling.pads(tiling.height, n_h), tiling.pads(tiling.width, n_w)
    padded = np.pad(image, ((top, bottom), (left, right), (0, 0)))
    s, p = tiling.stride, tiling.patch
    return np.stack([padded[i * s : i * s + p, j * s : j * s + p] for i in range(n_h) for j in range(n_w)])


def stitch(predictions: np.ndarray, tiling: Tiling) -> np.ndarray:
    """(H, W) map from (n, P, P) patch predictions: the centre of each, then the centre crop."""
    n_h, n_w = tiling.counts
    b, s = tiling.border, tiling.stride
    centres = predictions[:, b : b + s, b : b + s].reshape(n_h, n_w, s, s)
    full = centres.transpose(0, 2, 1, 3).reshape(n_h * s, n_w * s)
    top, left = (n_h * s - tiling.height) // 2, (n_w * s - tiling.width) // 2
    return full[top : top + tiling.height, left : left + tiling.width]


@dataclass
class ProductPatches:
    """One inference batch: every patch of one product (model input, channels last)."""

    name: str
    patches: object  # the framework's tensor: (n, 9, P, P) for torch, (n, P, P, 9) for TensorFlow
    tiling: Tiling


class ProductBatches:
    """This rank's products (every size-th, from its rank), one batch each."""

    def __init__(self, folder: str, rank: int, size: int, patch: int, border: int, *, channels_last: bool,
                 convert: Callable = lambda a: a):  # fmt: skip
        if not folder:
            raise UserError("cloud-mask: --products DIR (.SEN3 products) is needed for --mode inference")
        self.products = find_products(Path(folder))[rank::size]
        self.patch, self.border, self.channels_last, self.convert = patch, border, channels_last, convert

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self):
        for path in self.products:
            scene = read_scene(path)
            image = normalise(scene.refs, scene.bts)
            tiling = Tiling(image.shape[0], image.shape[1], self.patch, self.border)
            patches = extract(image, tiling)
            patches = patches if self.channels_last else np.ascontiguousarray(patches.transpose(0, 3, 1, 2))
            yield ProductPatches(scene.name, self.convert(patches), tiling)


def write_masks(out: Path, masks: dict[str, np.ndarray]) -> list[str]:
    """`<product>.h5` with `mask` (1, H, W, 1) float32 per product, each written atomically."""
    import h5py

    from mlscale.fileio import atomic_path

    out.mkdir(parents=True, exist_ok=True)
    for name, mask in sorted(masks.items()):
        with atomic_path(out / f"{name}.h5") as tmp, h5py.File(tmp, "w") as h5:
            h5.create_dataset("mask", data=mask[None, :, :, None].astype(np.float32))
    return sorted(masks)
