"""The seed's training pipeline on converted HDF5 files, framework-neutral (numpy; each framework
turns the batches into its tensors).

Per image: normalise (bts (x - 270) / 22, refs x - 0.5; channels refs then bts), centre-crop to
the largest multiple of the patch size (1200x1500 -> 1024x1280 at offsets (88, 110)), cut
non-overlapping patches (20 of 256x256). The label is bayes > 0. Files are split 80/20 with a
fixed seed, sharded per rank, read in a shuffled order with the patches of a few files
interleaved, and kept in memory after they are first read (the seed's tf.data cache), after
which every epoch shuffles all the rank's patches. Training drops the last partial batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from mlscale.errors import UserError

CHANNELS = 9  # refs S1-S6, then bts S7-S9
DATASETS = ("bts", "refs", "bayes")
INTERLEAVE = 4  # files whose patches are mixed while reading


def list_files(folder: str) -> list[Path]:
    if not folder:
        raise UserError("cloud-mask: --data DIR (converted HDF5, `mlscale cloud-mask convert`) is needed to train")
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"--data {folder}: no such folder")
    files = sorted(root.rglob("*.hdf"))
    if not files:
        raise UserError(f"--data {folder}: no .hdf files in it (convert products with `mlscale cloud-mask convert`)")
    return files


def split_files(files: list[Path], test_fraction: float, seed: int) -> dict[str, list[Path]]:
    """The 80/20 file split, identical on every rank (a fixed permutation)."""
    order = np.random.default_rng(seed).permutation(len(files))
    n_test = max(1, round(len(files) * test_fraction)) if len(files) > 1 else 0
    return {"test": sorted(files[i] for i in order[:n_test]), "train": sorted(files[i] for i in order[n_test:])}


def crop_box(shape: tuple[int, int], patch: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the centred crop that holds whole patches."""
    h, w = (shape[0] // patch) * patch, (shape[1] // patch) * patch
    if not h or not w:
        raise UserError(f"--patch-size {patch} is larger than the {shape[0]}x{shape[1]} images")
    return (shape[0] - h) // 2, (shape[1] - w) // 2, h, w


def normalise(refs: np.ndarray, bts: np.ndarray) -> np.ndarray:
    """(H, W, 9) float32 model input from reflectances and brightness temperatures."""
    return np.concatenate([refs - 0.5, (bts - 270.0) / 22.0], -1).astype(np.float32)


def image_shape(path: Path) -> tuple[int, int]:
    """The (H, W) of one converted file, checking that it has what training reads."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            missing = [d for d in DATASETS if d not in h5]
            if missing:
                raise UserError(f"{path}: no dataset {', '.join(missing)} (not a converted cloud-mask file)")
            shapes = {d: h5[d].shape for d in DATASETS}
    except OSError as err:
        raise UserError(f"{path}: not a readable HDF5 file ({err})") from None
    h, w = shapes["bts"][:2]
    want = {"bts": (h, w, 3), "refs": (h, w, 6), "bayes": (h, w, 1)}
    for name, shape in shapes.items():
        if tuple(shape) != want[name]:
            raise UserError(f"{path}: {name} is {shape}, expected {want[name]}")
    return h, w


def read_patches(path: Path, patch: int, channels_last: bool) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of one file: (n, P, P, 9) and (n, P, P, 1), or channels first."""
    import h5py

    with h5py.File(path, "r") as h5:
        top, left, h, w = crop_box(h5["bts"].shape[:2], patch)
        box = np.s_[top : top + h, left : left + w]
        x = normalise(h5["refs"][box], h5["bts"][box])
        y = (h5["bayes"][box] > 0).astype(np.float32)

    def cut(a: np.ndarray) -> np.ndarray:
        n_h, n_w = h // patch, w // patch
        c = a.shape[-1]
        tiles = a.reshape(n_h, patch, n_w, patch, c).transpose(0, 2, 1, 3, 4).reshape(-1, patch, patch, c)
        return np.ascontiguousarray(tiles if channels_last else tiles.transpose(0, 3, 1, 2))

    return cut(x), cut(y)


class PatchBatches:
    """One rank's batches of (inputs, labels), epoch after epoch. `len()` is known before reading:
    every file of a split has the same shape (checked when built)."""

    def __init__(self, files: list[Path], patch: int, batch: int, *, train: bool, cache: bool, seed: int,
                 channels_last: bool, convert: Callable = lambda a: a):  # fmt: skip
        self.files, self.patch, self.batch, self.train = files, patch, batch, train
        self.cache_on, self.channels_last, self.convert = cache, channels_last, convert
        self.rng = np.random.default_rng(seed)
        shapes = {f: image_shape(f) for f in files}
        if len(set(shapes.values())) > 1:
            first = files[0]
            odd = next(f for f in files if shapes[f] != shapes[first])
            raise UserError(f"{odd}: images are {shapes[odd]}, but {first} is {shapes[first]}; one size per data set")
        _, _, h, w = crop_box(shapes[files[0]], patch) if files else (0, 0, 0, 0)
        self.per_file = (h // patch) * (w // patch) if files else 0
        self.cached: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.bytes_read = 0

    @property
    def samples(self) -> int:
        return len(self.files) * self.per_file

    def __len__(self) -> int:
        n = self.samples
        return n // self.batch if self.train else -(-n // self.batch)

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i in self.cached:
            return self.cached[i]
        x, y = read_patches(self.files[i], self.patch, self.channels_last)
        self.bytes_read += x.nbytes + y.nbytes
        if self.cache_on:
            self.cached[i] = (x, y)
        return x, y

    def _emit(self, x: np.ndarray, y: np.ndarray) -> tuple:
        return self.convert(x), self.convert(y)

    def __iter__(self) -> Iterator[tuple]:
        order = self.rng.permutation(len(self.files)) if self.train else np.arange(len(self.files))
        if self.cache_on and len(self.cached) == len(self.files) and self.train:
            yield from self._from_cache()
            return
        xs, ys = [], []
        for start in range(0, len(order), INTERLEAVE):
            for i in order[start : start + INTERLEAVE]:
                x, y = self._load(int(i))
                xs.append(x)
                ys.append(y)
            x, y = np.concatenate(xs), np.concatenate(ys)
            if self.train:
                mix = self.rng.permutation(len(x))
                x, y = x[mix], y[mix]
            whole = len(x) // self.batch * self.batch
            for b in range(0, whole, self.batch):
                yield self._emit(x[b : b + self.batch], y[b : b + self.batch])
            xs, ys = [x[whole:]], [y[whole:]]
        if not self.train and len(xs[0]):
            yield self._emit(xs[0], ys[0])

    def _from_cache(self) -> Iterator[tuple]:
        """Every cached patch of the rank, shuffled as one set (the seed shuffles after its cache)."""
        index = [(f, k) for f in range(len(self.files)) for k in range(self.per_file)]
        order = self.rng.permutation(len(index))
        for b in range(0, len(order) // self.batch * self.batch, self.batch):
            picks = [index[j] for j in order[b : b + self.batch]]
            x = np.stack([self.cached[f][0][k] for f, k in picks])
            y = np.stack([self.cached[f][1][k] for f, k in picks])
            yield self._emit(x, y)
