"""The speed-up matrix section of the report (mlscale.results.matrix), from records as
`mlscale matrix` leaves them: throughput and speed-up per combination, one panel per matrix,
skipped combinations with their reason, repeats averaged."""

from __future__ import annotations

import pytest

from mlscale.results.matrix import matrix_table, text_chart
from mlscale.results.report import build


def record(panel: str, combo: str, rate: float | None, status: str = "ok", error: str | None = None, ranks=1):
    return {"run_id": f"{panel}-{combo}-{rate}", "workload": "w", "mode": "train", "status": status, "error": error,
            "system": "box", "tag": f"matrix:{panel}:{combo}@{ranks}r", "device_type": "cpu" if rate else None,
            "num_ranks": ranks, "started_at": f"2026-01-01T00:00:{len(combo):02d}",
            "throughput": {"train_imgs_per_s": rate}, "epoch_stats": [], "config": {"run": {}}}  # fmt: skip


RECORDS = [
    record("fcn", "plain", 10.0),
    record("fcn", "amp", 15.0),
    record("fcn", "amp", 25.0),  # a repeat: averaged
    record("fcn", "cuda-graphs", None, "skipped", "--cuda-graphs needs a CUDA device; this run is on cpu"),
    record("fcn", "plain", 18.0, ranks=2),
    record("unet", "plain", 4.0),
    record("unet", "channels-last", 6.0),
    {"run_id": "other", "workload": "w", "status": "ok", "tag": "", "epoch_stats": []},  # not in a matrix
]


def test_table_has_speedups_per_panel():
    table = matrix_table(RECORDS).set_index(["panel", "combination", "ranks"])
    assert table.loc[("fcn", "amp", 1), "imgs_per_s"] == 20.0 and table.loc[("fcn", "amp", 1), "runs"] == 2
    assert table.loc[("fcn", "amp", 1), "speedup"] == pytest.approx(2.0)
    assert table.loc[("fcn", "plain", 2), "speedup"] == pytest.approx(1.8)
    assert table.loc[("unet", "channels-last", 1), "speedup"] == pytest.approx(1.5)  # its own panel's plain run
    assert table.loc[("fcn", "cuda-graphs", 1), "status"] == "skipped"
    assert len(table) == 6


def test_chart_and_report_section():
    chart = text_chart(matrix_table(RECORDS))
    assert "fcn (box, cpu)" in chart and "unet (box, cpu)" in chart
    assert "cuda-graphs  skipped: --cuda-graphs needs a CUDA device" in chart
    assert "2.00x" in chart and "plain x2" in chart
    report = build(RECORDS, ranks=False)
    text = report.text()
    assert "## Speed-up matrix" in text and "Failed runs" not in text
    assert "speedup" in report.text("csv")
    assert "Speed-up matrix" not in build(RECORDS[-1:], ranks=False).text()  # no matrix, no section
