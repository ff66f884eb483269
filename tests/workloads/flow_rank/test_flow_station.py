"""The synthetic station is in the Flow Photo Explorer's model-input layout, and bad stations are refused
with one line naming the file and row, exit status 2, and no run directory left behind."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image
from support.run import run_mlscale

from mlscale.errors import UserError
from mlscale.workloads.flow_rank.config import IMAGE_COLUMNS, PAIR_COLUMNS
from mlscale.workloads.flow_rank.station import read_station


def test_layout_of_the_original(station):
    images = pd.read_csv(station / "images.csv")
    pairs = pd.read_csv(station / "pairs.csv")
    assert tuple(images.columns) == IMAGE_COLUMNS and tuple(pairs.columns) == PAIR_COLUMNS
    assert set(images["split"]) == {"train", "val", "test-in", "test-out"} and set(pairs["split"]) == {"train", "val"}
    assert len(images) == 400 and images["image_id"].is_unique and (images["value"] > 0).all()
    with Image.open(station / "images" / images["filename"].iloc[0]) as photo:
        assert (photo.format, photo.size) == ("JPEG", (64, 48))
    # every pair twice: sides swapped and the label negated, next to each other
    assert (pairs.groupby("pair").size() == 2).all() and pairs["pair"].is_monotonic_increasing
    first, second = pairs.iloc[0::2].reset_index(), pairs.iloc[1::2].reset_index()
    assert (first["image_id_1"] == second["image_id_2"]).all() and (first["label"] == -second["label"]).all()
    assert set(pairs["label"]) <= {-1, 0, 1}
    # annotators mostly agree with the observed flow
    truth = pairs["value_1"].gt(pairs["value_2"]).astype(int) - pairs["value_1"].lt(pairs["value_2"]).astype(int)
    decided = pairs["label"] != 0
    assert (pairs.loc[decided, "label"] == truth[decided]).mean() > 0.85


def test_split_by_components_and_annotation_period(station):
    images = pd.read_csv(station / "images.csv")
    pairs = pd.read_csv(station / "pairs.csv")
    by_split = {s: set(g["image_id_1"]) | set(g["image_id_2"]) for s, g in pairs.groupby("split")}
    assert not by_split["train"] & by_split["val"]  # components never straddle the split
    for split, ids in by_split.items():
        assert set(images.loc[images["split"] == split, "image_id"]) == ids
    annotated = len(by_split["train"]) + len(by_split["val"])
    assert 0.5 < len(by_split["train"]) / annotated <= 0.8  # cumulative share of images, as rank-input.R
    stamps = pd.to_datetime(images["timestamp"])
    last_pair = pd.to_datetime(pd.concat([pairs["timestamp_1"], pairs["timestamp_2"]])).max()
    assert stamps[images["split"] == "test-out"].min() > last_pair
    assert stamps[images["split"] == "test-in"].max() < stamps[images["split"] == "test-out"].min()


def _edit(path, row: int, column: str, value) -> None:
    table = pd.read_csv(path)
    table[column] = table[column].astype(object)
    table.loc[row - 1, column] = value
    table.to_csv(path, index=False)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda d: _edit(d / "pairs.csv", 3, "label", 2), "pairs.csv row 3: label 2 is not -1, 0 or 1"),
        (lambda d: _edit(d / "pairs.csv", 4, "image_id_2", 999), "row 4: image_id_2 999 is not in images.csv"),
        (lambda d: _edit(d / "pairs.csv", 5, "filename_1", "gone.jpg"), "pairs.csv row 5: image file"),
        (lambda d: _edit(d / "images.csv", 7, "split", "later"), "images.csv row 7: split 'later' is not one of"),
        (lambda d: (d / "images.csv").unlink(), "images.csv: no such file"),
        (lambda d: pd.read_csv(d / "images.csv").drop(columns="value").to_csv(d / "images.csv", index=False),
         "images.csv: missing column(s) value"),
    ],
)  # fmt: skip
def test_bad_station_is_one_line(station_copy, damage, expected):
    damage(station_copy)
    with pytest.raises(UserError) as err:
        read_station(str(station_copy))
    assert expected in str(err.value) and "\n" not in str(err.value)
    if "image file" in expected:
        assert "gone.jpg (filename_1) not found" in str(err.value)


def _refused(station_dir, tmp_path, *extra) -> str:
    """`mlscale run flow-rank` on a bad station: exit 2, one error line, no traceback, no run directory."""
    out = tmp_path / "runs"
    args = ["--backbone", "tiny", "--input-size", 24, "--epochs", 1, "--backend", "single", "--no-progress"]
    proc = run_mlscale("run", "flow-rank", "--data", station_dir, *args, "--out", out, *extra, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not [p for p in out.iterdir() if p.is_dir()]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mlscale: error: ")
    return last


def test_missing_column_through_the_command(station_copy, tmp_path):
    pd.read_csv(station_copy / "pairs.csv").drop(columns="label").to_csv(station_copy / "pairs.csv", index=False)
    assert "pairs.csv: missing column(s) label" in _refused(station_copy, tmp_path)


def test_corrupt_jpeg_in_a_worker_is_one_line(station_copy, tmp_path):
    """A val photo (decoded in a DataLoader worker during the test pass) that is not a JPEG."""
    pairs = pd.read_csv(station_copy / "pairs.csv")
    row = int((pairs["split"] == "val").to_numpy().argmax())  # its first val pair
    name = pairs["filename_1"].iloc[row]
    (station_copy / "images" / name).write_bytes(b"\xff\xd8 not really a JPEG")
    line = _refused(station_copy, tmp_path, "--workers", 1, "--batch-size", 64)
    assert f"{name} (" in line and "pairs.csv row" in line and "not a readable JPEG" in line
