"""cloud-mask training and inference through the real command (torch): the U-Net, the pipeline
and its cache, learning well above the trivial baseline, 2 ranks under mpirun reaching the 1-rank
loss, stitched masks in the seed's format, the SST comparison and the report's tables."""

from __future__ import annotations

import numpy as np
import pytest
from support.cloud_mask import PRODUCTS, TINY, majority_baseline, mask_agreement
from support.run import run_mlscale

from mlscale.results.record import load_record, load_records
from mlscale.workloads.cloud_mask.inference import Tiling, extract, stitch
from mlscale.workloads.cloud_mask.pipeline import PatchBatches, crop_box, list_files, split_files


def test_unet_has_the_seeds_size():
    from mlscale.workloads.cloud_mask.torch_parts import build_model

    assert sum(p.numel() for p in build_model(9, 32, 0).parameters()) == 1_948_609


def test_torch_on_the_cpu_runs_channels_last(cm_hdf):
    """On the CPU the torch workload feeds NHWC batches as channels_last views and a channels_last
    U-Net (oneDNN's fast layout); its outputs and gradients are the NCHW model's, up to float rounding."""
    import torch

    from mlscale.bench.config import RunConfig
    from mlscale.bench.workload import Context
    from mlscale.workloads.cloud_mask.config import CloudMaskConfig
    from mlscale.workloads.cloud_mask.torch_parts import build_model, loss
    from mlscale.workloads.cloud_mask.workload import CloudMask

    ctx = Context.single_process(RunConfig(batch_size=4, device="cpu"))
    workload = CloudMask(CloudMaskConfig(data=str(cm_hdf), patch_size=32, loss_border=4, infer_border=4, width=8), ctx)
    x, y = next(iter(workload.build_data("train")))
    assert x.shape == (4, 9, 32, 32) and y.shape == (4, 1, 32, 32)
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    fast, plain = workload.build_model(), build_model(9, 8, ctx.run.seed)
    assert fast.down[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    grads = []
    for model, batch in ((fast, x), (plain, x.contiguous())):
        out = model(batch)
        loss(out, y, 4, 0.5).backward()
        grads.append((out.detach(), model.down[0][0].weight.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-5)


def test_seed_geometry():
    assert crop_box((1200, 1500), 256) == (88, 110, 1024, 1280)  # 20 patches per image
    tiling = Tiling(1200, 1500, 256, 40)
    assert tiling.stride == 176 and tiling.counts == (7, 9)


def test_stitching_puts_every_pixel_back():
    rng = np.random.default_rng(0)
    image = rng.random((50, 70, 2))
    tiling = Tiling(50, 70, 32, 6)
    patches = extract(image, tiling)
    np.testing.assert_array_equal(stitch(patches[..., 1], tiling), image[..., 1])


def test_cache_reads_each_file_once(cm_hdf):
    files = split_files(list_files(str(cm_hdf)), 0.2, 42)["train"]
    for cache, reads in ((True, 1), (False, 2)):
        batches = PatchBatches(files, 32, 4, train=True, cache=cache, seed=0, channels_last=False)
        first = [x for x, _ in batches]
        one_pass = batches.bytes_read
        second = [x for x, _ in batches]
        assert len(first) == len(second) == len(batches) == len(files) * 6 // 4
        assert batches.bytes_read == reads * one_pass
        assert not all(np.array_equal(a, b) for a, b in zip(first, second))  # reshuffled


def _epochs(run_dir):
    return load_record(run_dir)["epoch_stats"]


def test_it_learns(cm_trained, cm_hdf):
    record = load_record(cm_trained["run"])
    epochs = record["epoch_stats"]
    baseline = majority_baseline(cm_hdf)
    assert epochs[-1]["test_accuracy"] > baseline + 0.5 * (1 - baseline), (epochs[-1], baseline)
    assert epochs[-1]["train_loss"] < 0.6 * epochs[0]["train_loss"]
    assert record["workload_info"]["framework"] == "torch" and record["workload_info"]["cache"] is True


@pytest.mark.slow
def test_two_ranks_reach_the_one_rank_loss(cm_hdf, tmp_path):
    """Same global batch: every training patch in one step (10 files x 6 patches; 2 ranks x 30), so the
    step's gradient is the same whatever the shards and shuffles, and 2 ranks under DDP must follow
    the 1-rank run: final loss within 2%."""
    n_train = len(split_files(list_files(str(cm_hdf)), 0.2, 42)["train"])
    assert n_train == 10
    common = ["run", "cloud-mask", "--data", cm_hdf, *TINY, "--global-batch-size", 60, "--epochs", 2, "--out", tmp_path]
    run_mlscale(*common, "--backend", "single", "--run-id", "one")
    run_mlscale(*common, "--backend", "ddp", "--run-id", "two", ranks=2)
    one, two = _epochs(tmp_path / "one"), _epochs(tmp_path / "two")
    assert abs(two[-1]["train_loss"] - one[-1]["train_loss"]) <= 0.02 * one[-1]["train_loss"], (one[-1], two[-1])
    report = run_mlscale("report", tmp_path).stdout
    assert "first_epoch_time" in report and "two" in report and "one" in report


@pytest.mark.slow
def test_inference_and_sst_comparison(cm_data, cm_hdf, cm_trained, tmp_path):
    runs = tmp_path / "runs"
    run_mlscale("run", "cloud-mask", "--mode", "inference", "--products", cm_data / "products", *TINY,
                "--batch-size", 8, "--weights", cm_trained["weights"], "--out", runs, "--run-id", "infer",
                "--backend", "mpi", ranks=2)  # fmt: skip
    assert mask_agreement(runs / "infer", cm_hdf) > 0.85  # the stitched masks sit where the clouds are
    record = load_record(runs / "infer")
    assert record["inference"]["samples"] == PRODUCTS and record["inference"]["products"] == PRODUCTS
    proc = run_mlscale("cloud-mask", "sst", cm_data / "sst_matchups.h5", runs / "infer", "--record", runs)
    assert "Bayesian clear sky" in proc.stdout and "U-Net clear sky" in proc.stdout
    sst = next(r for r in load_records([runs]) if r["mode"] == "sst")["stage"]
    assert sst["unet"]["count"] > 0 and sst["agreement"] > 0.7
    assert abs(sst["unet"]["median"]) < 1.0  # the U-Net's clear sky is not cloud-contaminated
    report = run_mlscale("report", runs).stdout
    assert "SST Comparison" in report and "infer" in report.split("## Inference")[1]
