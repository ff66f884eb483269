"""GPU paths: CUDA-event timing, AMP with loss scaling, CUDA graphs, NCCL. Skipped without a GPU."""

from __future__ import annotations

import json

import pytest
import torch
from support.run import TINY_SYNTHETIC, run_mlscale

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none is visible here"),
]

TINY = [*TINY_SYNTHETIC, "--batch-size", "8", "--steps-per-epoch", "8", "--device", "cuda"]


@pytest.mark.parametrize("switches", [[], ["--amp"], ["--cuda-graphs"], ["--amp", "--channels-last"]])
def test_gpu_run_records_device_phases(tmp_path, switches):
    run_mlscale("run", "synthetic", *TINY, *switches, "--out", tmp_path, "--run-id", "g")
    rec = json.loads((tmp_path / "g" / "record.json").read_text())
    assert rec["device_type"] == "cuda" and rec["num_gpus"] == 1
    # CUDA-event timing: every step has a device-timed forward phase.
    assert rec["phases"]["forward"]["count"] == 16 and rec["phases"]["forward"]["mean"] > 0
    assert rec["epoch_stats"][1]["train_loss"] is not None


def test_nccl_two_ranks(tmp_path):
    if torch.cuda.device_count() < 1:
        pytest.skip("needs a GPU")
    run_mlscale("run", "synthetic", *TINY, "--out", tmp_path, "--run-id", "n", ranks=2)
    rec = json.loads((tmp_path / "n" / "record.json").read_text())
    assert rec["num_ranks"] == 2 and rec["device_type"] == "cuda"
