"""Run records for the results tests, in the schema of mlscale/results/record.py.

`make_run` writes a complete run directory with `write_run_dir`, with timings that
follow a simple, known scaling law, so tests can check what reports compute.
"""

from __future__ import annotations

from pathlib import Path

from mlscale.results.record import SCHEMA_VERSION, write_run_dir

PHASES = ("data_wait", "h2d", "forward", "backward", "optimizer")


def make_run(
    root: Path,
    run_id: str,
    *,
    workload: str = "synthetic",
    system: str = "testbox",
    ranks: int = 1,
    nodes: int = 1,
    tag: str = "",
    batch_size: int = 32,
    compute_s: float = 0.10,
    comm_s_per_rank: float = 0.01,
    slow_rank: int | None = None,
    slow_factor: float = 1.0,
    steps: int = 20,
    epochs: int = 2,
    started_at: str = "2026-11-24T00:00:00+00:00",
    parameters: int = 1_000_000,
    device_type: str = "cpu",
) -> Path:
    """A run whose per-step time is compute_s + comm_s_per_rank * (ranks - 1); the first epoch
    is twice as slow (warm-up). `slow_rank` spends `slow_factor` times longer in forward."""
    comm = comm_s_per_rank * (ranks - 1)
    split = {"data_wait": 0.1, "h2d": 0.05, "forward": 0.3, "backward": 0.45, "optimizer": 0.1}
    rank_lines, rank_step = [], []
    for r in range(ranks):
        phases = {p: compute_s * f for p, f in split.items()}
        phases["optimizer"] += comm
        if r == slow_rank:
            phases["forward"] *= slow_factor
        rank_step.append(sum(phases.values()))
        rank_lines.append(
            {
                "rank": r,
                "host": f"node{r * nodes // ranks:02d}",
                "device": device_type,
                "epoch_times": [],
                "phases": {
                    p: {
                        "count": steps * epochs,
                        "total": v * steps * epochs,
                        "mean": v,
                        "median": v,
                        "p95": v * 1.1,
                        "min": v * 0.9,
                        "max": v * 1.2,
                    }
                    for p, v in phases.items()
                },
            }
        )
    step = max(rank_step)
    epoch_stats = []
    for e in range(epochs):
        train_time = step * steps * (2.0 if e == 0 else 1.0)
        test_time = train_time * 0.1
        samples = batch_size * ranks * steps
        epoch_stats.append(
            {
                "epoch": e + 1,
                "wall_time": train_time + test_time,
                "train_time": train_time,
                "test_time": test_time,
                "train_samples": samples,
                "test_samples": samples // 10,
                "train_imgs_per_s": samples / train_time,
                "test_imgs_per_s": samples / 10 / test_time,
                "train_loss": 1.0 / (e + 1),
                "test_loss": 1.1 / (e + 1),
                "train_metrics": {"accuracy": 0.5 + 0.1 * e},
                "test_metrics": {"accuracy": 0.45 + 0.1 * e},
            }
        )
    for line in rank_lines:
        line["epoch_times"] = [s["wall_time"] for s in epoch_stats]
    phases = {}
    for p in PHASES:
        means = [line["phases"][p]["mean"] for line in rank_lines]
        phases[p] = {
            "mean": sum(means) / len(means),
            "median": sorted(means)[len(means) // 2],
            "p95": max(means) * 1.1,
            "min": min(means) * 0.9,
            "max": max(means) * 1.2,
            "rank_mean_min": min(means),
            "rank_mean_max": max(means),
            "slowest_rank": means.index(max(means)),
        }
    total = sum(s["wall_time"] for s in epoch_stats) + 1.0
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "workload": workload,
        "mode": "train",
        "status": "ok",
        "error": None,
        "system": system,
        "tag": tag,
        "started_at": started_at,
        "finished_at": started_at,
        "launcher": "mpirun" if ranks > 1 else "none",
        "backend": "ddp",
        "device_type": device_type,
        "num_ranks": ranks,
        "num_nodes": nodes,
        "num_gpus": ranks if device_type == "cuda" else 0,
        "hosts": sorted({ln["host"] for ln in rank_lines}),
        "versions": {"python": "3.11"},
        "git_revision": None,
        "config": {"run": {"batch_size": batch_size}, "workload": {}},
        "batch_size": batch_size,
        "global_batch_size": batch_size * ranks,
        "epochs": epochs,
        "learning_rate": 0.01,
        "accuracy_metric": "accuracy",
        "accuracy_caption": "accuracy: fraction of correct predictions",
        "setup_time": 1.0,
        "total_time": total,
        "epoch_stats": epoch_stats,
        "train_loss": epoch_stats[-1]["train_loss"],
        "test_loss": epoch_stats[-1]["test_loss"],
        "train_accuracy": 0.6,
        "test_accuracy": 0.55,
        "inference": {
            "total_time": step * steps,
            "samples": batch_size * ranks * steps,
            "imgs_per_s": batch_size * ranks * steps / (step * steps),
        },
        "iotest": None,
        "phases": phases,
        "workload_info": {"parameters": parameters},
    }
    return write_run_dir(root, run_id, record, rank_lines)


def make_sweep(root: Path, rank_counts=(1, 2, 4, 8), **kwargs) -> list[Path]:
    return [make_run(root, f"{kwargs.get('system', 'testbox')}_{n}", ranks=n, **kwargs) for n in rank_counts]
