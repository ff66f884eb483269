"""Tiles as batches: the semantic models get (images, binary masks), Mask R-CNN gets
(list of images, list of target dicts) -- boxes, labels, instance masks, image id -- which the
runner moves to the device as they are.

Augmentation follows the seed: rotation within 35 degrees, horizontal flip (0.5) and vertical
flip (0.1) for the semantic models, horizontal flip alone for Mask R-CNN (torchvision.transforms.v2
moves the mask with the image). FCN and DeepLabV3 inputs are normalised with mean and std 0.5, the
UNet's are divided by 255 only; Mask R-CNN normalises inside the model.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2

from mlscale.errors import UserError
from mlscale.workloads.rareplanes.config import IMAGES_TILED, MASKS_TILED
from mlscale.workloads.rareplanes.raw import read_png


def tile_files(folder: Path, masks: bool) -> list[tuple[Path, Path | None]]:
    """(image, mask) of every tile in `folder`/images_tiled (or, without masks, every PNG in
    `folder`), sorted by name; a missing mask is one error naming its tile."""
    images_dir = folder / IMAGES_TILED if masks or (folder / IMAGES_TILED).is_dir() else folder
    if not images_dir.is_dir():
        raise UserError(f"{images_dir}: no such directory (tile raw scenes with `mlscale rareplanes tile`)")
    files = []
    for image in sorted(images_dir.glob("*.png")):
        mask = folder / MASKS_TILED / f"{image.stem}_mask.png" if masks else None
        if mask is not None and not mask.is_file():
            raise UserError(f"{image}: no mask ({mask} does not exist)")
        files.append((image, mask))
    if not files:
        raise UserError(f"{images_dir}: no PNG tiles in it")
    return files


class Tiles(torch.utils.data.Dataset):
    """One rank's share of a split's tiles; `index` numbers tiles across the whole split."""

    def __init__(self, files, index: list[int], model: str, augment: bool):
        self.files, self.index, self.model = files, index, model
        if not augment:
            self.augment = None
        elif model == "maskrcnn":
            self.augment = v2.RandomHorizontalFlip(0.5)
        else:
            self.augment = v2.Compose([v2.RandomRotation(35), v2.RandomHorizontalFlip(0.5), v2.RandomVerticalFlip(0.1)])

    def __len__(self) -> int:
        return len(self.index)

    def image(self, i: int) -> torch.Tensor:
        path = self.files[self.index[i]][0]
        return torch.from_numpy(read_png(path, ("RGB", "RGBA"))[..., :3].copy()).permute(2, 0, 1)

    def scale(self, image: torch.Tensor) -> torch.Tensor:
        x = image.float() / 255
        return (x - 0.5) / 0.5 if self.model in ("fcn", "deeplabv3") else x

    def __getitem__(self, i: int):
        image = self.image(i)
        mask_path = self.files[self.index[i]][1]
        if mask_path is None:  # inference: the image and its number in the split
            return self.scale(image), self.index[i]
        ids = torch.from_numpy(read_png(mask_path, ("L",)).copy())
        if ids.shape != image.shape[1:]:
            raise UserError(
                f"{mask_path}: mask is {ids.shape[1]}x{ids.shape[0]}, its tile {image.shape[2]}x{image.shape[1]}"
            )
        image, ids = tv_tensors.Image(image), tv_tensors.Mask(ids[None])
        if self.augment:
            image, ids = self.augment(image, ids)
        image, ids = self.scale(image.as_subclass(torch.Tensor)), ids.as_subclass(torch.Tensor)[0]
        if self.model != "maskrcnn":
            return image, (ids > 0).long()
        return image, instance_target(ids, self.index[i])


def instance_target(ids: torch.Tensor, image_id: int) -> dict:
    """Mask R-CNN's target of one tile: a binary mask, box and label per instance id."""
    values = ids.unique()
    values = values[values > 0]
    masks = (ids[None] == values[:, None, None]).to(torch.uint8)
    boxes = masks_to_boxes(masks) if len(values) else torch.zeros((0, 4))
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # flips keep areas, but be sure
    return {"boxes": boxes[keep], "labels": torch.ones(int(keep.sum()), dtype=torch.int64),
            "masks": masks[keep], "image_id": torch.tensor(image_id)}  # fmt: skip


def collate_lists(batch):
    """Mask R-CNN's batch: images and targets as lists (tiles may hold any number of aircraft)."""
    images, rest = zip(*batch)
    return list(images), list(rest) if isinstance(rest[0], dict) else torch.tensor(rest)


def even_batches(n: int, rank: int, size: int, batch: int) -> list[list[int]]:
    """Positions in this rank's shard (tiles rank, rank + size, ...) grouped so that every rank
    takes the same number of batches of at most `batch`: an evaluation pass then sees every tile
    once, whatever the split's size (the runner steps all ranks alike)."""
    mine = len(range(rank, n, size))
    steps = max(1, math.ceil(math.ceil(n / size) / batch))
    return [part.tolist() for part in np.array_split(np.arange(mine), steps) if len(part)]


def loader(files, rank: int, size: int, model: str, batch: int, train: bool, augment: bool, workers: int, seed: int):
    """This rank's DataLoader over `files` (round robin shard); evaluation passes in even batches."""
    dataset = Tiles(files, list(range(rank, len(files), size)), model, augment and train)
    kwargs = {"collate_fn": collate_lists} if model == "maskrcnn" else {}
    if not train:
        return torch.utils.data.DataLoader(dataset, batch_sampler=even_batches(len(files), rank, size, batch),
                                           num_workers=workers, **kwargs)  # fmt: skip
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
                                       generator=torch.Generator().manual_seed(seed + rank), **kwargs)  # fmt: skip


def tile_shape(files) -> tuple[int, int]:
    return tuple(np.asarray(read_png(files[0][0], ("RGB", "RGBA"))).shape[:2])
