"""UResNet knobs, parameter counts, loss weightings and the seed's metrics."""

from __future__ import annotations

import pytest
import torch

from mlscale.workloads.cosmic_tagger.config import WEIGHTINGS
from mlscale.workloads.cosmic_tagger.metrics import metrics_from_predictions, pixel_weights, segmentation_loss
from mlscale.workloads.cosmic_tagger.model import UResNet, UResNetConfig


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_seed_configuration_size():
    # The seed's README: "with the default parameters and 12 initial filters, the model has
    # approximately 100M parameters" (no bottleneck: 3 x 384 channels at the deepest level).
    assert 95e6 < n_params(UResNet()) < 105e6
    # A 256-channel bottleneck at the deepest level shrinks it by an order of magnitude.
    assert n_params(UResNet(UResNetConfig(bottleneck_size=256))) < 12e6


@pytest.mark.parametrize(
    "knobs",
    [
        {},
        {"connections": "concat", "growth_rate": "additive"},
        {"downsampling": "max_pooling", "upsampling": "interpolation", "connections": "none"},
        {"share_weights": False, "residual": False, "batch_norm": False, "use_bias": False},
        {"bottleneck_size": 16},
    ],
)
def test_knobs_build_and_train(knobs):
    torch.manual_seed(0)
    cfg = UResNetConfig(n_initial_filters=4, network_depth=2, res_blocks_per_layer=1, res_blocks_deepest_layer=1,
                        res_blocks_final=1, **knobs)  # fmt: skip
    model = UResNet(cfg)
    x = torch.rand(2, 3, 16, 32) * 20
    out = model(x)
    assert out.shape == (2, 3, 3, 16, 32)  # [B, classes, planes, H, W]
    loss = segmentation_loss(out, torch.randint(0, 3, (2, 3, 16, 32)), "none")
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_shared_weights_treat_planes_alike_and_unshared_do_not():
    torch.manual_seed(0)
    small = dict(n_initial_filters=4, network_depth=1, res_blocks_per_layer=1, res_blocks_deepest_layer=0,
                 res_blocks_final=1, batch_norm=False)  # fmt: skip
    shared, own = UResNet(UResNetConfig(**small)), UResNet(UResNetConfig(share_weights=False, **small))
    assert n_params(own) > 2 * n_params(shared)
    x = torch.rand(1, 1, 8, 8).repeat(1, 3, 1, 1)  # the same image in every plane
    out = shared(x)
    assert torch.allclose(out[:, :, 0], out[:, :, 1]) and torch.allclose(out[:, :, 1], out[:, :, 2])
    out = own(x)
    assert not torch.allclose(out[:, :, 0], out[:, :, 1])


def test_image_size_must_divide_by_depth():
    with pytest.raises(ValueError, match="divide by 2\\*\\*network_depth"):
        UResNet(UResNetConfig(n_initial_filters=2, network_depth=3))(torch.zeros(1, 3, 12, 16))


def test_loss_weightings():
    torch.manual_seed(0)
    labels = torch.zeros(1, 3, 4, 4, dtype=torch.long)
    labels[0, :, 0, 0] = 2
    labels[0, :, 1, :2] = 1
    logits = torch.randn(1, 3, 3, 4, 4)
    light = pixel_weights(logits, labels, "light")
    assert light[0, 0, 0, 0] == 10 and light[0, 0, 1, 0] == 1.5 and light[0, 0, 3, 3] == 1
    even = pixel_weights(logits, labels, "even")
    # every present class carries the same total weight in each plane
    totals = [float(even[0, 0][labels[0, 0] == c].sum()) for c in range(3)]
    assert totals == pytest.approx([1.0, 1.0, 1.0])
    focal = pixel_weights(logits, labels, "focal")
    p_true = torch.softmax(logits, 1).gather(1, labels.unsqueeze(1)).squeeze(1)
    assert torch.allclose(focal, (1 - p_true) ** 2 / 3)
    confident = torch.nn.functional.one_hot(labels, 3).permute(0, 4, 1, 2, 3).float() * 20
    for w in WEIGHTINGS:
        assert float(segmentation_loss(confident, labels, w)) < 1e-6 < float(segmentation_loss(-confident, labels, w))


def test_metrics_per_plane_and_iou_conventions():
    labels = torch.zeros(2, 3, 4, 4, dtype=torch.long)
    labels[:, :, 0, :] = 1  # 4 cosmic pixels per plane
    labels[0, :, 1, 0] = 2  # a neutrino pixel in image 0 only
    pred = labels.clone()
    pred[:, 0, 0, :2] = 0  # plane 0 misses half the cosmic pixels
    m = metrics_from_predictions(pred, labels)
    assert float(m["cosmic_iou_plane0"]) == pytest.approx(0.5) and float(m["cosmic_iou_plane1"]) == 1.0
    assert float(m["cosmic_iou"]) == pytest.approx((0.5 + 1 + 1) / 3)
    assert float(m["non_bkg_accuracy_plane0"]) == pytest.approx((2 + 2 + 1) / (4 + 4 + 1))
    # image 1 has no neutrino anywhere: its neutrino IoU counts as 1
    assert float(m["neutrino_iou"]) == 1.0 and float(m["neutrino_accuracy"]) == 1.0
    empty = metrics_from_predictions(torch.zeros_like(labels), labels)
    assert float(empty["neutrino_iou"]) == pytest.approx(0.5)  # image 0 wrong, image 1 empty union
    assert float(empty["non_bkg_accuracy"]) == 0.0 and float(empty["accuracy"]) == pytest.approx(1 - 9 / 32)
