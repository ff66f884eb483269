"""Dense saliency methods against the seed's per-pixel tile CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlscale.errors import UserError
from mlscale.plume.checkpoint import build_classifier
from mlscale.plume.dense import batch_to_space, space_to_batch
from mlscale.plume.saliency import build_method, pad_for_tiles, saliency_cnn, standardise

CPU = torch.device("cpu")


def _scrambled(arch: str) -> torch.nn.Module:
    """A model whose output varies from tile to tile: random weights and BatchNorm statistics."""
    torch.manual_seed(0)
    model = build_classifier(arch)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _scene(lines: int, samples: int, tile: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    ch4 = rng.normal(100, 150, (lines, samples))
    ch4[lines // 3 : lines // 3 + 6, samples // 2 : samples // 2 + 9] += 2000  # a bright blob
    ch4[:2] = -9999  # nodata rows
    return pad_for_tiles(standardise(ch4, "COVID_QC"), tile, "COVID_QC")


def test_space_to_batch_round_trip():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    y = space_to_batch(x, 4)
    assert y.shape == (32, 3, 2, 3)
    # phase (p, q) of image n holds rows p::4, cols q::4
    torch.testing.assert_close(y[(1 * 4 + 3) * 2 + 1], x[1, :, 1::4, 3::4])
    torch.testing.assert_close(batch_to_space(y, 4), x)


def test_exact_equals_cnn_on_a_crop():
    tile = 128
    model = _scrambled("tilenet")
    slab = _scene(14, 11, tile)
    cnn = saliency_cnn(model, slab, tile, batch=32, device=CPU)  # the seed's method, unmodified model
    exact = build_method("exact", model, tile, batch=1, device=CPU)(slab)
    assert exact.shape == cnn.shape == (14, 11)
    assert cnn.std() > 1e-3  # the outputs differ from pixel to pixel, so equality means something
    np.testing.assert_allclose(exact, cnn, atol=1e-5, rtol=0)


def test_exact_refuses_a_padded_network():
    with pytest.raises(UserError, match="padding-free"):
        build_method("exact", build_classifier("googlenet"), 256, 1, CPU)
