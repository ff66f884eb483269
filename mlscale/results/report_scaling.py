"""The scaling study's sections of the report: plots, stragglers, systems side by side,
projection, hardware monitors.

`scaling_sections(records, out, network)` draws every plot the records allow into the
folder `out` (a section is left out when its data is missing: no multi-rank run, no second
epoch, one system only...) and returns the sections that show them. They follow the
tables of mlscale.results.report in `report --html DIR`.

Never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlscale.errors import UserError
from mlscale.results import plots, projection, scaling
from mlscale.results.sections import Bullets, Figure, Section, Table, Text

MAX_STRAGGLER_PLOTS = 8


def scaling_sections(records: list[dict], out: Path, network: projection.Network) -> list[Section]:
    """The sections of the scaling study of `records`, their plots drawn into `out`."""
    frame = scaling.runs_frame(records)
    series = scaling.scaling_series(frame)
    sections = [_runs_section(frame)]
    if frame.empty:
        return sections
    if series:
        sections.append(
            _plot_section(
                "Throughput against ranks",
                "Training throughput of the last epoch (global samples / slowest rank's time); dashed: "
                "linear scaling from each series' smallest run.",
                Figure(plots.throughput(series, out / "throughput.png").name, "throughput vs ranks"),
            )
        )
        sections.append(_efficiency_section(series, out))
        sections.append(
            _plot_section(
                "Time to solution",
                "Total wall time of each run (set-up, all epochs, evaluation), slowest rank.",
                Figure(plots.time_to_solution(series, out / "time_to_solution.png").name, "time to solution"),
            )
        )
    if frame[list(scaling.PHASES)].notna().any().any():
        sections.append(_phase_section(frame, out))
    stragglers = _straggler_section(frame, out)
    if stragglers:
        sections.append(stragglers)
    if frame["second_epoch_time"].notna().any():
        sections.append(
            _plot_section(
                "First against second epoch",
                "The first epoch carries warm-up (allocator, cuDNN autotuning, data caching); the second "
                "is the steady rate the seed tables quote.",
                Figure(plots.epochs(frame, out / "epochs.png").name, "first vs second epoch"),
            )
        )
    for workload, runs in frame.groupby("workload"):
        if runs["system"].nunique() > 1:
            by_system = runs.pivot_table(index="ranks", columns="system", values="imgs_per_s").reset_index()
            figure = plots.systems(frame, workload, out / f"systems_{_slug(workload)}.png")
            sections.append(
                _plot_section(
                    f"{workload} on several systems",
                    f"Systems: {', '.join(sorted(runs['system'].unique()))}.",
                    Figure(figure.name, f"{workload} by system"),
                    Table(by_system, "throughput (samples/s) by system and ranks", ".4g"),
                )
            )
    sections.extend(_projection_sections(records, frame, out, network))
    monitors = _monitor_section(records)
    if monitors:
        sections.append(monitors)
    return sections


def _plot_section(title: str, text: str, figure: Figure, *tables: Table) -> Section:
    return Section(title, [Text(text), figure, *tables])


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))


def _runs_section(frame: pd.DataFrame) -> Section:
    cols = ["run_id", "workload", "system", "ranks", "nodes", "gpus", "batch_size", "imgs_per_s", "total_time"]
    if frame.empty:
        return Section("Runs", [Text("No successful runs among the records given.")])
    return Section("Runs", [Text(f"{len(frame)} successful run(s)."), Table(frame[cols], "runs", ".4g")])


def _efficiency_section(series, out: Path) -> Section:
    rows = []
    for workload, system, kind, s in series:
        for r in s.itertuples():
            rows.append(
                {
                    "workload": workload,
                    "system": system,
                    "scaling": kind,
                    "ranks": r.ranks,
                    "imgs_per_s": r.imgs_per_s,
                    "speedup": r.speedup,
                    "efficiency": r.efficiency,
                }
            )
    text = [
        Text(
            "Efficiency = speed-up over the smallest run / increase in ranks. Weak scaling keeps the batch per "
            "rank fixed (more work per step as ranks grow); strong scaling keeps the global batch fixed."
        )
    ]
    for workload, system, kind, s in series:
        last = s.iloc[-1]
        text.append(
            Text(
                f"{workload} on {system} ({kind}): {last['imgs_per_s']:.3g} samples/s at {int(last['ranks'])} "
                f"ranks, {last['efficiency']:.0%} scaling efficiency from {int(s.iloc[0]['ranks'])} rank(s)."
            )
        )
    return Section(
        "Scaling efficiency",
        [
            *text,
            Figure(plots.efficiency(series, out / "efficiency.png").name, "scaling efficiency"),
            Table(pd.DataFrame(rows), "efficiency", ".3g"),
        ],
    )


def _phase_section(frame: pd.DataFrame, out: Path) -> Section:
    phases = [p for p in scaling.PHASES if frame[p].notna().any()]
    table = frame[["workload", "system", "ranks", *phases]].copy()
    table[phases] = table[phases] * 1e3
    return _plot_section(
        "Per-phase time per step",
        "Mean time per training step in each phase (ms, averaged over ranks): waiting for data, "
        "host-to-device copy, forward, backward, optimizer step (with the gradient allreduce where the "
        "backend does not overlap it with backward).",
        Figure(plots.phase_breakdown(frame, out / "phases.png").name, "phase breakdown"),
        Table(table, "ms per step by phase", ".3g"),
    )


def _straggler_section(frame: pd.DataFrame, out: Path) -> Section | None:
    multi = frame[frame["ranks"] > 1].sort_values("ranks", ascending=False)
    rows, figures = [], []
    for r in multi.itertuples():
        table = scaling.rank_phase_table(scaling.load_rank_lines(r.run_dir))
        summary = scaling.straggler_summary(table)
        if not summary:
            continue
        rows.append(
            {
                "run_id": r.run_id,
                "workload": r.workload,
                "system": r.system,
                "ranks": r.ranks,
                "slowest_rank": summary["rank"],
                "host": summary["host"],
                "slower_than_median": f"{summary['slower_by']:+.1%}",
                "phase": summary["phase"],
                "phase_slower_by": f"{summary['phase_slower_by']:+.1%}",
            }
        )
        if len(figures) < MAX_STRAGGLER_PLOTS:
            name = f"stragglers_{_slug(r.run_id)}.png"
            title = f"{r.workload} on {r.system}, {r.ranks} ranks ({r.run_id})"
            figures.append(Figure(plots.stragglers(table, summary, title, out / name).name, title))
    if not rows:
        return None
    text = Text(
        "Each rank's mean time per step by phase (from ranks.jsonl). The slowest rank sets the pace "
        "of every synchronous step; the phase where it loses most points at the cause (data_wait: "
        "I/O or loader; forward/backward: a slower device or a noisy neighbour; optimizer: waiting "
        "in the allreduce for others)."
    )
    return Section(
        "Stragglers: the per-rank view", [text, *figures, Table(pd.DataFrame(rows), "slowest rank per run", ".4g")]
    )


def _projection_sections(records, frame: pd.DataFrame, out: Path, network: projection.Network) -> list[Section]:
    sections = []
    for (workload, system), runs in frame.groupby(["workload", "system"]):
        if 1 not in set(runs["ranks"]) or runs["ranks"].nunique() < 2:
            continue
        batch = runs.loc[runs["ranks"] == 1, "batch_size"].iloc[0]
        chosen = [
            r
            for r in records
            if r.get("workload") == workload
            and (r.get("system") or "") == system
            and r.get("batch_size") == batch
            and r.get("status", "ok") == "ok"
        ]
        try:
            proj = projection.project(chosen, network)
        except UserError as err:
            sections.append(Section(f"Projection: {workload} on {system}", [Text(f"No projection: {err}")]))
            continue
        name = f"projection_{_slug(workload)}_{_slug(system)}.png"
        table = proj.table[["nodes", "ranks", "allreduce_s", "step_time", "imgs_per_s", "efficiency"]]
        sections.append(
            Section(
                f"Projection: {workload} on {system} to {int(proj.table['nodes'].max())} nodes",
                [
                    Text(
                        "Ring-allreduce α–β model fitted to the measured runs (dots). A projection is a model, "
                        "not a measurement: overlap of communication with backward, hierarchical (intra-node "
                        "then inter-node) allreduce and congestion are not modelled."
                    ),
                    Bullets(proj.assumptions, "Assumptions"),
                    Figure(plots.projection(proj, out / name).name, "projection"),
                    Table(table, "projected weak scaling", ".4g"),
                ],
            )
        )
    return sections


def _monitor_section(records: list[dict]) -> Section | None:
    rows = []
    for r in records:
        mon = r.get("monitor")
        if not mon:
            continue
        rows.append(
            {
                "run_id": r.get("run_id"),
                "ranks": r.get("num_ranks"),
                **mon,
                "energy_per_sample_j": r.get("energy_per_sample_j"),
            }
        )
    if not rows:
        return None
    text = Text(
        "Sampled in a background thread on every rank (psutil; NVML where a GPU is present). "
        "Empty cells (- in report.md): the sensor is absent on that machine (never read as zero)."
    )
    caption = "monitor summary (means over samples and ranks; max for memory)"
    return Section("Hardware monitors", [text, Table(pd.DataFrame(rows), caption, ".4g")])
