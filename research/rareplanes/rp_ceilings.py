"""Metric ceilings of candidate synthetic RarePlanes sets, without training.

For each candidate (scene size, aircraft lengths, tile size) this writes scenes with the real
generator, tiles them with the real preprocessing, then measures what the models' output
representations allow when the prediction is otherwise perfect:

- FCN (output stride 8, logits upsampled bilinearly to the tile): mIoU (the workload's confusion
  matrix code) of stride-8 logits fitted to each tile's ground truth by gradient descent on BCE
  through the same upsampling ("fitted": what the output representation can express). "cell avg"
  (8x8 cell averages upsampled and thresholded at 0.5) is shown for comparison only: it is no
  ceiling, the trained FCN beat it on the old documented set (0.785 against 0.747);
- Mask R-CNN (28x28 box-aligned masks): every ground-truth instance resampled into its box with
  roi_align as torchvision builds its mask targets (roi_heads.project_masks_on_boxes), pasted back
  with paste_masks_in_image and thresholded at 0.5, boxes exact, scored by their own mask IoU ->
  COCO segm AP and AP50 (the workload's pycocotools code).

It also prints what drives training cost (tiles, pixels) and the objects' scale in pixels.
Run: python research/rareplanes/rp_ceilings.py  (about 2 minutes on one core).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import roi_align

from mlscale.workloads.rareplanes import metrics
from mlscale.workloads.rareplanes.data import instance_target
from mlscale.workloads.rareplanes.raw import find_scenes, instance_mask
from mlscale.workloads.rareplanes.synth import write_split
from mlscale.workloads.rareplanes.tiling import tiles

# name: (width, height, mean planes, min length, max length, tile, training scenes)
CANDIDATES = {
    "documented": (384, 216, 5, 24, 64, 96, 40),
    "x1.5": (576, 324, 5, 36, 96, 144, 18),
    "x2": (768, 432, 5, 48, 128, 192, 10),
    "x2 dense": (512, 288, 5, 48, 128, 128, 20),
    "chosen": (512, 288, 6, 48, 128, 128, 24),  # docs/rareplanes.md's documented set (training split)
    "x2.5 dense": (640, 360, 5, 60, 160, 160, 14),
    "x3": (1152, 648, 5, 72, 192, 288, 5),
}
STRIDE, MASK_SIZE = 8, 28  # FCN's output stride; Mask R-CNN's mask head resolution


def fcn_ceilings(binary: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Confusion matrices of two stride-8 predictions of tiles (N, H, W): the cell averages upsampled
    bilinearly (a floor of the ceiling), and stride-8 logits fitted to each tile by gradient descent
    on BCE through the same bilinear upsampling (the FCN's output representation, perfectly fitted)."""
    from torch.nn.functional import avg_pool2d, binary_cross_entropy_with_logits, interpolate

    x = binary[:, None].float()
    coarse = avg_pool2d(x, STRIDE, ceil_mode=True)
    up = lambda c: interpolate(c, size=x.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
    averaged = metrics.confusion((up(coarse) > 0.5).long(), binary.long())
    logits = torch.logit(coarse.clamp(0.02, 0.98)).mul(4).requires_grad_()
    optimizer = torch.optim.Adam([logits], lr=0.3)
    for _ in range(steps):
        optimizer.zero_grad()
        binary_cross_entropy_with_logits(up(logits), x).backward()
        optimizer.step()
    return averaged, metrics.confusion((up(logits.detach()) > 0).long(), binary.long())


def maskrcnn_ceiling(ids: torch.Tensor, image_id: int):
    """COCO records of ground-truth instances passed through 28x28 box-aligned masks."""
    target = instance_target(ids, image_id)
    boxes, masks = target["boxes"], target["masks"]
    rois = torch.cat([torch.arange(len(boxes), dtype=boxes.dtype)[:, None], boxes], 1)  # instance k from mask k
    small = roi_align(masks[:, None].float(), rois, (MASK_SIZE, MASK_SIZE), 1.0)  # as project_masks_on_boxes
    pasted = paste_masks_in_image(small, boxes, tuple(ids.shape))
    # scored by their IoU with the truth: the ranking a perfect scorer gives (equal scores would
    # mix good and poor masks and lower AP below what the masks themselves allow)
    hit, gt = pasted[:, 0] > 0.5, masks.bool()
    iou = (hit & gt).flatten(1).sum(1) / (hit | gt).flatten(1).sum(1).clamp(min=1)
    prediction = {"masks": pasted, "boxes": boxes, "scores": iou}
    return metrics.coco_records(prediction, target), [float(m.sum()) for m in masks]


def measure(name: str, spec, out: Path, seed: int, steps: int) -> dict:
    w, h, planes, lo, hi, tile, scenes = spec
    write_split(out, "c", scenes, np.random.default_rng(seed), w, h, planes, (lo, hi))
    binary, images, gts, dets, areas = [], [], [], [], []
    for scene in find_scenes(out):
        image, ids = instance_mask(scene)
        for _, _, tile_ids in tiles(image, ids, tile):
            t = torch.from_numpy(tile_ids.astype(np.int64))
            binary.append(t > 0)
            (img, g, d), a = maskrcnn_ceiling(t, len(images))
            images.append(img), gts.extend(g), dets.extend(d), areas.extend(a)
    averaged, fitted = fcn_ceilings(torch.stack(binary), steps)
    ap = metrics.coco_ap(images, gts, dets)
    areas = np.array(areas)
    n = len(images)
    return {
        "set": name,
        "scene": f"{w}x{h}",
        "lengths": f"{lo}-{hi}",
        "tile": tile,
        "scenes": scenes,
        "tiles": n,
        "Mpixels": n * tile * tile / 1e6,
        "plane px %": 100 * float(fitted[1].sum()) / float(fitted.sum()),
        "inst/tile": len(areas) / max(n, 1),
        "median area": float(np.median(areas)),
        "FCN mIoU (cell avg)": float(metrics.miou_dice(averaged.double())[0]),
        "FCN mIoU (fitted)": float(metrics.miou_dice(fitted.double())[0]),
        "segm AP": ap["segm_ap"],
        "segm AP50": ap["segm_ap50"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=200, help="gradient steps fitting the stride-8 logits")
    parser.add_argument("--only", nargs="*", help="candidate names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, spec in CANDIDATES.items():
        if not args.only or name in args.only:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(measure(name, spec, Path(tmp), args.seed, args.steps))
    print(tabulate(rows, headers="keys", floatfmt=".3g"))


if __name__ == "__main__":
    main()
