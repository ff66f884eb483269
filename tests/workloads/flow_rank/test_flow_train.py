"""flow-rank trains, ranks, keeps its best model and infers through the real command; 2 ranks under mpirun
reach the 1-rank loss for the same global batch, under the ddp and the mpi backend."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from support.run import run_mlscale

from mlscale.workloads.flow_rank.config import IMAGE_COLUMNS

TINY = ["--backbone", "tiny", "--input-size", 40, "--unfreeze-after", 1, "--lr", 0.01, "--no-progress"]


def _record(out, run_id) -> dict:
    return json.loads((out / run_id / "record.json").read_text())


@pytest.mark.slow
def test_learns_to_rank_and_infers_with_the_kept_model(station, tmp_path):
    out, weights = tmp_path / "runs", tmp_path / "rank.pt"
    run_mlscale("run", "flow-rank", "--data", station, *TINY, "--epochs", 8, "--batch-size", 16, "--infer",
                "--save-weights", weights, "--backend", "single", "--out", out, "--run-id", "train")  # fmt: skip
    record = _record(out, "train")
    epochs = [e["test_metrics"] for e in record["epoch_stats"]]
    assert epochs[0]["backbone_frozen"] == 1 and epochs[1]["backbone_frozen"] == 0
    assert epochs[0]["tau_test_in"] < 0.3 < max(e["tau_test_in"] for e in epochs)  # from chance to a ranking
    best = epochs[-1]["best_epoch"]
    kept = epochs[best - 1]
    assert kept["val_loss"] == min(e["val_loss"] for e in epochs) and kept["tau_test_in"] > 0.4
    assert record["test_accuracy"] == kept["tau_test_in"]  # the table shows the kept model's tau
    assert "Kendall" in record["accuracy_caption"]
    # --infer scored every photo with the kept (best-validation) weights, not the last epoch's
    inference = record["inference"]
    assert inference["scored_images"] == inference["samples"] == 400
    assert inference["tau_test_in"] == pytest.approx(kept["tau_test_in"], abs=1e-6)
    assert {"tau_train", "tau_val", "tau_test_in", "tau_test_out"} <= set(inference)
    predictions = pd.read_csv(out / "train" / "predictions.csv")
    assert list(predictions.columns) == [*IMAGE_COLUMNS, "score"] and predictions["score"].notna().all()

    # the saved weights carry the normalisation: inference alone scores the photos alike
    alone = ["--backbone", "tiny", "--mode", "inference", "--weights", weights, "--batch-size", 32, "--no-progress"]
    run_mlscale("run", "flow-rank", "--data", station, *alone, "--backend", "single", "--out", out, "--run-id", "again")
    again = pd.read_csv(out / "again" / "predictions.csv")
    assert again["score"].to_numpy() == pytest.approx(predictions["score"].to_numpy(), abs=1e-4)
    assert _record(out, "again")["inference"]["tau_test_in"] == pytest.approx(kept["tau_test_in"], abs=1e-3)

    other = run_mlscale("run", "flow-rank", "--data", station, "--mode", "inference", "--weights", weights,
                        "--backbone", "resnet18", "--backend", "single", "--out", out, check=False)  # fmt: skip
    assert other.returncode == 2 and other.stderr.strip().splitlines()[-1].endswith(
        "rank.pt: holds a tiny RankNet, not --backbone resnet18"
    )

    report = run_mlscale("report", out).stdout  # the training table's accuracy column and the seed's tau table
    assert "flow-rank: Kendall's tau-b" in report and "Kendall's tau of the kept model per split" in report


@pytest.mark.slow
def test_two_ranks_reach_the_one_rank_loss(station, tmp_path):
    """Same global batch (32 pairs: 32 on one rank, 16 on each of two), no augmentation: the same pairs in
    the same steps, so the losses agree but for batch-norm statistics taken per rank."""
    out = tmp_path / "runs"
    for ranks, backend in ((1, "ddp"), (2, "ddp"), (2, "mpi")):
        same = [*TINY, "--epochs", 4, "--global-batch-size", 32, "--no-augment", "--out", out]
        run_mlscale("run", "flow-rank", "--data", station, *same, "--backend", backend, "--run-id", f"{backend}{ranks}",
                    ranks=ranks)  # fmt: skip
    one, two, mpi = (_record(out, run)["epoch_stats"] for run in ("ddp1", "ddp2", "mpi2"))
    # the frozen backbone (learning rate 0) and its unfreezing behave alike under either backend
    assert [e["train_loss"] for e in mpi] == pytest.approx([e["train_loss"] for e in two], rel=1e-5)
    assert _record(out, "ddp2")["num_ranks"] == 2
    assert one[-1]["train_loss"] < 0.9 * one[0]["train_loss"]  # it learnt something to agree on
    for a, b in zip(one, two):
        assert b["test_metrics"]["val_pairs"] == a["test_metrics"]["val_pairs"]  # every val pair, gathered
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.02)
        assert b["test_metrics"]["val_loss"] == pytest.approx(a["test_metrics"]["val_loss"], rel=0.02)
