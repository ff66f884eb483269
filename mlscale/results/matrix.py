"""The speed-up matrix of `mlscale matrix`: a table and the seed's chart from run records.

Records tagged `matrix:NAME:COMBINATION@Rr` form one panel per NAME (and system and device): the
training throughput of each combination (last epoch, global img/s) and its speed-up over the
panel's plain 1-rank run. Skipped combinations (status "skipped") keep their reason, failed
ones their error. The chart is drawn as text (printed, report.md) and as a PNG (matrix.png with
`report --out` and in report.html), with matplotlib imported only then.

Records only: no torch here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlscale.results.sections import Chart, Section, Table, Text

TAG_PREFIX = "matrix:"
COLUMNS = ["panel", "system", "device", "combination", "ranks", "status", "runs", "imgs_per_s", "speedup", "note"]
BAR = 30  # characters of the longest bar in the text chart


def _throughput(record: dict) -> float | None:
    return (record.get("throughput") or {}).get("train_imgs_per_s")


def matrix_table(records: list[dict]) -> pd.DataFrame:
    """One row per panel and combination (repeats averaged), in the order they ran."""
    rows = []
    for r in records:
        tag = r.get("tag") or ""
        if not tag.startswith(TAG_PREFIX) or ":" not in tag[len(TAG_PREFIX) :]:
            continue
        panel, combo = tag[len(TAG_PREFIX) :].rsplit(":", 1)
        switches, _, ranks = combo.partition("@")
        status = r.get("status", "ok")
        rows.append({"panel": panel, "system": r.get("system"), "device": r.get("device_type") or "",
                     "combination": switches, "ranks": r.get("num_ranks") or int(ranks.rstrip("r") or 1),
                     "status": status, "imgs_per_s": _throughput(r) if status == "ok" else None,
                     "note": "" if status == "ok" else (r.get("error") or status),
                     "started": r.get("started_at")})  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.DataFrame(rows).sort_values("started", kind="stable")
    keys = ["panel", "system", "combination", "ranks"]
    table = frame.groupby(keys, sort=False, dropna=False).agg(
        device=("device", lambda d: next((x for x in d if x), "")),
        status=("status", lambda s: "ok" if (s == "ok").any() else s.iloc[-1]),
        runs=("status", lambda s: int((s == "ok").sum())),
        imgs_per_s=("imgs_per_s", "mean"),
        note=("note", lambda n: next((x for x in n if x), "")),
    ).reset_index()  # fmt: skip
    plain = table[(table["combination"] == "plain") & (table["ranks"] == 1)].set_index(["panel", "system"])
    base = table.apply(lambda row: plain["imgs_per_s"].get((row["panel"], row["system"])), axis=1)
    table["speedup"] = table["imgs_per_s"] / base.astype(float)
    return table[COLUMNS]


def _label(row) -> str:
    return row["combination"] + (f" x{row['ranks']}" if row["ranks"] > 1 else "")


def text_chart(table: pd.DataFrame) -> str:
    """The chart in characters: a bar per combination, speed-up beside it, reasons for the skipped."""
    lines = []
    for (panel, system), group in table.groupby(["panel", "system"], sort=False):
        device = next((d for d in group["device"] if d), "?")
        lines.append(f"{panel} ({system}, {device}): training img/s, speed-up over plain")
        top = group["imgs_per_s"].max()
        width = max(len(_label(row)) for _, row in group.iterrows())
        for _, row in group.iterrows():
            name = _label(row).ljust(width)
            if row["status"] != "ok" or pd.isna(row["imgs_per_s"]):
                lines.append(f"  {name}  {row['status']}: {row['note']}")
                continue
            bar = "#" * max(1, round(BAR * row["imgs_per_s"] / top)) if top else ""
            speed = f"{row['speedup']:.2f}x" if pd.notna(row["speedup"]) else "-"
            lines.append(f"  {name}  {bar.ljust(BAR)}  {row['imgs_per_s']:.4g} img/s  {speed}")
        lines.append("")
    return "\n".join(lines)


def draw_chart(table: pd.DataFrame, path: Path) -> Path:
    """The seed's chart as a PNG: one panel per matrix, a bar per combination labelled with its
    speed-up; skipped and failed combinations as empty bars labelled with their reason."""
    from matplotlib.figure import Figure

    groups = list(table.groupby(["panel", "system"], sort=False))
    fig = Figure(figsize=(9, 0.5 + sum(1.2 + 0.45 * len(g) for _, g in groups)))
    axes = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
    for ax, ((panel, system), group) in zip(axes, groups):
        labels = [_label(row) for _, row in group.iterrows()][::-1]
        values = group["imgs_per_s"].fillna(0).to_numpy()[::-1]
        ok = (group["status"] == "ok").to_numpy()[::-1]
        ax.barh(labels, values, color=["#4c72b0" if o else "#dddddd" for o in ok])
        top = values.max() or 1.0
        for y, (_, row) in zip(range(len(group) - 1, -1, -1), group.iterrows()):
            if row["status"] == "ok" and pd.notna(row["imgs_per_s"]):
                speed = f"{row['speedup']:.2f}x" if pd.notna(row["speedup"]) else ""
                ax.text(row["imgs_per_s"] + top * 0.01, y, f"{row['imgs_per_s']:.4g}  {speed}", va="center", fontsize=8)
            else:
                ax.text(top * 0.01, y, f"{row['status']}: {row['note']}"[:110], va="center", fontsize=7, color="#a33")
        ax.set_xlim(0, top * 1.3)
        ax.set_title(f"{panel} ({system}, {next((d for d in group['device'] if d), '?')})", fontsize=10)
        ax.set_xlabel("training img/s (speed-up over plain)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def matrix_section(records: list[dict]) -> Section | None:
    """The report's section, or None when no record belongs to a matrix."""
    table = matrix_table(records)
    if table.empty:
        return None
    about = Text("Throughput of the last training epoch per combination of switches (`mlscale matrix`); "
                 "speed-up against the plain 1-rank run of the same panel.")  # fmt: skip
    chart = Chart(text_chart(table), "matrix.png", "speed-up matrix", lambda path: draw_chart(table, path))
    return Section("Speed-up matrix", [about, chart, Table(table, floatfmt=".4g")])
