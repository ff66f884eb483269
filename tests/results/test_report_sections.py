"""One report, three forms: the printed text, report.md and report.html hold the same sections,
seed tables included; seed tables are plug-ins, and mlscale.results names no workload."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support.records import make_run

import mlscale.results
from mlscale.cli import main
from mlscale.registry import DuplicateNameError
from mlscale.results.record import load_ranks, load_record, write_run_dir
from mlscale.results.seed_tables import SeedTable, seed_tables
from mlscale.workloads import packages

PLUME_TITLE = "methane-plume runtime (seed 000 form)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_run(root, "one", ranks=1)
    make_run(root, "two", ranks=2, slow_rank=1, slow_factor=2.0)
    base, lines = load_record(root / "two"), load_ranks(root / "two")
    base.pop("run_dir")
    inference = {"total_time": 7200.0, "samples": 4000, "imgs_per_s": 0.5, "method": "cnn", "cpu_cores": 8}
    write_run_dir(root, "plume", dict(base, run_id="plume", workload="methane-plume", mode="inference",
                                      epoch_stats=[], inference=inference), lines)  # fmt: skip
    write_run_dir(root, "broken", dict(base, run_id="broken", status="failed", error="RuntimeError: boom",
                                       epoch_stats=[], phases={}, inference=None), [])  # fmt: skip
    return root


def _headings(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.M)


def _without_generated_line(markdown: str) -> str:
    return re.sub(r"^Generated .*$", "", markdown, flags=re.M)


def test_printed_markdown_and_html_reports_hold_the_same_sections(runs, tmp_path, capsys):
    out, html_dir = tmp_path / "out", tmp_path / "html"
    assert main(["report", str(runs), "--out", str(out), "--html", str(html_dir)]) == 0
    printed = capsys.readouterr().out
    tables_md = (out / "report.md").read_text()
    md = (html_dir / "report.md").read_text()
    html = (html_dir / "report.html").read_text()

    # report.md of --html is report.md of --out with the scaling study's sections after it
    assert _without_generated_line(md).startswith(_without_generated_line(tables_md))
    md_titles = _headings(md)
    assert md_titles == re.findall(r"<h2>(.+?)</h2>", html)
    table_titles = _headings(tables_md)
    assert table_titles == ["Training table", "Inference table", PLUME_TITLE, "Scaling list",
                            "Per-rank timings (mean per training step)", "Failed runs"]  # fmt: skip
    assert {"Runs", "Throughput against ranks", "Stragglers: the per-rank view"} <= set(md_titles[len(table_titles) :])
    # the printed report: the same sections, with the short headings it has always had
    assert _headings(printed) == ["Training", "Inference", PLUME_TITLE, "Scaling", *table_titles[4:]]

    # the seed table in every form: printed, Markdown, HTML and its CSV file
    plume_csv = pd.read_csv(out / "plume_runtime.csv")
    assert plume_csv["Runtime (hrs)"].tolist() == [2.0] and plume_csv["method"].tolist() == ["cnn"]
    for text in (printed, md):
        assert re.search(r"\| cnn +\| 8 \+ none +\| +-1 \| +32 \| +2 \|", text), text
    section = html.split(f"<h2>{PLUME_TITLE}</h2>")[1].split("</section>")[0]
    assert "<td>cnn</td>" in section and "<td>8 + none</td>" in section
    # the scaling list comes from the scaling table in HTML as in Markdown
    assert "<li>" in html.split("<h2>Scaling list</h2>")[1].split("</section>")[0]
    assert " - " in md.split("## Scaling list")[1].split("##")[0]
    assert "RuntimeError: boom" in md and "broken: RuntimeError: boom" in html


def test_seed_tables_only_when_their_workload_ran(runs, tmp_path, capsys):
    assert main(["report", str(runs / "one"), "--out", str(tmp_path)]) == 0
    assert PLUME_TITLE not in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "plume_runtime.csv").empty  # the file is still there for scripts


def test_report_with_a_seed_table_never_imports_torch(runs):
    code = f"import sys, mlscale.cli; mlscale.cli.main(['report', {str(runs)!r}]); assert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert PLUME_TITLE in proc.stdout


def test_seed_tables_are_found_in_the_workload_packages():
    found = {t.name: t for t in seed_tables()}
    assert found["plume_runtime"].workload == "methane-plume"
    assert found["plume_runtime"].__module__ == "mlscale.workloads.methane_plume.tables"


def test_a_second_seed_table_with_a_taken_name_is_refused():
    taken = seed_tables()[0]
    with pytest.raises(DuplicateNameError, match=repr(taken.name)):

        class Again(SeedTable):
            name = taken.name
            title = "another table"

    assert SeedTable.registry[taken.name] is taken


def _workload_words() -> set[str]:
    names = set(packages())
    return names | {n.replace("_", "-") for n in names}


def _docstrings(tree: ast.Module) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef)))]
    return {
        id(n.body[0].value)
        for n in nodes
        if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
    }


def test_results_modules_name_no_workload():
    """Workloads plug their tables in (seed_tables); nothing in mlscale.results imports or names one."""
    words = _workload_words()
    assert {"methane_plume", "methane-plume"} <= words
    offenders = []
    for path in sorted(Path(mlscale.results.__file__).parent.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                modules = [node.value]  # importlib.import_module("mlscale.workloads.x"), or a name in a test
            else:
                continue
            for text in modules:
                if words & set(re.split(r"[^\w-]+", text)):
                    offenders.append(f"{path.name}:{node.lineno}: {text!r}")
    assert not offenders, offenders
