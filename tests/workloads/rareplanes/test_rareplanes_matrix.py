"""The speed-up matrix on the CPU with a tiny UNet: one real run per combination, CUDA graphs
skipped with the engine's reason, bf16 autocast said in the record, and `mlscale report` showing
the chart (text, PNG, HTML) and the table."""

from __future__ import annotations

import json

import pytest
from support.run import mpirun_prefix, run_mlscale

RUN = ["run", "rareplanes", "--model", "unet", "--unet-width", "8", "--epochs", "1", "--batch-size", "8",
       "--max-steps", "3", "--no-progress"]  # fmt: skip
LAUNCHER = " ".join(mpirun_prefix(2)).replace("-np 2", "-np {ranks}")


@pytest.mark.slow
def test_matrix_runs_skips_and_reports(tiled, tmp_path):
    out = tmp_path / "matrix"
    proc = run_mlscale("matrix", "--switches", "amp,cuda-graphs", "--name", "unet-tiny", "--out", out,
                       "--", *RUN, "--data", tiled)  # fmt: skip
    assert "4 combination(s) of unet-tiny: 2 ran, 2 skipped, 0 failed" in proc.stdout
    records = {r["tag"]: r for r in (json.loads(p.read_text()) for p in out.glob("*/record.json"))}
    assert set(records) == {f"matrix:unet-tiny:{c}@1r" for c in ("plain", "amp", "cuda-graphs", "amp+cuda-graphs")}
    amp = records["matrix:unet-tiny:amp@1r"]
    assert amp["config"]["run"]["amp"] and amp["workload_info"]["amp"] == "bfloat16 autocast (CPU)"
    skipped = records["matrix:unet-tiny:cuda-graphs@1r"]
    assert skipped["status"] == "skipped" and "--cuda-graphs needs a CUDA device" in skipped["error"]

    report = run_mlscale("report", out, "--no-ranks", "--out", tmp_path / "rep", "--html", tmp_path / "html").stdout
    section = report[report.index("## Speed-up matrix") : report.index("## Scaling")]
    assert "unet-tiny (local, cpu)" in section and "1.00x" in section  # the plain run against itself
    assert "cuda-graphs  skipped: --cuda-graphs needs a CUDA device" in section
    assert "Failed runs" not in report  # a skipped combination is not a failure
    assert (tmp_path / "rep" / "matrix.png").stat().st_size > 1000
    html = (tmp_path / "html" / "report.html").read_text()
    assert "Speed-up matrix" in html and "data:image/png;base64" in html


def test_matrix_plans_ranks_under_the_launcher(tiled, tmp_path):
    proc = run_mlscale("matrix", "--switches", "channels-last", "--ranks", "1,2", "--launcher", LAUNCHER,
                       "--dry-run", "--", *RUN, "--data", tiled)  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4 and sum("-np 2" in line for line in lines) == 2
    assert sum("--channels-last" in line for line in lines) == 2 and all("--tag matrix:" in ln for ln in lines)


def test_matrix_refuses_flags_it_sets(tmp_path):
    proc = run_mlscale("matrix", "--", *RUN, "--amp", check=False)
    assert proc.returncode == 2 and "--amp: mlscale matrix sets --amp" in proc.stderr
    proc = run_mlscale("matrix", "--switches", "warp-drive", "--", *RUN, check=False)
    assert proc.returncode == 2 and "--switches warp-drive" in proc.stderr
