"""cosmic-tagger end to end through `mlscale run`: it learns, 2 ranks match 1 rank,
inference writes a larcv3 producer, iotest times the reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.run import run_mlscale

from mlscale.io.larcv import LarcvFile, densify_labels
from mlscale.workloads.cosmic_tagger.metrics import metrics_from_predictions

SMALL_NET = ["--n-initial-filters", "8", "--network-depth", "3", "--res-blocks-per-layer", "1",
             "--res-blocks-deepest-layer", "1", "--res-blocks-final", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cosmic-data")
    run_mlscale("data", "cosmic-tagger", "--out", out, "--events", 48, "--test-events", 16, "--height", 64,
                "--width", 128, "--cosmics", 2)  # fmt: skip
    return out


def _record(out: Path, run_id: str) -> dict:
    return json.loads((out / run_id / "record.json").read_text())


def _constant_baselines(test_file: Path) -> dict[str, float]:
    """The best each metric gets from predicting one class everywhere."""
    with LarcvFile(test_file) as f:
        labels = torch.from_numpy(densify_labels(f.read("sbnd_cosmicseg"))).long()
    best: dict[str, float] = {}
    for cls in range(3):
        for k, v in metrics_from_predictions(torch.full_like(labels, cls), labels).items():
            best[k] = max(best.get(k, 0.0), float(v))
    return best


@pytest.mark.slow
def test_it_learns_and_writes_predictions(data_dir, tmp_path):
    run_mlscale("run", "cosmic-tagger", "--data", data_dir, *SMALL_NET, "--backend", "single", "--batch-size", 4,
                "--epochs", 2, "--lr", "3e-3", "--infer", "--out", tmp_path, "--run-id", "learn",
                "--save-weights", tmp_path / "uresnet.pt", "--no-progress", timeout=400)  # fmt: skip
    record = _record(tmp_path, "learn")
    last = record["epoch_stats"][-1]["test_metrics"]
    base = _constant_baselines(data_dir / "cosmic_tagging_test.h5")
    assert base["cosmic_iou"] < 0.1  # cosmic pixels are a few % of the image
    assert last["cosmic_iou"] > 0.5 and last["cosmic_iou"] > base["cosmic_iou"] + 0.4, last
    assert last["miou"] > base["miou"] + 0.25, (last, base)
    assert last["accuracy"] > base["accuracy"]
    assert record["test_accuracy"] == last["non_bkg_accuracy"] and record["accuracy_metric"] == "non_bkg_accuracy"
    assert "non_bkg_accuracy_plane2" in last
    assert record["workload_info"]["plane_norm"] == "per-plane"  # the original's batch norm, by default
    # Inference: one larcv3 producer with a predicted label on every charged pixel of every test event.
    info = record["inference"]
    assert info["events_written"] == 16 and info["prediction_file"] == "predictions.h5"
    with (
        LarcvFile(tmp_path / "learn" / "predictions.h5") as pred,
        LarcvFile(data_dir / "cosmic_tagging_test.h5") as src,
    ):
        producer = info["prediction_producer"]
        assert pred.producers() == [producer] and pred.n_entries == 16
        predicted, truth = pred.read(producer), src.read("sbnd_cosmicseg")
        assert np.array_equal(predicted.counts, truth.counts) and np.array_equal(predicted.ids, truth.ids)
        assert np.array_equal(pred.event_ids(), src.event_ids())
        agree = float((predicted.values == truth.values).mean())
        assert agree > 0.6, agree
    # A later inference-only run from the saved weights predicts exactly what the trained run did.
    run_mlscale("run", "cosmic-tagger", "--data", data_dir, *SMALL_NET, "--backend", "single", "--batch-size", 4,
                "--mode", "inference", "--weights", tmp_path / "uresnet.pt", "--out", tmp_path, "--run-id", "again",
                "--no-progress")  # fmt: skip
    with (
        LarcvFile(tmp_path / "learn" / "predictions.h5") as first,
        LarcvFile(tmp_path / "again" / "predictions.h5") as again,
    ):
        assert np.array_equal(first.read(producer).values, again.read(producer).values)


@pytest.mark.slow
def test_two_ranks_match_one_rank(data_dir, tmp_path):
    common = ["run", "cosmic-tagger", "--data", data_dir, *SMALL_NET, "--global-batch-size", 4, "--epochs", 1,
              "--max-steps", 6, "--no-shuffle", "--lr", "1e-3", "--no-batch-norm", "--out", tmp_path,
              "--no-progress"]  # fmt: skip
    run_mlscale(*common, "--backend", "single", "--run-id", "one")
    # Stacked planes on two ranks: without batch norm the layout does not change the numbers.
    run_mlscale(*common, "--io-strategy", "scatter", "--plane-norm", "pooled", "--run-id", "two", ranks=2)
    one, two = _record(tmp_path, "one"), _record(tmp_path, "two")
    assert two["workload_info"]["plane_norm"] == "pooled"
    assert one["num_ranks"] == 1 and two["num_ranks"] == 2
    assert one["global_batch_size"] == two["global_batch_size"] == 4
    # Without batch norm (whose statistics are per rank, as in the original) the only difference
    # is that gradients are averaged over ranks instead of computed on one batch.
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=0.02)
    assert two["test_loss"] == pytest.approx(one["test_loss"], rel=0.02)
    # The Theta/Cooley-style scaling list of the seed, from the two records.
    report = run_mlscale("report", tmp_path, "--workload", "cosmic-tagger").stdout
    lines = [line.strip() for line in report.splitlines()]
    assert any(line.startswith("cosmic-tagger on local (train throughput") for line in lines), report
    assert any(line.startswith("- ") and "Img/s (1 rank)" in line for line in lines), report
    assert any("Img/s (2 ranks, " in line and "scaling efficiency from 1 rank" in line for line in lines), report
    assert "non-background accuracy" in report  # the table caption names the accuracy metric


def test_iotest_mode_reads_and_distributes(data_dir, tmp_path):
    run_mlscale("run", "cosmic-tagger", "--data", data_dir, "--mode", "iotest", "--io-strategy", "indices",
                "--global-batch-size", 4, "--resolution", "downsampled", "--out", tmp_path, "--run-id", "io",
                "--no-progress", ranks=2)  # fmt: skip
    io = _record(tmp_path, "io")["iotest"]
    assert io["samples"] == 48 and io["imgs_per_s"] > 0
    # dense batches: 48 events x 3 planes x 32 x 64 float32 charge + uint8 labels + int64 entries
    assert io["bytes"] == 48 * (3 * 32 * 64 * 5 + 8)
    # what the loader read from disk: every event once, 16-byte voxel records of both producers
    assert io["events_read"] == 48
    assert io["disk_bytes"] > 0 and io["disk_bytes"] % 16 == 0
    assert io["scatter_bytes"] == 0  # strategy (b) scatters indices only
