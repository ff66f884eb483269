"""The example workload as a newcomer meets it: it runs under mpirun with an epoch-level metric
gathered over the ranks, and a copy of its package is a new workload without touching anything else."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from support.run import REPO, child_env, run_mlscale


def _record(out, run_id):
    return json.loads((out / run_id / "record.json").read_text())


def test_epoch_level_metric_covers_every_rank(tmp_path):
    run_mlscale("run", "example", "--batch-size", 32, "--epochs", 5, "--infer", "--out", tmp_path, "--run-id", "ex",
                "--no-progress", ranks=2)  # fmt: skip
    record = _record(tmp_path, "ex")
    last = record["epoch_stats"][-1]
    # eval_end summed both ranks' confusion matrices: every test sample of every rank is in it.
    assert all(e["test_metrics"]["evaluated"] == e["test_samples"] == 2 * 512 for e in record["epoch_stats"])
    assert last["test_metrics"]["balanced_accuracy"] > 0.9  # the spirals are learnt in 5 epochs
    assert record["inference"]["evaluated"] == record["inference"]["samples"] == 2 * 512
    assert 0.9 < record["inference"]["balanced_accuracy"] <= 1


def _copy_tree(tmp_path):
    """This checkout's mlscale package alone, to add a workload to."""
    root = tmp_path / "src"
    shutil.copytree(REPO / "mlscale", root / "mlscale", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _mlscale(root, *args):
    env = child_env({"PYTHONPATH": str(root)})
    cmd = [sys.executable, "-m", "mlscale", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=300)


def test_a_copied_package_is_a_new_workload(tmp_path):
    root = _copy_tree(tmp_path)
    package = root / "mlscale" / "workloads" / "spirals"
    shutil.copytree(root / "mlscale" / "workloads" / "example", package)
    for f in package.glob("*.py"):  # what a newcomer edits: the name, and the imports of its own modules
        text = (
            f.read_text()
            .replace('name = "example"', 'name = "spirals"')
            .replace("workloads.example", "workloads.spirals")
        )
        f.write_text(text)
    listing = _mlscale(root, "workloads")
    assert listing.returncode == 0, listing.stderr
    assert "| spirals" in listing.stdout and "mlscale/workloads/spirals/" in listing.stdout
    run = _mlscale(root, "run", "spirals", "--epochs", 1, "--points", 256, "--out", tmp_path / "runs", "--run-id", "s")
    assert run.returncode == 0, run.stderr
    assert _record(tmp_path / "runs", "s")["workload"] == "spirals"


def test_a_copy_that_keeps_the_name_is_refused(tmp_path):
    root = _copy_tree(tmp_path)
    package = root / "mlscale" / "workloads" / "example_copy"
    shutil.copytree(root / "mlscale" / "workloads" / "example", package)
    proc = _mlscale(root, "run", "example", "--epochs", 1)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Workload name 'example' is taken twice" in proc.stderr
    assert "mlscale.workloads.example.workload.Example" in proc.stderr
    assert "mlscale.workloads.example_copy.workload.Example" in proc.stderr
