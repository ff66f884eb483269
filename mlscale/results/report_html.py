"""The scaling report: a directory with report.md, report.html and the PNG plots.

`build_report(records, out_dir)` draws every plot the records allow (a section
is left out when its data is missing: no multi-rank run, no second epoch, one
system only...), renders the same sections as Markdown (plots alongside) and as
self-contained HTML (plots embedded as data URIs), and moves the finished
directory into place in one rename, so a reader never sees half a report.

Never imports torch.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import pandas as pd

from mlscale.errors import UserError
from mlscale.results import plots, projection, scaling, tables

TEMPLATES = Path(__file__).with_name("templates")
MAX_STRAGGLER_PLOTS = 8


@dataclass
class Figure:
    file: str
    caption: str


@dataclass
class Table:
    caption: str
    frame: pd.DataFrame
    floatfmt: str = ".4g"

    def markdown(self) -> str:
        return self.frame.to_markdown(index=False, floatfmt=self.floatfmt)

    def html(self) -> str:
        fmt = "{:" + self.floatfmt + "}"
        return self.frame.to_html(index=False, border=0, classes="data", float_format=fmt.format, na_rep="")


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    lists: list[tuple[str, list[str]]] = field(default_factory=list)  # (caption, items)


def build_report(
    records: list[dict],
    out_dir: str | Path,
    *,
    network: projection.Network | None = None,
    title: str = "mlscale scaling report",
) -> Path:
    """Write the report directory `out_dir`; returns the path of its report.html."""
    if not records:
        raise UserError("report: no run records given")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        sections = _sections(records, tmp, network or projection.Network())
        context = {
            "title": title,
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "num_runs": len(records),
            "sections": sections,
        }
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=jinja2.select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters["data_uri"] = lambda name: (
            "data:image/png;base64," + base64.b64encode((tmp / name).read_bytes()).decode("ascii")
        )
        (tmp / "report.md").write_text(env.get_template("report.md.j2").render(context))
        (tmp / "report.html").write_text(env.get_template("report.html.j2").render(context))
        tmp.chmod(0o755)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "report.html"


def _sections(records: list[dict], out: Path, network: projection.Network) -> list[Section]:
    frame = scaling.runs_frame(records)
    series = scaling.scaling_series(frame)
    sections = [_runs_section(frame), *_failed_section(records), *_seed_table_sections(records)]
    if frame.empty:
        return sections
    if series:
        sections.append(
            Section(
                "Throughput against ranks",
                [
                    "Training throughput of the last epoch (global samples / slowest rank's time); dashed: "
                    "linear scaling from each series' smallest run."
                ],
                [Figure(plots.throughput(series, out / "throughput.png").name, "throughput vs ranks")],
            )
        )
        sections.append(_efficiency_section(series, out))
        sections.append(
            Section(
                "Time to solution",
                ["Total wall time of each run (set-up, all epochs, evaluation), slowest rank."],
                [Figure(plots.time_to_solution(series, out / "time_to_solution.png").name, "time to solution")],
            )
        )
    if frame[list(scaling.PHASES)].notna().any().any():
        sections.append(_phase_section(frame, out))
    stragglers = _straggler_section(frame, out)
    if stragglers:
        sections.append(stragglers)
    if frame["second_epoch_time"].notna().any():
        sections.append(
            Section(
                "First against second epoch",
                [
                    "The first epoch carries warm-up (allocator, cuDNN autotuning, data caching); the second "
                    "is the steady rate the seed tables quote."
                ],
                [Figure(plots.epochs(frame, out / "epochs.png").name, "first vs second epoch")],
            )
        )
    for workload, runs in frame.groupby("workload"):
        if runs["system"].nunique() > 1:
            name = f"systems_{_slug(workload)}.png"
            sections.append(
                Section(
                    f"{workload} on several systems",
                    [f"Systems: {', '.join(sorted(runs['system'].unique()))}."],
                    [Figure(plots.systems(frame, workload, out / name).name, f"{workload} by system")],
                    [
                        Table(
                            "throughput (samples/s) by system and ranks",
                            runs.pivot_table(index="ranks", columns="system", values="imgs_per_s").reset_index(),
                        )
                    ],
                )
            )
    sections.extend(_projection_sections(records, frame, out, network))
    monitors = _monitor_section(records)
    if monitors:
        sections.append(monitors)
    return sections


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))


def _runs_section(frame: pd.DataFrame) -> Section:
    cols = ["run_id", "workload", "system", "ranks", "nodes", "gpus", "batch_size", "imgs_per_s", "total_time"]
    if frame.empty:
        return Section("Runs", ["No successful runs among the records given."])
    return Section("Runs", [f"{len(frame)} successful run(s)."], tables=[Table("runs", frame[cols])])


def _failed_section(records: list[dict]) -> list[Section]:
    failed = [r for r in records if r.get("status", "ok") != "ok"]
    if not failed:
        return []
    rows = [{"run_id": r.get("run_id"), "workload": r.get("workload"), "system": r.get("system"),
             "ranks": r.get("num_ranks"), "error": r.get("error")} for r in failed]  # fmt: skip
    return [
        Section(
            "Failed runs", ["Left out of every plot and table below."], tables=[Table("failed", pd.DataFrame(rows))]
        )
    ]


def _seed_table_sections(records: list[dict]) -> list[Section]:
    """The PEARL/SCARF training and inference tables and the Theta/Cooley scaling list."""
    out = []
    training, inference = tables.training_table(records), tables.inference_table(records)
    if not training.empty:
        out.append(Section("Training table", tables=[Table("training (PEARL/SCARF form)", training, ".10g")]))
    if not inference.empty:
        out.append(Section("Inference table", tables=[Table("inference (PEARL/SCARF form)", inference, ".10g")]))
    scaling_table = tables.scaling_table(records)
    if not scaling_table.empty:
        lists: list[tuple[str, list[str]]] = []
        for line in tables.scaling_list(scaling_table).splitlines():
            if line.startswith(" - ") and lists:
                lists[-1][1].append(line[3:])
            elif line.strip():
                lists.append((line.rstrip(":"), []))
        out.append(
            Section(
                "Scaling list",
                tables=[Table("scaling (Theta/Cooley form)", scaling_table, ".4g")],
                lists=lists,
            )
        )
    return out


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
        "Efficiency = speed-up over the smallest run / increase in ranks. Weak scaling keeps the batch per "
        "rank fixed (more work per step as ranks grow); strong scaling keeps the global batch fixed."
    ]
    for workload, system, kind, s in series:
        last = s.iloc[-1]
        text.append(
            f"{workload} on {system} ({kind}): {last['imgs_per_s']:.3g} samples/s at {int(last['ranks'])} "
            f"ranks, {last['efficiency']:.0%} scaling efficiency from {int(s.iloc[0]['ranks'])} rank(s)."
        )
    return Section(
        "Scaling efficiency",
        text,
        [Figure(plots.efficiency(series, out / "efficiency.png").name, "scaling efficiency")],
        [Table("efficiency", pd.DataFrame(rows), floatfmt=".3g")],
    )


def _phase_section(frame: pd.DataFrame, out: Path) -> Section:
    phases = [p for p in scaling.PHASES if frame[p].notna().any()]
    table = frame[["workload", "system", "ranks", *phases]].copy()
    table[phases] = table[phases] * 1e3
    return Section(
        "Per-phase time per step",
        [
            "Mean time per training step in each phase (ms, averaged over ranks): waiting for data, "
            "host-to-device copy, forward, backward, optimizer step (with the gradient allreduce where the "
            "backend does not overlap it with backward)."
        ],
        [Figure(plots.phase_breakdown(frame, out / "phases.png").name, "phase breakdown")],
        [Table("ms per step by phase", table, floatfmt=".3g")],
    )


def _straggler_section(frame: pd.DataFrame, out: Path) -> Section | None:
    multi = frame[frame["ranks"] > 1].sort_values("ranks", ascending=False)
    sec = Section(
        "Stragglers: the per-rank view",
        [
            "Each rank's mean time per step by phase (from ranks.jsonl). The slowest rank sets the pace "
            "of every synchronous step; the phase where it loses most points at the cause (data_wait: "
            "I/O or loader; forward/backward: a slower device or a noisy neighbour; optimizer: waiting "
            "in the allreduce for others)."
        ],
    )
    rows = []
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
        if len(sec.figures) < MAX_STRAGGLER_PLOTS:
            name = f"stragglers_{_slug(r.run_id)}.png"
            title = f"{r.workload} on {r.system}, {r.ranks} ranks ({r.run_id})"
            sec.figures.append(Figure(plots.stragglers(table, summary, title, out / name).name, title))
    if not rows:
        return None
    sec.tables.append(Table("slowest rank per run", pd.DataFrame(rows)))
    return sec


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
            sections.append(Section(f"Projection: {workload} on {system}", [f"No projection: {err}"]))
            continue
        name = f"projection_{_slug(workload)}_{_slug(system)}.png"
        table = proj.table[["nodes", "ranks", "allreduce_s", "step_time", "imgs_per_s", "efficiency"]]
        sections.append(
            Section(
                f"Projection: {workload} on {system} to {int(proj.table['nodes'].max())} nodes",
                [
                    "Ring-allreduce α–β model fitted to the measured runs (dots). A projection is a model, not a "
                    "measurement: overlap of communication with backward, hierarchical (intra-node then "
                    "inter-node) allreduce and congestion are not modelled."
                ],
                [Figure(plots.projection(proj, out / name).name, "projection")],
                [Table("projected weak scaling", table, floatfmt=".4g")],
                lists=[("Assumptions", proj.assumptions)],
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
    return Section(
        "Hardware monitors",
        [
            "Sampled in a background thread on every rank (psutil; NVML where a GPU is present). "
            "Empty cells: the sensor is absent on that machine (never read as zero)."
        ],
        tables=[Table("monitor summary (means over samples and ranks; max for memory)", pd.DataFrame(rows))],
    )
