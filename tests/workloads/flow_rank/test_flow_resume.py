"""flow-rank preempted and resumed under `mpirun -np 2`: its loader (a DistributedSampler and a seeded
generator per rank) and its own schedule (frozen backbone, ReduceLROnPlateau, best weights kept) continue
where they stopped, so every epoch's losses and Kendall's taus equal an uninterrupted run's."""

from __future__ import annotations

import json

from support.run import run_mlscale

TINY = ["--backbone", "tiny", "--input-size", 40, "--unfreeze-after", 1, "--lr", 0.01, "--batch-size", 8,
        "--epochs", 4, "--no-progress"]  # fmt: skip


def _record(run_dir) -> dict:
    return json.loads((run_dir / "record.json").read_text())


def test_resume_equals_an_uninterrupted_run(station, tmp_path):
    args = ["run", "flow-rank", "--data", station, *TINY, "--out", tmp_path]
    # Rank 1 is signalled after 40 steps: epoch 2 (26 steps each), after the schedule's first epoch end.
    cut = run_mlscale(*args, "--run-id", "cut", ranks=2, check=False, env={"MLSCALE_TEST_SIGNAL_AT": "1:40"})
    assert cut.returncode == 75, cut.stderr[-3000:]
    assert _record(tmp_path / "cut")["preemption"]["epoch"] == 2
    run_mlscale(*args, "--run-id", "cut", "--resume", "auto", ranks=2)
    run_mlscale(*args, "--run-id", "whole", ranks=2)
    joined, whole = _record(tmp_path / "cut"), _record(tmp_path / "whole")
    assert [s["status"] for s in joined["segments"]] == ["preempted", "ok"]

    def figures(record):
        return [(e["train_loss"], e["test_loss"], e["test_metrics"]) for e in record["epoch_stats"]]

    assert figures(joined) == figures(whole)  # exactly, taus and the schedule's lr and best epoch included
