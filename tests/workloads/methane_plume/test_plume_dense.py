"""Dense saliency methods against the seed's per-pixel tile CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlscale.errors import UserError
from mlscale.workloads.methane_plume.checkpoint import build_tile_classifier, trunk_of
from mlscale.workloads.methane_plume.dense import (
    DenseClassifier,
    Strided,
    _chunks,
    batch_to_space,
    prepare_for_inference,
    space_to_batch,
)
from mlscale.workloads.methane_plume.saliency import (
    build_method,
    context_window,
    pad_for_tiles,
    saliency_cnn,
    standardise,
)

CPU = torch.device("cpu")


def _scrambled(arch: str) -> torch.nn.Module:
    """A model whose output varies from tile to tile: random weights and BatchNorm statistics."""
    torch.manual_seed(0)
    model = build_tile_classifier(arch)
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


@pytest.mark.parametrize(
    "kernel,stride,padding,by_phase",
    [
        (3, 2, 0, True),
        (2, 2, 0, True),
        (3, 2, 1, True),
        (5, 2, 2, True),
        (5, 3, 0, False),
        (3, 3, 0, False),
        (3, 3, 1, False),
    ],
)
def test_max_pool_phases_equal_the_stride_1_pool(kernel, stride, padding, by_phase):
    """A strided max pool made dense is pooled straight into its phases where max_pool2d's own padding
    allows (no -inf padded copy, no stride-1 map): the same values as the stride-1 pool over the -inf padded
    input, split by `space_to_batch` (which the other cases still do)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6 * stride, 4 * stride).contiguous(memory_format=torch.channels_last)
    pool = torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)
    layer = Strided(pool, pool)
    assert layer._pools_by_phase(x) is by_phase
    padded = F.pad(x, (padding, kernel - 1 - padding) * 2, value=float("-inf"))
    reference = space_to_batch(F.max_pool2d(padded, kernel, stride=1), stride)
    phases = layer.phases(x)
    assert len(phases) == stride * stride and all(p.is_contiguous(memory_format=torch.channels_last) for p in phases)
    torch.testing.assert_close(torch.cat(phases), reference, rtol=0, atol=0)


def test_chunks_are_the_split_of_the_concatenation():
    parts = [torch.arange(a, b) for a, b in ((0, 3), (3, 4), (4, 9), (9, 9), (9, 11))]
    for size in range(1, 13):
        expected = torch.arange(11).split(size)
        got = _chunks(parts, size)
        assert len(got) == len(expected) and all(torch.equal(g, e) for g, e in zip(got, expected))


def test_fcn_does_not_depend_on_the_chunk_budget():
    """Chunks of phases (a few phases per chunk, some spanning two phases, or every phase of a level at once)
    give the same GoogLeNet map: the budget is a speed setting (a tile batch per CPU thread)."""
    tile = 64
    trunk, fc = trunk_of(prepare_for_inference(_scrambled("googlenet")))
    x = torch.from_numpy(np.ascontiguousarray(_scene(9, 7, tile)))[None, None]
    positions = 96 * 96  # the slab (72 x 70) padded to the total stride: what one phase covers at any level
    with torch.no_grad():
        # 5 phases a chunk: chunks of whole phases, chunks spanning phases; 1 << 30: all phases of a level at once
        maps = [DenseClassifier(trunk, fc, tile, max_positions=b).eval()(x) for b in (5 * positions, 1 << 30)]
    assert x.shape[-2:] == (72, 70) and maps[0].std() > 1e-4
    torch.testing.assert_close(maps[1], maps[0], rtol=0, atol=1e-6)


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
        build_method("exact", build_tile_classifier("googlenet"), 256, 1, CPU)


@pytest.fixture(scope="module")
def googlenet_pair() -> tuple[np.ndarray, np.ndarray]:
    """cnn and fcn maps of a GoogLeNet whose output varies from tile to tile (Kaiming-initialised,
    scrambled BatchNorm), on a 14x14 crop with 64x64 tiles (small enough for CI)."""
    model = _scrambled("googlenet")
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.05)
    cnn = saliency_cnn(model, _scene(14, 14, 64), 64, batch=40, device=CPU)
    fcn = build_method("fcn", model, 64, batch=1, device=CPU)(_scene(14, 14, 64))
    return cnn, fcn


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_fcn_tracks_cnn(googlenet_pair):
    """GoogLeNet's FCN lines up with its tile CNN: it correlates better with it than shifted copies do."""
    cnn, fcn = googlenet_pair
    assert cnn.std() > 1e-3
    aligned = _corr(cnn, fcn)
    assert aligned > 0.3
    assert aligned > _corr(cnn[1:], fcn[:-1]) and aligned > _corr(cnn[:, 2:], fcn[:, :-2])


def test_fcn_machinery_is_exact_for_a_padding_free_net():
    """The fcn path (context rows, fc as 1x1 conv, tile pooling, stitching) reproduces cnn exactly where
    the network does not pad: what stays between fcn and cnn for GoogLeNet comes from its padding and
    ceil-mode pooling at tile borders, and its receptive field reaching beyond the tile."""
    tile = 128
    model = _scrambled("tilenet")
    cnn = saliency_cnn(model, _scene(9, 7, tile), tile, batch=32, device=CPU)
    fcn = build_method("fcn", model, tile, batch=1, device=CPU)(_scene(9, 7, tile))
    np.testing.assert_allclose(fcn, cnn, atol=1e-5, rtol=0)


def test_context_rows_are_taken_only_where_the_flightline_goes_on():
    """A block of rows in the middle of a flightline reads up to `context_rows` real rows above and below
    its tiles; at the flightline's own edge there is nothing real to read and none is taken. With the
    padding-free net every choice gives the same values, so the indexing of the context is checked exactly;
    the strips of `saliency_dense` follow the same rule (`context_window`)."""
    tile = 128
    model = _scrambled("tilenet")
    slab = _scene(20, 7, tile)
    whole = saliency_cnn(model, slab, tile, batch=64, device=CPU)
    fcn = build_method("fcn", model, tile, batch=1, device=CPU)
    assert context_window(0, 5, 0, 1000, tile, tile) == (0, 5 + tile - 1 + tile, 0)  # none above row 0
    assert context_window(5, 9, 3, 100, tile, tile) == (0, 100, 8)  # only 3 rows were there above
    a, b, top = 9, 13, 4
    block = slab[a - top : b + tile - 1 + 6]  # 4 context rows above, 6 below
    np.testing.assert_allclose(fcn(block, top=top, bottom=6), whole[a:b], atol=1e-5, rtol=0)
