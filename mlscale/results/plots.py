"""PNG plots for the scaling report (matplotlib, Agg canvas; no display needed).

Every function draws one figure from the tables of `mlscale.results.scaling`
(or a `Projection`) and writes it to `path`. Figures use the object API
(`matplotlib.figure.Figure`), so nothing touches pyplot's global state.

Never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, PercentFormatter

from mlscale.results.scaling import PHASES

PHASE_COLORS = {
    "data_wait": "#9e9e9e",
    "h2d": "#c7a76c",
    "forward": "#4c72b0",
    "backward": "#dd8452",
    "optimizer": "#55a868",
}
DPI = 110


def _log2_axis(ax, values) -> None:
    """Rank/node counts on a log2 axis, labelled with the counts themselves."""
    ax.set_xscale("log", base=2)
    ticks = sorted({float(v) for v in values if v > 0})
    if len(ticks) > 14:
        ticks = [2.0**i for i in range(int(np.floor(np.log2(min(ticks)))), int(np.ceil(np.log2(max(ticks)))) + 1)]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v)}" if v >= 1 else f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _log_y(ax) -> None:
    """Log y axis with plain numbers (0.2, 300, 2000) rather than powers of ten."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    # Label only the 2s, 3s and 5s between decades, so wide ranges stay legible.
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:e}"[0] in "235" else ""))
    ax.tick_params(axis="y", which="minor", labelsize=7)


def _log_log_axes(ax, ranks, ylabel: str, title: str) -> None:
    """Ranks on a log2 x axis, a log y axis, labels, grid and legend: a quantity against ranks."""
    _log2_axis(ax, ranks)
    _log_y(ax)
    ax.set_xlabel("ranks")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _label(workload: str, system: str, kind: str = "") -> str:
    return f"{workload} on {system}" + (f" ({kind})" if kind else "")


def _grouped_positions(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[float], list[str], str]:
    """Runs ordered by workload/system with x positions (a gap between groups), short
    tick labels, and a title suffix naming what the groups are."""
    groups = list(runs.groupby(["workload", "system"], sort=True))
    x, labels, pos = [], [], 0.0
    for (workload, system), g in groups:
        for ranks in g["ranks"]:
            x.append(pos)
            if len(groups) == 1:
                labels.append(f"{int(ranks)} rank" + ("s" if ranks != 1 else ""))
            elif runs["workload"].nunique() == 1:
                labels.append(f"{int(ranks)} rk\n{system}")
            else:
                labels.append(f"{int(ranks)} rk\n{workload}\n{system}")
            pos += 1
        pos += 0.6
    ordered = pd.concat([g for _, g in groups]) if groups else runs
    what = ", ".join(sorted({f"{w}" for (w, _), _ in groups}))
    if len(groups) == 1:
        what += f" on {groups[0][0][1]}"
    return ordered, x, labels, what


def throughput(series: list[tuple[str, str, str, pd.DataFrame]], path: Path) -> Path:
    """Training images/s against ranks, each series with its ideal (linear) line."""
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    all_ranks = []
    for i, (workload, system, kind, s) in enumerate(series):
        color = f"C{i % 10}"
        ax.plot(s["ranks"], s["imgs_per_s"], "o-", color=color, lw=2, label=_label(workload, system, kind))
        ax.plot(s["ranks"], s["imgs_per_s"].iloc[0] * s["ideal"], "--", color=color, lw=1, alpha=0.7)
        all_ranks += list(s["ranks"])
    ax.plot([], [], "k--", lw=1, label="ideal (linear from smallest run)")
    _log_log_axes(ax, all_ranks, "training throughput (samples/s, log scale)", "Throughput against ranks")
    return _save(fig, path)


def efficiency(series: list[tuple[str, str, str, pd.DataFrame]], path: Path) -> Path:
    """Scaling efficiency, weak and strong side by side."""
    kinds = [k for k in ("weak", "strong") if any(s[2] == k for s in series)]
    fig = Figure(figsize=(6.0 * len(kinds), 4.5))
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, kind in zip(axes, kinds, strict=True):
        ranks = []
        for i, (workload, system, k, s) in enumerate(series):
            if k != kind:
                continue
            ax.plot(s["ranks"], s["efficiency"], "o-", color=f"C{i % 10}", lw=2, label=_label(workload, system))
            for x, y in zip(s["ranks"], s["efficiency"], strict=True):
                ax.annotate(f"{y:.0%}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
            ranks += list(s["ranks"])
        ax.axhline(1.0, color="k", ls="--", lw=1, label="ideal")
        _log2_axis(ax, ranks)
        ax.set_ylim(0, max(1.15, ax.get_ylim()[1]))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("ranks")
        ax.set_ylabel("efficiency vs smallest run")
        fixed = "batch per rank" if kind == "weak" else "global batch"
        ax.set_title(f"{kind.capitalize()} scaling ({fixed} fixed)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    return _save(fig, path)


def time_to_solution(series: list[tuple[str, str, str, pd.DataFrame]], path: Path) -> Path:
    """Total run time against ranks, one line per scaling series."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    ranks = []
    for i, (workload, system, kind, s) in enumerate(series):
        s = s.dropna(subset=["total_time"])
        ax.plot(s["ranks"], s["total_time"], "o-", color=f"C{i % 10}", lw=2, label=_label(workload, system, kind))
        for x, y in zip(s["ranks"], s["total_time"], strict=True):
            ax.annotate(f"{y:.3g} s", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ranks += list(s["ranks"])
    _log_log_axes(ax, ranks, "time to solution (s, log scale)", "Time to solution (whole run, slowest rank)")
    return _save(fig, path)


def phase_breakdown(frame: pd.DataFrame, path: Path) -> Path:
    """Per-step time split into phases, one stacked bar per run (grouped by workload/system)."""
    runs, x, labels, what = _grouped_positions(frame.dropna(subset=list(PHASES), how="all"))
    fig = Figure(figsize=(max(6.0, 1.0 + 0.9 * len(runs)), 4.8))
    ax = fig.add_subplot()
    bottoms = np.zeros(len(x))
    for phase in PHASES:
        ms = np.nan_to_num(runs[phase].to_numpy(dtype=float)) * 1e3
        ax.bar(x, ms, bottom=bottoms, color=PHASE_COLORS[phase], label=phase, width=0.75)
        bottoms += ms
    for xi, total in zip(x, bottoms, strict=True):
        ax.annotate(f"{total:.3g} ms", (xi, total), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("time per training step (ms, mean over ranks)")
    ax.set_title(f"Where a step's time goes: {what}")
    ax.legend(fontsize=8, ncol=len(PHASES), loc="upper center", bbox_to_anchor=(0.5, -0.15))
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def stragglers(table: pd.DataFrame, summary: dict, title: str, path: Path) -> Path:
    """Per-rank time per step by phase; the slowest rank is marked.

    Up to 64 ranks: stacked horizontal bars. More: a heatmap of each phase's
    time relative to the median rank, which stays readable at any scale.
    """
    phases = [p for p in PHASES if p in table.columns]
    if len(table) <= 64:
        fig = Figure(figsize=(8.0, 1.6 + 0.28 * len(table)))
        ax = fig.add_subplot()
        left = np.zeros(len(table))
        y = np.arange(len(table))
        for phase in phases:
            ms = table[phase].fillna(0).to_numpy() * 1e3
            ax.barh(y, ms, left=left, color=PHASE_COLORS[phase], label=phase, height=0.8)
            left += ms
        median_ms = summary["median_step_s"] * 1e3
        ax.axvline(median_ms, color="k", ls="--", lw=1, label=f"median rank ({median_ms:.3g} ms)")
        ax.set_yticks(y)
        ax.set_yticklabels(
            [f"rank {r} ({h})" if h else f"rank {r}" for r, h in zip(table.index, table["host"], strict=True)],
            fontsize=8,
        )
        ax.invert_yaxis()
        slow = list(table.index).index(summary["rank"])
        ax.get_yticklabels()[slow].set_color("C3")
        ax.get_yticklabels()[slow].set_fontweight("bold")
        ax.annotate(
            f"{summary['slower_by']:+.0%} ({summary['phase']})",
            (left[slow], slow),
            textcoords="offset points",
            xytext=(4, -3),
            fontsize=8,
            color="C3",
        )
        ax.set_xlabel("mean time per training step (ms)")
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 1.0 / (4 + len(table))))
        ax.set_xlim(0, left.max() * 1.2)
    else:
        rel = table[phases].div(table[phases].median()) - 1
        fig = Figure(figsize=(8.0, 5.0))
        ax = fig.add_subplot()
        limit = max(0.05, float(np.nanmax(np.abs(rel.to_numpy()))))
        image = ax.imshow(
            rel.T.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest"
        )
        ax.set_yticks(range(len(phases)))
        ax.set_yticklabels(phases)
        cbar = fig.colorbar(image, ax=ax)
        cbar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        cbar.set_label("time vs median rank")
        slow = list(table.index).index(summary["rank"])
        bottom = len(phases) - 0.5  # imshow puts row 0 at the top
        ax.annotate(
            f"rank {summary['rank']}",
            (slow, bottom),
            xytext=(slow, bottom + 0.9),
            ha="center",
            fontsize=8,
            color="C3",
            arrowprops={"arrowstyle": "->", "color": "C3"},
            annotation_clip=False,
        )
        ax.set_xlabel("rank", labelpad=16)
    ax.set_title(
        title + f"\nslowest: rank {summary['rank']}, {summary['slower_by']:+.1%} vs median, "
        f"mostly in {summary['phase']}",
        fontsize=10,
    )
    return _save(fig, path)


def epochs(frame: pd.DataFrame, path: Path) -> Path:
    """First against second epoch wall time per run (the first includes warm-up and caching)."""
    runs, x, labels, what = _grouped_positions(frame.dropna(subset=["first_epoch_time", "second_epoch_time"]))
    fig = Figure(figsize=(max(6.0, 1.0 + 0.9 * len(runs)), 4.5))
    ax = fig.add_subplot()
    x = np.array(x)
    ax.bar(x - 0.2, runs["first_epoch_time"], width=0.4, label="first epoch", color="#8172b3")
    ax.bar(x + 0.2, runs["second_epoch_time"], width=0.4, label="second epoch", color="#64b5cd")
    for xi, a, b in zip(x, runs["first_epoch_time"], runs["second_epoch_time"], strict=True):
        ax.annotate(f"×{a / b:.2f}", (xi - 0.2, a), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("epoch wall time (s)")
    ax.set_title(f"First vs second epoch: {what} (label: first / second)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def systems(frame: pd.DataFrame, workload: str, path: Path) -> Path:
    """One workload on several systems: throughput per rank count, systems side by side."""
    runs = frame[frame["workload"] == workload].dropna(subset=["imgs_per_s"])
    table = runs.pivot_table(index="ranks", columns="system", values="imgs_per_s", aggfunc="last")
    fig = Figure(figsize=(max(6.0, 1.2 * len(table) * max(1, len(table.columns)) / 2), 4.5))
    ax = fig.add_subplot()
    width = 0.8 / len(table.columns)
    x = np.arange(len(table))
    for i, system in enumerate(table.columns):
        values = table[system].to_numpy()
        bars = ax.bar(x + (i - (len(table.columns) - 1) / 2) * width, values, width=width, label=system)
        ax.bar_label(bars, labels=[f"{v:.3g}" if np.isfinite(v) else "" for v in values], fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r} ranks" for r in table.index])
    ax.set_ylabel("training throughput (samples/s)")
    ax.set_title(f"{workload}: systems side by side")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def projection(proj, path: Path) -> Path:
    """Projected throughput and efficiency to many nodes, measured points beside them."""
    t = proj.table
    g = proj.network.gpus_per_node
    fig = Figure(figsize=(12.0, 4.6))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(t["nodes"], t["imgs_per_s"], "-", color="C0", lw=2, label="projected (α–β ring allreduce)")
    ideal = t["ranks"] * proj.batch_size / proj.compute_s
    ax1.plot(t["nodes"], ideal, "k--", lw=1, label="ideal (no communication)")
    m = proj.measured
    ax1.plot(m["ranks"] / g, m["imgs_per_s"], "o", color="C3", ms=7, label=f"measured ({g} ranks = 1 node)")
    ax1.set_yscale("log")
    ax1.yaxis.set_major_locator(LogLocator(base=10))
    ax1.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax1.set_ylabel("training throughput (samples/s, log scale)")
    ax1.set_title(f"{proj.workload}@{proj.system}: projected weak scaling")
    ax1.legend(fontsize=8, loc="upper left")
    ax2.plot(t["nodes"], t["efficiency"], "-", color="C0", lw=2, label="projected weak-scaling efficiency")
    if "strong_efficiency" in t:
        ax2.plot(t["nodes"], t["strong_efficiency"], "-", color="C2", lw=2, label="projected strong-scaling eff.")
    measured_eff = proj.compute_s / m["step_time"]
    ax2.plot(m["ranks"] / g, measured_eff, "o", color="C3", ms=7, label="measured")
    ax2.axhline(1.0, color="k", ls="--", lw=1)
    ax2.set_ylim(0, max(1.1, float(measured_eff.max()) + 0.1))
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax2.set_ylabel("efficiency")
    ax2.set_title(
        f"network {proj.network.bandwidth_gbps:g} Gbit/s, {proj.network.latency_us:g} µs, {g} GPUs/node", fontsize=10
    )
    for ax in (ax1, ax2):
        _log2_axis(ax, list(t["nodes"]) + list(m["ranks"] / g))
        ax.set_xlim(min(0.8 * min(m["ranks"] / g), 0.8), t["nodes"].max() * 1.25)
        ax.set_xlabel("nodes")
        ax.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=8, loc="lower left")
    return _save(fig, path)
