"""methane-plume end to end through the real command: data, training under mpirun, the seed's
`plume predict` CLI, the runtime table, and one-line errors for bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from support.run import run_mlscale

from mlscale.workloads.methane_plume.checkpoint import build_tile_classifier, save_checkpoint

REAL_HDR = "ang20200924t211102_ch4mf_v2y1_img.hdr"
TILE = 128  # the smallest tile the padding-free tilenet takes: keeps the test fast


@pytest.fixture(scope="module")
def plume_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plume")
    run_mlscale(
        "data",
        "methane-plume",
        "--out",
        out,
        "--lines",
        40,
        "--samples",
        36,
        "--plumes",
        2,
        "--train-tiles",
        48,
        "--test-tiles",
        16,
        "--tile-size",
        TILE,
        "--positive-fraction",
        0.25,
    )
    return out


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(
        tmp_path_factory.mktemp("model") / "tilenet.pt", build_tile_classifier("tilenet"), "tilenet", "CalCH4_v8", TILE
    )


def _predict(flightline, model, out, method: str, batch: int, *extra, ranks=None, check: bool = True):
    """`mlscale plume predict` on the CPU (-g -1), as the seed's CLI is called."""
    args = ("plume", "predict", flightline, "-m", model, "-g", -1, "-b", batch, "-o", out, "--method", method)
    return run_mlscale(*args, *extra, "--no-progress", ranks=ranks, check=check)


def _saliency(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:  # GDAL reads what we wrote
        assert ds.driver == "ENVI" and ds.dtypes == ("float32",) and ds.nodata == -9999
        return ds.read(1)


def test_data_layout(plume_data):
    img = plume_data / "flightlines" / "ang_synth000_ch4mf_img"
    with rasterio.open(img) as ds:
        assert (ds.count, ds.height, ds.width, ds.dtypes[0]) == (4, 40, 36, "float64")
        ch4 = ds.read(4)
    assert "interleave = bip" in img.with_name(img.name + ".hdr").read_text()
    assert (ch4 == -9999).any() and (ch4 > 800).any()  # nodata border and a plume
    truth = json.loads(img.with_name(img.name + "_plumes.json").read_text())
    assert len(truth) == 2
    import h5py

    with h5py.File(plume_data / "tiles.h5") as h5:
        assert h5["train/ch4"].shape == (48, TILE, TILE) and h5["train/label"][:].sum() == 12


def test_train_seed_decides_the_weights(plume_data, tmp_path):
    """`plume train --seed`: the same seed trains the same weights, another seed other ones."""

    def weights(seed: int, name: str) -> dict:
        ckpt = tmp_path / name
        run_mlscale("plume", "train", plume_data / "tiles.h5", "-o", ckpt, "--arch", "tilenet", "--epochs", 1,
                    "-b", 8, "--max-steps", 2, "--seed", seed, "--no-progress")  # fmt: skip
        return torch.load(ckpt, weights_only=True)["state_dict"]

    first, again, other = weights(5, "a.pt"), weights(5, "b.pt"), weights(6, "c.pt")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


@pytest.mark.slow
def test_train_and_infer_under_mpirun(plume_data, tmp_path):
    """Two ranks train (DDP), report a best-F1 threshold, save a checkpoint, and infer the flightline
    with rows split across ranks; 2-rank cnn on a few rows equals 1-rank exact on them."""
    flightline = plume_data / "flightlines" / "ang_synth000_ch4mf_img"
    ckpt = tmp_path / "trained.pt"
    run_mlscale(
        "run",
        "methane-plume",
        "--tiles",
        plume_data / "tiles.h5",
        "--arch",
        "tilenet",
        "--tile-size",
        TILE,
        "--epochs",
        1,
        "--batch-size",
        8,
        "--save-weights",
        ckpt,
        "--infer",
        "--flightline",
        flightline,
        "--method",
        "exact",
        "--out",
        tmp_path / "runs",
        "--run-id",
        "train",
        "--no-progress",
        ranks=2,
    )
    record = json.loads((tmp_path / "runs" / "train" / "record.json").read_text())
    info = record["workload_info"]
    assert 0 <= info["best_f1_threshold"] <= 1 and 0 < info["best_f1"] <= 1
    assert record["inference"]["samples"] == 40 * 36 and record["num_ranks"] == 2
    whole = _saliency(tmp_path / "runs" / "train" / "ang_synth000_ch4mf_img_saliency.img")
    assert whole.shape == (40, 36)
    valid = whole != -9999
    assert valid.any() and (~valid).any() and whole[valid].min() >= 0 and whole[valid].max() <= 1
    assert torch.load(ckpt, weights_only=True)["threshold"] == pytest.approx(info["best_f1_threshold"])

    _predict(flightline, ckpt, tmp_path / "cnn", "cnn", 16, "--rows", 4, "--record", tmp_path / "runs", ranks=2)
    _predict(flightline, ckpt, tmp_path / "exact", "exact", 2, "--record", tmp_path / "runs")
    cnn = _saliency(tmp_path / "cnn" / "ang_synth000_ch4mf_img_saliency.img")
    exact = _saliency(tmp_path / "exact" / "ang_synth000_ch4mf_img_saliency.img")
    assert cnn.shape == (4, 36)
    np.testing.assert_allclose(cnn, exact[:4], atol=1e-5)
    np.testing.assert_allclose(exact, whole, atol=1e-5)  # same weights, 1 rank vs 2 ranks

    report = run_mlscale("report", tmp_path / "runs", "--no-ranks").stdout
    table = report.split("## methane-plume runtime (seed 000 form)")[1]
    assert "| CPU + GPU" in table and "Runtime (hrs)" in table
    assert table.count("| exact") == 2 and table.count("| cnn") == 1


@pytest.mark.slow
def test_fcn_does_not_depend_on_the_rank_split(plume_data, tmp_path):
    """GoogLeNet's FCN sees beyond a tile: each rank's block of rows carries a tile of real context above
    and below, so 2 ranks give the map 1 rank gives (without it, a seam showed at the rank boundary)."""
    flightline = plume_data / "flightlines" / "ang_synth000_ch4mf_img"
    torch.manual_seed(0)
    model = build_tile_classifier("googlenet")
    for m in model.modules():  # an output that varies from tile to tile
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    ckpt = save_checkpoint(tmp_path / "g.pt", model, "googlenet", "COVID_QC", 64)
    maps = []
    for ranks in (None, 2):
        out = tmp_path / f"out{ranks}"
        _predict(flightline, ckpt, out, "fcn", 1, ranks=ranks)
        maps.append(_saliency(out / "ang_synth000_ch4mf_img_saliency.img"))
    valid = maps[0] != -9999
    assert maps[0][valid].std() > 1e-4
    # Not bit-equal: GoogLeNet's receptive field is wider than the context, so the far slab edge still
    # moves values by a few 1e-3; without the context the rank boundary showed a seam well above that.
    np.testing.assert_allclose(maps[1], maps[0], atol=0.01)


@pytest.mark.parametrize("case", ["missing-hdr", "bad-header", "three-bands", "missing-model", "exact-googlenet"])
def test_bad_input_is_one_line(case, shared_data, plume_data, untrained, tmp_path):
    flightline = tmp_path / "ang20200924t211102_ch4mf_v2y1_img"
    header = (shared_data / REAL_HDR).read_text().replace("lines = 2801", "lines = 20")
    bands = 3 if case == "three-bands" else 4
    header = header.replace("bands = 4", f"bands = {bands}")
    np.zeros((20, 669, bands)).tofile(flightline)
    if case != "missing-hdr":
        (tmp_path / REAL_HDR).write_text("this is not an ENVI header\n" if case == "bad-header" else header)
    model = untrained
    if case == "missing-model":
        model = tmp_path / "nope.pt"
    if case == "exact-googlenet":
        model = save_checkpoint(tmp_path / "g.pt", build_tile_classifier("googlenet"), "googlenet", "COVID_QC", 256)
    out = tmp_path / "out"
    proc = _predict(flightline, model, out, "exact", 4, check=False)
    expected = {
        "missing-hdr": f"{flightline}: no ENVI header",
        "bad-header": "not an ENVI header",
        "three-bands": "has 3 bands, expected 4",
        "missing-model": "nope.pt: no such model checkpoint",
        "exact-googlenet": "g.pt: --method exact needs a padding-free model",
    }[case]
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlscale: error: ") and expected in lines[0], proc.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_train_error_is_one_line_under_mpirun(plume_data, tmp_path):
    """An error one rank finds at set-up (here the checkpoint's missing folder) ends both ranks of
    `plume train` with one line and exit status 2: no traceback from the peer, nothing written."""
    target = tmp_path / "nowhere" / "m.pt"
    proc = run_mlscale(
        "plume", "train", plume_data / "tiles.h5", "-o", target, "--arch", "tilenet", "--epochs", 1,
        ranks=2, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mlscale: error: ")]
    assert len(errors) == 1 and "does not exist" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "nowhere").exists()


def test_data_rejects_bad_sizes(tmp_path):
    proc = run_mlscale("data", "methane-plume", "--out", tmp_path, "--lines", 2, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "at least 8" in proc.stderr
    shutil.rmtree(tmp_path, ignore_errors=True)
