"""--weights / --save-weights: a trained model out of one run and into the next (mlscale/engines/torch/weights.py)."""

from __future__ import annotations

import json

import pytest
import torch
from support.run import TINY_SYNTHETIC, run_mlscale

from mlscale.workloads.synthetic.model import TinyCNN


def _epochs(out, run_id):
    return json.loads((out / run_id / "record.json").read_text())["epoch_stats"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    path = out / "tiny.pt"
    run_mlscale("run", "synthetic", *TINY_SYNTHETIC, "--save-weights", path, "--out", out, "--run-id", "a", ranks=2)
    return out, path


def test_saved_weights_are_the_trained_model(trained):
    out, path = trained
    state = torch.load(path, weights_only=True)
    model = TinyCNN(num_classes=10)
    model.load_state_dict(state)  # strict: the file is exactly this model's state_dict
    assert not any(name.startswith("module.") for name in state)
    assert not any(p.name.endswith(".tmp") or ".tmp" in p.name for p in out.iterdir())


def _train_loss_of(path, batch_size: int) -> float:
    """The training-mode loss of the saved weights on rank 0's synthetic training batch, computed here."""
    from mlscale.bench.config import RunConfig
    from mlscale.bench.workload import Context
    from mlscale.workloads.synthetic.workload import Synthetic, SyntheticConfig

    run = RunConfig(batch_size=batch_size, device="cpu")
    workload = Synthetic(SyntheticConfig("tiny", 32, 10), Context.single_process(run))
    images, labels = workload.build_data("train").batch
    model = TinyCNN(num_classes=10)
    model.load_state_dict(torch.load(path, weights_only=True))
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model.train()(images), labels))


def test_a_run_from_saved_weights_trains_from_them(trained):
    """With lr 0 the weights never move, so every step's loss (training mode: batch statistics) is the
    saved model's loss on that batch, which the test computes itself."""
    out, path = trained
    run_mlscale("run", "synthetic", *TINY_SYNTHETIC, "--weights", path, "--lr", "0", "--out", out, "--run-id", "b")
    expected = _train_loss_of(path, batch_size=4)
    assert [e["train_loss"] for e in _epochs(out, "b")] == pytest.approx([expected, expected], rel=1e-5)
    # not by chance: from its own initial weights the same run has another loss
    run_mlscale("run", "synthetic", *TINY_SYNTHETIC, "--lr", "0", "--out", out, "--run-id", "c")
    assert _epochs(out, "c")[0]["train_loss"] != pytest.approx(expected, rel=1e-3)


def test_inference_mode_reads_weights(trained):
    out, path = trained
    run_mlscale("run", "synthetic", *TINY_SYNTHETIC, "--mode", "inference", "--weights", path, "--out", out)


@pytest.mark.parametrize(
    "make, message",
    [
        (None, "--weights file not found"),
        (lambda p: p.write_bytes(b"not a torch file"), "not a torch weights file"),
        (lambda p: torch.save([1, 2, 3], p), "holds no state_dict"),
        (lambda p: torch.save(TinyCNN(num_classes=5).state_dict(), p), "does not fit this model: other shape head"),
        (lambda p: torch.save({"model": {"x": torch.zeros(1)}}, p), "missing features.0.weight"),
    ],
)
def test_bad_weights_are_one_line_exit_2(tmp_path, make, message):
    path = tmp_path / "w.pt"
    if make:
        make(path)
    proc = run_mlscale("run", "synthetic", *TINY_SYNTHETIC, "--weights", path, "--out", tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and str(path) in proc.stderr and "Traceback" not in proc.stderr
    assert not [p for p in tmp_path.iterdir() if p.is_dir()], "a failed run left a directory behind"


def test_save_weights_into_a_missing_directory_fails_before_training(tmp_path):
    target = tmp_path / "nowhere" / "w.pt"
    proc = run_mlscale("run", "synthetic", *TINY_SYNTHETIC, "--save-weights", target, "--out", tmp_path, check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    assert "epoch 1" not in proc.stderr
