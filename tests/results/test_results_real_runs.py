"""Reports, references, MLPerf logs, monitors and the store on real runs of the `synthetic` workload.

Three real runs (tiny ResNet on 32x32 random images, a few steps): 1 rank, 2 ranks under
mpirun, and 2 ranks made deliberately slower by 224x224 images (49x the pixels per sample;
at 96 px the tiny model was overhead-bound and only ~1.7x slower, inside the tolerance).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml
from support.run import child_env, run_mlscale

from mlscale.results import store
from mlscale.results.mlperf import check_log
from mlscale.results.record import load_ranks, load_record

COMMON = ("--model", "tiny", "--steps-per-epoch", "10", "--test-steps", "2", "--batch-size", "8", "--epochs", "2",
          "--infer", "--system", "box", "--no-progress")  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run_mlscale("run", "synthetic", *COMMON, "--image-size", "32", "--out", root, "--run-id", "tiny_1")
    run_mlscale("run", "synthetic", *COMMON, "--image-size", "32", "--out", root, "--run-id", "tiny_2", ranks=2)
    run_mlscale("run", "synthetic", *COMMON, "--image-size", "224", "--out", root, "--run-id", "slow_2", ranks=2)
    return root


def test_runner_indexes_every_run(runs):
    # The runner called store.index_run: the rows are there before any reindexing.
    table = store.query(runs)
    assert sorted(table["run_id"]) == ["slow_2", "tiny_1", "tiny_2"]
    assert set(table.loc[table["run_id"] == "tiny_2", "num_ranks"]) == {2}
    out = run_mlscale("runs", runs, "--ranks", "2", "--workload", "synthetic", "--csv").stdout
    assert sorted(line.split(",")[0] for line in out.strip().splitlines()[1:]) == ["slow_2", "tiny_2"]


def test_compare_fails_the_slower_real_run(runs, tmp_path):
    refs = tmp_path / "refs.yaml"
    run_mlscale("compare", runs / "tiny_2", "--write-reference", refs, "--tolerance", "0.5")
    assert yaml.safe_load(refs.read_text())["synthetic"]["box"][2]["imgs_per_s"][1:] == [-0.5, None]
    ok = run_mlscale("compare", runs / "tiny_2", "--reference", refs, check=False)
    assert ok.returncode == 0, ok.stdout
    slow = run_mlscale("compare", runs / "slow_2", "--reference", refs, "--junit", tmp_path / "ci.xml", check=False)
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert "REGRESSION slow_2: imgs_per_s" in slow.stdout
    suite = ET.parse(tmp_path / "ci.xml").getroot().find("testsuite")
    assert suite.get("name") == "slow_2" and int(suite.get("failures")) >= 1
    # the 1-rank run has no 2-rank reference: not checked, not failed (unless --strict)
    assert run_mlscale("compare", runs / "tiny_1", "--reference", refs, "--strict", check=False).returncode == 1


def test_mllog_of_a_real_run_passes_the_official_checker(runs, tmp_path):
    log = runs / "tiny_2" / "mllog.txt"
    checked = check_log(log, tmp_path / "checker.log")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    events = [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines()]
    values = {e["key"]: e["value"] for e in events}
    record = load_record(runs / "tiny_2")
    assert values["submission_benchmark"] == "synthetic" and values["submission_platform"] == "box"
    assert values["number_of_nodes"] == 1 and values["accelerators_per_node"] == 0
    assert values["train_samples"] == record["epoch_stats"][0]["train_samples"] == 2 * 10 * 8
    assert values["eval_samples"] == record["epoch_stats"][0]["test_samples"]
    assert [e["metadata"]["epoch_num"] for e in events if e["key"] == "epoch_start"] == [1, 2]
    assert [e["metadata"]["status"] for e in events if e["key"] == "run_stop"] == ["success"]
    # the checker is not a rubber stamp: a benchmark name outside the ruleset fails it
    bad = tmp_path / "mllog.txt"
    bad.write_text(log.read_text().replace('"value": "synthetic"', '"value": "resnet"'))
    assert check_log(bad, tmp_path / "checker_bad.log").returncode != 0
    # every run's log, through the module's command line (what `make results-mllog-check` runs)
    every = subprocess.run([sys.executable, "-m", "mlscale.results.mlperf", str(runs)], env=child_env(),
                           capture_output=True, text=True)  # fmt: skip
    assert every.returncode == 0 and every.stdout.count("PASS ") == 3, every.stdout + every.stderr


def test_monitors_on_every_rank_absent_sensors_null(runs):
    record = load_record(runs / "tiny_2")
    for line in load_ranks(runs / "tiny_2"):
        mon = line["observers"]["monitor"]
        assert mon["samples"] >= 1
        assert mon["cpu_percent_mean"] is not None and mon["cpu_percent_mean"] >= 0
        assert mon["rss_max_bytes"] > 50e6  # a python process with torch loaded
        # no GPU on this machine: its sensors are absent (null), never zero
        if record["device_type"] == "cpu":
            for key in ("gpu_util_percent_mean", "gpu_mem_max_bytes", "gpu_power_w_mean", "gpu_energy_j"):
                assert mon[key] is None
    assert record["monitor"]["rss_max_bytes"] > 50e6
    energy = record["monitor"]["energy_j"]
    assert energy is None or energy > 0
    assert ("energy_per_sample_j" in record) == (energy is not None)


def test_html_report_of_real_runs(runs, tmp_path):
    out = tmp_path / "html"
    proc = run_mlscale("report", runs / "tiny_1", runs / "tiny_2", "--html", out, "--gpus-per-node", "2")
    assert f"wrote {out / 'report.html'}" in proc.stdout
    md = (out / "report.md").read_text()
    for heading in (
        "## Training table",
        "## Inference table",
        "## Scaling list",
        "## Throughput against ranks",
        "## Scaling efficiency",
        "## Stragglers",
        "## Projection: synthetic on box",
        "## Hardware monitors",
    ):
        assert heading in md
    assert (out / "stragglers_tiny_2.png").is_file() and (out / "projection_synthetic_box.png").is_file()
    assert "2 ranks per node" in md
    shutil.rmtree(out)


@pytest.mark.gpu
def test_gpu_monitor_reads_nvml(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the NVML sensors cannot be read here")
    run_mlscale("run", "synthetic", *COMMON, "--image-size", "32", "--device", "cuda", "--out", tmp_path,
                "--run-id", "gpu_1", env={"MLSCALE_MONITOR_INTERVAL": "0.05"})  # fmt: skip
    mon = load_ranks(tmp_path / "gpu_1")[0]["observers"]["monitor"]
    assert mon["gpu_mem_max_bytes"] > 0 and mon["gpu_util_percent_mean"] is not None
    record = load_record(tmp_path / "gpu_1")
    if mon["gpu_power_w_mean"] is not None:  # power is readable on data-centre GPUs
        assert mon["gpu_power_w_mean"] > 0 and record["energy_per_sample_j"] > 0
    values = {}
    for line in (tmp_path / "gpu_1" / "mllog.txt").read_text().splitlines():
        event = json.loads(line.split(":::MLLOG ", 1)[1])
        values[event["key"]] = event["value"]
    assert values["accelerators_per_node"] == 1
