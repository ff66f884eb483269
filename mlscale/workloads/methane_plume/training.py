"""Training pieces shared by the methane-plume workload and `mlscale plume train`: the tile data set,
the class-weighted loss (with GoogLeNet's aux heads), and the best-F1 decision threshold."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlscale.errors import UserError
from mlscale.workloads.methane_plume.saliency import standardise
from mlscale.workloads.methane_plume.synth import TILES_FORMAT

AUX_WEIGHT = 0.3  # torchvision's / the GoogLeNet paper's weight of each aux head


def read_labels(path: str | os.PathLike, split: str) -> np.ndarray:
    import h5py

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such tiles file (write one with `mlscale data methane-plume`)")
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("format") != TILES_FORMAT:
                raise UserError(f"{path}: not a plume tiles file (format attribute is not {TILES_FORMAT!r})")
            if split not in h5 or "ch4" not in h5[split] or "label" not in h5[split]:
                raise UserError(f"{path}: no {split}/ch4 and {split}/label datasets")
            return h5[split]["label"][:]
    except OSError as err:
        raise UserError(f"{path}: not an HDF5 file ({err})") from None


def read_geometry(path: str | os.PathLike) -> tuple[int, int]:
    """(tile size, context px) of a tiles file that `read_labels` accepted."""
    import h5py

    with h5py.File(path, "r") as h5:
        return int(h5.attrs["tile_size"]), int(h5.attrs.get("context", 0))


def check_dense_config(cfg) -> None:
    """One-line errors for `--dense-consistency` settings that cannot work, before any training."""
    flag = f"--dense-consistency {cfg.dense_consistency:g}"
    if cfg.arch != "googlenet":
        raise UserError(f"{flag}: trains GoogLeNet for --method fcn; --arch {cfg.arch} needs no such training")
    if not cfg.tiles:
        raise UserError(f"{flag}: --tiles H5 is needed (see `mlscale data methane-plume --context 64`)")
    read_labels(cfg.tiles, "train")
    size, ring = read_geometry(cfg.tiles)
    context = cfg.context or ring
    if ring == 0:
        raise UserError(
            f"{cfg.tiles}: its tiles carry no context ring, which {flag} needs; "
            "write them with `mlscale data methane-plume --context 64`"
        )
    if context % 32 or context < 0 or context > ring:
        raise UserError(f"--context {context}: must be a multiple of 32 of at most the tiles' {ring} px of context")
    if not 0 < cfg.dense_share <= 1:
        raise UserError(f"--dense-share {cfg.dense_share:g}: must be within (0, 1]")
    if cfg.dense_warmup < 0 or cfg.dense_clip < 0:
        raise UserError("--dense-warmup and --dense-clip must not be negative")


class TileDataset(torch.utils.data.Dataset):
    """(1, T, T) standardised CH4 tiles and their labels, read lazily from tiles.h5; `indices` selects
    this rank's share. With `context` C > 0, the (1, T + 2C, T + 2C) crop with C px of the file's ring of
    context instead (the tile at its centre). Training tiles are flipped/rotated at random (plumes blow any way;
    the same turn for the ring, so the tile stays at the centre)."""

    def __init__(
        self,
        path: str | os.PathLike,
        split: str,
        preset: str,
        indices: np.ndarray | None = None,
        augment: bool = False,
        seed: int = 0,
        context: int = 0,
    ):
        self.path, self.split, self.preset, self.augment = str(path), split, preset, augment
        self.labels = read_labels(path, split)
        size, ring = read_geometry(path)
        if context > ring:
            raise UserError(f"{path}: its tiles carry {ring} px of context, fewer than the {context} asked for")
        self.window = slice(ring - context, ring + size + context)
        self.indices = np.arange(len(self.labels)) if indices is None else np.asarray(indices)
        self.rng = np.random.default_rng(seed)
        self._h5 = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        import h5py

        if self._h5 is None:  # opened per process (DataLoader workers fork)
            self._h5 = h5py.File(self.path, "r")
        j = int(self.indices[i])
        raw = self._h5[self.split]["ch4"][j, self.window, self.window]
        if not np.isfinite(raw).all():  # one NaN tile turns the loss NaN for good, and the run still ends "ok"
            raise UserError(f"{self.path}: {self.split}/ch4 tile {j} holds NaN or infinite values")
        tile = standardise(raw, self.preset)
        if self.augment:
            tile = np.rot90(tile, int(self.rng.integers(4)))
            if self.rng.random() < 0.5:
                tile = tile[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(tile))[None], int(self.labels[j])


class TurnedBatches:
    """A DataLoader collate_fn: the default collate, then one random quarter turn (and a flip half the time)
    of the whole batch, in place of TileDataset's turn per tile. Training for the dense form turns by batch,
    as the research recipe did: a turn per tile cost it about 0.03 of correlation
    (docs/notes/methane-plume-history.md)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, items):
        x, y = torch.utils.data.default_collate(items)
        x = torch.rot90(x, int(self.rng.integers(4)), (-2, -1))
        if self.rng.random() < 0.5:
            x = x.flip(-1)
        return x.contiguous(), y


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Inverse class frequency, normalised so that a balanced set gets weight 1 per class."""
    counts = np.bincount(labels.astype(int), minlength=2).astype(np.float64)
    counts[counts == 0] = 1
    return torch.tensor(len(labels) / (2 * counts), dtype=torch.float32)


def plume_loss(output, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Class-weighted cross-entropy; GoogLeNet's aux heads (train mode) add AUX_WEIGHT each."""
    weights = weights.to(labels.device)
    if hasattr(output, "logits"):
        loss = F.cross_entropy(output.logits, labels, weight=weights)
        for aux in (output.aux_logits1, output.aux_logits2):
            if aux is not None:
                loss = loss + AUX_WEIGHT * F.cross_entropy(aux, labels, weight=weights)
        return loss
    return F.cross_entropy(output, labels, weight=weights)


def plume_probability(output) -> torch.Tensor:
    logits = output.logits if hasattr(output, "logits") else output
    return torch.softmax(logits.float(), dim=1)[:, 1]


def best_f1_threshold(probs: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """The decision threshold with the highest F1 on (probs, labels), with its precision and recall."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels).astype(bool)
    if labels.sum() == 0 or len(probs) == 0:
        return {"threshold": None, "f1": None, "precision": None, "recall": None}
    order = np.argsort(-probs, kind="stable")
    p, y = probs[order], labels[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[p[1:] != p[:-1], True]  # a threshold takes all tied scores at once
    tp, fp, p = tp[last], fp[last], p[last]
    precision = tp / (tp + fp)
    recall = tp / labels.sum()
    f1 = np.where(tp > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    k = int(np.argmax(f1))
    return {"threshold": float(p[k]), "f1": float(f1[k]), "precision": float(precision[k]), "recall": float(recall[k])}
