"""The scaling report: plots, straggler view, systems side by side, projection, self-contained HTML."""

from __future__ import annotations

import re

import pytest
from matplotlib.image import imread
from support.records import make_run

from mlscale.errors import UserError
from mlscale.results.record import load_records
from mlscale.results.report_html import build_report
from mlscale.results.scaling import load_rank_lines, rank_phase_table, runs_frame, scaling_series, straggler_summary


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for n in (1, 2, 4, 8):
        make_run(
            root,
            f"pearl_{n}",
            system="PEARL",
            ranks=n,
            nodes=max(1, n // 4),
            slow_rank=3 if n == 8 else None,
            slow_factor=1.8,
        )
        make_run(root, f"scarf_{n}", system="SCARF", ranks=n, compute_s=0.15, comm_s_per_rank=0.003)
    for n in (4, 8):  # strong scaling: global batch 128
        make_run(root, f"strong_{n}", system="PEARL", ranks=n, batch_size=128 // n, compute_s=0.1 * (128 // n) / 32)
    return load_records([root])


def test_efficiency_follows_the_known_law(sweep):
    series = {(w, s, k): t for w, s, k, t in scaling_series(runs_frame(sweep))}
    assert set(series) == {
        ("synthetic", "PEARL", "weak"),
        ("synthetic", "PEARL", "strong"),
        ("synthetic", "SCARF", "weak"),
    }
    scarf = series[("synthetic", "SCARF", "weak")].set_index("ranks")
    # step(p) = 0.15 + 0.003 (p-1): efficiency = 0.15 / step(p)
    for p in (2, 4, 8):
        assert scarf.loc[p, "efficiency"] == pytest.approx(0.15 / (0.15 + 0.003 * (p - 1)), rel=1e-6)
    strong = series[("synthetic", "PEARL", "strong")].set_index("ranks")
    assert list(strong.index) == [4, 8] and strong.loc[4, "efficiency"] == 1.0


def test_straggler_found_with_its_phase(sweep):
    run = next(r for r in sweep if r["run_id"] == "pearl_8")
    table = rank_phase_table(load_rank_lines(run["run_dir"]))
    summary = straggler_summary(table)
    assert summary["rank"] == 3 and summary["phase"] == "forward"
    # forward is 30% of 0.1 s; ×1.8 adds 24 ms to a 170 ms median step
    assert summary["slower_by"] == pytest.approx(0.024 / 0.17, rel=1e-6)
    assert summary["phase_slower_by"] == pytest.approx(0.8, rel=1e-6)


def test_report_directory(sweep, tmp_path):
    html_path = build_report(sweep, tmp_path / "report")
    out = html_path.parent
    md = (out / "report.md").read_text()
    html = html_path.read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    for name in (
        "throughput.png",
        "efficiency.png",
        "time_to_solution.png",
        "phases.png",
        "epochs.png",
        "stragglers_pearl_8.png",
        "systems_synthetic.png",
        "projection_synthetic_PEARL.png",
    ):
        assert name in pngs
    for name in pngs:
        image = imread(out / name)
        assert image.shape[0] > 300 and image.shape[1] > 500, name  # readable size
        assert f"]({name})" in md
    # self-contained HTML: every plot embedded, no file references left
    assert html.count("data:image/png;base64,") == len(pngs)
    assert not re.search(r'src="[^d]', html)
    for heading in (
        "Throughput against ranks",
        "Scaling efficiency",
        "Time to solution",
        "Per-phase time per step",
        "Stragglers",
        "First against second epoch",
        "synthetic on several systems",
        "Projection:",
    ):
        assert heading in md and heading in html
    assert re.search(r"\| pearl_8 +\| synthetic +\| PEARL +\| +8 \| +3 \|", md)  # slowest rank table row
    assert "GPUs/node" not in md and "ranks per node; network 100 Gbit/s" in md  # projection assumptions stated
    assert "100% scaling efficiency" not in md and "scaling efficiency from 1 rank(s)" in md


def test_report_replaces_old_directory_and_rejects_nothing(sweep, tmp_path):
    out = tmp_path / "rep"
    build_report(sweep[:2], out)
    (out / "stale.png").write_bytes(b"x")
    build_report(sweep, out)
    assert not (out / "stale.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporaries left
    with pytest.raises(UserError):
        build_report([], tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_report_with_inference_iotest_and_failed_runs(tmp_path):
    from mlscale.results.record import load_ranks, load_record, write_run_dir

    make_run(tmp_path, "a1", ranks=1)
    make_run(tmp_path, "a2", ranks=2, slow_rank=1, slow_factor=2.0)
    base, lines = load_record(tmp_path / "a2"), load_ranks(tmp_path / "a2")
    base.pop("run_dir")
    # an inference-only run has no training phases: its stragglers come from its eval phases
    write_run_dir(tmp_path, "inf2", dict(base, run_id="inf2", mode="inference", epoch_stats=[], phases={}),
                  [dict(ln, phases={}, eval_phases=ln["phases"]) for ln in lines])  # fmt: skip
    write_run_dir(tmp_path, "fail4", dict(base, run_id="fail4", status="failed", error="RuntimeError: boom",
                                          epoch_stats=[], phases={}, num_ranks=4, inference=None), [])  # fmt: skip
    md = (build_report(load_records([tmp_path]), tmp_path / "rep").parent / "report.md").read_text()
    assert "## Failed runs" in md and "RuntimeError: boom" in md
    assert "## Throughput against ranks" in md  # the 2-rank training run is not hidden by the inference run
    assert re.search(r"\| inf2 +\| synthetic +\| testbox +\| +2 \| +1 \|", md)  # slowest rank of inference run
    assert "## Projection: synthetic on testbox" in md
    only_failed = build_report([load_record(tmp_path / "fail4")], tmp_path / "rep2").parent / "report.md"
    assert "No successful runs" in only_failed.read_text()
