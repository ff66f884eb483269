"""Tables from records made here: columns, order, values and scaling efficiency."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlscale.results.record import write_run_dir
from mlscale.results.tables import (
    INFERENCE_COLUMNS,
    TRAINING_COLUMNS,
    inference_table,
    scaling_list,
    scaling_table,
    training_table,
)


def make_record(run_id, ranks, nodes, rate, system="PEARL", mode="train", status="ok", gpus=None):
    epochs = [
        {"epoch": 1, "wall_time": 10.0, "train_time": 8.0, "test_time": 2.0, "train_imgs_per_s": rate / 2},
        {"epoch": 2, "wall_time": 5.0, "train_time": 4.0, "test_time": 1.0, "train_imgs_per_s": rate},
    ]
    return {
        "schema_version": 1,
        "run_id": run_id,
        "workload": "cloud-mask",
        "mode": mode,
        "status": status,
        "system": system,
        "num_ranks": ranks,
        "num_nodes": nodes,
        "num_gpus": ranks if gpus is None else gpus,
        "total_time": 15.5,
        "epoch_stats": epochs if mode == "train" else [],
        "train_accuracy": 0.85,
        "test_accuracy": 0.84,
        "train_loss": 0.21,
        "test_loss": 0.22,
        "batch_size": 32,
        "epochs": 2,
        "learning_rate": 0.001,
        "inference": {"total_time": 100.0, "samples": 160, "imgs_per_s": 1.6 * ranks},
    }


def test_training_table_has_the_seed_columns_in_order():
    df = training_table([make_record("run_24409", 1, 1, 160.0)])
    assert list(df.columns) == TRAINING_COLUMNS
    row = df.iloc[0]
    assert row["index"] == "run_24409" and row["first_epoch_time"] == 10.0 and row["second_epoch_test_time"] == 1.0
    assert row["imgs_per_s_second_epoch"] == 160.0 and row["imgs_per_s_first_epoch"] == 80.0
    assert row["learning_rate"] == 0.001 and row["epochs"] == 2


def test_inference_table_columns_and_values():
    df = inference_table([make_record("a", 4, 1, 1.0)])
    assert list(df.columns) == INFERENCE_COLUMNS
    assert df.iloc[0].tolist() == ["a", "PEARL", 4, 4, 100.0, 6.4]


def test_failed_runs_are_left_out_of_tables():
    records = [make_record("ok", 1, 1, 10.0), make_record("bad", 2, 1, 99.0, status="failed")]
    assert training_table(records)["index"].tolist() == ["ok"]
    assert scaling_table(records)["num_ranks"].tolist() == [1]


def test_scaling_by_nodes_like_cooley():
    # Cooley's published list: 0.24 img/s on 1 node ... 2.92 on 14 nodes.
    rates = {1: 0.24, 2: 0.49, 4: 0.95, 8: 1.82, 14: 2.92}
    records = [make_record(f"n{n}", 2 * n, n, r, system="cooley") for n, r in rates.items()]
    table = scaling_table(records)
    assert table.attrs["unit"] == "nodes"
    assert table["num_nodes"].tolist() == [1, 2, 4, 8, 14]
    assert table["scaling_efficiency"].tolist() == pytest.approx([r / 0.24 / n for n, r in rates.items()])
    text = scaling_list(table)
    assert " - 0.24 Img/s (1 node, 2 ranks)" in text
    assert " - 2.92 Img/s (14 nodes, 87% scaling efficiency from 1 node, 28 ranks)" in text


def test_repeats_count_once_by_their_median():
    records = [make_record(f"r{i}", 1, 1, v) for i, v in enumerate([10.0, 30.0, 20.0])]
    records.append(make_record("two", 2, 1, 36.0))
    table = scaling_table(records)
    assert table["runs"].tolist() == [3, 1]
    assert table["imgs_per_s"].tolist() == [20.0, 36.0]
    assert table["scaling_efficiency"].iloc[1] == pytest.approx(0.9)


def test_systems_are_scaled_separately():
    records = [
        make_record("p1", 1, 1, 100.0),
        make_record("p2", 2, 1, 180.0),
        make_record("s1", 1, 1, 10.0, system="SCARF"),
        make_record("s2", 2, 1, 20.0, system="SCARF"),
    ]
    table = scaling_table(records).set_index(["system", "num_ranks"])
    assert table.loc[("PEARL", 2), "scaling_efficiency"] == pytest.approx(0.9)
    assert table.loc[("SCARF", 2), "scaling_efficiency"] == pytest.approx(1.0)


def test_write_run_dir_is_all_or_nothing(tmp_path):
    write_run_dir(tmp_path, "r", {"schema_version": 1}, [{"rank": 0}], "log\n")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["ranks.jsonl", "record.json", "run.log"]
    with pytest.raises(TypeError):
        write_run_dir(tmp_path, "s", {"schema_version": 1, "bad": object()}, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no partial "s", no temp dir left


def test_results_package_never_imports_torch():
    code = (
        "import sys; import mlscale.results.tables, mlscale.results.record, mlscale.commands.report;"
        "from mlscale.cli import build_parser; build_parser();"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
