"""The report as a directory: report.md, report.html and the PNG plots (`report --html DIR`).

`build_report(records, out_dir)` takes the sections of mlscale.results.report (the tables
`mlscale report` prints, seed tables included) and adds the scaling study's sections with
their plots (mlscale.results.report_scaling). report.md is the report.md of `report --out`
with those sections after, the plots alongside; report.html shows the same sections,
self-contained (plots embedded as data URIs). The finished directory
is moved into place in one rename, so a reader never sees half a report.

Never imports torch.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import jinja2

from mlscale.errors import UserError
from mlscale.fileio import atomic_write
from mlscale.results import projection
from mlscale.results.report import TITLE, Report, build
from mlscale.results.report_scaling import scaling_sections

TEMPLATES = Path(__file__).with_name("templates")


def build_report(
    records: list[dict],
    out_dir: str | Path,
    *,
    network: projection.Network | None = None,
    title: str = TITLE,
    report: Report | None = None,
) -> Path:
    """Write the report directory `out_dir`; returns the path of its report.html.

    `report`: the tables' sections already built from `records` (by `mlscale report`,
    with its options); by default they are built here."""
    if not records:
        raise UserError("report: no run records given")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        report = report or build(records)
        more = scaling_sections(records, tmp, network or projection.Network())
        atomic_write(tmp / "report.md", report.markdown(more, title))
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=jinja2.select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        page = env.get_template("report.html.j2").render(
            title=title, summary=report.summary, sections=[*report.sections, *more], images=tmp
        )
        atomic_write(tmp / "report.html", page)
        tmp.chmod(0o755)
        _move_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "report.html"


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace `out_dir` (if any) with the finished directory `tmp`."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out_dir)
