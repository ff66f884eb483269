"""flow-rank's ranking table in the seed's terms (seed 003: Kendall's tau between score and observed flow,
median 0.75 during the annotation period): one row per training run, the kept (best-validation)
model's tau on val, test-in (annotation period, never annotated) and test-out (after it), and, when the
run inferred, the images/s of scoring every photo. Reads records only (no torch)."""

from __future__ import annotations

import pandas as pd

from mlscale.results.seed_tables import SeedTable

COLUMNS = ["run_id", "system", "num_ranks", "backbone", "input_size", "epochs", "best_epoch", "best_val_loss",
           "tau_val", "tau_test_in", "tau_test_out", "inference_imgs_per_s"]  # fmt: skip


def ranking_table(records: list[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        epochs = r.get("epoch_stats") or []
        if r.get("mode") != "train" or not epochs:
            continue
        last = epochs[-1].get("test_metrics", {})
        info = r.get("workload_info", {})
        rows.append({
            "run_id": r.get("run_id"), "system": r.get("system"), "num_ranks": r.get("num_ranks"),
            "backbone": info.get("backbone"), "input_size": info.get("input_size"), "epochs": len(epochs),
            "best_epoch": last.get("best_epoch"), "best_val_loss": last.get("best_val_loss"),
            **{f"tau_{s}": last.get(f"best_tau_{s}") for s in ("val", "test_in", "test_out")},
            "inference_imgs_per_s": (r.get("inference") or {}).get("imgs_per_s"),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


class FlowRanking(SeedTable):
    name = "flow_rank_tau"
    title = "flow-rank: Kendall's tau of the kept model per split (seed 003 form)"
    workload = "flow-rank"

    @classmethod
    def build(cls, records: list[dict]) -> pd.DataFrame:
        return ranking_table(records)
