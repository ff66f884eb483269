"""rareplanes' metrics and batching pieces, on small hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlscale.workloads.rareplanes.data import even_batches, instance_target
from mlscale.workloads.rareplanes.metrics import coco_ap, coco_records, confusion, miou_dice


def test_miou_and_dice_from_the_confusion_matrix():
    truth = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 1]])
    cm = confusion(pred, truth)
    assert cm.tolist() == [[3, 1], [1, 3]]
    miou, dice = miou_dice(cm.numpy())
    assert miou == pytest.approx((3 / 5 + 3 / 5) / 2) and dice == pytest.approx(6 / 8)


def _prediction(masks: torch.Tensor, scores) -> dict:
    target = instance_target(masks, 0)
    return {"masks": target["masks"][:, None].float(), "boxes": target["boxes"], "scores": torch.tensor(scores)}


def test_coco_ap_of_perfect_and_of_missing_detections():
    ids = torch.zeros(32, 32, dtype=torch.uint8)
    ids[2:10, 3:12], ids[15:30, 16:20] = 1, 2
    target = instance_target(ids, 7)
    assert target["boxes"].tolist() == [[3.0, 2.0, 11.0, 9.0], [16.0, 15.0, 19.0, 29.0]]
    assert int(target["image_id"]) == 7 and target["labels"].tolist() == [1, 1]
    image, gts, dets = coco_records(_prediction(ids, [0.9, 0.8]), target)
    perfect = coco_ap([image], gts, dets)
    assert perfect["segm_ap"] == pytest.approx(1.0) and perfect["bbox_ap50"] == pytest.approx(1.0)
    assert coco_ap([image], gts, [])["segm_ap"] == 0.0
    half = ids.clone()
    half[15:30, 16:20] = 0  # one aircraft found, one missed
    image, _, dets = coco_records(_prediction(half, [0.9]), target)
    assert 0.4 < coco_ap([image], gts, dets)["segm_ap"] < 0.6


@pytest.mark.parametrize("n,size,batch", [(17, 2, 4), (18, 2, 4), (5, 2, 4), (100, 3, 8), (9, 1, 4)])
def test_every_rank_takes_the_same_number_of_evaluation_batches(n, size, batch):
    shards = [even_batches(n, r, size, batch) for r in range(size)]
    assert len({len(s) for s in shards}) == 1  # the same number of steps on every rank
    assert sum(len(b) for s in shards for b in s) == n  # every tile once
    assert max(len(b) for s in shards for b in s) <= batch
    for r, s in enumerate(shards):
        assert np.concatenate(s).tolist() == list(range(len(range(r, n, size))))
