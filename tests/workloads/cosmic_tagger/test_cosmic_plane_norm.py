"""Batch norm per plane by default, as the original CosmicTagger: our UResNet against the original's form
(benchmarks/reference/cosmic_original.py) on the same weights; the pooled variant on request."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from support.run import REPO

from mlscale.workloads.cosmic_tagger.metrics import segmentation_loss
from mlscale.workloads.cosmic_tagger.model import UResNet, UResNetConfig

_spec = importlib.util.spec_from_file_location(
    "cosmic_original", REPO / "benchmarks" / "reference" / "cosmic_original.py"
)
original = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(original)

SMALL = dict(n_initial_filters=4, network_depth=2, res_blocks_per_layer=1, res_blocks_deepest_layer=1,
             res_blocks_final=1, bottleneck_size=8)  # fmt: skip


def _batch(seed=0, b=2, h=16, w=32):
    g = torch.Generator().manual_seed(seed)
    # Planes with different charge scales: pooled statistics would differ from per-plane ones.
    x = torch.rand(b, 3, h, w, generator=g) * torch.tensor([1.0, 5.0, 20.0]).view(1, 3, 1, 1)
    y = torch.randint(0, 3, (b, 3, h, w), generator=g)
    return x, y


def _pair(**knobs):
    torch.manual_seed(0)
    ours = UResNet(UResNetConfig(**SMALL, **knobs))
    theirs = original.UResNet(ours.cfg)
    original.copy_weights(ours, theirs)
    return ours, theirs


def test_parameter_count_of_the_issue_configuration():
    cfg = UResNetConfig(n_initial_filters=8, network_depth=4, res_blocks_per_layer=2, res_blocks_deepest_layer=2,
                        res_blocks_final=2, bottleneck_size=96)  # fmt: skip
    ours, theirs = UResNet(cfg), original.UResNet(cfg)
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in theirs.parameters()) == 893_427


def test_default_matches_the_original_per_plane_forward_loss_gradients_and_statistics():
    ours, theirs = _pair()
    assert ours.cfg.plane_norm == "per-plane"
    x, y = _batch()
    out = ours(x)
    ref = theirs(x)
    torch.testing.assert_close(out, torch.stack(ref, dim=2), rtol=1e-5, atol=1e-5)
    loss, ref_loss = segmentation_loss(out, y, "focal"), original.focal_loss(original.split_labels(y), ref)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    loss.backward()
    ref_loss.backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
    # Running statistics: each plane updates them in turn, as in the original.
    for (name, a), b in zip(ours.named_buffers(), theirs.buffers()):
        torch.testing.assert_close(a, b.to(a.dtype), rtol=1e-5, atol=1e-6, msg=name)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), torch.stack(theirs(x), dim=2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("plane_norm", ["per-plane", "pooled"])
def test_first_batch_norm_statistics(plane_norm):
    """The first batch norm's running mean after one step: pooled over the planes, or updated plane by plane."""
    torch.manual_seed(0)
    model = UResNet(UResNetConfig(**SMALL, plane_norm=plane_norm))
    x, _ = _batch()
    first = model.initial.planes[0]
    with torch.no_grad():
        conv = first.conv(x.reshape(-1, 1, *x.shape[2:])).reshape(x.shape[0], 3, -1, *x.shape[2:])
        model(x)
    per_plane = conv.mean(dim=(0, 3, 4))  # [plane, channel]
    if plane_norm == "pooled":
        expected = 0.1 * per_plane.mean(dim=0)
    else:
        expected = torch.zeros_like(per_plane[0])
        for p in range(3):
            expected = 0.9 * expected + 0.1 * per_plane[p]
    torch.testing.assert_close(first.norm.running_mean, expected, rtol=1e-5, atol=1e-6)
    assert int(first.norm.num_batches_tracked) == (1 if plane_norm == "pooled" else 3)


def test_pooled_differs_from_the_original():
    ours, theirs = _pair(plane_norm="pooled")
    x, _ = _batch()
    with torch.no_grad():
        assert not torch.allclose(ours(x), torch.stack(theirs(x), dim=2), atol=1e-3)


def test_layouts_agree_without_batch_norm():
    """Only the statistics differ between the two layouts: without batch norm they compute the same."""
    torch.manual_seed(0)
    per_plane = UResNet(UResNetConfig(**SMALL, batch_norm=False))
    pooled = UResNet(UResNetConfig(**SMALL, batch_norm=False, plane_norm="pooled"))
    pooled.load_state_dict(per_plane.state_dict())
    x, _ = _batch(b=3)
    torch.testing.assert_close(per_plane(x), pooled(x), rtol=1e-5, atol=1e-5)
