"""methane-plume trained for its dense form: tiles with a ring of context (`mlscale data methane-plume
--context`), the in-context consistency loss and its training path (`--dense-consistency`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
import torch
from support.run import run_mlscale
from torchvision.models import GoogLeNet

from mlscale.workloads.methane_plume.checkpoint import load_checkpoint
from mlscale.workloads.methane_plume.consistency import (
    InContextGoogLeNet,
    ScheduledSGD,
    dense_loss,
    logit_mismatch,
    one_cycle,
    one_cycle_momentum,
)
from mlscale.workloads.methane_plume.googlenet import googlenet_plume
from mlscale.workloads.methane_plume.saliency import build_method, standardise
from mlscale.workloads.methane_plume.synth import NODATA_TILES, RING_PLUMES, make_tile, plume_source
from mlscale.workloads.methane_plume.training import TileDataset, TurnedBatches, class_weights

TILE, CONTEXT = 64, 32  # small tiles keep GoogLeNet fast; the context is one output cell (stride 32)


@pytest.fixture(scope="module")
def context_tiles(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plume-context")
    run_mlscale(
        "data", "methane-plume", "--out", out, "--lines", 40, "--samples", 36, "--plumes", 2,
        "--train-tiles", 64, "--test-tiles", 32, "--tile-size", TILE,
        "--context", CONTEXT, "--positive-fraction", 0.4,
    )  # fmt: skip
    return out / "tiles.h5"


def test_context_tiles_keep_the_tile_at_the_centre(context_tiles):
    with h5py.File(context_tiles) as h5:
        assert h5["train/ch4"].shape == (64, TILE + 2 * CONTEXT, TILE + 2 * CONTEXT)
        assert (h5.attrs["tile_size"], h5.attrs["context"]) == (TILE, CONTEXT)
        crop = h5["train/ch4"][5]
    plain = TileDataset(context_tiles, "train", "COVID_QC")
    ringed = TileDataset(context_tiles, "train", "COVID_QC", context=CONTEXT)
    assert plain[5][0].shape == (1, TILE, TILE) and ringed[5][0].shape == (1, TILE + 2 * CONTEXT, TILE + 2 * CONTEXT)
    centre = standardise(crop[CONTEXT:-CONTEXT, CONTEXT:-CONTEXT], "COVID_QC")
    np.testing.assert_array_equal(plain[5][0][0].numpy(), centre)
    np.testing.assert_array_equal(ringed[5][0][0, CONTEXT:-CONTEXT, CONTEXT:-CONTEXT].numpy(), centre)
    # the ring is real scene (noisy background), not constant padding, and no tile lies over a nodata border
    assert crop[:CONTEXT].std() > 50
    assert not (h5_all(context_tiles) == -9999).any()


def h5_all(path: Path) -> np.ndarray:
    with h5py.File(path) as h5:
        return np.concatenate([h5["train/ch4"][:], h5["test/ch4"][:]])


def test_only_the_seeds_tiles_overlap_a_nodata_border():
    """A share NODATA_TILES of the seed's tiles (no context) lie over a nodata border; with context none does."""
    seed = [make_tile(np.random.default_rng(i), TILE, i % 2 == 0) for i in range(200)]
    over = np.mean([(t == -9999).any() for t in seed])
    assert abs(over - NODATA_TILES) < 0.06
    for i in range(200):
        assert not (make_tile(np.random.default_rng(i), TILE, i % 2 == 0, context=CONTEXT) == -9999).any()


def test_training_for_the_dense_form_turns_each_batch_as_a_whole():
    """TurnedBatches gives every tile of a batch the same one of the eight turns and flips, and another
    batch another: the tiles of one batch stay aligned with each other."""
    rng = np.random.default_rng(0)
    items = [(torch.from_numpy(rng.standard_normal((1, 8, 8)).astype(np.float32)), i % 2) for i in range(6)]
    stacked = torch.stack([x for x, _ in items])
    turns = [torch.rot90(stacked, k, (2, 3)) for k in range(4)]
    candidates = [*turns, *(t.flip(3) for t in turns)]
    collate = TurnedBatches(seed=3)
    seen = set()
    for _ in range(24):
        x, y = collate(items)
        assert y.tolist() == [i % 2 for i in range(6)]
        (which,) = [k for k, c in enumerate(candidates) if torch.equal(x, c)]
        seen.add(which)
    assert len(seen) >= 6


def test_context_tiles_label_a_source_anywhere_in_the_tile():
    """With context, a positive's plume starts anywhere in the tile (the in-context answer averages the
    tile's cells alike) and the negatives' plumes start in the context ring only; without context, the
    seed's tiles: positives in the central half, off-centre negatives anywhere outside it."""
    rng = np.random.default_rng(0)
    inside = [plume_source(rng, TILE, True, context=CONTEXT) for _ in range(400)]
    rows, cols = np.array(inside).T
    tile = (CONTEXT <= rows) & (rows < CONTEXT + TILE) & (CONTEXT <= cols) & (cols < CONTEXT + TILE)
    assert tile.all()
    outer = (np.minimum(rows, cols) < CONTEXT + TILE / 4) | (np.maximum(rows, cols) >= CONTEXT + 3 * TILE / 4)
    assert outer.mean() > 0.5  # the tile's outer part too, not just its central half
    negatives = [plume_source(rng, TILE, False, context=CONTEXT) for _ in range(400)]
    placed = np.array([s for s in negatives if s is not None])
    assert abs(len(placed) / 400 - RING_PLUMES) < 0.08
    rows, cols = placed.T
    assert not ((CONTEXT <= rows) & (rows < CONTEXT + TILE) & (CONTEXT <= cols) & (cols < CONTEXT + TILE)).any()
    assert ((rows >= 0) & (rows < TILE + 2 * CONTEXT) & (cols >= 0) & (cols < TILE + 2 * CONTEXT)).all()
    seed = np.array([plume_source(rng, TILE, True) for _ in range(200)])
    assert ((seed >= TILE / 4) & (seed < 3 * TILE / 4)).all()


def test_context_must_be_a_multiple_of_the_stride(tmp_path):
    proc = run_mlscale("data", "methane-plume", "--out", tmp_path, "--context", 30, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--context 30" in proc.stderr, proc.stderr
    assert not any(tmp_path.iterdir())
    shutil.rmtree(tmp_path, ignore_errors=True)


def _in_context_model(seed: int = 0) -> InContextGoogLeNet:
    """An InContextGoogLeNet whose answer varies from crop to crop: He-initialised convolutions (GoogLeNet's
    own std 0.01 leaves the features nearly constant untrained), random BatchNorm statistics, and an fc
    that does not saturate the softmax."""
    torch.manual_seed(seed)
    model = googlenet_plume(model_cls=InContextGoogLeNet)
    model.tile = TILE
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    torch.nn.init.normal_(model.fc.weight, std=0.05)
    return model


def test_in_context_logits_are_what_fcn_computes_for_the_tile():
    """The in-context path is aligned with `--method fcn`: for a crop with C px of context around the tile,
    fcn's value for that tile equals the in-context probability; the tile path is plain GoogLeNet."""
    model = _in_context_model().eval()
    crops = torch.randn(2, 1, TILE + 2 * CONTEXT, TILE + 2 * CONTEXT)
    with torch.no_grad():
        in_context = torch.softmax(model.in_context_logits(crops, CONTEXT), 1)[:, 1].numpy()
        tile_out = model(crops)
        plain = GoogLeNet(num_classes=2, aux_logits=True, init_weights=False, transform_input=False)
        plain.conv1.conv = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        plain.load_state_dict(model.state_dict())
        expected = plain.eval()(crops[..., CONTEXT:-CONTEXT, CONTEXT:-CONTEXT])
    fcn = build_method("fcn", model, TILE, 1, torch.device("cpu"))
    dense = [fcn(crop[0].numpy(), top=CONTEXT, bottom=CONTEXT)[0, CONTEXT] for crop in crops]
    np.testing.assert_allclose(dense, in_context, atol=1e-5)
    assert abs(in_context[0] - in_context[1]) > 1e-3  # the comparison is not between constants
    torch.testing.assert_close(tile_out, expected)


def _mismatch_after(model, optimizer, x, y, weights, lam: float, steps: int) -> float:
    for _ in range(steps):
        loss = dense_loss(model(x), y, weights, lam)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(logit_mismatch(model(x)))


def test_the_consistency_loss_pulls_the_two_outputs_together(context_tiles):
    """On a fixed batch, after tile-only steps have pulled the two outputs apart, steps with the
    consistency term bring the logit mismatch down, and further than the same steps without it."""
    data = TileDataset(context_tiles, "train", "COVID_QC", np.arange(8), context=CONTEXT)
    x = torch.stack([data[i][0] for i in range(8)])
    y = torch.tensor([data[i][1] for i in range(8)])
    weights = class_weights(y.numpy())
    found = {}
    for lam in (0.0, 4.0):
        torch.manual_seed(0)
        model = googlenet_plume(model_cls=InContextGoogLeNet).train()
        model.tile, model.share, model.active = TILE, 0.5, True
        optimizer = ScheduledSGD(model.parameters(), lr=0.01, momentum=0.9, max_grad_norm=5.0)
        before = _mismatch_after(model, optimizer, x, y, weights, 0.0, 8)
        found[lam] = _mismatch_after(model, optimizer, x, y, weights, lam, 8)
    assert found[4.0] < 0.5 * before and found[4.0] < 0.5 * found[0.0], (before, found)


def test_scheduled_sgd_clips_and_follows_one_cycle():
    param = torch.nn.Parameter(torch.zeros(4))
    optimizer = ScheduledSGD([param], lr=0.1, momentum=0.0, max_grad_norm=1.0, total_steps=10)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 25)
    lrs = []
    for _ in range(10):
        param.grad = torch.full((4,), 100.0)
        before = param.detach().clone()
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        assert float((before - param.detach()).norm()) == pytest.approx(lr * 1.0, rel=1e-5)  # norm clipped to 1
        lrs.append(lr)
    assert lrs == sorted(lrs[:4]) + sorted(lrs[4:], reverse=True) and max(lrs) == pytest.approx(0.1)  # up, then down
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * one_cycle(1.0)) and one_cycle(1.0) < 1e-5


def test_scheduled_sgd_cycles_momentum_as_torch_one_cycle_does():
    """With momentum, the schedule is torch's OneCycleLR: the learning rate up and down and the momentum
    from 0.95 down to 0.85 at the peak and back (constant momentum 0.9 takes 1.5x the effective step at
    the peak, where the in-context loss starts)."""
    steps = 50
    ours = ScheduledSGD([torch.nn.Parameter(torch.zeros(2))], lr=0.02, momentum=0.9, total_steps=steps)
    param = torch.nn.Parameter(torch.zeros(2))
    reference = torch.optim.SGD([param], lr=0.02, momentum=0.9)
    schedule = torch.optim.lr_scheduler.OneCycleLR(reference, max_lr=0.02, total_steps=steps)
    for step in range(steps):
        got, want = ours.param_groups[0], reference.param_groups[0]
        assert got["lr"] == pytest.approx(want["lr"], abs=0.02 * 0.08), step
        assert got["momentum"] == pytest.approx(want["momentum"], abs=0.01), step
        for p in ours.param_groups[0]["params"]:
            p.grad = torch.ones(2)
        ours.step()
        param.grad = torch.ones(2)
        reference.step()
        schedule.step()
    assert one_cycle_momentum(0.3) == pytest.approx(0.85) and one_cycle_momentum(0.0) == pytest.approx(0.95)


@pytest.mark.slow
def test_dense_training_under_mpirun_saves_a_plain_googlenet(context_tiles, tmp_path):
    """Two ranks train with --dense-consistency (the in-context loss from epoch 2, after the warm-up
    epoch); the checkpoint is a plain GoogLeNet with its training settings, and `plume predict
    --method fcn` maps a flightline with it."""
    ckpt = tmp_path / "dense.pt"
    run_mlscale(
        "plume", "train", context_tiles, "-o", ckpt, "--epochs", 2, "-b", 8, "--dense-consistency", 4,
        "--lr-schedule", "one-cycle", "--lr", 0.01, "--record", tmp_path / "runs", "--no-progress", ranks=2,
    )  # fmt: skip
    (record_file,) = (tmp_path / "runs").glob("*/record.json")
    epochs = json.loads(record_file.read_text())["epoch_stats"]
    assert "logit_mismatch" not in epochs[0]["train_metrics"]  # warm-up epoch: the tile loss alone
    assert epochs[1]["train_metrics"]["logit_mismatch"] >= 0
    model, meta = load_checkpoint(ckpt)
    assert type(model) is GoogLeNet and meta["arch"] == "googlenet" and meta["tile_size"] == TILE
    assert meta["training"] == {
        "epochs": 2, "lr": 0.01, "lr_schedule": "one-cycle", "weight_decay": 0.0, "global_batch": 16,
        "dense_consistency": 4.0, "context": CONTEXT, "dense_warmup": 1, "dense_share": 0.25, "dense_clip": 5.0,
    }  # fmt: skip
    flightline = context_tiles.parent / "flightlines" / "ang_synth000_ch4mf_img"
    run_mlscale(
        "plume", "predict", flightline, "-m", ckpt, "-g", -1, "-b", 2, "-o", tmp_path / "out", "--method", "fcn"
    )
    saliency = tmp_path / "out" / "ang_synth000_ch4mf_img_saliency.img"
    # --amp (bfloat16 autocast on the CPU) gives nearly the same map
    run_mlscale("plume", "predict", flightline, "-m", ckpt, "-g", -1, "-b", 2, "-o", tmp_path / "amp",
                "--method", "fcn", "--amp")  # fmt: skip
    with rasterio.open(saliency) as ds, rasterio.open(tmp_path / "amp" / saliency.name) as ds_amp:
        full, amp = ds.read(1), ds_amp.read(1)
    assert full.shape == (40, 36)
    valid = full != -9999
    assert valid.any() and np.array_equal(valid, amp != -9999)
    assert np.abs(amp[valid] - full[valid]).max() < 0.05 and not np.array_equal(amp, full)


@pytest.mark.parametrize(
    "extra, expected",
    [
        (("--arch", "tilenet"), "--arch tilenet needs no such training"),
        (("--context", 64), "--context 64: must be a multiple of 32 of at most the tiles' 32 px"),
        (("--dense-share", 0), "--dense-share 0: must be within (0, 1]"),
    ],
)
def test_bad_dense_settings_are_one_line(context_tiles, tmp_path, extra, expected):
    proc = run_mlscale(
        "plume", "train", context_tiles, "-o", tmp_path / "m.pt", "--dense-consistency", 4, *extra, check=False
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
    assert not (tmp_path / "m.pt").exists()


def test_dense_training_needs_tiles_with_context(tmp_path):
    run_mlscale("data", "methane-plume", "--out", tmp_path, "--lines", 16, "--samples", 16, "--train-tiles", 8,
                "--test-tiles", 4, "--tile-size", TILE)  # fmt: skip
    proc = run_mlscale("plume", "train", tmp_path / "tiles.h5", "-o", tmp_path / "m.pt", "--dense-consistency", 4,
                       check=False)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no context ring" in proc.stderr, proc.stderr
