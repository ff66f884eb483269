"""The results store: concurrent indexing loses nothing; `mlscale runs` lists and filters."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import subprocess
import sys

import pytest
from support.records import make_run
from support.run import REPO, child_env, run_mlscale

from mlscale.results import store

WRITERS = 6
RUNS_PER_WRITER = 8


def _writer(root: str, writer: int, barrier) -> None:
    # Each process writes its run directories and indexes each one as soon as it is written,
    # all processes released together, like a sweep's jobs finishing at the same moment.
    barrier.wait()
    for i in range(RUNS_PER_WRITER):
        run_dir = make_run(root, f"w{writer}_r{i}", ranks=1 + writer % 4, system=f"sys{writer % 2}")
        store.index_run(root, run_dir)


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, barrier)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    table = store.query(tmp_path)
    assert len(table) == WRITERS * RUNS_PER_WRITER
    assert set(table["run_id"]) == {f"w{w}_r{i}" for w in range(WRITERS) for i in range(RUNS_PER_WRITER)}
    with sqlite3.connect(tmp_path / store.INDEX) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_filters(tmp_path):
    make_run(tmp_path, "a", workload="synthetic", system="PEARL", ranks=1, started_at="2026-11-01T10:00:00Z")
    make_run(
        tmp_path,
        "b",
        workload="synthetic",
        system="PEARL",
        ranks=2,
        tag="sweep1",
        started_at="2026-11-20T10:00:00+00:00",
    )
    make_run(
        tmp_path,
        "c",
        workload="cloud-mask",
        system="SCARF",
        ranks=2,
        tag="sweep1",
        started_at="2026-11-21T00:30:00+01:00",
    )  # 2026-11-20T23:30Z
    store.reindex(tmp_path)
    ids = lambda **kw: sorted(store.query(tmp_path, **kw)["run_id"])  # noqa: E731
    assert ids() == ["a", "b", "c"]
    assert ids(workload="synthetic") == ["a", "b"]
    assert ids(system="SCARF") == ["c"]
    assert ids(ranks=[2]) == ["b", "c"]
    assert ids(ranks=[1, 2], workload="synthetic") == ["a", "b"]
    assert ids(tag="sweep1") == ["b", "c"]
    assert ids(since="2026-11-20") == ["b", "c"]
    assert ids(since="2026-11-20T23:00:00+00:00") == ["c"]
    assert ids(since="2026-11-21") == []
    records = store.load_indexed_records(tmp_path, system="PEARL")
    assert [r["run_id"] for r in records] == ["a", "b"]
    assert records[1]["epoch_stats"][0]["epoch"] == 1


def test_reindex_picks_up_new_and_drops_removed(tmp_path):
    make_run(tmp_path, "one")
    assert store.reindex(tmp_path) == 1
    assert store.reindex(tmp_path) == 0  # unchanged: nothing rewritten
    make_run(tmp_path / "sweep", "two")
    (tmp_path / ".half_written").mkdir()
    (tmp_path / ".half_written" / "record.json").write_text("{")
    assert store.reindex(tmp_path) == 1
    assert sorted(store.query(tmp_path)["run_dir"]) == ["one", "sweep/two"]
    import shutil

    shutil.rmtree(tmp_path / "one")
    store.reindex(tmp_path)
    assert list(store.query(tmp_path)["run_dir"]) == ["sweep/two"]


def test_runs_command_indexes_and_filters(tmp_path):
    make_run(tmp_path, "small", ranks=1, system="PEARL")
    make_run(tmp_path, "big", ranks=4, system="PEARL")
    make_run(tmp_path, "other", ranks=4, system="SCARF")
    out = run_mlscale("runs", tmp_path, "--system", "PEARL", "--ranks", "4", "--csv").stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("run_dir,run_id,workload")
    assert len(lines) == 2 and lines[1].startswith("big,big,synthetic")
    table = run_mlscale("runs", tmp_path).stdout
    assert "| small" in table and "| other" in table
    assert (tmp_path / "index.sqlite").is_file()


def test_runs_command_bad_input(tmp_path):
    proc = run_mlscale("runs", tmp_path / "missing", check=False)
    assert proc.returncode == 2 and "no such results directory" in proc.stderr
    make_run(tmp_path, "x")
    proc = run_mlscale("runs", tmp_path, "--since", "yesterday", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("mlscale: error: --since yesterday")


RESULTS_MODULES = [
    "mlscale.results.store", "mlscale.results.compare", "mlscale.results.projection", "mlscale.results.report_html",
    "mlscale.results.plots", "mlscale.results.scaling", "mlscale.results.mlperf", "mlscale.commands.runs",
    "mlscale.commands.compare",
]  # fmt: skip


@pytest.mark.parametrize("module", RESULTS_MODULES)
def test_results_modules_never_import_torch(module):
    code = f"import sys, {module}; sys.exit(1 if 'torch' in sys.modules else 0)"
    proc = subprocess.run([sys.executable, "-c", code], env=child_env(), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, f"{module} imports torch\n{proc.stderr}"


def test_report_runs_and_compare_commands_never_import_torch(tmp_path):
    # The whole login-node path: store, HTML report, compare, through the real CLI entry point.
    make_run(tmp_path / "runs", "one", ranks=1)
    make_run(tmp_path / "runs", "two", ranks=2)
    code = f"""
import sys
from mlscale.cli import main
root = {str(tmp_path / "runs")!r}
assert main(["runs", root]) == 0
assert main(["report", root, "--html", {str(tmp_path / "html")!r}]) == 0
assert main(["compare", root, "--write-reference", {str(tmp_path / "refs.yaml")!r}]) == 0
sys.exit(3 if "torch" in sys.modules else 0)
"""
    proc = subprocess.run([sys.executable, "-c", code], env=child_env(), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "html" / "report.html").is_file()
