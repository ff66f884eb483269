"""The report of `mlscale report`: its sections, computed once from the run records.

`build(records)` gives a `Report`: the sections (the PEARL/SCARF training and inference
tables, every workload's seed tables, the speed-up matrix of `mlscale matrix`, the Theta/Cooley
scaling list, per-rank timings, failed runs) and the tables behind them by CSV name. The same report renders as

- text: `report.text("markdown" | "csv")`, what `mlscale report` prints;
- Markdown: `report.markdown()`, the document report.md (the printed text in Markdown,
  under a title, with the document's longer headings: "Training table" for "Training");
- CSV files + report.md: `report.write(dir)` (`--out DIR`);
- HTML: `mlscale.results.report_html.build_report(..., report=report)` (`--html DIR`) adds
  the scaling study's sections with their plots (mlscale.results.report_scaling) after
  these and writes report.md + report.html: both show every section.

Records only: no torch here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from mlscale.fileio import atomic_path, atomic_write
from mlscale.results import tables
from mlscale.results.matrix import matrix_section
from mlscale.results.record import load_ranks
from mlscale.results.sections import Bullets, Chart, Section, Table, Text
from mlscale.results.seed_tables import seed_tables

TITLE = "mlscale report"


@dataclass
class Report:
    num_records: int = 0
    generated: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    sections: list[Section] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # CSV file stem -> table

    @property
    def summary(self) -> str:
        return f"Generated {self.generated} from {self.num_records} run record(s)."

    def text(self, fmt: str = "markdown") -> str:
        """What `mlscale report` prints ("markdown" or "csv": how its tables print)."""
        return "".join(s.text(fmt, printed=True) for s in self.sections)

    def markdown(self, more: Iterable[Section] = (), title: str = TITLE) -> str:
        """report.md: a title, these sections and then `more` (the plots of `report --html`)."""
        return f"# {title}\n\n{self.summary}\n\n" + "".join(s.text("markdown") for s in [*self.sections, *more])

    def write(self, out_dir: str | os.PathLike) -> None:
        """`report --out DIR`: every table as CSV (written even when empty, so scripts find them)
        and report.md."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables.items():
            atomic_write(out / f"{name}.csv", tables.to_csv(frame))
        atomic_write(out / "report.md", self.markdown())
        for chart in (b for s in self.sections for b in s.blocks if isinstance(b, Chart)):
            with atomic_path(out / chart.file, ".png") as tmp:
                chart.draw(tmp)


def build(records: list[dict], *, scale_by: str = "auto", ranks: bool = True) -> Report:
    """The report of `records` (failed runs included: they get their own section).

    `ranks`: include the per-rank timing table (reads each run's ranks.jsonl)."""
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") not in ("ok", "skipped")]  # skipped: the matrix shows why
    report = Report(len(records))
    training = report.tables["training"] = tables.training_table(ok)
    inference = report.tables["inference"] = tables.inference_table(ok)
    scaling = report.tables["scaling"] = tables.scaling_table(ok, scale_by)

    # printed_title: the heading `mlscale report` has always printed
    report.sections.append(
        Section("Training table", [Table(training), *_accuracy_captions(ok)], printed_title="Training")
    )
    report.sections.append(Section("Inference table", [Table(inference)], printed_title="Inference"))
    for seed in seed_tables():
        frame = report.tables[seed.name] = seed.table(ok)
        if not frame.empty:
            report.sections.append(Section(seed.title, [Table(frame)]))
    matrix = matrix_section(records)
    if matrix:
        report.sections.append(matrix)
    report.sections.append(_scaling_section(scaling))
    if ranks:
        per_rank = tables.rank_table(ok, {r["run_id"]: load_ranks(r["run_dir"]) for r in ok})
        report.sections.append(Section("Per-rank timings (mean per training step)", [Table(per_rank)]))
    if failed:
        report.sections.append(Section("Failed runs", [Bullets([f"{r['run_id']}: {r.get('error')}" for r in failed])]))
    return report


def _accuracy_captions(ok: list[dict]) -> list[Text]:
    """What train_accuracy / test_accuracy measure, per workload (each names its metric)."""
    captions = sorted(
        {
            f"{r['workload']}: {r['accuracy_caption']}"
            for r in ok
            if r.get("accuracy_caption") and r.get("mode") == "train"
        }
    )
    return [Text("train_accuracy / test_accuracy: " + "; ".join(captions))] if captions else []


def _scaling_section(scaling: pd.DataFrame) -> Section:
    if scaling.empty:
        return Section("Scaling list", [Text("(no runs)")], printed_title="Scaling")
    groups = [Bullets(items, heading, indent=" ") for heading, items in tables.scaling_groups(scaling)]
    return Section(
        "Scaling list", [*groups, Table(scaling, floatfmt=".4g", in_markdown=False)], printed_title="Scaling"
    )
