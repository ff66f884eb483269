"""Photos in: JPEG decoding, the seed's transforms, normalisation statistics, and sharded loaders.

Decoding and augmentation run in the DataLoader's workers (`--workers N`), so the runner's data-wait
phase shows whether they keep up with the training step. Geometric transforms work on the decoded
uint8 photo (cheaper than on floats); it is then scaled to [0, 1] and normalised.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms import v2

from mlscale.errors import UserError

CROP = 0.8  # crops are this share of the resized photo, as in the original


def decode(path: str, origin: str) -> torch.Tensor:
    """The photo at `path` as uint8 (3, H, W); `origin` says which CSV row named it."""
    try:
        return decode_jpeg(read_file(path), mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        reason = re.sub(r"^.*\.cpp:\d+,\s*", "", reason)  # torchvision prefixes its source location
        raise UserError(f"{path} ({origin}): not a readable JPEG ({reason})") from None


@dataclass
class Normalisation:
    """What the model's inputs depend on, kept beside its weights: the original's sizes (resize to
    (S, S x aspect), crop to 0.8 of that, int() as np.int32 does) and the channel mean and std."""

    input_size: int
    aspect: float  # W / H of the first photo of pairs.csv
    mean: list[float]
    std: list[float]

    @property
    def resize(self) -> list[int]:
        return [self.input_size, int(self.input_size * self.aspect)]

    @property
    def crop(self) -> list[int]:
        return [int(self.input_size * CROP), int(self.input_size * CROP * self.aspect)]

    def transforms(self, augment: bool) -> v2.Compose:
        """train (augment): resize, flip, rotate within 10 degrees, random crop; eval: resize, centre crop."""
        steps: list = [v2.Resize(self.resize, antialias=True)]
        if augment:
            steps += [v2.RandomHorizontalFlip(), v2.RandomRotation(10), v2.RandomCrop(self.crop)]
        else:
            steps += [v2.CenterCrop(self.crop)]
        return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)])

    def meta(self) -> dict:
        return {"input_size": self.input_size, "aspect": float(self.aspect), "mean": [float(m) for m in self.mean],
                "std": [float(s) for s in self.std], "resize_shape": self.resize, "input_shape": self.crop}  # fmt: skip

    @classmethod
    def from_meta(cls, meta: dict) -> Normalisation:
        return cls(int(meta["input_size"]), float(meta["aspect"]), list(meta["mean"]), list(meta["std"]))


def channel_stats(paths: list[str], origins: list[str], comm) -> tuple[list[float], list[float]]:
    """Mean over photos of each photo's channel mean and std at full resolution (the original's
    estimate); the photos are shared out over the ranks and the sums reduced (collective)."""
    sums = np.zeros(7)
    for path, origin in zip(paths[comm.rank :: comm.size], origins[comm.rank :: comm.size]):
        image = decode(path, origin).float() / 255
        sums += np.concatenate([image.mean((1, 2)).numpy(), image.std((1, 2)).numpy(), [1.0]])
    total = comm.allreduce(sums, "sum")
    return (total[:3] / total[6]).tolist(), (total[3:6] / total[6]).tolist()


def transformed(transform, image: torch.Tensor) -> torch.Tensor:
    """`transform(image)` on one thread. Per-photo operations are too small to share out, and with
    --workers 0 the training process's threads would: on a busy 2-core machine that made the
    augmentation 20-80x slower (benchmarks/flow_rank_loading.py). Workers already run on one."""
    threads = torch.get_num_threads()
    if threads == 1:
        return transform(image)
    torch.set_num_threads(1)
    try:
        return transform(image)
    finally:
        torch.set_num_threads(threads)


class PairDataset(Dataset):
    """(left, right, target, row): target = (label + 1) / 2; row is the pair's position in pairs.csv."""

    def __init__(self, pairs: pd.DataFrame, images_dir: Path, csv: Path, transform):
        self.files = [[str(images_dir / f) for f in pairs[f"filename_{n}"]] for n in (1, 2)]
        self.targets = torch.tensor(((pairs["label"].to_numpy() + 1) / 2), dtype=torch.float32)
        self.rows = pairs.index.to_numpy()
        self.csv, self.transform = csv, transform

    def __len__(self) -> int:
        return len(self.rows)

    def side(self, i: int, n: int) -> torch.Tensor:
        origin = f"{self.csv} row {self.rows[i] + 1}, filename_{n}"
        return transformed(self.transform, decode(self.files[n - 1][i], origin))

    def __getitem__(self, i: int):
        return self.side(i, 1), self.side(i, 2), self.targets[i], int(self.rows[i])


class ImageDataset(Dataset):
    """(photo, row): row is the photo's position in images.csv."""

    def __init__(self, images: pd.DataFrame, images_dir: Path, csv: Path, transform):
        self.files = [str(images_dir / f) for f in images["filename"]]
        self.rows = images.index.to_numpy()
        self.csv, self.transform = csv, transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        photo = decode(self.files[i], f"{self.csv} row {self.rows[i] + 1}")
        return transformed(self.transform, photo), int(self.rows[i])


def _one_line(batches: Iterator) -> Iterator:
    """A UserError raised in a worker arrives with the worker's traceback in its message: keep its
    last line, the error itself."""
    try:
        yield from batches
    except UserError as err:
        last = str(err).strip().splitlines()[-1]
        raise UserError(last.split("UserError: ", 1)[-1]) from None


class EpochLoader:
    """A DataLoader over this rank's shard (DistributedSampler); each pass over it is the next epoch
    of the sampler, so every epoch is shuffled anew and identically on every rank."""

    def __init__(self, dataset: Dataset, ctx, batch: int, shuffle: bool, workers: int, seed: int):
        self.sampler = DistributedSampler(dataset, num_replicas=ctx.size, rank=ctx.rank, shuffle=shuffle, seed=seed)
        self.loader = DataLoader(dataset, batch_size=batch, sampler=self.sampler, drop_last=shuffle,
                                 num_workers=workers, persistent_workers=workers > 0,
                                 generator=torch.Generator().manual_seed(seed + ctx.rank))  # fmt: skip
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        return _one_line(iter(self.loader))
