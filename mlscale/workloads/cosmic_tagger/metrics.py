"""CosmicTagger loss weighting and segmentation metrics.

Shapes: logits [B, C, P, H, W] (C = 3 classes: 0 background, 1 cosmic,
2 neutrino; P planes), labels [B, P, H, W] integer.

Loss: per-pixel cross entropy, weighted, normalised by the sum of the weights
per plane, summed over planes. Weightings:
- focal: w = mean over classes of onehot * (1 - softmax)^2, i.e. (1 - p_true)^2 / C,
  with no gradient through w;
- light: fixed class weights background 1, cosmic 1.5, neutrino 10;
- even: inverse class frequency in the plane (every present class weighs the same in total);
- none: w = 1.

Metrics (per plane, then averaged over planes), all batch means:
- accuracy: all pixels; non_bkg_accuracy: pixels labelled cosmic or neutrino;
  neutrino_accuracy: pixels labelled neutrino (1 when a batch's plane has none);
- cosmic_iou, neutrino_iou: per image, |pred & label| / |pred | label|, 1 when the
  union is empty, then the batch mean; miou: mean IoU of the three classes.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mlscale.workloads.cosmic_tagger.config import WEIGHTINGS

LIGHT_WEIGHTS = (1.0, 1.5, 10.0)
METRICS = ("accuracy", "non_bkg_accuracy", "neutrino_accuracy", "cosmic_iou", "neutrino_iou", "miou")
BACKGROUND, COSMIC, NEUTRINO = 0, 1, 2


def pixel_weights(logits: torch.Tensor, labels: torch.Tensor, weighting: str) -> torch.Tensor | None:
    """Weights [B, P, H, W] for the cross entropy, or None for uniform."""
    n_classes = logits.shape[1]
    if weighting == "none":
        return None
    if weighting == "focal":
        with torch.no_grad():
            p_true = torch.softmax(logits.float(), dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
            return (1.0 - p_true) ** 2 / n_classes
    if weighting == "light":
        table = torch.tensor(LIGHT_WEIGHTS, device=logits.device, dtype=torch.float32)
        return table[labels]
    if weighting == "even":
        # Class counts per plane over the batch.
        onehot = F.one_hot(labels, n_classes).float()  # [B, P, H, W, C]
        counts = onehot.sum(dim=(0, 2, 3))  # [P, C]
        per_class = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
        return (onehot * per_class[None, :, None, None, :]).sum(-1)
    raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, weighting: str = "focal") -> torch.Tensor:
    labels = labels.long()
    ce = F.cross_entropy(logits.float(), labels, reduction="none")  # [B, P, H, W]
    w = pixel_weights(logits, labels, weighting)
    if w is None:
        per_plane = ce.mean(dim=(0, 2, 3))
    else:
        per_plane = (w * ce).sum(dim=(0, 2, 3)) / w.sum(dim=(0, 2, 3)).clamp(min=1e-12)
    return per_plane.sum()


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, 1 where den is 0 (nothing to get wrong)."""
    return torch.where(den > 0, num / den.clamp(min=1), torch.ones_like(num))


def segmentation_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Batch-mean metrics as 0-d tensors: `<name>` (plane average) and `<name>_plane<p>`."""
    with torch.no_grad():
        return metrics_from_predictions(logits.argmax(dim=1), labels.long(), logits.shape[1])


def metrics_from_predictions(pred: torch.Tensor, labels: torch.Tensor, n_classes: int = 3) -> dict[str, torch.Tensor]:
    pred, labels = pred.long(), labels.long()
    correct = (pred == labels).float()
    dims = (0, 2, 3)  # sum over batch and pixels -> per plane
    non_bkg = (labels != BACKGROUND).float()
    neutrino = (labels == NEUTRINO).float()
    per_plane = {
        "accuracy": correct.mean(dim=dims),
        "non_bkg_accuracy": _ratio((correct * non_bkg).sum(dims), non_bkg.sum(dims)),
        "neutrino_accuracy": _ratio((correct * neutrino).sum(dims), neutrino.sum(dims)),
    }
    ious = []
    for cls in range(n_classes):
        p, t = pred == cls, labels == cls
        inter = (p & t).float().sum(dim=(2, 3))  # [B, P]
        union = (p | t).float().sum(dim=(2, 3))
        ious.append(_ratio(inter, union).mean(dim=0))  # per image, then the batch mean
    per_plane["cosmic_iou"] = ious[COSMIC]
    per_plane["neutrino_iou"] = ious[NEUTRINO]
    per_plane["miou"] = torch.stack(ious).mean(dim=0)
    out: dict[str, torch.Tensor] = {}
    for name in METRICS:
        values = per_plane[name]
        out[name] = values.mean()
        for p in range(values.shape[0]):
            out[f"{name}_plane{p}"] = values[p]
    return out
