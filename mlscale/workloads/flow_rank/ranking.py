"""Scores gathered over ranks, and what they are judged by: the RankNet loss and pair accuracy of the
validation pairs, and Kendall's tau-b (scipy) between score and observed flow over every scored photo
of each split."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from mlscale.workloads.flow_rank.config import IMAGE_COLUMNS


def tau_key(split: str) -> str:
    return "tau_" + split.replace("-", "_")


def gather_rows(comm, rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Every rank's (row, value...) on rank 0, each row once (a DistributedSampler pads the last shard
    with repeats); None elsewhere. Collective."""
    parts = comm.gather((rows, values))
    if comm.rank != 0:
        return None
    all_rows = np.concatenate([p[0] for p in parts])
    all_values = np.concatenate([p[1] for p in parts])
    unique, first = np.unique(all_rows, return_index=True)
    return unique, all_values[first]


def kendall_tau(values: np.ndarray, scores: np.ndarray) -> float | None:
    """tau-b over the photos with an observed value; None with fewer than two or no variation."""
    keep = np.isfinite(values) & np.isfinite(scores)
    if keep.sum() < 2:
        return None
    tau = kendalltau(values[keep], scores[keep]).statistic
    return None if np.isnan(tau) else float(tau)


def split_taus(images: pd.DataFrame, scores: pd.Series, splits: tuple[str, ...]) -> dict[str, float | None]:
    """tau per split; `scores` is indexed by image_id (photos without a score are left out)."""
    out = {}
    for split in splits:
        chosen = images[images["split"] == split]
        score = chosen["image_id"].map(scores).to_numpy(float)
        out[tau_key(split)] = kendall_tau(chosen["value"].to_numpy(float), score)
    return out


def pair_figures(pairs: pd.DataFrame, rows: np.ndarray, scores: np.ndarray) -> dict:
    """RankNet loss and pair accuracy of the scored pairs (rows of pairs.csv; scores (n, 2))."""
    chosen = pairs.loc[rows]
    diff = scores[:, 0] - scores[:, 1]
    target = (chosen["label"].to_numpy() + 1) / 2
    loss = np.logaddexp(0, diff) - target * diff  # BCE with logits, stable
    decided = target != 0.5
    right = (diff > 0) == (target > 0.5)
    return {
        "val_loss": float(loss.mean()) if len(rows) else float("nan"),
        "val_pair_accuracy": float(right[decided].mean()) if decided.any() else None,
        "val_pairs": len(rows),
    }


def predictions(images: pd.DataFrame, rows: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """images.csv's columns plus `score` (empty for photos not scored, e.g. under --max-steps)."""
    out = images[list(IMAGE_COLUMNS)].copy()
    out["score"] = np.nan
    out.loc[rows, "score"] = scores
    return out
