"""The tables HPC centres publish, built from run records with pandas.

- training_table: the PEARL/SCARF training table (seed 001), columns in its order;
- inference_table: the PEARL/SCARF inference table;
- scaling_table / scaling_groups / scaling_list: the Theta/Cooley throughput list (seed 004):
  img/s per node (or rank, or GPU) count, with scaling efficiency against the
  smallest run of the same workload, system and mode.

Records only: no torch here.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

TRAINING_COLUMNS = [
    "index", "system", "num_ranks", "num_gpus", "total_time", "first_epoch_time", "second_epoch_time",
    "first_epoch_train_time", "second_epoch_train_time", "first_epoch_test_time", "second_epoch_test_time",
    "imgs_per_s_second_epoch", "imgs_per_s_first_epoch", "train_accuracy", "test_accuracy", "train_loss",
    "test_loss", "batch_size", "epochs", "learning_rate",
]  # fmt: skip
INFERENCE_COLUMNS = ["index", "system", "num_gpus", "num_ranks", "total", "imgs_per_s"]
SCALING_COLUMNS = [
    "workload",
    "system",
    "mode",
    "num_nodes",
    "num_ranks",
    "num_gpus",
    "runs",
    "imgs_per_s",
    "speedup",
    "scaling_efficiency",
]
SCALE_UNITS = {"nodes": "num_nodes", "ranks": "num_ranks", "gpus": "num_gpus"}


def _ok(records: Iterable[dict]) -> list[dict]:
    return [r for r in records if r.get("status", "ok") == "ok"]


def _epoch(record: dict, i: int, key: str):
    epochs = record.get("epoch_stats") or []
    return epochs[i].get(key) if len(epochs) > i else None


def training_table(records: Iterable[dict]) -> pd.DataFrame:
    rows = []
    for r in _ok(records):
        if r.get("mode") != "train" or not r.get("epoch_stats"):
            continue
        rows.append({
            "index": r["run_id"], "system": r.get("system"), "num_ranks": r.get("num_ranks"),
            "num_gpus": r.get("num_gpus"), "total_time": r.get("total_time"),
            "first_epoch_time": _epoch(r, 0, "wall_time"), "second_epoch_time": _epoch(r, 1, "wall_time"),
            "first_epoch_train_time": _epoch(r, 0, "train_time"),
            "second_epoch_train_time": _epoch(r, 1, "train_time"),
            "first_epoch_test_time": _epoch(r, 0, "test_time"), "second_epoch_test_time": _epoch(r, 1, "test_time"),
            "imgs_per_s_second_epoch": _epoch(r, 1, "train_imgs_per_s"),
            "imgs_per_s_first_epoch": _epoch(r, 0, "train_imgs_per_s"),
            "train_accuracy": r.get("train_accuracy"), "test_accuracy": r.get("test_accuracy"),
            "train_loss": r.get("train_loss"), "test_loss": r.get("test_loss"), "batch_size": r.get("batch_size"),
            "epochs": r.get("epochs"), "learning_rate": r.get("learning_rate"),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=TRAINING_COLUMNS)


def inference_table(records: Iterable[dict]) -> pd.DataFrame:
    rows = [
        {"index": r["run_id"], "system": r.get("system"), "num_gpus": r.get("num_gpus"),
         "num_ranks": r.get("num_ranks"), "total": r["inference"]["total_time"],
         "imgs_per_s": r["inference"]["imgs_per_s"]}
        for r in _ok(records) if r.get("inference")
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=INFERENCE_COLUMNS)


def throughput_of(record: dict) -> tuple[str, float | None]:
    """(kind, img/s) that represents a run in scaling studies: steady-state training
    (the last epoch), else inference, else the iotest read rate."""
    if record.get("mode") == "train" and record.get("epoch_stats"):
        return "train", record["epoch_stats"][-1].get("train_imgs_per_s")
    if record.get("inference"):
        return "inference", record["inference"].get("imgs_per_s")
    if record.get("iotest"):
        return "iotest", record["iotest"].get("imgs_per_s")
    return record.get("mode", "?"), None


def choose_unit(records: list[dict], scale_by: str = "auto") -> str:
    """Nodes when the runs span several node counts (the Theta/Cooley form), else ranks."""
    if scale_by != "auto":
        if scale_by not in SCALE_UNITS:
            raise ValueError(f"scale_by must be auto or one of {sorted(SCALE_UNITS)}")
        return scale_by
    nodes = {r.get("num_nodes") for r in records}
    return "nodes" if len(nodes) > 1 else "ranks"


def scaling_table(records: Iterable[dict], scale_by: str = "auto") -> pd.DataFrame:
    rows = []
    for r in _ok(records):
        kind, rate = throughput_of(r)
        if rate is None:
            continue
        rows.append(
            {
                "workload": r.get("workload"),
                "system": r.get("system"),
                "mode": kind,
                "num_nodes": r.get("num_nodes"),
                "num_ranks": r.get("num_ranks"),
                "num_gpus": r.get("num_gpus"),
                "imgs_per_s": rate,
            }
        )
    if not rows:
        return pd.DataFrame(columns=SCALING_COLUMNS)
    df = pd.DataFrame(rows)
    unit = SCALE_UNITS[choose_unit(rows, scale_by)]
    # Repeats of one configuration count once, by their median throughput.
    keys = ["workload", "system", "mode", "num_nodes", "num_ranks", "num_gpus"]
    df = df.groupby(keys, dropna=False).agg(runs=("imgs_per_s", "size"), imgs_per_s=("imgs_per_s", "median"))
    df = df.reset_index().sort_values(["workload", "system", "mode", unit, "num_ranks"])
    parts = []
    for _, group in df.groupby(["workload", "system", "mode"], sort=False, dropna=False):
        base = group.iloc[0]
        units = group[unit].clip(lower=1)
        group = group.assign(speedup=group["imgs_per_s"] / base["imgs_per_s"])
        group["scaling_efficiency"] = group["speedup"] / (units / max(base[unit], 1))
        parts.append(group)
    out = pd.concat(parts, ignore_index=True)
    out.attrs["unit"] = unit.removeprefix("num_")
    return out[SCALING_COLUMNS]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def scaling_groups(table: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """The Theta/Cooley list as (heading, items): one group per workload, system and mode,
    items like "0.49 Img/s (2 nodes, 102% scaling efficiency from 1 node)"."""
    unit = table.attrs.get("unit", "nodes")
    word = unit.rstrip("s") if unit != "gpus" else "GPU"
    groups = []
    for (workload, system, mode), group in table.groupby(["workload", "system", "mode"], sort=False, dropna=False):
        base_n = int(group.iloc[0]["num_" + unit])
        items = []
        for i, (_, row) in enumerate(group.iterrows()):
            n = int(row["num_" + unit])
            text = f"{row['imgs_per_s']:.4g} Img/s ({_plural(n, word)}"
            if i > 0:  # the first row is the baseline
                text += f", {row['scaling_efficiency'] * 100:.0f}% scaling efficiency from {_plural(base_n, word)}"
            if unit != "ranks":
                text += f", {_plural(int(row['num_ranks']), 'rank')}"
            items.append(text + ")")
        groups.append((f"{workload} on {system} ({mode} throughput, scaling by {unit})", items))
    return groups


def bullet_list(items: Iterable[str], heading: str = "", indent: str = "") -> str:
    """Markdown list lines ("- item"), under "heading:" when one is given."""
    return (f"{heading}:\n" if heading else "") + "".join(f"{indent}- {item}\n" for item in items)


def scaling_list(table: pd.DataFrame) -> str:
    """The Theta/Cooley form: "- 0.49 Img/s (2 nodes, 102% scaling efficiency from 1 node)"."""
    return "\n".join(bullet_list(items, heading, indent=" ") for heading, items in scaling_groups(table)) or "\n"


def to_markdown(df: pd.DataFrame, floatfmt: str = ".10g") -> str:
    if df.empty:
        return "(no runs)\n"
    # A cell with nothing measured (an iotest run has no forward time) reads "-", not "nan".
    cells = df.astype(object).where(df.notna(), None)
    return cells.to_markdown(index=False, floatfmt=floatfmt, missingval="-") + "\n"


def to_csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


RANK_PHASES = ("data_wait", "h2d", "forward", "backward", "optimizer")


def rank_table(records: Iterable[dict], ranks_by_run: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per rank of each run: host, device, train time and mean per-step
    phase times in milliseconds, so a slow rank stands out."""
    rows = []
    for r in _ok(records):
        for entry in ranks_by_run.get(r["run_id"], []):
            row = {
                "index": r["run_id"],
                "rank": entry.get("rank"),
                "host": entry.get("host"),
                "device": entry.get("device"),
                "train_time": sum(e.get("train_time", 0.0) for e in entry.get("epochs", [])) or None,
            }
            for phase in RANK_PHASES:
                mean = (entry.get("phases") or {}).get(phase, {}).get("mean")
                row[f"{phase}_ms"] = mean * 1e3 if mean is not None else None
            rows.append(row)
    columns = ["index", "rank", "host", "device", "train_time", *(f"{p}_ms" for p in RANK_PHASES)]
    return pd.DataFrame(rows, columns=columns)
