"""The α–β scaling projection: fitting, projecting, and a check of the model on allreduces we can measure."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from support.records import make_run
from support.run import child_env, mpirun_prefix

from mlscale.errors import UserError
from mlscale.results import projection
from mlscale.results.record import load_records


def test_fit_recovers_known_network():
    alpha, bw = 20e-6, 5e9
    points = [(p, n, float(projection.ring_allreduce_time(p, n, alpha, bw))) for p in (2, 4, 8) for n in (1e6, 1e8)]
    fit_alpha, fit_bw = projection.fit_alpha_beta(points)
    assert fit_alpha == pytest.approx(alpha, rel=1e-6) and fit_bw == pytest.approx(bw, rel=1e-6)
    # one point: the latency is taken as given and only the bandwidth solved for
    _, bw_one = projection.fit_alpha_beta(points[:1], latency_s=alpha)
    assert bw_one == pytest.approx(bw, rel=1e-6)
    with pytest.raises(UserError, match="more than one rank"):
        projection.fit_alpha_beta([(1, 1e6, 0.0)])


def test_projection_of_a_sweep(tmp_path):
    for n in (1, 2, 4):
        make_run(tmp_path, f"r{n}", ranks=n, compute_s=0.1, comm_s_per_rank=0.01, parameters=25_000_000)
    net = projection.Network(bandwidth_gbps=200, latency_us=2, gpus_per_node=4)
    proj = projection.project(load_records([tmp_path]), net, global_batch=4096)
    t = proj.table
    assert list(t["nodes"]) == [2**i for i in range(11)] and list(t["ranks"]) == [4 * 2**i for i in range(11)]
    assert proj.grad_bytes == 100e6 and proj.compute_s == pytest.approx(0.1)
    assert list(proj.measured["allreduce_s"]) == pytest.approx([0.0, 0.01, 0.03])
    # efficiency falls with scale and stays a fraction; throughput still grows (weak scaling)
    assert (np.diff(t["efficiency"]) < 0).all() and (t["efficiency"].between(0, 1)).all()
    assert (np.diff(t["imgs_per_s"]) > 0).all()
    # past one node the ring runs over the 200 Gbit/s network, slower than the fitted path here
    p = t.loc[t["nodes"] == 1024, "ranks"].item()
    expected = 2 * (p - 1) * max(proj.fit_alpha_s, 2e-6) + 2 * (p - 1) / p * 100e6 / min(proj.fit_bytes_per_s, 25e9)
    assert t.loc[t["nodes"] == 1024, "allreduce_s"].item() == pytest.approx(expected)
    assert "strong_efficiency" in t and t["strong_efficiency"].iloc[-1] < t["strong_efficiency"].iloc[0]
    text = " ".join(proj.assumptions)
    assert "100 MB" in text and "200 Gbit/s" in text and "4 ranks per node" in text


def test_projection_needs_a_one_rank_run(tmp_path):
    make_run(tmp_path, "r2", ranks=2)
    with pytest.raises(UserError, match="1-rank run"):
        projection.project(load_records([tmp_path]))


def test_model_predicts_a_measured_allreduce(tmp_path):
    """Fit α and β on 1, 2 and 4 MB allreduces between 2 real ranks; predict 16 MB (4x beyond).

    Tolerance: the measured time within a factor 2 of the prediction, either way. On this
    2-core VM shared with other jobs, the best of 10 timings of one 16 MB allreduce varied
    from 14 to 26 ms between mpiruns (1.8x), and predictions landed at 1.04-1.34x of the
    measurement (16 MB falls out of cache, so it is slightly slower per byte). A tighter bound
    would test the neighbours' load, not the model; a factor 2 still rejects a model that
    leaves out the bandwidth term (checked below) or scales wrongly with message size.
    """
    out = tmp_path / "allreduce.json"
    sizes = (1e6, 2e6, 4e6)
    cmd = [*mpirun_prefix(2), sys.executable, "-m", "mlscale.bench.commbench", "--sizes", *map(str, sizes), "16e6",
           "--repeats", "10", "--json", str(out)]  # fmt: skip
    subprocess.run(cmd, env=child_env(), check=True, capture_output=True, timeout=300)
    data = json.loads(out.read_text())
    assert data["ranks"] == 2 and len(data["points"]) == 4
    points = {p["bytes"]: p["seconds"] for p in data["points"]}
    alpha, bw = projection.fit_alpha_beta([(2, n, points[n]) for n in sizes])
    predicted = float(projection.ring_allreduce_time(2, 16e6, alpha, bw))
    measured = points[16e6]
    assert 0.5 < measured / predicted < 2.0, (points, alpha, bw, predicted)
    latency_only = float(projection.ring_allreduce_time(2, 16e6, alpha, np.inf))
    assert latency_only < 0.5 * measured  # the bandwidth term carries the prediction: the check can fail
