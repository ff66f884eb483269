"""cloud-mask on the TensorFlow engine (`--framework tf`): it learns, infers from the raw products in
the same mask format, starts from saved weights, and 2 ranks under mpirun (MultiWorkerMirroredStrategy
over mlscale's ranks) follow the 1-rank run for the same global batch."""

from __future__ import annotations

import pytest
from support.cloud_mask import TINY, majority_baseline, mask_agreement
from support.run import run_mlscale

from mlscale.errors import UserError
from mlscale.results.record import load_record

pytest.importorskip("tensorflow")
TF = ["--framework", "tf", *TINY]


@pytest.fixture(scope="module")
def tf_trained(cm_data, cm_hdf, tmp_path_factory):
    """A 1-rank TensorFlow run: 6 epochs, then inference over the raw products (`--infer`)."""
    root = tmp_path_factory.mktemp("cloud_tf")
    run_mlscale("run", "cloud-mask", "--data", cm_hdf, "--products", cm_data / "products", *TF, "--batch-size", 8,
                "--epochs", 6, "--infer", "--backend", "single", "--out", root, "--run-id", "tf",
                "--save-weights", root / "unet_tf.h5")  # fmt: skip
    return root


def test_tf_learns_and_infers(cm_hdf, tf_trained):
    record = load_record(tf_trained / "tf")
    epochs = record["epoch_stats"]
    baseline = majority_baseline(cm_hdf)
    assert epochs[-1]["test_accuracy"] > baseline + 0.5 * (1 - baseline), (epochs[-1], baseline)
    assert record["workload_info"]["framework"] == "tf" and record["workload_info"]["parameters"] > 0
    assert record["inference"]["products"] == record["inference"]["samples"] > 0
    assert mask_agreement(tf_trained / "tf", cm_hdf) > 0.85


@pytest.mark.slow
def test_tf_two_ranks_follow_one_rank(cm_hdf, tf_trained, tmp_path):
    """From the saved weights, every training patch in one step (global batch 60 = 2 x 30): the
    2-rank run's losses are the 1-rank run's, within 2%."""
    common = ["run", "cloud-mask", "--data", cm_hdf, *TF, "--global-batch-size", 60, "--epochs", 2,
              "--weights", tf_trained / "unet_tf.h5", "--out", tmp_path]  # fmt: skip
    run_mlscale(*common, "--backend", "single", "--run-id", "one")
    run_mlscale(*common, "--backend", "mpi", "--run-id", "two", ranks=2)
    one, two = load_record(tmp_path / "one"), load_record(tmp_path / "two")
    assert two["num_ranks"] == 2 and two["global_batch_size"] == 60
    assert one["epoch_stats"][0]["train_accuracy"] > 0.8  # it started from the trained weights
    for a, b in zip(one["epoch_stats"], two["epoch_stats"]):
        assert abs(a["train_loss"] - b["train_loss"]) <= 0.02 * a["train_loss"], (a, b)


def test_tf_refuses_torch_switches():
    from mlscale.bench.config import RunConfig
    from mlscale.engines.tensorflow.engine import TensorFlowEngine
    from mlscale.launch.devices import DeviceChoice

    for run, flag in ((RunConfig(backend="ddp"), "--backend ddp"), (RunConfig(backend="mpi", amp=True), "--amp")):
        with pytest.raises(UserError, match=flag):
            TensorFlowEngine.check_supported(run, DeviceChoice("cpu"))
