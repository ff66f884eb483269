"""Segmentation metrics: a 2x2 confusion matrix (background, aircraft) gives mIoU (Jaccard,
macro over both classes) and Dice (aircraft class); Mask R-CNN's detections give COCO AP@[.5:.95]
for masks (segm) and boxes (bbox) through pycocotools, over every gathered test tile."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from torch import nn


def predicted_class(output: torch.Tensor) -> torch.Tensor:
    """Per-pixel class 0/1 from 2-channel logits (FCN, DeepLabV3) or 1-channel logits (UNet)."""
    return output.argmax(1) if output.shape[1] == 2 else (output[:, 0] > 0).long()


def confusion(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[[TN, FP], [FN, TP]] as a 2x2 tensor (rows: truth, columns: prediction)."""
    return torch.bincount((target.reshape(-1) * 2 + pred.reshape(-1)).long(), minlength=4).reshape(2, 2)


def miou_dice(cm) -> tuple:
    """(mIoU over both classes, Dice of the aircraft class) of a confusion matrix (tensor or array)."""
    tn, fp, fn, tp = cm[0, 0], cm[0, 1], cm[1, 0], cm[1, 1]
    iou_plane = tp / (tp + fp + fn).clip(min=1)
    iou_ground = tn / (tn + fp + fn).clip(min=1)
    return (iou_plane + iou_ground) / 2, 2 * tp / (2 * tp + fp + fn).clip(min=1)


def segmentation_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The seed's BCE-with-logits on the one-hot mask (2 channels) or the binary mask (UNet)."""
    if output.shape[1] == 1:
        return nn.functional.binary_cross_entropy_with_logits(output[:, 0], target.to(output.dtype))
    onehot = torch.stack([target == 0, target == 1], 1).to(output.dtype)  # no host sync: CUDA-graph safe
    return nn.functional.binary_cross_entropy_with_logits(output, onehot)


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def coco_records(prediction: dict, target: dict) -> tuple[dict, list[dict], list[dict]]:
    """One tile's COCO image entry, its ground-truth annotations and its detections (masks at 0.5)."""
    image_id = int(target["image_id"])
    gt_masks = target["masks"].cpu().numpy().astype(bool)
    h, w = gt_masks.shape[1:] if len(gt_masks) else prediction["masks"].shape[-2:]
    image = {"id": image_id, "height": int(h), "width": int(w)}
    gts = []
    for m, box in zip(gt_masks, target["boxes"].cpu().numpy()):
        x0, y0, x1, y1 = box.tolist()
        gts.append({"image_id": image_id, "category_id": 1, "segmentation": _rle(m), "area": float(m.sum()),
                    "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0})  # fmt: skip
    dets = []
    masks = (prediction["masks"][:, 0] > 0.5).cpu().numpy()
    for m, box, score in zip(
        masks, prediction["boxes"].float().cpu().numpy(), prediction["scores"].float().cpu().numpy()
    ):
        x0, y0, x1, y1 = box.tolist()
        dets.append({"image_id": image_id, "category_id": 1, "segmentation": _rle(m),
                     "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)})  # fmt: skip
    return image, gts, dets


def coco_ap(images: list[dict], gts: list[dict], dets: list[dict]) -> dict[str, float]:
    """COCO AP@[.5:.95] and AP@.5 for masks and boxes; 0 where nothing was detected."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    for i, ann in enumerate(gts, 1):
        ann["id"] = i
    out = {"segm_ap": 0.0, "segm_ap50": 0.0, "bbox_ap": 0.0, "bbox_ap50": 0.0}
    if not dets or not gts:
        return out
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = COCO()
        truth.dataset = {"images": images, "annotations": gts, "categories": [{"id": 1, "name": "aircraft"}]}
        truth.createIndex()
        for kind in ("segm", "bbox"):
            # loadRes takes boxes from "bbox" when present, else from the masks
            results = [{k: v for k, v in d.items() if k != ("bbox" if kind == "segm" else "segmentation")}
                       for d in dets]  # fmt: skip
            evaluation = COCOeval(truth, truth.loadRes(results), kind)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
            out[f"{kind}_ap"], out[f"{kind}_ap50"] = (max(float(v), 0.0) for v in evaluation.stats[:2])
    return out
