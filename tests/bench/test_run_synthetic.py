"""The synthetic workload end to end: real runs at 1 and 2 ranks, their records and report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.run import TINY_SYNTHETIC, run_mlscale

TINY = TINY_SYNTHETIC


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 1-rank and a 2-rank run (with an inference pass) in one results root."""
    root = tmp_path_factory.mktemp("runs")
    run_mlscale("run", "synthetic", *TINY, "--infer", "--system", "testbox", "--out", root, "--run-id", "one")
    run_mlscale("run", "synthetic", *TINY, "--infer", "--system", "testbox", "--out", root, "--run-id", "two", ranks=2)
    return root


def _record(root, run_id):
    return json.loads((root / run_id / "record.json").read_text())


def test_two_rank_record_holds_both_ranks(runs):
    rec = _record(runs, "two")
    assert rec["status"] == "ok" and rec["launcher"] == "openmpi" and rec["backend"] == "ddp"
    assert (rec["num_ranks"], rec["num_nodes"], rec["num_gpus"]) == (2, 1, 0)
    assert rec["global_batch_size"] == 8 and rec["batch_size"] == 4
    ranks = [json.loads(line) for line in (runs / "two" / "ranks.jsonl").read_text().splitlines()]
    assert [r["rank"] for r in ranks] == [0, 1]
    for r in ranks:
        assert len(r["epochs"]) == 2
        assert r["phases"]["forward"]["count"] == 12  # 6 steps x 2 epochs
        assert all(r["phases"][p]["mean"] > 0 for p in ("data_wait", "h2d", "forward", "backward", "optimizer"))
        # per epoch, each phase's seconds: the epochs' totals add up to the run's, within the epoch's time
        for p in ("data_wait", "forward"):
            per_epoch = [e["phase_totals"][p] for e in r["epochs"]]
            assert sum(per_epoch) == pytest.approx(r["phases"][p]["total"])
            assert all(0 < t < e["train_time"] for t, e in zip(per_epoch, r["epochs"]))
    # Throughput is measured: global samples over the slowest rank's train time.
    e2 = rec["epoch_stats"][1]
    slowest = max(r["epochs"][1]["train_time"] for r in ranks)
    assert e2["train_samples"] == 2 * 6 * 4
    assert e2["train_imgs_per_s"] == pytest.approx(48 / slowest)
    assert rec["phases"]["forward"]["slowest_rank"] in (0, 1)
    assert rec["inference"]["samples"] == 2 * 2 * 4
    log = (runs / "two" / "run.log").read_text()
    assert "[rank 0/2]" in log and "[rank 1/2]" in log


def test_report_tables_match_records_cell_by_cell(runs):
    out = runs.parent / (runs.name + "-report")
    proc = run_mlscale("report", runs, "--out", out)
    import pandas as pd

    training = pd.read_csv(out / "training.csv")
    assert list(training.columns)[:5] == ["index", "system", "num_ranks", "num_gpus", "total_time"]
    for _, row in training.iterrows():
        rec = _record(runs, row["index"])
        e1, e2 = rec["epoch_stats"]
        expected = {
            "system": "testbox",
            "num_ranks": rec["num_ranks"],
            "num_gpus": 0,
            "total_time": rec["total_time"],
            "first_epoch_time": e1["wall_time"],
            "second_epoch_time": e2["wall_time"],
            "first_epoch_train_time": e1["train_time"],
            "second_epoch_train_time": e2["train_time"],
            "first_epoch_test_time": e1["test_time"],
            "second_epoch_test_time": e2["test_time"],
            "imgs_per_s_second_epoch": e2["train_imgs_per_s"],
            "imgs_per_s_first_epoch": e1["train_imgs_per_s"],
            "train_accuracy": e2["train_accuracy"],
            "test_accuracy": e2["test_accuracy"],
            "train_loss": e2["train_loss"],
            "test_loss": e2["test_loss"],
            "batch_size": 4,
            "epochs": 2,
            "learning_rate": 0.01,
        }
        for column, value in expected.items():
            assert row[column] == pytest.approx(value) if isinstance(value, float) else row[column] == value, column
    inference = pd.read_csv(out / "inference.csv")
    assert list(inference.columns) == ["index", "system", "num_gpus", "num_ranks", "total", "imgs_per_s"]
    for _, row in inference.iterrows():
        rec = _record(runs, row["index"])
        assert row["total"] == pytest.approx(rec["inference"]["total_time"])
        assert row["imgs_per_s"] == pytest.approx(rec["inference"]["imgs_per_s"])
    # The scaling list: 2 ranks against 1, efficiency = (rate2 / rate1) / 2.
    scaling = pd.read_csv(out / "scaling.csv")
    r1 = _record(runs, "one")["epoch_stats"][-1]["train_imgs_per_s"]
    r2 = _record(runs, "two")["epoch_stats"][-1]["train_imgs_per_s"]
    assert list(scaling["num_ranks"]) == [1, 2]
    assert scaling["scaling_efficiency"].iloc[1] == pytest.approx(r2 / r1 / 2)
    assert f"{r2:.4g} Img/s (2 ranks, {r2 / r1 / 2 * 100:.0f}% scaling efficiency from 1 rank)" in proc.stdout
    # Per-rank timings of both ranks appear in the report.
    per_rank = proc.stdout.split("## Per-rank timings")[1]
    rank_rows = [line.split("|")[2].strip() for line in per_rank.splitlines() if line.startswith("| two ")]
    assert rank_rows == ["0", "1"]


def test_mpi_backend_trains_identically_on_every_rank(tmp_path):
    run_mlscale("run", "synthetic", *TINY, "--backend", "mpi", "--out", tmp_path, "--run-id", "m", ranks=2)
    rec = _record(tmp_path, "m")
    assert rec["backend"] == "mpi" and rec["num_ranks"] == 2
    assert rec["epoch_stats"][1]["train_loss"] < rec["epoch_stats"][0]["train_loss"] + 1.0


def test_mpi_backend_matches_ddp_losses_including_evaluation(tmp_path):
    """Same seed and global batch: the mpi backend trains and evaluates like DDP. The test loss
    depends on the batch-norm running statistics, which DDP takes from rank 0 on every rank."""
    losses = {}
    for backend in ("ddp", "mpi"):
        run_mlscale("run", "synthetic", *TINY, "--backend", backend, "--out", tmp_path, "--run-id", backend, ranks=2)
        losses[backend] = [[e["train_loss"], e["test_loss"]] for e in _record(tmp_path, backend)["epoch_stats"]]
    assert losses["ddp"][0][0] != losses["ddp"][-1][0], "training did not change the loss"
    np.testing.assert_allclose(losses["mpi"], losses["ddp"], rtol=1e-4)


def test_global_batch_must_divide_by_ranks(tmp_path):
    proc = run_mlscale("run", "synthetic", *TINY, "--global-batch-size", "5", "--out", tmp_path, ranks=2, check=False)
    assert proc.returncode != 0
    assert "--global-batch-size 5 does not divide by 2 ranks" in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "synthetic", "--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
        (["run", "synthetic", "--bogus"], "unrecognized arguments: --bogus"),
        (["run", "nosuch"], "unknown workload 'nosuch'"),
        (["run", "synthetic", "--cuda-graphs", "--device", "cpu"], "--cuda-graphs needs a CUDA device"),
        (["report", "/no/such/dir"], "/no/such/dir: no such run directory"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    proc = run_mlscale(*args, "--out", tmp_path, check=False) if args[0] == "run" else run_mlscale(*args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_report_on_a_directory_without_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_mlscale("report", tmp_path / "empty", check=False)
    assert proc.returncode == 2 and "no run records" in proc.stderr


def test_report_rejects_a_corrupt_record(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "record.json").write_text("{not json")
    proc = run_mlscale("report", bad, check=False)
    assert proc.returncode == 2 and "record.json: not valid JSON" in proc.stderr


def test_help_of_every_subcommand():
    for sub in ("info", "run", "data", "report"):
        proc = run_mlscale(sub, "--help")
        assert "usage: mlscale" in proc.stdout
    proc = run_mlscale("run", "synthetic", "--help")
    assert "--steps-per-epoch" in proc.stdout and "--global-batch-size" in proc.stdout


def test_speedup_switches_on_cpu(tmp_path):
    """AMP (bf16 autocast on CPU) and channels_last run and are recorded in the config."""
    run_mlscale("run", "synthetic", *TINY, "--amp", "--channels-last", "--out", tmp_path, "--run-id", "fast")
    rec = _record(tmp_path, "fast")
    assert rec["config"]["run"]["amp"] is True and rec["config"]["run"]["channels_last"] is True
    assert rec["epoch_stats"][1]["train_loss"] is not None


@pytest.mark.slow
def test_compile_switch(tmp_path):
    run_mlscale("run", "synthetic", *TINY, "--compile", "--out", tmp_path, "--run-id", "compiled")
    rec = _record(tmp_path, "compiled")
    assert rec["config"]["run"]["compile"] is True and rec["status"] == "ok"


def test_iotest_mode_reads_only(tmp_path):
    run_mlscale("run", "synthetic", *TINY, "--mode", "iotest", "--out", tmp_path, "--run-id", "io", ranks=2)
    rec = _record(tmp_path, "io")
    assert rec["iotest"]["samples"] == 2 * 6 * 4
    assert rec["iotest"]["bytes"] == 2 * 6 * (4 * 3 * 32 * 32 * 4 + 4 * 8)  # images float32 + int64 labels
    assert set(rec["phases"]) == {"data_wait", "h2d"} and rec["epoch_stats"] == []
    # The per-rank table has no training phases for it: those cells read "-", not "nan".
    per_rank = run_mlscale("report", tmp_path).stdout.split("## Per-rank timings")[1]
    rows = [line for line in per_rank.splitlines() if line.startswith("| io ")]
    assert len(rows) == 2 and "nan" not in per_rank and all("| -" in row for row in rows), per_rank
