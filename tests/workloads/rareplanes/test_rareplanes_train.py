"""rareplanes training through the real command: each model's epoch-level metric rises above the
trivial baseline with a tiny configuration, Mask R-CNN trains at 2 ranks under DDP with its target
dicts, and inference writes one predicted mask per input tile."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.run import run_mlscale

# Tiny configurations and the epochs each needs here (about 11 steps of 8 tiles per epoch).
TINY = {"fcn": ["--backbone", "resnet18"], "deeplabv3": ["--backbone", "resnet18"], "unet": ["--unet-width", "16"]}
EPOCHS = {"fcn": 4, "deeplabv3": 3, "unet": 5}


def free_port() -> dict:
    """A torch.distributed port of our own: other runs on a shared machine may hold the default."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return {"MASTER_PORT": str(s.getsockname()[1])}


def train(tiled: Path, out: Path, model: str, *extra, epochs: int, ranks: int | None = None) -> dict:
    run_mlscale("run", "rareplanes", "--data", tiled, "--model", model, "--epochs", epochs, "--lr", "1e-3",
                "--no-progress", "--out", out, "--run-id", model, *extra, ranks=ranks, env=free_port())  # fmt: skip
    return json.loads((out / model / "record.json").read_text())


def background_miou(tiled: Path) -> float:
    """mIoU of predicting background everywhere on the test tiles: the baseline to beat."""
    masks = [np.asarray(Image.open(p)) > 0 for p in sorted((tiled / "test/masks_tiled").glob("*.png"))]
    plane = np.mean([m.mean() for m in masks])
    return (1 - plane) / 2  # IoU of the background class, 0 for the aircraft class


@pytest.mark.slow
@pytest.mark.parametrize("model", ["fcn", "deeplabv3", "unet"])
def test_semantic_model_learns(tiled, tmp_path, model):
    unet = ["--infer", "--save-weights", tmp_path / "unet.pt"] if model == "unet" else []
    record = train(tiled, tmp_path, model, "--batch-size", 8, *TINY[model], *unet, epochs=EPOCHS[model])
    baseline = background_miou(tiled)
    last = record["epoch_stats"][-1]["test_metrics"]
    assert record["accuracy_metric"] == "miou" and record["test_accuracy"] == last["miou"]
    assert last["miou"] > baseline + 0.05 and last["dice"] > 0.2, (baseline, last)
    assert "mIoU" in record["accuracy_caption"]
    if model == "unet":  # inference: a 0/1 mask per test tile, named like its input's mask
        written = sorted(p.name for p in (tmp_path / model / "predicted_masks").iterdir())
        assert written == sorted(p.name for p in (tiled / "test/masks_tiled").iterdir())
        assert set(np.unique(np.asarray(Image.open(tmp_path / model / "predicted_masks" / written[0])))) <= {0, 1}
        assert record["inference"]["masks_written"] == len(written)
        inference_from_saved_weights(tiled, tmp_path, tmp_path / "unet.pt")


def inference_from_saved_weights(tiled: Path, tmp_path: Path, weights: Path) -> None:
    """--mode inference on a folder of tiles with the weights of a training run; a checkpoint of
    another model is refused in one line."""
    images = tiled / "test/images_tiled"
    run_mlscale("run", "rareplanes", "--mode", "inference", "--model", "unet", "--unet-width", 16, "--weights",
                weights, "--inference-data", images, "--out", tmp_path, "--run-id", "infer", "--no-progress",
                env=free_port())  # fmt: skip
    written = sorted(p.name for p in (tmp_path / "infer/predicted_masks").iterdir())
    assert written == sorted(f"{p.stem}_mask.png" for p in images.iterdir())
    bad = run_mlscale("run", "rareplanes", "--mode", "inference", "--model", "fcn", "--weights", weights,
                      "--inference-data", images, "--out", tmp_path, check=False, env=free_port())  # fmt: skip
    assert bad.returncode == 2 and f"{weights}: holds a model unet model" in bad.stderr


@pytest.mark.slow
def test_maskrcnn_learns_at_two_ranks_under_ddp(tiled, tmp_path):
    record = train(tiled, tmp_path, "maskrcnn", "--backbone", "resnet18", "--head-width", 32, "--batch-size", 4,
                   "--backend", "ddp", "--infer", epochs=6, ranks=2)  # fmt: skip
    assert record["num_ranks"] == 2 and record["backend"] == "ddp"
    assert record["accuracy_metric"] == "segm_ap" and record["train_accuracy"] is None
    epochs = record["epoch_stats"]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    ap50 = [e["test_metrics"]["segm_ap50"] for e in epochs]
    assert max(ap50) > 0, ap50  # above the trivial baseline: no detection scores AP 0
    tiles = sorted(p.name for p in (tiled / "test/masks_tiled").iterdir())
    assert epochs[-1]["test_metrics"]["tiles"] == len(tiles)  # every test tile, gathered from both ranks
    written = sorted(p.name for p in (tmp_path / "maskrcnn/predicted_masks").iterdir())
    assert written == tiles
    assert Image.open(tmp_path / "maskrcnn/predicted_masks" / written[0]).mode == "L"  # instance ids
