"""Scaling figures from run records: one row per run, efficiency, per-rank stragglers.

Throughput is the last (steady) epoch's training rate, as in the seed tables'
`imgs_per_s_second_epoch`; efficiency is relative to the smallest run of the
same series: `eff(p) = (X(p) / X(p0)) / (p / p0)`. A series is weak scaling
when the batch per rank stays fixed across rank counts, strong when the global
batch does.

Never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlscale.results.record import RANKS, load_ranks

PHASES = ("data_wait", "h2d", "forward", "backward", "optimizer")


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per successful run with the numbers the report plots."""
    rows = []
    for r in records:
        if r.get("status", "ok") != "ok":
            continue
        epochs = r.get("epoch_stats") or []
        first, last = (epochs[0], epochs[-1]) if epochs else ({}, {})
        row = {
            "run_id": r.get("run_id"),
            "run_dir": r.get("run_dir"),
            "workload": r.get("workload"),
            "system": r.get("system") or "",
            "mode": r.get("mode", "train"),
            "ranks": int(r.get("num_ranks") or 1),
            "nodes": int(r.get("num_nodes") or 1),
            "gpus": int(r.get("num_gpus") or 0),
            "batch_size": r.get("batch_size"),
            "global_batch_size": r.get("global_batch_size"),
            "started_at": r.get("started_at") or "",
            "total_time": r.get("total_time"),
            "imgs_per_s": last.get("train_imgs_per_s"),
            "imgs_per_s_first_epoch": first.get("train_imgs_per_s"),
            "first_epoch_time": first.get("wall_time"),
            "second_epoch_time": epochs[1].get("wall_time") if len(epochs) > 1 else None,
            "inference_imgs_per_s": (r.get("inference") or {}).get("imgs_per_s"),
            "energy_per_sample_j": r.get("energy_per_sample_j"),
        }
        for phase in PHASES:
            row[phase] = ((r.get("phases") or {}).get(phase) or {}).get("mean")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # A repeated configuration keeps its latest run.
    frame = frame.sort_values("started_at")
    frame = frame.drop_duplicates(["workload", "system", "mode", "ranks", "batch_size"], keep="last")
    return frame.sort_values(["workload", "system", "ranks"]).reset_index(drop=True)


def scaling_series(frame: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    """(workload, system, kind, rows with speedup/efficiency) per series of at least two rank counts.

    Runs of one workload on one system are split by their fixed quantity: all runs
    with one batch per rank form a weak series, all runs with one global batch a
    strong series (a run may belong to both when it is the common point).
    """
    out = []
    if frame.empty:
        return out
    for (workload, system), runs in frame[frame["mode"] == "train"].groupby(["workload", "system"], sort=True):
        candidates = [("weak", "batch_size"), ("strong", "global_batch_size")]
        for kind, fixed in candidates:
            for _, series in runs.groupby(fixed):
                series = series.dropna(subset=["imgs_per_s"]).sort_values("ranks")
                if series["ranks"].nunique() < 2:
                    continue
                base = series.iloc[0]
                series = series.copy()
                series["speedup"] = series["imgs_per_s"] / base["imgs_per_s"]
                series["ideal"] = series["ranks"] / base["ranks"]
                series["efficiency"] = series["speedup"] / series["ideal"]
                out.append((workload, system, kind, series))
    return out


def load_rank_lines(run_dir: str | Path | None) -> list[dict]:
    if not run_dir or not (Path(run_dir) / RANKS).is_file():
        return []
    return load_ranks(run_dir)


def rank_phase_table(rank_lines: list[dict]) -> pd.DataFrame:
    """Per-rank mean seconds per step in each phase (rows: ranks; columns: phases + host).

    Training steps when the run trained; else its evaluation/inference steps."""
    key = "phases" if any(line.get("phases") for line in rank_lines) else "eval_phases"
    rows = []
    for line in rank_lines:
        phases = line.get(key) or {}
        row = {"rank": line.get("rank"), "host": line.get("host") or line.get("hostname") or ""}
        for phase in PHASES:
            row[phase] = ((phases.get(phase) or {}).get("mean")) if isinstance(phases.get(phase), dict) else None
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.sort_values("rank").set_index("rank")
    present = [p for p in PHASES if table[p].notna().any()]
    table = table[["host", *present]]
    table["step"] = table[present].sum(axis=1)
    return table


def straggler_summary(table: pd.DataFrame) -> dict | None:
    """Which rank is slowest, by how much against the median rank, and in which phase."""
    phases = [c for c in table.columns if c in PHASES] if not table.empty else []
    if len(table) < 2 or not phases or not (table["step"] > 0).all():
        return None
    median = table[phases].median()
    median_step = float(table["step"].median())
    slowest = int(table["step"].idxmax())
    excess = (table.loc[slowest, phases] - median).astype(float)
    phase = str(excess.idxmax())
    return {
        "rank": slowest,
        "host": table.loc[slowest, "host"],
        "step_s": float(table.loc[slowest, "step"]),
        "median_step_s": median_step,
        "slower_by": float(table.loc[slowest, "step"] / median_step - 1) if median_step > 0 else np.nan,
        "phase": phase,
        "phase_excess_s": float(excess[phase]),
        "phase_slower_by": float(table.loc[slowest, phase] / median[phase] - 1) if median[phase] > 0 else np.nan,
    }
