"""cloud-mask's stage table in the seed's form (seed 001, "Timings"):

    | Stage | Time (s) |
    | Convert to HDF (Train) | Convert to HDF (Validation) | SST Comparison | **Total** |

from the stage records of `mlscale cloud-mask convert|sst --record DIR`, one row per record, and
per system a Total row summing the latest record of each stage. Beside the seed's columns: the
system, ranks, products converted (or match-ups compared) and seconds per product.
Reads records only (no framework).
"""

from __future__ import annotations

import pandas as pd

from mlscale.results.seed_tables import SeedTable

COLUMNS = ["Stage", "Time (s)", "system", "num_ranks", "items", "s/item", "index"]
STAGE_NAMES = {"train": "Convert to HDF (Train)", "validation": "Convert to HDF (Validation)"}


def stage_name(record: dict) -> str:
    if record["mode"] == "sst":
        return "SST Comparison"
    return STAGE_NAMES.get(record["stage"].get("split", "train"), "Convert to HDF")


def stage_table(records: list[dict]) -> pd.DataFrame:
    rows = []
    for r in sorted(records, key=lambda r: r.get("started_at") or ""):
        stage = r.get("stage")
        if r.get("mode") not in ("convert", "sst") or not stage:
            continue
        items = stage.get("products") if r["mode"] == "convert" else stage.get("selected")
        rows.append({
            "Stage": stage_name(r), "Time (s)": stage.get("time"), "system": r.get("system"),
            "num_ranks": r.get("num_ranks"), "items": items,
            "s/item": stage["time"] / items if items and stage.get("time") is not None else None,
            "index": r["run_id"],
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS)
    totals = []
    for system, group in table.groupby("system", sort=False):
        latest = group.groupby("Stage", sort=False).tail(1)
        totals.append({"Stage": "**Total**", "Time (s)": latest["Time (s)"].sum(), "system": system})
    return pd.concat([table, pd.DataFrame(totals, columns=COLUMNS)], ignore_index=True) if totals else table


class CloudMaskStages(SeedTable):
    name = "cloud_mask_stages"
    title = "cloud-mask stages (seed 001 form)"
    workload = "cloud-mask"

    @classmethod
    def build(cls, records: list[dict]) -> pd.DataFrame:
        return stage_table(records)
